//! Replay speed (issue 8): builds a certified ledger of `DPX_REPLAY_BENCH_TXS` transactions
//! (default 100 000) in blocks of `DPX_REPLAY_BENCH_BLOCK_TXS` (default 100), then replays it
//! from genesis out of its directory exactly as `dpx audit replay --from-home` does, and
//! prints blocks/s and transactions/s. Not run in CI; prints figures, asserts only that the
//! replay verifies.
//!
//! The mix per block: 70% admissions of new participants by an agency, 30% one-use grants
//! signed offline by 100 enrolled data subjects in turn and used inline by an employer (each a
//! policy decision, a grant signature check, and grant, usage and nonce writes).
//!
//! ```text
//! cargo bench -p dpx-node --bench replay
//! ```

#![allow(clippy::unwrap_used)] // a benchmark binary

use std::time::Instant;

use dpx_app::replay::{ChainBuilder, Outcome, ReplayOptions, replay};
use dpx_contracts::{
    Category, Grant, GrantRef, Operation, ProductConditions, ProductId, ProductSpec,
    ProposalAction, Role, SubjectId, TransactionBody,
};
use dpx_crypto::{Hash, Keypair};
use dpx_genesis::Genesis;
use dpx_node::replay::HomeSource;

const CHAIN: &str = "dpx-replay-bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Signer {
    key: Keypair,
    nonce: u64,
}

impl Signer {
    fn sign(&mut self, op: Operation) -> Vec<u8> {
        let b = TransactionBody::new(CHAIN, self.nonce, op).sign(&self.key).encode();
        self.nonce += 1;
        b
    }
}

fn main() {
    let total_txs = env_usize("DPX_REPLAY_BENCH_TXS", 100_000);
    let block_txs = env_usize("DPX_REPLAY_BENCH_BLOCK_TXS", 100).max(10);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let vals: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed([10 + i; 32])).collect();
    let mut agency = Signer { key: Keypair::from_seed([1; 32]), nonce: 0 };
    let mut rater = Signer { key: Keypair::from_seed([2; 32]), nonce: 0 };
    let mut provider = Signer { key: Keypair::from_seed([3; 32]), nonce: 0 };
    let mut employer = Signer { key: Keypair::from_seed([4; 32]), nonce: 0 };
    let genesis = Genesis::example(
        CHAIN,
        &[("Data Authority", agency.key.public())],
        &vals.iter().map(Keypair::public).collect::<Vec<_>>(),
    );

    let started = Instant::now();
    let mut b = ChainBuilder::new(&path, &genesis, &vals).unwrap();
    let admit = |a: &mut Signer, key, name: String, role| {
        a.sign(Operation::Admit { key, name, roles: vec![role] })
    };
    let mut registrar = Signer { key: Keypair::from_seed([5; 32]), nonce: 0 };
    let mut setup = vec![
        admit(&mut agency, rater.key.public(), "Rating Body".into(), Role::RatingBody),
        admit(&mut agency, provider.key.public(), "Registry".into(), Role::Provider),
        admit(&mut agency, employer.key.public(), "Employer".into(), Role::Consumer),
        agency.sign(Operation::Propose {
            action: ProposalAction::AdmitRegistrar {
                key: registrar.key.public(),
                name: "Identity".into(),
            },
        }),
    ];
    let subjects: Vec<(Keypair, SubjectId)> = (0..100u64)
        .map(|i| {
            let mut seed = [9u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            (Keypair::from_seed(seed), SubjectId::keyed(&[3; 32], &i.to_le_bytes()))
        })
        .collect();
    for (key, id) in &subjects {
        setup.push(
            registrar.sign(Operation::EnrolSubject { subject_id: *id, subject_key: key.public() }),
        );
    }
    let setup_txs = setup.len();
    b.push(setup).unwrap();
    b.push(vec![
        rater.sign(Operation::SetRating { participant: provider.key.public(), rating: 3 }),
    ])
    .unwrap();
    let product = ProductId::derive(CHAIN, &provider.key.public(), provider.nonce);
    b.push(vec![provider.sign(Operation::ListProduct {
        spec: ProductSpec {
            name: "CV check".into(),
            category: Category::DataService,
            domain: "hr".into(),
            grade: 3,
            price: 100,
            terms_hash: Hash::digest(b"terms"),
            conditions: ProductConditions {
                purposes: vec!["hiring-check".into()],
                ..Default::default()
            },
            retention_days: None,
        },
    })])
    .unwrap();

    let mut made = setup_txs + 2;
    let mut n = 0u64;
    let mut grants = 0u64;
    while made < total_txs {
        let count = block_txs.min(total_txs - made);
        let mut txs = Vec::with_capacity(count);
        for i in 0..count {
            n += 1;
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&n.to_le_bytes());
            seed[31] = 7;
            let someone = Keypair::from_seed(seed);
            if i % 10 < 7 {
                txs.push(admit(&mut agency, someone.public(), format!("Org {n}"), Role::Consumer));
            } else {
                grants += 1;
                let (subject, sid) = &subjects[(grants % 100) as usize];
                let grant = Grant {
                    serial: Hash::digest(&n.to_le_bytes()),
                    subject: *sid,
                    key: subject.public(),
                    epoch: 0,
                    consumer: employer.key.public(),
                    product,
                    purpose: "hiring-check".into(),
                    expires_at_ms: u64::MAX,
                }
                .sign(subject, CHAIN);
                txs.push(employer.sign(Operation::UseGrant {
                    grant: GrantRef::Inline(Box::new(grant)),
                    subject: *sid,
                    product,
                    purpose: "hiring-check".into(),
                    request_hash: Hash::digest(&n.to_be_bytes()),
                }));
            }
        }
        made += count;
        b.push(txs).unwrap();
    }
    let blocks = b.store().tip_height();
    drop(b);
    let build_s = started.elapsed().as_secs_f64();
    println!(
        "built {blocks} blocks / {made} transactions in {build_s:.1} s ({:.0} tx/s signing + executing + committing)",
        made as f64 / build_s
    );

    // The same ledger replayed with the signatures verified only in order (no worker), then
    // ahead on the other cores (the default), alternately, twice each.
    let out = tempfile::tempdir().unwrap();
    for (run, workers) in [Some(0), None, Some(0), None].into_iter().enumerate() {
        let mut source = HomeSource::open(&path, CHAIN).unwrap();
        let opts = ReplayOptions { to_height: None, progress: false, verify_workers: workers };
        let started = Instant::now();
        let dir = out.path().join(format!("replay-{run}"));
        let outcome = replay(&genesis, &mut source, &dir, &opts).unwrap();
        let secs = started.elapsed().as_secs_f64();
        let Outcome::Verified(report) = outcome else { panic!("the bench ledger diverged") };
        assert_eq!(report.transactions, made as u64);
        assert_eq!(report.grants.consumed, grants);
        let label = match workers {
            Some(0) => "no workers (in order)".to_owned(),
            _ => format!("{} verifying ahead", dpx_app::replay::default_verify_workers()),
        };
        println!(
            "replay --from-home, {label}: {blocks} blocks, {made} transactions in {secs:.2} s: \
             {:.1} blocks/s, {:.0} tx/s (including the final key-by-key state comparison and report)",
            blocks as f64 / secs,
            made as f64 / secs
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
