//! Providers out of business: a suspended, negative-listed or downgraded provider's products
//! can be neither ordered nor used, its orders neither accepted nor delivered, its offers not
//! made — until it is reinstated or re-rated. The catalogue shows the computed availability.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};

struct Cast {
    w: World,
    provider: Keypair,
    buyer: Keypair,
    /// A grade 2 product of `provider` (rated 2).
    product: ProductId,
}

fn cast() -> Cast {
    let mut w = World::new();
    let provider = kp(1);
    let buyer = kp(2);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.fund(&buyer.public(), 1_000_000);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());
    Cast { w, provider, buyer, product }
}

fn order(product: ProductId) -> Operation {
    Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None }
}

/// The catalogue's computed status of `product`.
fn shown(w: &World, product: ProductId) -> String {
    let key = keys::product(&product);
    let v = render_in(&w.st, &key, &w.st.get(&key).unwrap()).unwrap();
    v["availability"].as_str().unwrap().to_string()
}

/// Place an order and return its id.
fn place(c: &mut Cast) -> OrderId {
    let id = OrderId::derive(CHAIN, &c.buyer.public(), c.w.nonce(&c.buyer.public()));
    let b = c.buyer.clone();
    c.w.ok(&b, order(c.product));
    id
}

#[test]
fn a_downgraded_provider_is_out_of_business_until_re_rated() {
    let mut c = cast();
    assert_eq!(shown(&c.w, c.product), "available");
    let accepted_before = place(&mut c);
    let pending = place(&mut c);
    let (p, b) = (c.provider.clone(), c.buyer.clone());
    c.w.ok(&p, Operation::AcceptOrder { order: accepted_before });
    // The rating body lowers the provider below the product's grade.
    c.w.rate(&p.public(), 1);
    assert_eq!(shown(&c.w, c.product), "provider_rated_below_grade");
    assert_eq!(
        availability(&c.w.st, &c.w.get::<Product>(&keys::product(&c.product)).unwrap()).unwrap(),
        Availability::ProviderRatedBelowGrade
    );
    c.w.fail(&b, order(c.product), Code::Failed, "provider_rated_below_grade");
    c.w.fail(
        &p,
        Operation::AcceptOrder { order: pending },
        Code::Failed,
        "provider_rated_below_grade",
    );
    c.w.fail(
        &p,
        Operation::DeliverOrder { order: accepted_before, delivery_hash: Hash::digest(b"d") },
        Code::Failed,
        "provider_rated_below_grade",
    );
    // The buyer may still walk away.
    c.w.ok(&b, Operation::CancelOrder { order: pending });
    // A product at or below the new rating stays in business.
    let low = c.w.list(&p, 1, ProductConditions::default());
    assert_eq!(shown(&c.w, low), "available");
    c.w.ok(&b, order(low));
    // Re-rated: back in business.
    c.w.rate(&p.public(), 2);
    assert_eq!(shown(&c.w, c.product), "available");
    c.w.ok(&b, order(c.product));
    c.w.ok(
        &p,
        Operation::DeliverOrder { order: accepted_before, delivery_hash: Hash::digest(b"d") },
    );
}

#[test]
fn a_suspended_provider_is_out_of_business_until_reinstated() {
    let mut c = cast();
    let pending = place(&mut c);
    let (p, b, op) = (c.provider.clone(), c.buyer.clone(), c.w.operator.clone());
    c.w.ok(&op, Operation::Suspend { participant: p.public(), reason: "licence lapsed".into() });
    assert_eq!(shown(&c.w, c.product), "provider_suspended");
    c.w.fail(&b, order(c.product), Code::Failed, "provider_suspended");
    c.w.fail(&p, Operation::AcceptOrder { order: pending }, Code::Failed, "provider_suspended");
    c.w.ok(&op, Operation::Reinstate { participant: p.public() });
    assert_eq!(shown(&c.w, c.product), "available");
    c.w.ok(&b, order(c.product));
    c.w.ok(&p, Operation::AcceptOrder { order: pending });
}

#[test]
fn a_negative_listed_provider_is_out_of_business_until_listed_again() {
    let mut c = cast();
    let (p, b, reg) = (c.provider.clone(), c.buyer.clone(), c.w.regulator.clone());
    let listing = |status| Operation::SetListStatus { participant: p.public(), status };
    c.w.ok(&reg, listing(ListStatus::NegativeListed));
    assert_eq!(shown(&c.w, c.product), "provider_negative_listed");
    c.w.fail(&b, order(c.product), Code::Failed, "provider_negative_listed");
    c.w.ok(&reg, listing(ListStatus::Normal));
    c.w.ok(&b, order(c.product));
}

/// A grant use against a product of a provider out of business is refused and consumes
/// nothing: after reinstatement the same grant is used once.
#[test]
fn grant_use_against_a_barred_provider_is_refused_and_the_grant_survives() {
    let mut w = World::new();
    let provider = kp(1);
    let employer = kp(2);
    let applicant = kp(3);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&employer, &[Role::Consumer]);
    w.rate(&provider.public(), 3);
    let product = w.list(&provider, 3, ProductConditions::default());
    let sid = w.enrol(&applicant, "applicant");
    let sg =
        grant(&applicant, sid, 1, &employer.public(), product, "hiring-check", T0_MS + 3_600_000);
    let gid = sg.grant.id();
    let use_op = use_inline(&sg, b"check");
    let op = w.operator.clone();
    w.ok(&op, Operation::Suspend { participant: provider.public(), reason: "r".into() });
    w.fail(&employer, use_op.clone(), Code::Failed, "provider_suspended");
    w.ok(&op, Operation::Reinstate { participant: provider.public() });
    w.rate(&provider.public(), 2);
    w.fail(&employer, use_op.clone(), Code::Failed, "provider_rated_below_grade");
    assert!(w.st.get(&keys::usage(&gid)).is_none(), "nothing consumed");
    w.rate(&provider.public(), 3);
    let r = w.ok(&employer, use_op);
    assert_eq!(r.events_of("grant.consumed").count(), 1);
}

#[test]
fn a_provider_out_of_business_cannot_answer_demands_with_its_products() {
    let mut c = cast();
    let (p, b, op) = (c.provider.clone(), c.buyer.clone(), c.w.operator.clone());
    let did = DemandId::derive(CHAIN, &b.public(), c.w.nonce(&b.public()));
    c.w.ok(
        &b,
        Operation::PostDemand {
            title: "need".into(),
            domain: "finance".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: None,
        },
    );
    let respond = |product| Operation::RespondDemand {
        demand: did,
        product,
        price: 1,
        proposal_hash: Hash::ZERO,
    };
    c.w.rate(&p.public(), 1);
    c.w.fail(&p, respond(Some(c.product)), Code::Failed, "provider_rated_below_grade");
    c.w.ok(&op, Operation::Suspend { participant: p.public(), reason: "r".into() });
    c.w.fail(&p, respond(None), Code::Denied, "suspended");
    c.w.ok(&op, Operation::Reinstate { participant: p.public() });
    c.w.rate(&p.public(), 2);
    c.w.ok(&p, respond(Some(c.product)));
}

/// A downgraded provider may still bring its product down to its rating, or delist it.
#[test]
fn a_downgraded_provider_may_still_regrade_or_delist() {
    let mut c = cast();
    let (p, b) = (c.provider.clone(), c.buyer.clone());
    c.w.rate(&p.public(), 1);
    c.w.ok(
        &p,
        Operation::UpdateProduct {
            product: c.product,
            spec: spec(1, ProductConditions::default()),
        },
    );
    assert_eq!(shown(&c.w, c.product), "available");
    c.w.ok(&b, order(c.product));
    c.w.ok(&p, Operation::DelistProduct { product: c.product });
    assert_eq!(shown(&c.w, c.product), "delisted");
    c.w.fail(&b, order(c.product), Code::Failed, "delisted");
}
