//! Policies fail closed, and see the provider's record.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::policy::{PolicyContext, Resource, decide};
use dpx_contracts::*;
use dpx_crypto::Keypair;
use std::fmt::Write as _;

/// Replace the policy set (one agency: 1 of 1 is a quorum).
fn set_policies(w: &mut World, text: String) {
    let a = w.agency().clone();
    let r = w.ok(&a, Operation::Propose { action: ProposalAction::SetPolicies { text } });
    assert_eq!(r.events_of("policy.updated").count(), 1);
}

fn market() -> (World, Keypair, Keypair, ProductId) {
    let mut w = World::new();
    let provider = kp(1);
    let buyer = kp(2);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());
    (w, provider, buyer, product)
}

fn order(product: ProductId) -> Operation {
    Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None }
}

/// A `forbid` that errors (an integer overflow at run time: strict validation cannot see it)
/// denies; Cedar alone would skip it and allow. The receipt names the policy and the error.
#[test]
fn an_erroring_forbid_denies_with_the_error_in_the_receipt() {
    let (mut w, _, buyer, product) = market();
    w.ok(&buyer, order(product)); // allowed under the defaults
    let erroring = r#"
@id("overflowing-forbid")
forbid (principal, action == Action::"order", resource)
when { resource.grade * 4611686018427387904 > 0 };
"#;
    set_policies(&mut w, format!("{DEFAULT_POLICIES}\n{erroring}"));
    let r = w.fail(&buyer, order(product), Code::Denied, "overflowing-forbid");
    let d = r.decision.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.policy_version, 2);
    assert!(d.reason.contains("failed to evaluate"), "{}", d.reason);
    assert!(d.reason.contains("overflow"), "the error text is in the reason: {}", d.reason);
    // Actions the erroring policy does not cover are unaffected.
    let b = buyer.clone();
    w.ok(
        &b,
        Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: dpx_crypto::Hash::ZERO,
            deadline_ms: None,
        },
    );
}

/// An erroring `permit` denies too, even when another policy permits the same request.
#[test]
fn an_erroring_permit_denies_even_beside_a_working_permit() {
    let (mut w, _, buyer, product) = market();
    let erroring = r#"
@id("overflowing-permit")
permit (principal, action == Action::"order", resource)
when { principal.rating - 9223372036854775807 - 2 < 0 };
"#;
    set_policies(&mut w, format!("{DEFAULT_POLICIES}\n{erroring}"));
    let r = w.fail(&buyer, order(product), Code::Denied, "overflowing-permit");
    assert!(r.reason.contains("fail closed"), "{}", r.reason);
}

/// Policies read the provider's record through `resource.provider`; a change to the provider
/// alone (the product record unchanged) changes the decision.
#[test]
fn a_policy_reads_the_providers_attributes() {
    let (mut w, provider, buyer, product) = market();
    let strict = r#"
@id("well-rated-providers-only")
forbid (principal, action == Action::"order", resource)
when { resource.provider.rating < 3 || !resource.provider.roles.contains("provider") };
"#;
    set_policies(&mut w, format!("{DEFAULT_POLICIES}\n{strict}"));
    let r = w.fail(&buyer, order(product), Code::Denied, "forbidden by well-rated-providers-only");
    assert!(!r.decision.unwrap().reason.contains("failed to evaluate"));
    w.rate(&provider.public(), 3);
    let r = w.ok(&buyer, order(product));
    assert!(r.decision.unwrap().allowed);
}

/// The default `provider-in-good-standing` policy, asked directly (the contracts refuse the
/// same requests before they reach the policy): products of a suspended, negative-listed or
/// downgraded provider cannot be ordered or used.
#[test]
fn the_default_policy_denies_products_of_providers_out_of_business() {
    let (mut w, provider, buyer, product) = market();
    let prod: Product = w.get(&keys::product(&product)).unwrap();
    let me = w.participant(&buyer.public());
    let ask = |w: &World, action| {
        decide(&w.st, &me, action, &Resource::Product(prod.clone()), &PolicyContext::none())
            .unwrap()
    };
    assert!(ask(&w, Action::Order).allowed);
    let op = w.operator.clone();
    let reg = w.regulator.clone();
    w.ok(&op, Operation::Suspend { participant: provider.public(), reason: "r".into() });
    for action in [Action::Order, Action::UseGrant] {
        let d = ask(&w, action);
        assert!(!d.allowed && d.determining.contains(&"provider-in-good-standing".to_string()));
    }
    w.ok(&op, Operation::Reinstate { participant: provider.public() });
    assert!(ask(&w, Action::Order).allowed);
    w.ok(
        &reg,
        Operation::SetListStatus {
            participant: provider.public(),
            status: ListStatus::NegativeListed,
        },
    );
    assert!(!ask(&w, Action::Order).allowed);
    w.ok(
        &reg,
        Operation::SetListStatus { participant: provider.public(), status: ListStatus::Normal },
    );
    w.rate(&provider.public(), 1);
    let d = ask(&w, Action::Order);
    assert!(!d.allowed && d.reason.contains("provider-in-good-standing"), "{}", d.reason);
}

/// However many policies error, the receipt's reason stays bounded: 8 named, the rest counted.
#[test]
fn many_erroring_policies_are_named_up_to_a_bound() {
    let (mut w, _, buyer, product) = market();
    let mut erroring = String::new();
    for i in 0..12 {
        writeln!(
            erroring,
            "@id(\"err-{i:02}\") forbid (principal, action == Action::\"order\", resource) \
             when {{ resource.grade * 4611686018427387904 > {i} }};"
        )
        .unwrap();
    }
    set_policies(&mut w, format!("{DEFAULT_POLICIES}\n{erroring}"));
    let r = w.fail(&buyer, order(product), Code::Denied, "and 4 more");
    let reason = r.decision.unwrap().reason;
    assert!(reason.contains("err-00") && reason.contains("err-07"), "{reason}");
    assert!(!reason.contains("err-08"), "sorted, first 8 named: {reason}");
}
