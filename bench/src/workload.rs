//! What the load generator sends: the marketplace set-up and the pre-signed timed mix (full
//! mode), or opaque unique payloads (consensus-only mode). Pure: no I/O, so the whole workload
//! can be executed against an in-memory ledger in tests.
//!
//! Full mode, set-up (untimed, in stages that each commit before the next):
//! 1. the agency admits a rating body, providers, operators and consumers, and proposes to
//!    admit a registrar (governance);
//! 2. enough of the other agencies approve (more than 2/3 of the agencies in all);
//! 3. the rating body rates every provider 4; the registrar enrols the data subjects;
//! 4. every provider lists a grade-3 product (grant-gated) and a grade-1 product.
//!
//! Timed mix (weights from `--mix`): `use_grant` (an enrolled data subject's key signs a
//! one-use grant for consumer + grade-3 product + governed purpose, the consumer uses it
//! inline),
//! `place_order` (grade-1 product, no grant needed), `list_product` (by a provider) and
//! `admit` (a fresh consumer, by an operator). Each signer's transactions get consecutive
//! nonces in send order, and a signer is pinned to one connection.

use std::time::Duration;

use dpx_contracts::{
    Category, Grant, GrantRef, Operation, ProductConditions, ProductId, ProductSpec,
    ProposalAction, ProposalId, Role, SubjectId, TransactionBody,
};
use dpx_crypto::{Domain, Hash, Keypair};
use rand::{RngCore as _, SeedableRng as _};

use crate::schedule::{WeightedCycle, send_offset};

/// Signer id of transactions that have none (consensus-only payloads).
pub const NO_SIGNER: u32 = u32::MAX;
/// The purpose named in every order.
pub const PURPOSE: &str = "bench";
/// The governed purpose code named in every grant and use.
pub const GRANT_PURPOSE: &str = "hiring-check";
/// Most data subjects one run enrols (one registrar signs them all; its per-signer mempool
/// bound is 10,000).
const SUBJECTS_MAX: usize = 5_000;
/// Rating given to providers: enough to list any grade.
const PROVIDER_RATING: u8 = 4;

/// One transaction ready to send.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Send time from the start of the window.
    pub offset: Duration,
    pub bytes: Vec<u8>,
    /// blake3 of `bytes`.
    pub hash: Hash,
    /// Who signed it ([`NO_SIGNER`] for payloads); all of one signer's go to one connection.
    pub signer: u32,
}

/// The timed operation mix, as weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub use_grant: u32,
    pub place_order: u32,
    pub list_product: u32,
    pub admit: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self { use_grant: 60, place_order: 25, list_product: 10, admit: 5 }
    }
}

impl Mix {
    fn weights(self) -> [u32; 4] {
        [self.use_grant, self.place_order, self.list_product, self.admit]
    }
    fn total(self) -> f64 {
        f64::from(self.weights().iter().sum::<u32>())
    }
}

impl std::str::FromStr for Mix {
    type Err = String;
    /// `use_grant=60,place_order=25,list_product=10,admit=5` (missing kinds weigh 0).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = Self { use_grant: 0, place_order: 0, list_product: 0, admit: 0 };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) =
                part.split_once('=').ok_or_else(|| format!("{part:?}: want kind=weight"))?;
            let v: u32 =
                v.trim().parse().map_err(|_| format!("{part:?}: weight is not a number"))?;
            match k.trim() {
                "use_grant" => m.use_grant = v,
                "place_order" => m.place_order = v,
                "list_product" => m.list_product = v,
                "admit" => m.admit = v,
                other => return Err(format!("unknown kind {other:?}")),
            }
        }
        if m.total() == 0.0 {
            return Err("the mix needs a positive weight".into());
        }
        Ok(m)
    }
}

/// How many signers of each kind, so that none signs more than `signer_rate` tx/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub consumers: usize,
    pub providers: usize,
    pub operators: usize,
}

/// Most consumers one run admits (bounds the set-up).
const CONSUMERS_MAX: usize = 50_000;

impl Sizes {
    pub fn for_rate(rate: f64, mix: Mix, signer_rate: f64, connections: usize) -> Self {
        let need = |w: u32| (rate * f64::from(w) / mix.total() / signer_rate).ceil() as usize;
        Self {
            consumers: need(mix.use_grant + mix.place_order)
                .max(connections)
                .clamp(1, CONSUMERS_MAX),
            providers: need(mix.list_product).max(2),
            operators: need(mix.admit).max(1),
        }
    }
}

/// A setup transaction: signed bytes and its hash.
#[derive(Debug, Clone)]
pub struct SetupTx {
    pub bytes: Vec<u8>,
    pub hash: Hash,
}

/// The participants of one run, derived from a seed (fresh per run, so runs never collide).
#[derive(Debug)]
pub struct Market {
    chain: String,
    seed: [u8; 32],
    agency: Keypair,
    agency_nonce: u64,
    /// The other founding agencies and their next nonces: they approve the registrar.
    approvers: Vec<(Keypair, u64)>,
    registrar: Keypair,
    subjects: Vec<(Keypair, SubjectId)>,
    rater: Keypair,
    providers: Vec<Keypair>,
    operators: Vec<Keypair>,
    consumers: Vec<Keypair>,
}

fn derive_key(seed: &[u8; 32], role: &str, i: u64) -> Keypair {
    let mut material = seed.to_vec();
    material.extend_from_slice(&i.to_le_bytes());
    Keypair::from_seed(Hash::of(Domain::new("dpx/bench-key/v1"), role, &material).0)
}

fn tx(chain: &str, key: &Keypair, nonce: u64, op: Operation) -> SetupTx {
    let bytes = TransactionBody::new(chain, nonce, op).sign(key).encode();
    SetupTx { hash: Hash::digest(&bytes), bytes }
}

fn spec(name: String, grade: u8) -> ProductSpec {
    ProductSpec {
        name,
        category: Category::DataService,
        domain: "benchmark".into(),
        grade,
        price: 100,
        terms_hash: Hash::digest(b"dpx-bench terms"),
        conditions: ProductConditions::default(),
        retention_days: None,
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    UseGrant,
    PlaceOrder,
    ListProduct,
    Admit,
}

/// One timed transaction before signing.
#[derive(Debug, Clone, Copy)]
struct Spec {
    i: u64,
    kind: Kind,
    /// Index within the signer's role.
    who: usize,
    nonce: u64,
}

impl Market {
    pub fn new(
        chain: &str,
        agency: Keypair,
        agency_nonce: u64,
        sizes: Sizes,
        seed: [u8; 32],
    ) -> Self {
        let keys =
            |role: &str, n: usize| (0..n as u64).map(|i| derive_key(&seed, role, i)).collect();
        let subjects = (0..sizes.consumers.clamp(1, SUBJECTS_MAX) as u64)
            .map(|i| {
                let key = derive_key(&seed, "subject", i);
                let id = SubjectId::keyed(&seed, &i.to_le_bytes());
                (key, id)
            })
            .collect();
        Self {
            chain: chain.to_owned(),
            agency,
            agency_nonce,
            approvers: Vec::new(),
            registrar: derive_key(&seed, "registrar", 0),
            subjects,
            rater: derive_key(&seed, "rater", 0),
            providers: keys("provider", sizes.providers),
            operators: keys("operator", sizes.operators),
            consumers: keys("consumer", sizes.consumers),
            seed,
        }
    }

    /// The other founding agencies (key and next nonce): as many as a quorum needs approve
    /// the registrar's admission. Without them, the chain must have a single agency.
    #[must_use]
    pub fn with_approvers(mut self, approvers: Vec<(Keypair, u64)>) -> Self {
        self.approvers = approvers;
        self
    }

    fn grade3(&self, p: usize) -> ProductId {
        ProductId::derive(&self.chain, &self.providers[p].public(), 0)
    }

    fn grade1(&self, p: usize) -> ProductId {
        ProductId::derive(&self.chain, &self.providers[p].public(), 1)
    }

    /// The set-up stages, in order; each must be committed before the next is sent.
    pub fn setup_stages(&self) -> Vec<(&'static str, Vec<SetupTx>)> {
        let c = &self.chain;
        let mut admits = Vec::new();
        let mut nonce = self.agency_nonce;
        let mut admit = |key: &Keypair, name: String, role: Role| {
            let op = Operation::Admit { key: key.public(), name, roles: vec![role] };
            admits.push(tx(c, &self.agency, nonce, op));
            nonce += 1;
        };
        admit(&self.rater, "bench rating body".into(), Role::RatingBody);
        for (i, k) in self.providers.iter().enumerate() {
            admit(k, format!("bench provider {i}"), Role::Provider);
        }
        for (i, k) in self.operators.iter().enumerate() {
            admit(k, format!("bench operator {i}"), Role::Operator);
        }
        for (i, k) in self.consumers.iter().enumerate() {
            admit(k, format!("bench consumer {i}"), Role::Consumer);
        }
        // Registrars are admitted by governance: the agency proposes, others approve.
        let proposal = ProposalId::derive(c, &self.agency.public(), nonce);
        let action = ProposalAction::AdmitRegistrar {
            key: self.registrar.public(),
            name: "bench registrar".into(),
        };
        admits.push(tx(c, &self.agency, nonce, Operation::Propose { action }));
        // More than 2/3 of all agencies: the proposer and floor(2n/3) approvers.
        let n = self.approvers.len() + 1;
        let approvals = self
            .approvers
            .iter()
            .take(2 * n / 3)
            .map(|(k, nonce)| tx(c, k, *nonce, Operation::Approve { proposal }))
            .collect();
        let mut ratings: Vec<SetupTx> = (0..self.providers.len())
            .map(|p| {
                let op = Operation::SetRating {
                    participant: self.providers[p].public(),
                    rating: PROVIDER_RATING,
                };
                tx(c, &self.rater, p as u64, op)
            })
            .collect();
        for (i, (key, id)) in self.subjects.iter().enumerate() {
            let op = Operation::EnrolSubject { subject_id: *id, subject_key: key.public() };
            ratings.push(tx(c, &self.registrar, i as u64, op));
        }
        let mut listings = Vec::new();
        for (p, k) in self.providers.iter().enumerate() {
            let g3 = spec(format!("bench grade-3 product {p}"), 3);
            listings.push(tx(c, k, 0, Operation::ListProduct { spec: g3 }));
            let g1 = spec(format!("bench grade-1 product {p}"), 1);
            listings.push(tx(c, k, 1, Operation::ListProduct { spec: g1 }));
        }
        vec![
            ("admit participants", admits),
            ("approve the registrar", approvals),
            ("rate providers, enrol subjects", ratings),
            ("list products", listings),
        ]
    }

    /// `n` timed transactions at `rate`, signed on `threads` threads, split over `connections`
    /// by signer. Grants expire at block time `grant_expires_at_ms`.
    pub fn timed(
        &self,
        n: u64,
        rate: f64,
        mix: Mix,
        connections: usize,
        grant_expires_at_ms: u64,
        threads: usize,
    ) -> Vec<Vec<Planned>> {
        let specs = self.specs(n, mix);
        let signed = sign_parallel(&specs, threads, |s| self.sign(s, grant_expires_at_ms));
        let k = connections.max(1);
        let mut per_conn: Vec<Vec<Planned>> = vec![Vec::new(); k];
        for (s, (signer, bytes)) in specs.iter().zip(signed) {
            per_conn[signer as usize % k].push(Planned {
                offset: send_offset(s.i, rate),
                hash: Hash::digest(&bytes),
                bytes,
                signer,
            });
        }
        per_conn
    }

    /// Kinds, signers and nonces in send order (cheap, sequential: nonces depend on order).
    fn specs(&self, n: u64, mix: Mix) -> Vec<Spec> {
        let (mut consumer, mut provider, mut operator) = (0usize, 0usize, 0usize);
        let mut consumer_nonce = vec![0u64; self.consumers.len()];
        // Providers used nonces 0 and 1 to list in the set-up.
        let mut provider_nonce = vec![2u64; self.providers.len()];
        let mut operator_nonce = vec![0u64; self.operators.len()];
        let kinds = [Kind::UseGrant, Kind::PlaceOrder, Kind::ListProduct, Kind::Admit];
        let mut cycle = WeightedCycle::new(&mix.weights());
        (0..n)
            .map(|i| {
                let kind = kinds[cycle.next().expect("endless")];
                let (who, nonces, next) = match kind {
                    Kind::UseGrant | Kind::PlaceOrder => {
                        (&mut consumer, &mut consumer_nonce, self.consumers.len())
                    }
                    Kind::ListProduct => (&mut provider, &mut provider_nonce, self.providers.len()),
                    Kind::Admit => (&mut operator, &mut operator_nonce, self.operators.len()),
                };
                let w = *who;
                *who = (w + 1) % next;
                let nonce = nonces[w];
                nonces[w] += 1;
                Spec { i, kind, who: w, nonce }
            })
            .collect()
    }

    /// Sign one timed transaction: (signer id, bytes).
    fn sign(&self, s: &Spec, grant_expires_at_ms: u64) -> (u32, Vec<u8>) {
        let c = &self.chain;
        let (signer, key, op) = match s.kind {
            Kind::UseGrant => {
                let consumer = &self.consumers[s.who];
                let product = self.grade3(s.i as usize % self.providers.len());
                let (subject, sid) = &self.subjects[s.i as usize % self.subjects.len()];
                let grant = Grant {
                    serial: Hash::of(Domain::new("dpx/bench-grant/v1"), c, &self.id_bytes(s.i)),
                    subject: *sid,
                    key: subject.public(),
                    epoch: 0,
                    consumer: consumer.public(),
                    product,
                    purpose: GRANT_PURPOSE.into(),
                    expires_at_ms: grant_expires_at_ms,
                }
                .sign(subject, c);
                let op = Operation::UseGrant {
                    grant: GrantRef::Inline(Box::new(grant)),
                    subject: *sid,
                    product,
                    purpose: GRANT_PURPOSE.into(),
                    request_hash: Hash::digest(&self.id_bytes(s.i)),
                };
                (s.who, consumer, op)
            }
            Kind::PlaceOrder => {
                let product = self.grade1(s.i as usize % self.providers.len());
                let op = Operation::PlaceOrder {
                    product,
                    grant: None,
                    purpose: PURPOSE.into(),
                    demand: None,
                };
                (s.who, &self.consumers[s.who], op)
            }
            Kind::ListProduct => {
                let op = Operation::ListProduct { spec: spec(format!("bench product {}", s.i), 1) };
                (self.consumers.len() + s.who, &self.providers[s.who], op)
            }
            Kind::Admit => {
                let fresh = derive_key(&self.seed, "admitted", s.i);
                let op = Operation::Admit {
                    key: fresh.public(),
                    name: format!("bench admitted {}", s.i),
                    roles: vec![Role::Consumer],
                };
                let id = self.consumers.len() + self.providers.len() + s.who;
                (id, &self.operators[s.who], op)
            }
        };
        (signer as u32, TransactionBody::new(c, s.nonce, op).sign(key).encode())
    }

    fn id_bytes(&self, i: u64) -> Vec<u8> {
        let mut b = self.seed.to_vec();
        b.extend_from_slice(&i.to_le_bytes());
        b
    }
}

/// Map `f` over `items` on `threads` threads, keeping order.
fn sign_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a signing thread panicked")).collect()
    })
}

/// Consensus-only: `n` unique payloads of `size` bytes (at least 16): the run id and a counter
/// in the first 16 bytes, random bytes after; spread round-robin over `connections`.
pub fn payloads(
    n: u64,
    size: usize,
    run_id: u64,
    rate: f64,
    connections: usize,
) -> Vec<Vec<Planned>> {
    let size = size.max(16);
    let mut rng = rand::rngs::StdRng::seed_from_u64(run_id);
    let mut per_conn: Vec<Vec<Planned>> = vec![Vec::new(); connections.max(1)];
    let k = per_conn.len() as u64;
    for i in 0..n {
        let mut bytes = vec![0u8; size];
        bytes[..8].copy_from_slice(&run_id.to_le_bytes());
        bytes[8..16].copy_from_slice(&i.to_le_bytes());
        rng.fill_bytes(&mut bytes[16..]);
        per_conn[(i % k) as usize].push(Planned {
            offset: send_offset(i, rate),
            hash: Hash::digest(&bytes),
            bytes,
            signer: NO_SIGNER,
        });
    }
    per_conn
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use dpx_contracts::{
        BlockContext, GenesisAgency, GenesisApp, MemState, Params, Validator, check_stateless,
        execute, init_genesis,
    };

    use super::*;

    const CHAIN: &str = "dpx-bench-test";

    #[test]
    fn mix_parses_and_sizes_follow_the_rate() {
        let m: Mix = "use_grant=6, place_order=2,admit=2".parse().unwrap();
        assert_eq!(m, Mix { use_grant: 6, place_order: 2, list_product: 0, admit: 2 });
        assert!("use_grant=x".parse::<Mix>().is_err());
        assert!("nope=1".parse::<Mix>().is_err());
        assert!("admit=0".parse::<Mix>().is_err());
        let s = Sizes::for_rate(1000.0, Mix::default(), 2.0, 8);
        assert_eq!(s, Sizes { consumers: 425, providers: 50, operators: 25 });
        let tiny = Sizes::for_rate(1.0, Mix::default(), 2.0, 8);
        assert_eq!(tiny, Sizes { consumers: 8, providers: 2, operators: 1 });
    }

    #[test]
    fn payloads_are_unique_sized_and_spread() {
        let p = payloads(100, 40, 7, 50.0, 3);
        assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), vec![34, 33, 33]);
        let all: Vec<&Planned> = p.iter().flatten().collect();
        assert!(all.iter().all(|t| t.bytes.len() == 40 && t.hash == Hash::digest(&t.bytes)));
        assert_eq!(all.iter().map(|t| t.hash).collect::<HashSet<_>>().len(), 100);
        // Each connection's list is in send order.
        assert!(p.iter().all(|c| c.windows(2).all(|w| w[0].offset < w[1].offset)));
        assert_eq!(payloads(1, 3, 1, 1.0, 1)[0][0].bytes.len(), 16);
    }

    /// The whole workload, executed in send order against an in-memory ledger with the default
    /// policies: every transaction must succeed.
    #[test]
    fn every_transaction_succeeds_under_the_default_policies() {
        let agency = Keypair::from_seed([9; 32]);
        let genesis = GenesisApp {
            agencies: vec![GenesisAgency { name: "a".into(), key: agency.public() }],
            validators: vec![Validator { key: agency.public(), power: 1, name: "v".into() }],
            policies: None,
            params: Params::default(),
            currency: dpx_contracts::Currency::default(),
            platform_fee_basis_points: 0,
        };
        let mut st = MemState::new();
        init_genesis(&mut st, CHAIN, &genesis).unwrap();
        let sizes = Sizes { consumers: 5, providers: 3, operators: 2 };
        let market = Market::new(CHAIN, agency, 0, sizes, [4; 32]);
        assert_eq!(market.subjects.len(), 5);
        let ctx = BlockContext { chain_id: CHAIN.into(), height: 1, time_ms: 0 };
        let mut run = |bytes: &[u8]| {
            let tx = check_stateless(bytes, CHAIN).unwrap();
            let r = execute(&mut st, &ctx, &tx);
            assert!(r.is_ok(), "{} {}: {}", tx.body.op.name(), tx.body.nonce, r.reason);
        };
        for t in market.setup_stages().iter().flat_map(|(_, stage)| stage) {
            run(&t.bytes);
        }
        let per_conn = market.timed(200, 100.0, Mix::default(), 4, 1000, 2);
        let mut all: Vec<&Planned> = per_conn.iter().flatten().collect();
        assert_eq!(all.len(), 200);
        // A signer is on one connection only.
        for (k, conn) in per_conn.iter().enumerate() {
            assert!(conn.iter().all(|t| t.signer as usize % 4 == k));
        }
        all.sort_by_key(|t| t.offset);
        for t in all {
            assert_eq!(t.hash, Hash::digest(&t.bytes));
            run(&t.bytes);
        }
    }
}
