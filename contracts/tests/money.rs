//! Money: deposits and withdrawals by settlement banks, escrow through an order's life cycle,
//! the platform fee and the treasury, and orders that follow an awarded demand. Every scenario
//! ends by checking conservation (balances + escrows + treasury = deposited − withdrawn).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};

const PRICE: u64 = 10_000;

struct Market {
    w: World,
    provider: Keypair,
    buyer: Keypair,
    /// A grade-1 product of `provider` priced [`PRICE`].
    product: ProductId,
}

fn market() -> Market {
    let mut w = World::new();
    let (provider, buyer) = (kp(1), kp(2));
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.rate(&provider.public(), 1);
    let product = w.list(&provider, 1, ProductConditions::default());
    Market { w, provider, buyer, product }
}

impl Market {
    fn place(&mut self) -> OrderId {
        let b = self.buyer.clone();
        let id = OrderId::derive(CHAIN, &b.public(), self.w.nonce(&b.public()));
        let op = Operation::PlaceOrder {
            product: self.product,
            grant: None,
            purpose: String::new(),
            demand: None,
        };
        self.w.ok(&b, op);
        id
    }

    /// An order placed, accepted (escrow taken) and delivered.
    fn delivered(&mut self) -> OrderId {
        let id = self.place();
        let p = self.provider.clone();
        self.w.ok(&p, Operation::AcceptOrder { order: id });
        self.w.ok(&p, Operation::DeliverOrder { order: id, delivery_hash: Hash::digest(b"d") });
        id
    }

    fn order(&self, id: &OrderId) -> Order {
        self.w.get(&keys::order(id)).unwrap()
    }

    fn balances(&self) -> (u64, u64, u64) {
        (
            self.w.balance(&self.buyer.public()),
            self.w.balance(&self.provider.public()),
            treasury(&self.w.st).unwrap().balance,
        )
    }

    fn set_fee(&mut self, basis_points: u32) {
        self.w.govern(ProposalAction::SetPlatformFee { basis_points });
        assert_eq!(platform_fee_bps(&self.w.st).unwrap(), basis_points);
    }
}

fn deposit(account: &Keypair, amount: u64, reference: &str) -> Operation {
    Operation::Deposit { account: account.public(), amount, reference: reference.into() }
}

fn withdraw(account: &Keypair, amount: u64, reference: &str) -> Operation {
    Operation::Withdraw { account: account.public(), amount, reference: reference.into() }
}

#[test]
fn a_deposit_credits_and_a_withdrawal_debits() {
    let mut m = market();
    let bank = m.w.bank.clone();
    let buyer = m.buyer.clone();
    let r = m.w.ok(&bank, deposit(&buyer, 50_000, "wire-1"));
    let e = r.events_of("money.deposited").next().unwrap();
    assert_eq!((e.get("amount"), e.get("balance")), (Some("50000"), Some("50000")));
    assert_eq!(e.get("reference"), Some("wire-1"));
    let r = m.w.ok(&bank, withdraw(&buyer, 20_000, "payout-1"));
    assert_eq!(r.events_of("money.withdrawn").next().unwrap().get("balance"), Some("30000"));
    assert_eq!(m.w.balance(&buyer.public()), 30_000);
    let rec: BankRecord = m.w.get(&keys::bank_record(&bank.public(), "payout-1")).unwrap();
    assert_eq!(
        (rec.kind, rec.amount, rec.account, rec.bank),
        (BankRecordKind::Withdrawal, 20_000, buyer.public(), bank.public())
    );
    let acct: Account = m.w.get(&keys::account(&buyer.public())).unwrap();
    assert_eq!(acct.banks, vec![bank.public()], "the bank may read the account now");
    assert_eq!(supply(&m.w.st).unwrap(), Supply { deposited: 50_000, withdrawn: 20_000 });
    assert_conserved(&m.w.st);
}

#[test]
fn an_overdraft_is_refused_and_changes_nothing() {
    let mut m = market();
    let bank = m.w.bank.clone();
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    // No account at all.
    m.w.fail(&bank, withdraw(&provider, 1, "p-0"), Code::Failed, "does not hold 1");
    m.w.fund(&buyer.public(), 5_000);
    m.w.fail(&bank, withdraw(&buyer, 5_001, "p-1"), Code::Failed, "does not hold 5001");
    // The refused reference was not spent: the bank may use it for the right amount.
    m.w.ok(&bank, withdraw(&buyer, 5_000, "p-1"));
    assert_eq!(m.w.balance(&buyer.public()), 0);
    m.w.fail(&bank, withdraw(&buyer, 1, "p-2"), Code::Failed, "does not hold");
    assert_conserved(&m.w.st);
}

#[test]
fn a_bank_reference_is_used_once() {
    let mut m = market();
    let bank = m.w.bank.clone();
    let buyer = m.buyer.clone();
    m.w.ok(&bank, deposit(&buyer, 700, "wire-7"));
    m.w.fail(&bank, deposit(&buyer, 700, "wire-7"), Code::Failed, "already used reference");
    m.w.fail(&bank, withdraw(&buyer, 100, "wire-7"), Code::Failed, "already used reference");
    // Another bank has references of its own.
    let other = kp(88);
    m.w.govern(ProposalAction::AdmitSettlementBank { key: other.public(), name: "b2".into() });
    m.w.ok(&other, deposit(&buyer, 300, "wire-7"));
    assert_eq!(m.w.balance(&buyer.public()), 1_000);
    let acct: Account = m.w.get(&keys::account(&buyer.public())).unwrap();
    let mut both = vec![bank.public(), other.public()];
    both.sort();
    assert_eq!(acct.banks, both);
    assert_conserved(&m.w.st);
}

#[test]
fn only_an_active_settlement_bank_moves_money() {
    let mut m = market();
    let buyer = m.buyer.clone();
    let (agency, operator) = (m.w.agency().clone(), m.w.operator.clone());
    for who in [&agency, &operator, &buyer] {
        m.w.fail(who, deposit(&buyer, 1, "x"), Code::Failed, "only settlement banks");
    }
    m.w.fail(&operator, withdraw(&buyer, 1, "x"), Code::Failed, "only settlement banks");
    // A bank is admitted by governance only, never by the plain admission.
    let bytes = m.w.sign(
        &agency,
        Operation::Admit {
            key: kp(87).public(),
            name: "bank".into(),
            roles: vec![Role::SettlementBank],
        },
    );
    let err = check_stateless(&bytes, CHAIN).unwrap_err();
    assert!(err.to_string().contains("admit_settlement_bank"), "{err}");
    // A suspended bank records nothing until reinstated.
    let bank = m.w.bank.clone();
    m.w.ok(&agency, Operation::Suspend { participant: bank.public(), reason: "audit".into() });
    m.w.fail(&bank, deposit(&buyer, 1, "x"), Code::Failed, "suspended or negative-listed");
    m.w.ok(&agency, Operation::Reinstate { participant: bank.public() });
    m.w.ok(&bank, deposit(&buyer, 1, "x"));
    // Only participants hold accounts.
    m.w.fail(&bank, deposit(&kp(86), 1, "y"), Code::Failed, "not found");
    assert_conserved(&m.w.st);
}

#[test]
fn stateless_checks_refuse_zero_amounts_and_bad_references() {
    let m = market();
    let bank = m.w.bank.clone();
    let buyer = m.buyer.public();
    let long = "r".repeat(65);
    for (op, why) in [
        (Operation::Deposit { account: buyer, amount: 0, reference: "r".into() }, "positive"),
        (Operation::Withdraw { account: buyer, amount: 0, reference: "r".into() }, "positive"),
        (Operation::Deposit { account: buyer, amount: 1, reference: String::new() }, "1..=64"),
        (Operation::Withdraw { account: buyer, amount: 1, reference: long.clone() }, "1..=64"),
    ] {
        let err = check_stateless(&m.w.sign(&bank, op), CHAIN).unwrap_err();
        assert!(matches!(err, TxError::InvalidOp { .. }) && err.to_string().contains(why), "{err}");
    }
    let sixty_four = Operation::Deposit { account: buyer, amount: 1, reference: long[1..].into() };
    assert!(check_stateless(&m.w.sign(&bank, sixty_four), CHAIN).is_ok());
}

#[test]
fn a_happy_trade_escrows_then_releases_minus_the_fee() {
    let mut m = market();
    m.set_fee(250);
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    m.w.fund(&buyer.public(), 25_000);
    let id = m.place();
    let receipt = m.w.ok(&provider, Operation::AcceptOrder { order: id });
    let ev = receipt.events_of("order.accepted").next().unwrap();
    assert_eq!((ev.get("escrow"), ev.get("fee_basis_points")), (Some("10000"), Some("250")));
    assert_eq!(m.balances(), (15_000, 0, 0));
    assert_eq!((m.order(&id).escrow, m.order(&id).fee_basis_points), (PRICE, Some(250)));
    assert_conserved(&m.w.st);
    m.w.ok(&provider, Operation::DeliverOrder { order: id, delivery_hash: Hash::digest(b"d") });
    let receipt = m.w.ok(&buyer, Operation::ConfirmOrder { order: id });
    let ev = receipt.events_of("order.settled").next().unwrap();
    assert_eq!((ev.get("provider_amount"), ev.get("fee")), (Some("9750"), Some("250")));
    assert_eq!(m.balances(), (15_000, 9_750, 250));
    let got = m.order(&id);
    assert_eq!(
        (got.status, got.escrow, got.settlement_amount, got.fee_amount, got.refund_amount),
        (OrderStatus::Settled, 0, Some(PRICE), Some(250), Some(0))
    );
    let tr = treasury(&m.w.st).unwrap();
    assert_eq!((tr.fees_collected, tr.paid_out), (250, 0));
    assert_conserved(&m.w.st);
}

#[test]
fn a_cancellation_after_acceptance_refunds_the_escrow() {
    let mut m = market();
    m.set_fee(500);
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    m.w.fund(&buyer.public(), PRICE);
    // Cancelled before acceptance: nothing was held, nothing moves.
    let early = m.place();
    let r = m.w.ok(&buyer, Operation::CancelOrder { order: early });
    assert!(r.events_of("order.cancelled").next().unwrap().get("refund").is_none());
    assert_eq!(m.order(&early).refund_amount, None);
    let id = m.place();
    m.w.ok(&provider, Operation::AcceptOrder { order: id });
    assert_eq!(m.balances(), (0, 0, 0));
    let r = m.w.ok(&provider, Operation::CancelOrder { order: id });
    assert_eq!(r.events_of("order.cancelled").next().unwrap().get("refund"), Some("10000"));
    assert_eq!(m.balances(), (PRICE, 0, 0), "a refund pays no fee");
    let o = m.order(&id);
    assert_eq!((o.status, o.escrow, o.refund_amount), (OrderStatus::Cancelled, 0, Some(PRICE)));
    // Once delivered, an order is disputed, not cancelled.
    let d = m.delivered();
    m.w.fail(&buyer, Operation::CancelOrder { order: d }, Code::Failed, "is delivered");
    assert_conserved(&m.w.st);
}

#[test]
fn disputes_resolved_for_the_provider_for_the_buyer_and_split() {
    let mut m = market();
    m.set_fee(1_000); // 10 %
    let (buyer, operator) = (m.buyer.clone(), m.w.operator.clone());
    m.w.fund(&buyer.public(), 3 * PRICE);
    let dispute = |m: &mut Market, id| {
        let who = m.buyer.clone();
        m.w.ok(&who, Operation::DisputeOrder { order: id, reason_hash: Hash::digest(b"late") });
    };
    // For the provider: the whole escrow, minus the fee.
    let won = m.delivered();
    dispute(&mut m, won);
    m.w.fail(&buyer, Operation::ConfirmOrder { order: won }, Code::Failed, "is disputed");
    m.w.fail(
        &operator,
        Operation::ResolveDispute { order: won, settle_amount: Some(PRICE + 1) },
        Code::Failed,
        "exceeds the escrow",
    );
    m.w.fail(
        &buyer,
        Operation::ResolveDispute { order: won, settle_amount: None },
        Code::Denied,
        "no policy permits resolve_dispute",
    );
    m.w.ok(&operator, Operation::ResolveDispute { order: won, settle_amount: Some(PRICE) });
    assert_eq!(m.balances(), (2 * PRICE, 9_000, 1_000));
    // For the buyer: everything back, no fee.
    let lost = m.delivered();
    dispute(&mut m, lost);
    let receipt = m.w.ok(&operator, Operation::ResolveDispute { order: lost, settle_amount: None });
    assert_eq!(receipt.events_of("order.cancelled").next().unwrap().get("refund"), Some("10000"));
    assert_eq!(m.balances(), (2 * PRICE, 9_000, 1_000));
    assert_eq!(m.order(&lost).status, OrderStatus::Cancelled);
    // Split: 4 000 to the provider (fee 400 on that share only), 6 000 back to the buyer.
    let split = m.delivered();
    dispute(&mut m, split);
    let receipt =
        m.w.ok(&operator, Operation::ResolveDispute { order: split, settle_amount: Some(4_000) });
    let ev = receipt.events_of("order.settled").next().unwrap();
    assert_eq!(
        (ev.get("provider_amount"), ev.get("fee"), ev.get("refund")),
        (Some("3600"), Some("400"), Some("6000"))
    );
    assert_eq!(m.balances(), (2 * PRICE - 4_000, 12_600, 1_400));
    let got = m.order(&split);
    assert_eq!(
        (got.status, got.settlement_amount, got.fee_amount, got.refund_amount),
        (OrderStatus::Settled, Some(4_000), Some(400), Some(6_000))
    );
    assert_conserved(&m.w.st);
}

#[test]
fn insufficient_funds_at_acceptance_refuse_it_and_change_nothing() {
    let mut m = market();
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    m.w.fund(&buyer.public(), PRICE - 1);
    let id = m.place();
    // `fail` checks that nothing but the provider's nonce changed.
    let r =
        m.w.fail(&provider, Operation::AcceptOrder { order: id }, Code::Failed, "does not hold");
    assert!(r.reason.contains("10000") && r.reason.contains("escrow"), "{}", r.reason);
    assert!(!r.reason.contains("9999"), "the buyer's balance is not told to the provider");
    assert_eq!(m.order(&id).status, OrderStatus::Ordered);
    m.w.fund(&buyer.public(), 1);
    m.w.ok(&provider, Operation::AcceptOrder { order: id });
    assert_eq!(m.balances(), (0, 0, 0));
    assert_conserved(&m.w.st);
}

#[test]
fn a_fee_change_mid_flight_does_not_alter_an_accepted_order() {
    let mut m = market();
    m.set_fee(250);
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    m.w.fund(&buyer.public(), 2 * PRICE);
    let before = m.delivered();
    let pending = m.place(); // placed, not yet accepted: takes the rate in force at acceptance
    m.set_fee(2_000);
    m.w.ok(&buyer, Operation::ConfirmOrder { order: before });
    assert_eq!(m.order(&before).fee_amount, Some(250), "the rate fixed at acceptance");
    assert_eq!(m.balances(), (PRICE, 9_750, 250));
    m.w.ok(&provider, Operation::AcceptOrder { order: pending });
    m.w.ok(&provider, Operation::DeliverOrder { order: pending, delivery_hash: Hash::ZERO });
    m.w.ok(&buyer, Operation::ConfirmOrder { order: pending });
    assert_eq!(m.order(&pending).fee_basis_points, Some(2_000));
    assert_eq!(m.balances(), (0, 9_750 + 8_000, 250 + 2_000));
    assert_conserved(&m.w.st);
}

#[test]
fn an_order_from_an_awarded_demand_takes_the_awarded_price_and_terms_and_closes_it() {
    let mut m = market();
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    let (rival_buyer, other_product) =
        (kp(3), m.w.list(&provider, 1, ProductConditions::default()));
    m.w.admit(&rival_buyer, &[Role::Consumer]);
    m.w.fund(&buyer.public(), 50_000);
    let did = DemandId::derive(CHAIN, &buyer.public(), m.w.nonce(&buyer.public()));
    m.w.ok(
        &buyer,
        Operation::PostDemand {
            title: "traffic flow API".into(),
            domain: "transport".into(),
            budget: 8_000,
            description_hash: Hash::digest(b"need"),
            deadline_ms: Some(m.w.time_ms() + 60_000),
        },
    );
    let proposal = Hash::digest(b"our offer: 7 000 fen, monthly updates");
    m.w.ok(
        &provider,
        Operation::RespondDemand {
            demand: did,
            product: Some(m.product),
            price: 7_000,
            proposal_hash: proposal,
        },
    );
    let order_on = |product| Operation::PlaceOrder {
        product,
        grant: None,
        purpose: String::new(),
        demand: Some(did),
    };
    // Not yet awarded.
    m.w.fail(&buyer, order_on(m.product), Code::Failed, "awarded");
    m.w.ok(&buyer, Operation::AwardDemand { demand: did, responder: provider.public() });
    m.w.fail(&rival_buyer, order_on(m.product), Code::Failed, "only the poster");
    m.w.fail(&buyer, order_on(other_product), Code::Failed, "offers product");
    let id = OrderId::derive(CHAIN, &buyer.public(), m.w.nonce(&buyer.public()));
    let r = m.w.ok(&buyer, order_on(m.product));
    assert_eq!(r.events_of("order.placed").next().unwrap().get("price"), Some("7000"));
    let o = m.order(&id);
    assert_eq!((o.price, o.terms_hash, o.demand), (7_000, proposal, Some(did)));
    let d: Demand = m.w.get(&keys::demand(&did)).unwrap();
    assert_eq!(d.status, DemandStatus::Closed);
    // A demand leads to one order.
    m.w.fail(&buyer, order_on(m.product), Code::Failed, "is closed");
    // The escrow holds the awarded price, not the list price.
    m.w.ok(&provider, Operation::AcceptOrder { order: id });
    assert_eq!(m.balances(), (43_000, 0, 0));
    assert_eq!(m.order(&id).escrow, 7_000);
    assert_conserved(&m.w.st);
}

#[test]
fn amounts_near_u64_max_overflow_as_errors() {
    let mut m = market();
    let bank = m.w.bank.clone();
    let (buyer, provider) = (m.buyer.clone(), m.provider.clone());
    m.w.ok(&bank, deposit(&buyer, u64::MAX - 5, "big"));
    m.w.ok(&bank, deposit(&provider, 5, "small"));
    // Every minor unit the ledger can count is now deposited: one more would wrap the total.
    m.w.fail(&bank, deposit(&provider, 1, "one more"), Code::Failed, "amount overflow");
    m.w.fail(&bank, deposit(&buyer, 1, "one more"), Code::Failed, "amount overflow");
    m.w.ok(&bank, withdraw(&provider, 5, "out"));
    // Withdrawn money does not make room: the deposits total is a lifetime count.
    m.w.fail(&bank, deposit(&provider, 5, "back"), Code::Failed, "amount overflow");
    // Trading with such sums is exact.
    m.set_fee(MAX_FEE_BASIS_POINTS);
    let id = m.delivered();
    m.w.ok(&buyer, Operation::ConfirmOrder { order: id });
    assert_eq!(m.balances(), (u64::MAX - 5 - PRICE, 0, PRICE));
    assert_conserved(&m.w.st);
}

#[test]
fn a_balance_follows_its_owner_through_a_key_rotation() {
    let mut m = market();
    let (buyer, provider, bank) = (m.buyer.clone(), m.provider.clone(), m.w.bank.clone());
    m.w.fund(&buyer.public(), 30_000);
    let new = kp(40);
    let proof = new.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&buyer.public()));
    m.w.ok(&buyer, Operation::RotateKey { new_key: new.public(), new_key_signature: proof });
    // The account stays under the account key; naming the new key reaches it too.
    m.w.ok(&bank, deposit(&new, 1_000, "to-new-key"));
    assert_eq!(m.w.balance(&buyer.public()), 31_000);
    assert!(load_account(&m.w.st, &new.public()).unwrap().is_none());
    // The rotated buyer trades with its new key, paying from the same balance.
    m.buyer = new.clone();
    let id = m.delivered();
    m.w.ok(&new, Operation::ConfirmOrder { order: id });
    assert_eq!(m.w.balance(&buyer.public()), 21_000);
    assert_eq!(m.w.balance(&provider.public()), PRICE);
    m.w.ok(&bank, withdraw(&new, 21_000, "out"));
    assert_conserved(&m.w.st);
}

#[test]
fn barred_participants_get_no_deposits_but_keep_their_money() {
    let mut m = market();
    let (buyer, provider, bank) = (m.buyer.clone(), m.provider.clone(), m.w.bank.clone());
    let agency = m.w.agency().clone();
    m.w.fund(&buyer.public(), 3 * PRICE);
    let accepted = m.place();
    m.w.ok(&provider, Operation::AcceptOrder { order: accepted });
    let pending = m.place();
    m.w.ok(&agency, Operation::Suspend { participant: buyer.public(), reason: "fraud".into() });
    m.w.fail(&bank, deposit(&buyer, 1, "d"), Code::Failed, "receives no deposits");
    m.w.fail(
        &provider,
        Operation::AcceptOrder { order: pending },
        Code::Failed,
        "can only be cancelled",
    );
    // The provider cancels: the refund reaches the suspended buyer, whose bank pays it out.
    m.w.ok(&provider, Operation::CancelOrder { order: accepted });
    m.w.ok(&provider, Operation::CancelOrder { order: pending });
    assert_eq!(m.w.balance(&buyer.public()), 3 * PRICE);
    m.w.ok(&bank, withdraw(&buyer, 3 * PRICE, "out"));
    let reg = m.w.regulator.clone();
    m.w.ok(
        &reg,
        Operation::SetListStatus {
            participant: provider.public(),
            status: ListStatus::NegativeListed,
        },
    );
    m.w.fail(&bank, deposit(&provider, 1, "d2"), Code::Failed, "receives no deposits");
    assert_conserved(&m.w.st);
}

#[test]
fn governance_bounds_the_fee_and_alone_spends_the_treasury() {
    let mut m = market();
    let agency = m.w.agency().clone();
    let (buyer, bank) = (m.buyer.clone(), m.w.bank.clone());
    let bytes = m.w.sign(
        &agency,
        Operation::Propose { action: ProposalAction::SetPlatformFee { basis_points: 10_001 } },
    );
    assert!(check_stateless(&bytes, CHAIN).unwrap_err().to_string().contains("0..=10000"));
    m.set_fee(MAX_FEE_BASIS_POINTS);
    m.set_fee(500);
    m.w.fund(&buyer.public(), PRICE);
    let id = m.delivered();
    m.w.ok(&buyer, Operation::ConfirmOrder { order: id });
    assert_eq!(treasury(&m.w.st).unwrap().balance, 500);
    let pay = |amount| Operation::Propose {
        action: ProposalAction::PayFromTreasury { account: bank.public(), amount },
    };
    m.w.fail(&agency, pay(501), Code::Failed, "does not hold 501");
    m.w.fail(
        &agency,
        Operation::Propose {
            action: ProposalAction::PayFromTreasury { account: kp(86).public(), amount: 1 },
        },
        Code::Failed,
        "not found",
    );
    let r = m.w.ok(&agency, pay(300));
    assert_eq!(r.events_of("treasury.paid").next().unwrap().get("amount"), Some("300"));
    let t = treasury(&m.w.st).unwrap();
    assert_eq!((t.balance, t.fees_collected, t.paid_out), (200, 500, 300));
    assert_eq!(m.w.balance(&bank.public()), 300);
    assert_conserved(&m.w.st);
}

/// A chain whose genesis names another currency and an initial fee starts with them.
#[test]
fn the_genesis_names_the_currency_and_the_initial_fee() {
    let a = kp(1);
    let mut app = GenesisApp {
        agencies: vec![GenesisAgency { name: "a".into(), key: a.public() }],
        validators: vec![Validator { key: a.public(), power: 1, name: "v".into() }],
        policies: None,
        params: Params::default(),
        currency: Currency { code: "HKD".into(), minor_unit: "cent".into(), decimals: 2 },
        platform_fee_basis_points: 300,
    };
    let mut st = MemState::new();
    init_genesis(&mut st, CHAIN, &app).unwrap();
    assert_eq!(currency(&st).unwrap().code, "HKD");
    assert_eq!(platform_fee_bps(&st).unwrap(), 300);
    for key in [keys::CURRENCY, keys::PLATFORM_FEE] {
        assert!(render(key, &st.get(key).unwrap()).is_some());
    }
    app.platform_fee_basis_points = 10_001;
    assert!(init_genesis(&mut MemState::new(), CHAIN, &app).is_err());
    // A default genesis writes neither: the same height-0 state as before money existed.
    let w = World::new();
    assert!(w.st.get(keys::CURRENCY).is_none() && w.st.get(keys::PLATFORM_FEE).is_none());
    assert_eq!(currency(&w.st).unwrap(), Currency::default());
}
