//! A small harness: a genesis state with a cast of participants, and helpers that sign,
//! execute and check transactions with the right nonces.
#![allow(dead_code, clippy::unwrap_used)]

use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair, PublicKey};

pub const CHAIN: &str = "dpx-test";
/// Block time at height 0 of the test chains: 2026-11-30T00:00:00Z.
pub const T0_MS: u64 = 1_795_996_800_000;
/// The registrar's secret for keyed subject ids in tests.
pub const REGISTRAR_SECRET: [u8; 32] = [0x5e; 32];

pub fn subject_id(identifier: &str) -> SubjectId {
    SubjectId::keyed(&REGISTRAR_SECRET, identifier.as_bytes())
}

pub fn kp(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

/// The standing cast of a marketplace.
pub struct World {
    pub st: MemState,
    pub height: u64,
    pub agencies: Vec<Keypair>,
    pub operator: Keypair,
    pub rater: Keypair,
    pub regulator: Keypair,
    pub auditor: Keypair,
    /// An identity service admitted by governance; enrols data subjects.
    pub registrar: Keypair,
    /// A settlement bank admitted by governance; records deposits and withdrawals.
    pub bank: Keypair,
    /// References the bank used so far (each one once).
    pub bank_refs: u64,
    /// Every receipt, in order: what an auditor replaying the chain sees.
    pub receipts: Vec<Receipt>,
    pub time_override_ms: Option<u64>,
}

impl World {
    pub fn new() -> Self {
        Self::with_agencies(1)
    }

    pub fn with_agencies(n: u8) -> Self {
        let agencies: Vec<Keypair> = (0..n).map(|i| kp(100 + i)).collect();
        let genesis = GenesisApp {
            agencies: agencies
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisAgency { name: format!("agency-{i}"), key: k.public() })
                .collect(),
            validators: agencies
                .iter()
                .enumerate()
                .map(|(i, k)| Validator { key: k.public(), power: 10, name: format!("v{i}") })
                .collect(),
            policies: None,
            params: Params::default(),
            currency: Currency::default(),
            platform_fee_basis_points: 0,
        };
        let mut st = MemState::new();
        init_genesis(&mut st, CHAIN, &genesis).unwrap();
        let mut w = Self {
            st,
            height: 1,
            agencies,
            operator: kp(90),
            rater: kp(91),
            regulator: kp(92),
            auditor: kp(93),
            registrar: kp(94),
            bank: kp(89),
            bank_refs: 0,
            receipts: Vec::new(),
            time_override_ms: None,
        };
        let cast = [
            (kp(90), Role::Operator),
            (kp(91), Role::RatingBody),
            (kp(92), Role::Regulator),
            (kp(93), Role::Auditor),
        ];
        for (k, role) in cast {
            w.admit(&k, &[role]);
        }
        w.admit_registrar(&kp(94));
        w.govern(ProposalAction::AdmitSettlementBank {
            key: kp(89).public(),
            name: "settlement bank".into(),
        });
        w
    }

    /// Propose `action` and have the agencies approve it until it executes.
    pub fn govern(&mut self, action: ProposalAction) -> ProposalId {
        let agencies = self.agencies.clone();
        let id =
            ProposalId::derive(CHAIN, &agencies[0].public(), self.nonce(&agencies[0].public()));
        let r = self.ok(&agencies[0], Operation::Propose { action });
        if r.events_of("governance.executed").count() == 0 {
            for a in &agencies[1..] {
                let r = self.ok(a, Operation::Approve { proposal: id });
                if r.events_of("governance.executed").count() > 0 {
                    break;
                }
            }
        }
        id
    }

    /// Admit a registrar by governance (every agency approves).
    pub fn admit_registrar(&mut self, who: &Keypair) {
        self.govern(ProposalAction::AdmitRegistrar {
            key: who.public(),
            name: "identity service".into(),
        });
        assert!(self.participant(&who.public()).has_role(Role::Registrar));
    }

    /// A fresh bank reference.
    pub fn next_ref(&mut self) -> String {
        self.bank_refs += 1;
        format!("ref-{}", self.bank_refs)
    }

    /// The bank deposits `amount` for `who`.
    #[track_caller]
    pub fn fund(&mut self, who: &PublicKey, amount: u64) -> Receipt {
        let (bank, reference) = (self.bank.clone(), self.next_ref());
        self.ok(&bank, Operation::Deposit { account: *who, amount, reference })
    }

    /// `who`'s balance.
    pub fn balance(&self, who: &PublicKey) -> u64 {
        balance(&self.st, who).unwrap()
    }

    /// The registrar enrols `who` (a data subject's phone key) under the subject id of
    /// `identifier`; returns the subject id.
    pub fn enrol(&mut self, who: &Keypair, identifier: &str) -> SubjectId {
        let id = subject_id(identifier);
        let r = self.registrar.clone();
        self.ok(&r, Operation::EnrolSubject { subject_id: id, subject_key: who.public() });
        id
    }

    pub fn subject(&self, id: &SubjectId) -> Subject {
        load_subject(&self.st, id).unwrap().unwrap()
    }

    pub fn agency(&self) -> &Keypair {
        &self.agencies[0]
    }

    /// Block time: [`T0_MS`] plus one second per height (a test may set `time_ms` itself).
    pub fn ctx(&self) -> BlockContext {
        BlockContext { chain_id: CHAIN.into(), height: self.height, time_ms: self.time_ms() }
    }

    pub fn time_ms(&self) -> u64 {
        self.time_override_ms.unwrap_or(T0_MS + self.height * 1000)
    }

    /// Set the block time of the following transactions (and keep it until changed).
    pub fn at_time(&mut self, time_ms: u64) {
        self.time_override_ms = Some(time_ms);
    }

    pub fn nonce(&self, who: &PublicKey) -> u64 {
        next_nonce(&self.st, who).unwrap()
    }

    /// Signed bytes of `op` by `who` with its next nonce.
    pub fn sign(&self, who: &Keypair, op: Operation) -> Vec<u8> {
        TransactionBody::new(CHAIN, self.nonce(&who.public()), op).sign(who).encode()
    }

    pub fn run(&mut self, who: &Keypair, op: Operation) -> Receipt {
        let bytes = self.sign(who, op);
        let tx = check_stateless(&bytes, CHAIN).unwrap();
        let ctx = self.ctx();
        let r = execute(&mut self.st, &ctx, &tx);
        self.receipts.push(r.clone());
        r
    }

    #[track_caller]
    pub fn ok(&mut self, who: &Keypair, op: Operation) -> Receipt {
        let name = op.name();
        let r = self.run(who, op);
        assert!(r.is_ok(), "{name} should succeed: {:?} {}", r.code, r.reason);
        r
    }

    #[track_caller]
    pub fn fail(&mut self, who: &Keypair, op: Operation, code: Code, reason_has: &str) -> Receipt {
        let name = op.name();
        let before = self.st.clone();
        let r = self.run(who, op);
        assert_eq!(r.code, code, "{name}: {}", r.reason);
        assert!(
            r.reason.contains(reason_has),
            "{name}: reason {:?} lacks {reason_has:?}",
            r.reason
        );
        // A failed transaction changes nothing but the signer's nonce.
        let mut changed: Vec<&Vec<u8>> = self
            .st
            .map
            .iter()
            .filter(|(k, v)| before.map.get(*k) != Some(v))
            .map(|(k, _)| k)
            .collect();
        changed.extend(before.map.keys().filter(|k| !self.st.map.contains_key(*k)));
        let nonce_key = dpx_contracts::keys::nonce(&who.public());
        assert!(changed.iter().all(|k| **k == nonce_key), "{name} failed but changed state");
        r
    }

    pub fn next_block(&mut self) {
        self.height += 1;
        let ctx = self.ctx();
        begin_block(&mut self.st, &ctx);
    }

    pub fn admit(&mut self, who: &Keypair, roles: &[Role]) {
        let a = self.agency().clone();
        self.ok(
            &a,
            Operation::Admit {
                key: who.public(),
                name: format!("org-{}", &who.public().to_hex()[..6]),
                roles: roles.to_vec(),
            },
        );
    }

    pub fn rate(&mut self, who: &PublicKey, rating: u8) {
        let r = self.rater.clone();
        self.ok(&r, Operation::SetRating { participant: *who, rating });
    }

    /// A rated provider lists a product; returns its id.
    pub fn list(
        &mut self,
        provider: &Keypair,
        grade: u8,
        conditions: ProductConditions,
    ) -> ProductId {
        let id = ProductId::derive(CHAIN, &provider.public(), self.nonce(&provider.public()));
        self.ok(provider, Operation::ListProduct { spec: spec(grade, conditions) });
        id
    }

    pub fn participant(&self, key: &PublicKey) -> Participant {
        load_participant(&self.st, key).unwrap().unwrap()
    }

    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        let v = self.st.get(key)?;
        serde_json::from_value(render(key, &v).expect("renderable")).ok()
    }

    pub fn events<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.receipts.iter().flat_map(|r| r.events.iter()).filter(move |e| e.kind == kind)
    }
}

pub fn spec(grade: u8, conditions: ProductConditions) -> ProductSpec {
    ProductSpec {
        name: format!("product grade {grade}"),
        category: Category::DataService,
        domain: "finance".into(),
        grade,
        price: 10_000,
        terms_hash: Hash::digest(b"terms"),
        conditions,
        retention_days: None,
    }
}

/// The serial of test grant number `n`.
pub fn serial(n: u8) -> Hash {
    Hash::digest(&[n])
}

/// A grant signed by `key` for subject `subject` (epoch 0), serial `n`, expiring at
/// `expires_at_ms`.
pub fn grant(
    key: &Keypair,
    subject: SubjectId,
    n: u8,
    consumer: &PublicKey,
    product: ProductId,
    purpose: &str,
    expires_at_ms: u64,
) -> SignedGrant {
    grant_at_epoch(key, subject, 0, n, consumer, product, purpose, expires_at_ms)
}

#[allow(clippy::too_many_arguments)]
pub fn grant_at_epoch(
    key: &Keypair,
    subject: SubjectId,
    epoch: u64,
    n: u8,
    consumer: &PublicKey,
    product: ProductId,
    purpose: &str,
    expires_at_ms: u64,
) -> SignedGrant {
    Grant {
        serial: serial(n),
        subject,
        key: key.public(),
        epoch,
        consumer: *consumer,
        product,
        purpose: purpose.into(),
        expires_at_ms,
    }
    .sign(key, CHAIN)
}

/// `use_grant` of `g` inline.
pub fn use_inline(g: &SignedGrant, request: &[u8]) -> Operation {
    Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(g.clone())),
        subject: g.grant.subject,
        product: g.grant.product,
        purpose: g.grant.purpose.clone(),
        request_hash: Hash::digest(request),
    }
}

/// `use_grant` of a registered grant by id.
pub fn use_by_id(g: &SignedGrant, request: &[u8]) -> Operation {
    Operation::UseGrant {
        grant: GrantRef::Id(g.grant.id()),
        subject: g.grant.subject,
        product: g.grant.product,
        purpose: g.grant.purpose.clone(),
        request_hash: Hash::digest(request),
    }
}

/// The new key's proof of possession for a subject key rotation.
pub fn subject_key_proof(new_key: &Keypair, id: &SubjectId) -> dpx_crypto::Signature {
    new_key.sign(SUBJECT_KEY_DOMAIN, CHAIN, &subject_key_message(id))
}

/// Decode every value under `prefix` through its JSON view.
pub fn all_of<T: serde::de::DeserializeOwned>(st: &MemState, prefix: &[u8]) -> Vec<T> {
    st.scan(prefix)
        .map(|(k, v)| serde_json::from_value(render(k, v).expect("renderable")).unwrap())
        .collect()
}

/// (Σ balances + Σ escrows + treasury, deposited − withdrawn), summed in u128 so that the sum
/// itself cannot overflow whatever the state holds.
pub fn money_held(st: &MemState) -> (u128, u128) {
    let balances: u128 =
        all_of::<Account>(st, keys::PREFIX_ACCOUNT).iter().map(|a| u128::from(a.balance)).sum();
    let escrows: u128 =
        all_of::<Order>(st, keys::PREFIX_ORDER).iter().map(|o| u128::from(o.escrow)).sum();
    let treasury = u128::from(treasury(st).unwrap().balance);
    let s = supply(st).unwrap();
    (balances + escrows + treasury, u128::from(s.deposited) - u128::from(s.withdrawn))
}

/// The conservation invariant: the ledger holds exactly what banks deposited and did not
/// withdraw.
#[track_caller]
pub fn assert_conserved(st: &MemState) {
    let (held, net) = money_held(st);
    assert_eq!(held, net, "balances + escrows + treasury != deposited - withdrawn");
}
