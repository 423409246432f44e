//! Receipts: what every transaction leaves behind, successful or not — code, reason, events and
//! the policy decision — so an auditor can reconstruct grants issued, consumed, refused,
//! revoked and expired, denied decisions and settlement amounts from receipts alone.

use std::fmt::Display;

use dpx_crypto::{Hash, PublicKey};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::DecodeError;
use crate::types::Code;

/// One key/value attribute of an event. Values are decimal numbers, hex ids or plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub key: String,
    pub value: String,
}

/// Something that happened, for subscribers and auditors. `kind` is `<object>.<verb>`, e.g.
/// `grant.consumed`, `grant.use_refused`, `order.settled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    pub attrs: Vec<Attr>,
}

impl Event {
    pub fn new(kind: &str) -> Self {
        Self { kind: kind.to_string(), attrs: Vec::new() }
    }

    /// Add an attribute (builder style).
    #[must_use]
    pub fn attr(mut self, key: &str, value: impl Display) -> Self {
        self.attrs.push(Attr { key: key.to_string(), value: value.to_string() });
        self
    }

    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.key == key).map(|a| a.value.as_str())
    }
}

/// The record of one policy decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionReceipt {
    /// The Cedar action, e.g. `order`.
    pub action: String,
    /// The account that asked.
    pub principal: PublicKey,
    /// The Cedar resource uid, e.g. `Product::"<hex>"`.
    pub resource: String,
    pub allowed: bool,
    /// Version of the policy set that decided.
    pub policy_version: u64,
    /// blake3 of the policy set's text.
    pub policy_hash: Hash,
    /// Ids of the policies that determined the decision, sorted.
    pub determining: Vec<String>,
    pub reason: String,
}

/// The outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// blake3 of the whole encoded signed transaction.
    pub tx_hash: Hash,
    pub code: Code,
    /// Empty on success; otherwise why it was refused.
    pub reason: String,
    pub events: Vec<Event>,
    pub decision: Option<DecisionReceipt>,
}

/// Largest encoded receipt accepted by [`Receipt::decode`].
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;

impl Receipt {
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }

    /// Events of the given kind.
    pub fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events.iter().filter(move |e| e.kind == kind)
    }
}

impl Wire for DecisionReceipt {
    type Pb = pb::DecisionReceipt;
    const MAX_BYTES: usize = MAX_RECEIPT_BYTES;
    fn to_pb(&self) -> pb::DecisionReceipt {
        pb::DecisionReceipt {
            action: self.action.clone(),
            principal: self.principal.to_bytes().to_vec(),
            resource: self.resource.clone(),
            allowed: self.allowed,
            policy_version: self.policy_version,
            policy_hash: self.policy_hash.0.to_vec(),
            determining: self.determining.clone(),
            reason: self.reason.clone(),
        }
    }
    fn from_pb(p: pb::DecisionReceipt) -> Result<Self, DecodeError> {
        Ok(Self {
            action: p.action,
            principal: codec::key(&p.principal, "principal")?,
            resource: p.resource,
            allowed: p.allowed,
            policy_version: p.policy_version,
            policy_hash: codec::hash(&p.policy_hash, "policy_hash")?,
            determining: p.determining,
            reason: p.reason,
        })
    }
}

impl Wire for Receipt {
    type Pb = pb::Receipt;
    const MAX_BYTES: usize = MAX_RECEIPT_BYTES;
    fn to_pb(&self) -> pb::Receipt {
        pb::Receipt {
            tx_hash: self.tx_hash.0.to_vec(),
            code: self.code.code(),
            reason: self.reason.clone(),
            events: self
                .events
                .iter()
                .map(|e| pb::Event {
                    kind: e.kind.clone(),
                    attrs: e
                        .attrs
                        .iter()
                        .map(|a| pb::Attr { key: a.key.clone(), value: a.value.clone() })
                        .collect(),
                })
                .collect(),
            decision: self.decision.as_ref().map(Wire::to_pb),
        }
    }
    fn from_pb(p: pb::Receipt) -> Result<Self, DecodeError> {
        Ok(Self {
            tx_hash: codec::hash(&p.tx_hash, "tx_hash")?,
            code: Code::from_wire(p.code, "code")?,
            reason: p.reason,
            events: p
                .events
                .into_iter()
                .map(|e| Event {
                    kind: e.kind,
                    attrs: e
                        .attrs
                        .into_iter()
                        .map(|a| Attr { key: a.key, value: a.value })
                        .collect(),
                })
                .collect(),
            decision: p.decision.map(DecisionReceipt::from_pb).transpose()?,
        })
    }
}
