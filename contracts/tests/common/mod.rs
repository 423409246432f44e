//! A small harness: a genesis state with a cast of participants, and helpers that sign,
//! execute and check transactions with the right nonces.
#![allow(dead_code, clippy::unwrap_used)]

use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair, PublicKey};

pub const CHAIN: &str = "dpx-test";

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
    /// Every receipt, in order: what an auditor replaying the chain sees.
    pub receipts: Vec<Receipt>,
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
            receipts: Vec::new(),
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
        w
    }

    pub fn agency(&self) -> &Keypair {
        &self.agencies[0]
    }

    pub fn ctx(&self) -> BlockContext {
        BlockContext { chain_id: CHAIN.into(), height: self.height, time_ms: self.height * 1000 }
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
        begin_block(&mut self.st, self.height);
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
    }
}

pub fn grant(
    subject: &Keypair,
    id: u8,
    consumer: &PublicKey,
    product: ProductId,
    purpose: &str,
    expiry_height: u64,
) -> SignedGrant {
    Grant {
        id: GrantId(Hash::digest(&[id])),
        subject: subject.public(),
        consumer: *consumer,
        product,
        purpose: purpose.into(),
        expiry_height,
    }
    .sign(subject, CHAIN)
}
