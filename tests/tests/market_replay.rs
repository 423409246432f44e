//! One audit replay of a market chain with everything (issue 18): governance admits a
//! settlement bank, a compute node and sets the platform fee; banks deposit and withdraw;
//! orders settle, are cancelled, disputed and resolved each way and split; the fee changes
//! while an order is in escrow; the treasury pays out; an order follows an awarded demand; the
//! data's life cycle is attested and reviewed and its destruction becomes overdue; a compute
//! job runs and an unauthorised one is refused. `dpx audit replay`'s engine must verify the
//! whole chain and its report must account for every minor unit — the expected figures are
//! computed here from the amounts the scenario used — and must pinpoint a tampered copy.
//!
//! The ledger is built with `ChainBuilder` (execution through the contracts, certificates
//! signed by the validators' keys), so the test is deterministic and runs in about a second.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};

use dpx_app::replay::{
    AuditReport, ChainBuilder, Divergence, DivergenceKind, Outcome, ReplayOptions, replay,
};
use dpx_contracts::lifecycle::DAY_MS;
use dpx_contracts::{
    AttestTarget, Category, DemandId, JobAuthorization, JobId, JobTotals, Operation, Order,
    OrderId, ProductConditions, ProductId, ProductSpec, ProposalAction, Receipt, Role, Stage,
    Verdict, keys,
};
use dpx_crypto::{Hash, Keypair, PublicKey};
use dpx_genesis::Genesis;
use dpx_ledger::{Store, StoreConfig};
use dpx_node::replay::HomeSource;
use dpx_tests::signer::Signer;

const CHAIN: &str = "dpx-market-replay-test";
/// List price of both products.
const PRICE: u64 = 10_000;
/// The price the provider offers for the demand (below the list price).
const DEMAND_PRICE: u64 = 7_000;
/// The platform fee set at the start, then the one set while an order is in escrow.
const FEE_BPS: u32 = 250;
const NEW_FEE_BPS: u32 = 1_000;
/// The provider's share of the split dispute.
const SPLIT_SHARE: u64 = 4_000;
const BUYER_DEPOSIT: u64 = 100_000;
const STRANGER_DEPOSIT: u64 = 5_000;
const PROVIDER_WITHDRAWAL: u64 = 5_000;
const TREASURY_PAYOUT: u64 = 500;

/// The fee on `share` at `bps`, computed here independently of the contracts (rounded down).
fn fee(share: u64, bps: u32) -> u64 {
    share * u64::from(bps) / 10_000
}

/// What the test aims at in the built chain.
struct Market {
    _dir: tempfile::TempDir,
    path: PathBuf,
    genesis: Genesis,
    /// The order that was in escrow when the fee changed.
    kept_fee_order: OrderId,
    /// The order whose destruction became overdue, its holder, and the reporting block.
    retained_order: OrderId,
    holder: PublicKey,
    overdue_at: u64,
    /// Height and index of the first confirmed trade (provider paid minus the fee).
    first_confirm: (u64, u32),
    /// Height and index of the refused job request.
    refused_job: (u64, u32),
    /// Height of the treasury payout.
    payout_at: u64,
    tip: u64,
}

fn spec(name: &str, retention_days: Option<u32>) -> ProductSpec {
    ProductSpec {
        name: name.into(),
        category: Category::DataService,
        domain: "finance".into(),
        grade: 1,
        price: PRICE,
        terms_hash: Hash::digest(b"terms"),
        conditions: ProductConditions::default(),
        retention_days,
    }
}

/// `s`'s order of `product` (from an awarded `demand`), with the id it will have.
fn place(s: &mut Signer, product: ProductId, demand: Option<DemandId>) -> (OrderId, Vec<u8>) {
    let id = OrderId::derive(CHAIN, &s.public(), s.nonce);
    (id, s.sign(Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand }))
}

fn attest(order: OrderId, stage: Stage) -> Operation {
    let hash = Hash::digest(stage.as_str().as_bytes());
    Operation::Attest { target: AttestTarget::Order(order), stage, hash }
}

fn review(order: OrderId, seq: u32, verdict: Verdict) -> Operation {
    let reason_hash = Hash::digest(b"inspection report");
    Operation::ReviewAttestation { target: AttestTarget::Order(order), seq, verdict, reason_hash }
}

fn job_request(order: OrderId, product: ProductId, node: &PublicKey) -> Operation {
    Operation::RequestJob {
        products: vec![product],
        authorizations: vec![JobAuthorization::Order(order)],
        compute_node: *node,
        purpose: "audit".into(),
        code_hash: Hash::digest(b"wasm: count records"),
    }
}

fn build() -> Market {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let [mut agency, mut bank, mut operator, mut regulator, mut rater, mut provider, mut buyer] =
        [1, 2, 3, 4, 5, 6, 7].map(|seed| Signer::new(CHAIN, seed));
    let (mut stranger, mut node) = (Signer::new(CHAIN, 8), Signer::new(CHAIN, 9));
    let vals: Vec<Keypair> = (10..14).map(|s| Keypair::from_seed([s; 32])).collect();
    let genesis = Genesis::example(
        CHAIN,
        &[("Data Authority", agency.public())],
        &vals.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    let mut b = ChainBuilder::new(&path, &genesis, &vals).unwrap();
    let push = |b: &mut ChainBuilder, txs: Vec<Vec<u8>>| {
        b.push(txs).unwrap();
        b.store().tip_height()
    };
    let admit = |a: &mut Signer, key: PublicKey, role: Role| {
        a.sign(Operation::Admit { key, name: format!("{role:?}"), roles: vec![role] })
    };
    let propose = |a: &mut Signer, action| a.sign(Operation::Propose { action });

    // 1: the cast; governance (one agency: its proposal is the quorum) admits the bank and the
    // compute node and sets the platform fee.
    let mut txs = vec![
        admit(&mut agency, operator.public(), Role::Operator),
        admit(&mut agency, regulator.public(), Role::Regulator),
        admit(&mut agency, rater.public(), Role::RatingBody),
        admit(&mut agency, provider.public(), Role::Provider),
        admit(&mut agency, buyer.public(), Role::Consumer),
        admit(&mut agency, stranger.public(), Role::Consumer),
    ];
    let bank_key = bank.public();
    txs.push(propose(
        &mut agency,
        ProposalAction::AdmitSettlementBank { key: bank_key, name: "bank".into() },
    ));
    txs.push(propose(
        &mut agency,
        ProposalAction::AdmitComputeNode { key: node.public(), name: "enclave".into() },
    ));
    txs.push(propose(&mut agency, ProposalAction::SetPlatformFee { basis_points: FEE_BPS }));
    push(&mut b, txs);
    push(
        &mut b,
        vec![rater.sign(Operation::SetRating { participant: provider.public(), rating: 3 })],
    );
    // 3: two products (the second kept one day after delivery); deposits.
    let open = ProductId::derive(CHAIN, &provider.public(), provider.nonce);
    let retained = ProductId::derive(CHAIN, &provider.public(), provider.nonce + 1);
    let deposit = |bank: &mut Signer, account: PublicKey, amount, reference: &str| {
        bank.sign(Operation::Deposit { account, amount, reference: reference.into() })
    };
    push(
        &mut b,
        vec![
            provider.sign(Operation::ListProduct { spec: spec("ledger feed", None) }),
            provider.sign(Operation::ListProduct { spec: spec("kept feed", Some(1)) }),
            deposit(&mut bank, buyer.public(), BUYER_DEPOSIT, "wire-1"),
            deposit(&mut bank, stranger.public(), STRANGER_DEPOSIT, "wire-2"),
        ],
    );
    // 4-5: seven orders placed and accepted at FEE_BPS (escrow taken).
    let mut orders = Vec::new();
    let mut txs = Vec::new();
    for product in [open, open, open, open, open, open, retained] {
        let (id, tx) = place(&mut buyer, product, None);
        orders.push(id);
        txs.push(tx);
    }
    push(&mut b, txs);
    let [paid, cancelled, won, lost, split, kept_fee, kept] = orders.clone().try_into().unwrap();
    let on = |s: &mut Signer, ids: &[OrderId], op: fn(OrderId) -> Operation| {
        ids.iter().map(|id| s.sign(op(*id))).collect::<Vec<_>>()
    };
    push(&mut b, on(&mut provider, &orders, |order| Operation::AcceptOrder { order }));
    // 6: deliveries, a cancellation after acceptance (refund), a demand posted.
    let deliver = |order| Operation::DeliverOrder { order, delivery_hash: Hash::digest(b"data") };
    let mut txs = on(&mut provider, &[paid, won, lost, split, kept_fee, kept], deliver);
    txs.push(provider.sign(Operation::CancelOrder { order: cancelled }));
    let demand = DemandId::derive(CHAIN, &buyer.public(), buyer.nonce);
    txs.push(buyer.sign(Operation::PostDemand {
        title: "ledger feed, monthly".into(),
        domain: "finance".into(),
        budget: 8_000,
        description_hash: Hash::digest(b"need"),
        deadline_ms: Some(genesis.genesis_time_ms + 3_600_000),
    }));
    push(&mut b, txs);
    // 7: the paid trade confirmed; three disputes; the provider answers the demand.
    let mut txs = vec![buyer.sign(Operation::ConfirmOrder { order: paid })];
    let dispute = |order| Operation::DisputeOrder { order, reason_hash: Hash::digest(b"late") };
    txs.extend(on(&mut buyer, &[won, lost, split], dispute));
    txs.push(provider.sign(Operation::RespondDemand {
        demand,
        product: Some(open),
        price: DEMAND_PRICE,
        proposal_hash: Hash::digest(b"offer"),
    }));
    let first_confirm = (push(&mut b, txs), 0);
    // 8: rulings each way and a split; the fee changes while `kept_fee` is in escrow; award.
    let resolve = |order, settle_amount| Operation::ResolveDispute { order, settle_amount };
    push(
        &mut b,
        vec![
            operator.sign(resolve(won, Some(PRICE))),
            operator.sign(resolve(lost, None)),
            operator.sign(resolve(split, Some(SPLIT_SHARE))),
            propose(&mut agency, ProposalAction::SetPlatformFee { basis_points: NEW_FEE_BPS }),
            buyer.sign(Operation::AwardDemand { demand, responder: provider.public() }),
        ],
    );
    // 9: `kept_fee` and `kept` settle (the latter's destruction is due a day later); the
    // order from the awarded demand.
    let mut txs = on(&mut buyer, &[kept_fee, kept], |order| Operation::ConfirmOrder { order });
    let (from_demand, tx) = place(&mut buyer, open, Some(demand));
    txs.push(tx);
    push(&mut b, txs);
    // 10: the demand's order accepted at the new fee and delivered; life-cycle stages in order.
    let mut txs = vec![
        provider.sign(Operation::AcceptOrder { order: from_demand }),
        provider.sign(deliver(from_demand)),
    ];
    for stage in [Stage::Collected, Stage::Transmitted, Stage::Stored] {
        txs.push(buyer.sign(attest(kept, stage)));
    }
    push(&mut b, txs);
    // 11: confirmation; the regulator confirms the collection and rejects the storage; a
    // withdrawal; a treasury payout by governance.
    let payout_at = push(
        &mut b,
        vec![
            buyer.sign(Operation::ConfirmOrder { order: from_demand }),
            regulator.sign(review(kept, 0, Verdict::Confirmed)),
            regulator.sign(review(kept, 2, Verdict::Rejected)),
            bank.sign(Operation::Withdraw {
                account: provider.public(),
                amount: PROVIDER_WITHDRAWAL,
                reference: "payout-1".into(),
            }),
            propose(
                &mut agency,
                ProposalAction::PayFromTreasury {
                    account: operator.public(),
                    amount: TREASURY_PAYOUT,
                },
            ),
        ],
    );
    // 12-14: a compute job over the settled order, and a stranger's job over that same order,
    // which is not its own, refused; the node attests; the consumer receives.
    let job = JobId::derive(CHAIN, &buyer.public(), buyer.nonce);
    let node_key = node.public();
    let job_block = push(
        &mut b,
        vec![
            buyer.sign(job_request(paid, open, &node_key)),
            stranger.sign(job_request(paid, open, &node_key)),
        ],
    );
    let refused_job = (job_block, 1);
    let result_hash = Hash::digest(b"42");
    push(
        &mut b,
        vec![node.sign(Operation::AttestJob {
            job,
            code_hash: Hash::digest(b"wasm: count records"),
            input_commitments: vec![Hash::digest(b"input")],
            result_hash,
            inputs_destroyed: true,
        })],
    );
    push(&mut b, vec![buyer.sign(Operation::ConfirmJob { job, result_hash })]);
    // A day passes: the first block after it reports `kept`'s destruction overdue; the holder
    // then attests it, late.
    b.skip_time(DAY_MS);
    let overdue_at = push(&mut b, vec![]);
    push(&mut b, vec![buyer.sign(attest(kept, Stage::Destroyed))]);
    let tip = push(&mut b, vec![]);
    drop(b);
    Market {
        _dir: dir,
        path,
        genesis,
        kept_fee_order: kept_fee,
        retained_order: kept,
        holder: buyer.public(),
        overdue_at,
        first_confirm,
        refused_job,
        payout_at,
        tip,
    }
}

fn run_replay(m: &Market) -> Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut source = HomeSource::open(&m.path, CHAIN).unwrap();
    // The defaults: to the source's tip, quietly.
    let opts = ReplayOptions::default();
    replay(&m.genesis, &mut source, &out.path().join("replay"), &opts).unwrap()
}

#[track_caller]
fn verified(m: &Market) -> AuditReport {
    match run_replay(m) {
        Outcome::Verified(r) => *r,
        Outcome::Diverged(d) => panic!("a clean chain diverged: {}", d.render()),
    }
}

#[track_caller]
fn diverged(m: &Market) -> Divergence {
    match run_replay(m) {
        Outcome::Diverged(d) => *d,
        Outcome::Verified(r) => panic!("tampering went unnoticed: {}", r.summary()),
    }
}

/// Flip the bits of byte `at` (from the end if negative) of `cf[key]` in the closed ledger.
fn flip(path: &Path, cf: &str, key: &[u8], at: isize) {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, cfs).unwrap();
    let cf = db.cf_handle(cf).unwrap();
    let mut v = db.get_cf(cf, key).unwrap().expect("the entry to tamper with exists");
    let i = if at < 0 { v.len() - at.unsigned_abs() } else { at.unsigned_abs() };
    v[i] ^= 0xff;
    db.put_cf(cf, key, v).unwrap();
}

/// The receipts column's key of transaction `index` of block `height`.
fn pos_key(height: u64, index: u32) -> Vec<u8> {
    let mut k = height.to_be_bytes().to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

#[test]
fn a_market_chain_with_everything_replays_and_its_money_reconciles() {
    let market = build();
    let report = verified(&market);
    assert!(report.verified);
    assert_eq!((report.to_height, report.blocks), (market.tip, market.tip), "{}", report.summary());

    // Money, from the amounts the scenario used. Escrow: seven orders at the list price and
    // the demand's order at the awarded price.
    let escrowed = 7 * PRICE + DEMAND_PRICE;
    // Settled in full at the first fee: the paid trade, the dispute won by the provider, the
    // order in escrow over the fee change, the retained product's order.
    let full = 4 * (PRICE - fee(PRICE, FEE_BPS));
    let split = SPLIT_SHARE - fee(SPLIT_SHARE, FEE_BPS);
    let demand = DEMAND_PRICE - fee(DEMAND_PRICE, NEW_FEE_BPS);
    let fees = 4 * fee(PRICE, FEE_BPS) + fee(SPLIT_SHARE, FEE_BPS) + fee(DEMAND_PRICE, NEW_FEE_BPS);
    // The cancellation after acceptance, the dispute lost by the provider, the split's rest.
    let refunded = PRICE + PRICE + (PRICE - SPLIT_SHARE);
    let deposited = BUYER_DEPOSIT + STRANGER_DEPOSIT;
    let money = &report.money;
    let got = [
        money.deposited,
        money.withdrawn,
        money.escrowed,
        money.paid_to_providers,
        money.fees,
        money.refunded,
        money.treasury_paid_out,
    ];
    let paid = full + split + demand;
    let want = [deposited, PROVIDER_WITHDRAWAL, escrowed, paid, fees, refunded, TREASURY_PAYOUT];
    assert_eq!(got, want.map(u128::from), "{}", report.summary());
    // Every escrow was released; the treasury keeps the fees less the payout; the accounts
    // hold the rest of what was deposited and not withdrawn.
    assert_eq!(escrowed, paid + fees + refunded, "the scenario's own sums");
    let treasury = fees - TREASURY_PAYOUT;
    let accounts = deposited - PROVIDER_WITHDRAWAL - treasury;
    assert_eq!(
        [money.held_in_escrow, money.held_in_treasury, money.held_in_accounts],
        [0, u128::from(treasury), u128::from(accounts)],
        "{}",
        report.summary()
    );

    // Trades: eight orders; six settled (four confirmed by the buyer, one ruled for the
    // provider, the split); two cancelled (by the provider, by a ruling).
    let trades = &report.trades;
    assert_eq!((trades.orders_placed, trades.settled), (8, 6), "{}", report.summary());
    assert_eq!(trades.settlement_total, u128::from(4 * PRICE + SPLIT_SHARE + DEMAND_PRICE));
    let transitions: Vec<(&str, u64)> =
        trades.transitions.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        transitions,
        [("accepted", 8), ("cancelled", 2), ("delivered", 7), ("disputed", 3), ("settled", 6)]
    );

    // The life cycle: one destruction due, reported overdue once, attested late.
    let lc = &report.lifecycle;
    assert_eq!(
        [
            lc.destructions_due,
            lc.destructions_overdue,
            lc.destructions_attested,
            lc.destroyed_late,
            lc.overdue_outstanding
        ],
        [1, 1, 1, 1, 0],
        "{}",
        report.summary()
    );
    assert_eq!(lc.overdue.len(), 1);
    let rec = &lc.overdue[0];
    assert_eq!((rec.height, rec.holder, rec.reopened), (market.overdue_at, market.holder, false));
    assert_eq!(rec.target, format!("order:{}", market.retained_order));
    assert_eq!(report.events.get("lifecycle.attested"), Some(&4));
    assert_eq!(report.events.get("lifecycle.reviewed"), Some(&2));

    // One job received over one order; the stranger's was refused and is nowhere.
    let jobs = JobTotals {
        received: 1,
        inputs: 1,
        order_inputs: 1,
        inputs_destroyed: 1,
        ..JobTotals::default()
    };
    assert_eq!(report.jobs, jobs, "{}", report.summary());
    // The refused job is the chain's only failed transaction.
    assert_eq!(
        (report.tx_ok, report.tx_failed),
        (report.transactions - 1, 1),
        "{:?}",
        report.tx_codes
    );
    assert_eq!(report.events.get("treasury.paid"), Some(&1));
    assert_eq!(report.events.get("governance.executed"), Some(&5));

    // The ledger itself: the refused job's receipt says why; the order that was in escrow
    // over the fee change kept the fee fixed at its acceptance.
    let store = Store::open(&market.path, CHAIN, StoreConfig::default()).unwrap();
    let receipts = store.receipts(market.refused_job.0).unwrap();
    let refused = Receipt::decode(&receipts[market.refused_job.1 as usize]).unwrap();
    assert!(!refused.is_ok());
    assert!(refused.reason.contains("not the consumer's own"), "{}", refused.reason);
    let key = keys::order(&market.kept_fee_order);
    let value = store.get_latest(&key).unwrap().unwrap();
    let order: Order =
        serde_json::from_value(dpx_contracts::render(&key, &value).unwrap()).unwrap();
    assert_eq!(
        (order.fee_basis_points, order.fee_amount),
        (Some(FEE_BPS), Some(fee(PRICE, FEE_BPS)))
    );
    let st = dpx_app::LatestState::new(&store);
    assert_eq!(dpx_contracts::platform_fee_bps(&st).unwrap(), NEW_FEE_BPS);
    assert!(st.into_error().is_none());
    drop(store);

    // A tampered copy: one byte of the first paid trade's stored receipt.
    let (height, index) = market.first_confirm;
    flip(&market.path, "receipts", &pos_key(height, index), -1);
    let div = diverged(&market);
    assert_eq!(
        (div.height, div.kind, div.tx_index),
        (height, DivergenceKind::Receipts, Some(index)),
        "{}",
        div.render()
    );
    flip(&market.path, "receipts", &pos_key(height, index), -1);
    assert!(matches!(run_replay(&market), Outcome::Verified(_)), "restored, it verifies again");
    // Another: the recorded state root of the block that paid out of the treasury.
    flip(&market.path, "roots", &market.payout_at.to_be_bytes(), 0);
    let div = diverged(&market);
    assert_eq!(
        (div.height, div.kind),
        (market.payout_at, DivergenceKind::StateRoot),
        "{}",
        div.render()
    );
}
