//! Events for subscribers, derived from committed blocks and their receipts.
//!
//! Live events and replayed ones (a subscriber resuming from a height) come from the same
//! function over the same stored data, so a resumed stream is identical to a live one.
//!
//! Each event carries its [`Audience`], computed once per transaction by the read policy
//! (`dpx_contracts::read::tx_parties`): block events are public, the events of a transaction
//! (`tx`, its contract events, `policy_decision`) go to the transaction's parties and to
//! supervisors. A subscriber compares its own one or two keys with the event's few party
//! keys, so delivering an event costs O(1) per subscriber.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use dpx_contracts::read::{self, Access};
use dpx_contracts::{MemState, OrderedState, State, keys};
use dpx_crypto::{Hash, PublicKey};
use dpx_ledger::Block;

/// Who an event may be delivered to (besides supervisors, who get everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Audience {
    /// Anyone (block events).
    #[default]
    Public,
    /// The parties to the transaction the event comes from.
    Parties(Arc<BTreeSet<PublicKey>>),
}

impl Audience {
    /// The read policy's access for this audience.
    pub fn access(&self) -> Access {
        match self {
            Self::Public => Access::Public,
            Self::Parties(p) => Access::Parties(p.as_ref().clone()),
        }
    }

    /// Whether any of `keys` (a subscriber's identities) is a party.
    pub fn includes_any(&self, keys: &[PublicKey]) -> bool {
        match self {
            Self::Public => true,
            Self::Parties(p) => keys.iter().any(|k| p.contains(k)),
        }
    }
}

/// The parties to a committed transaction (its bytes and encoded receipt), by the read policy:
/// see `dpx_contracts::read::tx_parties`. `st` finds the parties to objects the transaction
/// names by id; an undecodable transaction has no parties (supervisors only).
pub fn tx_party_set<S: State + ?Sized>(
    st: &S,
    tx: &[u8],
    receipt: Option<&[u8]>,
) -> BTreeSet<PublicKey> {
    let Ok(signed) = dpx_contracts::SignedTransaction::decode(tx) else { return BTreeSet::new() };
    let body = dpx_contracts::TransactionBody::decode(&signed.body).ok();
    let receipt = receipt.and_then(|r| dpx_contracts::Receipt::decode(r).ok());
    dpx_contracts::read::tx_parties(
        st,
        &signed.signer,
        body.as_ref().map(|b| &b.op),
        receipt.as_ref(),
    )
}

/// Who may read a committed transaction (its bytes, decoded form and receipt).
pub fn tx_access<S: State + ?Sized>(st: &S, tx: &[u8], receipt: Option<&[u8]>) -> Access {
    let parties = tx_party_set(st, tx, receipt);
    if parties.is_empty() { Access::Supervisors } else { Access::Parties(parties) }
}

/// One event as sent to subscribers.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `block`, `tx`, `policy_decision`, or a contract event kind (e.g. `grant.consumed`).
    pub kind: String,
    pub height: u64,
    /// Position in the stream: `height.index`, usable as a resume cursor.
    pub cursor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<Hash>,
    pub data: Value,
    /// Participants (hex keys) and products the event concerns, for filtering.
    #[serde(skip)]
    pub parties: Vec<String>,
    #[serde(skip)]
    pub products: Vec<String>,
    /// Who may receive it (the read policy).
    #[serde(skip)]
    pub audience: Audience,
}

/// Everything one committed block produces.
#[derive(Debug, Clone)]
pub struct BlockEvents {
    pub height: u64,
    pub events: Vec<Event>,
    /// The block's transaction hashes, in order (for subscribers that track their own
    /// transactions with one event per block: `tx_hashes=true`).
    pub tx_hashes: Vec<Hash>,
}

/// Keys whose string values name a participant, or a product, inside receipt JSON.
const PARTY_FIELDS: &[&str] = &[
    "signer",
    "participant",
    "consumer",
    "provider",
    "subject",
    "buyer",
    "seller",
    "key",
    "by",
    "holder",
];
const PRODUCT_FIELDS: &[&str] = &["product", "product_id"];

impl BlockEvents {
    /// The events of a block, with the parties of each transaction found from the transaction
    /// and its receipt alone (no state lookups): what the node's events thread uses.
    pub fn new(block: &Block, receipts: &[Vec<u8>]) -> Self {
        Self::with_state(block, receipts, &block.tx_hashes(), &MemState::new())
    }

    /// The events of a block; `st` finds the parties to objects a transaction names by id, and
    /// the block start's events (destructions reported overdue), which the block left in state.
    /// `tx_hashes[i]` is `Hash::digest(&block.txs[i])` (the committing node knows them).
    pub fn with_state<S: OrderedState + ?Sized>(
        block: &Block,
        receipts: &[Vec<u8>],
        tx_hashes: &[Hash],
        st: &S,
    ) -> Self {
        debug_assert_eq!(tx_hashes.len(), block.txs.len(), "one hash per transaction");
        let h = &block.header;
        let mut events = vec![Event {
            kind: "block".into(),
            height: h.height,
            cursor: format!("{}.0", h.height),
            tx_hash: None,
            data: serde_json::json!({
                "id": block.id(),
                "time_ms": h.time_ms,
                "proposer": h.proposer,
                "txs": block.txs.len(),
            }),
            parties: vec![h.proposer.to_hex()],
            products: Vec::new(),
            audience: Audience::Public,
        }];
        for (i, ((tx, receipt), &hash)) in block.txs.iter().zip(receipts).zip(tx_hashes).enumerate()
        {
            let data = dpx_app::views::receipt_json(receipt);
            let audience = Audience::Parties(Arc::new(tx_party_set(st, tx, Some(receipt))));
            let (mut parties, mut products) = (Vec::new(), Vec::new());
            collect(&data, &mut parties, &mut products);
            if let Some(signer) = dpx_app::views::tx_signer(tx) {
                parties.push(signer);
            }
            let seq = |n: usize| format!("{}.{}", h.height, i * 16 + n + 1);
            events.push(Event {
                kind: "tx".into(),
                height: h.height,
                cursor: seq(0),
                tx_hash: Some(hash),
                data: data.clone(),
                parties: parties.clone(),
                products: products.clone(),
                audience: audience.clone(),
            });
            // Contract events inside the receipt become events of their own kind.
            if let Some(inner) = data.get("events").and_then(Value::as_array) {
                for (n, ev) in inner.iter().enumerate().take(15) {
                    let kind = ev.get("kind").and_then(Value::as_str).unwrap_or("event");
                    events.push(Event {
                        kind: kind.to_owned(),
                        height: h.height,
                        cursor: seq(n + 1),
                        tx_hash: Some(hash),
                        data: ev.clone(),
                        parties: parties.clone(),
                        products: products.clone(),
                        audience: audience.clone(),
                    });
                }
            }
            if let Some(d) = data.get("decision").filter(|d| !d.is_null()) {
                events.push(Event {
                    kind: "policy_decision".into(),
                    height: h.height,
                    cursor: seq(15),
                    tx_hash: Some(hash),
                    data: d.clone(),
                    parties: parties.clone(),
                    products: products.clone(),
                    audience: audience.clone(),
                });
            }
        }
        // The block start's events come after the transactions' in the stream (their cursors
        // follow the last transaction's): each goes to the data's holder, the parties to the
        // order or grant, and supervisors, as the stored report itself does.
        let first = block.txs.len() * 16 + 1;
        for (n, (rec, ev)) in dpx_contracts::overdue_reports(st, h.height).into_iter().enumerate() {
            let (tag, id) = rec.target.key_parts();
            let key = keys::overdue(h.height, tag, &id);
            let access =
                st.get(&key).map_or(Access::Supervisors, |v| read::state_access(st, &key, &v));
            let audience = match access {
                Access::Public => Audience::Public,
                Access::Parties(p) => Audience::Parties(Arc::new(p)),
                Access::Participants | Access::Supervisors => Audience::Parties(Arc::default()),
            };
            let data = serde_json::to_value(&ev).unwrap_or(Value::Null);
            let (mut parties, mut products) = (Vec::new(), Vec::new());
            collect(&data, &mut parties, &mut products);
            events.push(Event {
                kind: ev.kind.clone(),
                height: h.height,
                cursor: format!("{}.{}", h.height, first + n),
                tx_hash: None,
                data,
                parties,
                products,
                audience,
            });
        }
        Self { height: h.height, events, tx_hashes: tx_hashes.to_vec() }
    }
}

fn collect(v: &Value, parties: &mut Vec<String>, products: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            // Contract event attributes: `{"key": "consumer", "value": "<hex>"}`.
            if let (Some(Value::String(k)), Some(Value::String(x))) = (m.get("key"), m.get("value"))
            {
                if PARTY_FIELDS.contains(&k.as_str()) {
                    parties.push(x.clone());
                } else if PRODUCT_FIELDS.contains(&k.as_str()) {
                    products.push(x.clone());
                }
                return;
            }
            for (k, x) in m {
                if let Value::String(s) = x {
                    if PARTY_FIELDS.contains(&k.as_str()) {
                        parties.push(s.clone());
                    } else if PRODUCT_FIELDS.contains(&k.as_str()) {
                        products.push(s.clone());
                    }
                } else {
                    collect(x, parties, products);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, parties, products)),
        _ => {}
    }
}

/// A subscriber's filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kinds: Vec<String>,
    pub participant: Option<String>,
    pub product: Option<String>,
}

/// The node's own event kinds; contract events are `family.name`.
const NODE_KINDS: &[&str] = &["block", "tx", "policy_decision"];
/// The families of contract event kinds (`grant.consumed`, `order.delivered`, ...). Names
/// within a family are the contracts' to add; a family no contract emits is a typo.
const CONTRACT_FAMILIES: &[&str] = &[
    "demand",
    "governance",
    "grant",
    "job",
    "lifecycle",
    "money",
    "order",
    "params",
    "participant",
    "platform_fee",
    "policy",
    "product",
    "subject",
    "treasury",
    "tx",
    "validators",
];
/// Kinds one filter may name, and the longest kind.
pub const FILTER_KINDS_MAX: usize = 32;
const KIND_BYTES_MAX: usize = 64;

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown event kind {0:?}: kinds are block, tx, policy_decision or family.name with family one of {families}", families = CONTRACT_FAMILIES.join(", "))]
    UnknownKind(String),
    #[error("at most {FILTER_KINDS_MAX} kinds")]
    TooManyKinds,
    #[error("{what} must be 64 hex characters (a 32-byte {what} id or key)")]
    NotAnId { what: &'static str },
}

/// A `family.name` kind of a known family, or one of the node's own.
fn known_kind(k: &str) -> bool {
    if NODE_KINDS.contains(&k) {
        return true;
    }
    let Some((family, name)) = k.split_once('.') else { return false };
    k.len() <= KIND_BYTES_MAX
        && CONTRACT_FAMILIES.contains(&family)
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A 32-byte id or key in hex, lowercased as events carry it.
fn hex_id(s: &str, what: &'static str) -> Result<String, FilterError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(FilterError::NotAnId { what })
    }
}

impl Filter {
    /// A filter from a subscriber's query: comma-separated `kinds`, a participant key and a
    /// product id. Anything that could never match (a typo) is refused rather than silently
    /// giving an empty stream.
    pub fn parse(
        kinds: Option<&str>,
        participant: Option<&str>,
        product: Option<&str>,
    ) -> Result<Self, FilterError> {
        let mut ks: Vec<String> = Vec::new();
        for k in kinds.unwrap_or_default().split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if !known_kind(k) {
                return Err(FilterError::UnknownKind(k.chars().take(KIND_BYTES_MAX).collect()));
            }
            if ks.len() == FILTER_KINDS_MAX {
                return Err(FilterError::TooManyKinds);
            }
            ks.push(k.to_owned());
        }
        Ok(Self {
            kinds: ks,
            participant: participant.map(|p| hex_id(p, "participant")).transpose()?,
            product: product.map(|p| hex_id(p, "product")).transpose()?,
        })
    }

    pub fn matches(&self, e: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self.participant.as_ref().is_none_or(|p| e.parties.iter().any(|x| x == p))
            && self.product.as_ref().is_none_or(|p| e.products.iter().any(|x| x == p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_finds_parties_and_products_at_any_depth() {
        let v = serde_json::json!({"events": [{"kind": "grant.consumed", "consumer": "aa",
            "attrs": [{"key": "product", "value": "p1"}, {"key": "subject", "value": "bb"}]}]});
        let (mut parties, mut products) = (Vec::new(), Vec::new());
        collect(&v, &mut parties, &mut products);
        assert_eq!(parties, vec!["aa", "bb"]);
        assert_eq!(products, vec!["p1"]);
    }

    #[test]
    fn malformed_filters_are_refused() {
        let zeros = "0".repeat(64);
        let f = Filter::parse(Some("grant.consumed, block"), Some(&"AB".repeat(32)), Some(&zeros))
            .unwrap();
        assert_eq!(f.kinds, vec!["grant.consumed", "block"]);
        assert_eq!(f.participant.as_deref(), Some("ab".repeat(32).as_str()));
        assert!(Filter::parse(None, None, None).unwrap().kinds.is_empty());
        let unknown = |k: &str| {
            matches!(Filter::parse(Some(k), None, None), Err(FilterError::UnknownKind(_)))
        };
        for k in ["bogus", "grant", "unicorn.consumed", "grant.", "grant.Consumed", "block.x"] {
            assert!(unknown(k), "{k}");
        }
        // Every family the contracts emit (money and job events were once refused here).
        for k in [
            "money.deposited",
            "treasury.paid",
            "platform_fee.set",
            "subject.enrolled",
            "job.requested",
            "lifecycle.destruction_overdue",
        ] {
            assert!(Filter::parse(Some(k), None, None).is_ok(), "{k}");
        }
        assert_eq!(
            Filter::parse(None, Some("zz"), None).unwrap_err(),
            FilterError::NotAnId { what: "participant" }
        );
        assert!(Filter::parse(None, None, Some(&zeros[1..])).is_err());
        let many = vec!["tx"; FILTER_KINDS_MAX + 1].join(",");
        assert_eq!(Filter::parse(Some(&many), None, None).unwrap_err(), FilterError::TooManyKinds);
    }

    #[test]
    fn filter_by_kind_party_product() {
        let e = Event {
            kind: "tx".into(),
            height: 1,
            cursor: "1.1".into(),
            tx_hash: None,
            data: Value::Null,
            parties: vec!["aa".into()],
            products: vec!["p".into()],
            audience: Audience::Public,
        };
        assert!(Filter::default().matches(&e));
        assert!(Filter { kinds: vec!["tx".into()], ..Filter::default() }.matches(&e));
        assert!(!Filter { kinds: vec!["block".into()], ..Filter::default() }.matches(&e));
        assert!(!Filter { participant: Some("bb".into()), ..Filter::default() }.matches(&e));
        assert!(Filter { product: Some("p".into()), ..Filter::default() }.matches(&e));
    }
}
