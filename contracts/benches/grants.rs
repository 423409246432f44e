//! Executed transactions per second on one core for a grant-heavy block: every transaction
//! submits a data subject's grant and uses it once (grade-3 product, so a policy decision is
//! made and recorded for each). Prints figures; asserts nothing about time.

// A bench harness: setup failures should abort loudly.
#![allow(clippy::unwrap_used, clippy::wildcard_imports)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};

const CHAIN: &str = "dpx-bench";
const BLOCK_TXS: usize = 1000;
const CONSUMERS: usize = 20;
const SUBJECTS: usize = 100;

fn kp(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    Keypair::from_seed(seed)
}

fn run(st: &mut MemState, height: u64, who: &Keypair, op: Operation) {
    let n = next_nonce(st, &who.public()).unwrap();
    let tx =
        check_stateless(&TransactionBody::new(CHAIN, n, op).sign(who).encode(), CHAIN).unwrap();
    let r = execute(st, &BlockContext { chain_id: CHAIN.into(), height, time_ms: 0 }, &tx);
    assert!(r.is_ok(), "{}", r.reason);
}

/// A state with agencies, a rated provider, a grade-3 product and `CONSUMERS` consumers; and a
/// block of `BLOCK_TXS` signed grant uses.
fn setup() -> (MemState, Vec<Vec<u8>>) {
    let agency = kp(1000);
    let genesis = GenesisApp {
        agencies: vec![GenesisAgency { name: "a".into(), key: agency.public() }],
        validators: vec![Validator { key: agency.public(), power: 1, name: "v".into() }],
        policies: None,
        params: Params::default(),
        currency: Currency::default(),
        platform_fee_basis_points: 0,
    };
    let mut st = MemState::new();
    init_genesis(&mut st, CHAIN, &genesis).unwrap();
    let rater = kp(1001);
    let provider = kp(1002);
    run(
        &mut st,
        1,
        &agency,
        Operation::Admit { key: rater.public(), name: "r".into(), roles: vec![Role::RatingBody] },
    );
    run(
        &mut st,
        1,
        &agency,
        Operation::Admit { key: provider.public(), name: "p".into(), roles: vec![Role::Provider] },
    );
    run(&mut st, 1, &rater, Operation::SetRating { participant: provider.public(), rating: 3 });
    let product = ProductId::derive(CHAIN, &provider.public(), 0);
    let spec = ProductSpec {
        name: "resume check".into(),
        category: Category::DataService,
        domain: "hr".into(),
        grade: 3,
        price: 100,
        terms_hash: Hash::digest(b"t"),
        conditions: ProductConditions::default(),
        retention_days: None,
    };
    run(&mut st, 1, &provider, Operation::ListProduct { spec });
    let consumers: Vec<Keypair> = (0..CONSUMERS).map(kp).collect();
    for c in &consumers {
        run(
            &mut st,
            1,
            &agency,
            Operation::Admit { key: c.public(), name: "c".into(), roles: vec![Role::Consumer] },
        );
    }
    // A registrar (admitted by the single agency's proposal) enrols the data subjects.
    let registrar = kp(1003);
    run(
        &mut st,
        1,
        &agency,
        Operation::Propose {
            action: ProposalAction::AdmitRegistrar { key: registrar.public(), name: "id".into() },
        },
    );
    let subjects: Vec<(Keypair, SubjectId)> = (0..SUBJECTS)
        .map(|i| (kp(10_000 + i), SubjectId::keyed(&[7; 32], &(i as u64).to_le_bytes())))
        .collect();
    for (key, id) in &subjects {
        run(
            &mut st,
            1,
            &registrar,
            Operation::EnrolSubject { subject_id: *id, subject_key: key.public() },
        );
    }
    let block = (0..BLOCK_TXS)
        .map(|i| {
            let consumer = &consumers[i % CONSUMERS];
            let (subject, sid) = &subjects[i % SUBJECTS];
            let grant = Grant {
                serial: Hash::digest(&(i as u64).to_le_bytes()),
                subject: *sid,
                key: subject.public(),
                epoch: 0,
                consumer: consumer.public(),
                product,
                purpose: "hiring-check".into(),
                expires_at_ms: 3_600_000,
            }
            .sign(subject, CHAIN);
            let op = Operation::UseGrant {
                grant: GrantRef::Inline(Box::new(grant)),
                subject: *sid,
                product,
                purpose: "hiring-check".into(),
                request_hash: Hash::ZERO,
            };
            TransactionBody::new(CHAIN, (i / CONSUMERS) as u64, op).sign(consumer).encode()
        })
        .collect();
    (st, block)
}

fn bench(c: &mut Criterion) {
    let (st, block) = setup();
    let ctx = BlockContext { chain_id: CHAIN.into(), height: 2, time_ms: 0 };
    let verified: Vec<VerifiedTx> =
        block.iter().map(|b| check_stateless(b, CHAIN).unwrap()).collect();

    // One plain timed pass, printed, and a check that the block really executes.
    let mut s = st.clone();
    let t = Instant::now();
    let receipts: Vec<Receipt> = verified.iter().map(|tx| execute(&mut s, &ctx, tx)).collect();
    let secs = t.elapsed().as_secs_f64();
    assert!(receipts.iter().all(Receipt::is_ok), "{:?}", receipts.iter().find(|r| !r.is_ok()));
    println!(
        "grant-heavy block: {BLOCK_TXS} use_grant txs executed in {:.1} ms = {:.0} tx/s on one core (signatures pre-verified)",
        secs * 1e3,
        BLOCK_TXS as f64 / secs
    );

    let mut g = c.benchmark_group("grant_block");
    g.throughput(Throughput::Elements(BLOCK_TXS as u64));
    g.sample_size(10);
    g.bench_function("execute_verified", |b| {
        b.iter_batched(
            || st.clone(),
            |mut s| {
                for tx in &verified {
                    black_box(execute(&mut s, &ctx, tx));
                }
                s
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("execute_block_with_signature_checks", |b| {
        b.iter_batched(
            || st.clone(),
            |mut s| black_box(execute_block(&mut s, &ctx, &block)),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
