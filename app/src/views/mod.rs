//! JSON views of what the ledger stores: receipts, transactions and state values (for the RPC,
//! events and the auditor's tools), and the kinds of objects the RPC lists and fetches
//! ([`KINDS`], [`kind_prefix`], [`object_key`]).

use dpx_contracts::{self as contracts, keys};
use serde_json::{Value, json};

mod kinds;

pub use kinds::{KINDS, kind_prefix, object_key};

/// A stored record as its contracts type, through its JSON view (the RPC's form): for readers
/// that want typed fields of any kind without the private protobuf codec.
pub fn decode_view<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Option<T> {
    serde_json::from_value(contracts::render(key, value)?).ok()
}

pub fn receipt_json(bytes: &[u8]) -> Value {
    match contracts::Receipt::decode(bytes) {
        Ok(r) => serde_json::to_value(&r).unwrap_or(Value::Null),
        Err(e) => json!({ "undecodable": e.to_string() }),
    }
}

pub fn tx_json(bytes: &[u8]) -> Value {
    let Ok(tx) = contracts::SignedTransaction::decode(bytes) else {
        return json!({ "undecodable": true });
    };
    match contracts::TransactionBody::decode(&tx.body) {
        Ok(body) => json!({ "signer": tx.signer, "body": body, "signature": tx.signature }),
        Err(e) => json!({ "signer": tx.signer, "undecodable_body": e.to_string() }),
    }
}

pub fn tx_signer(bytes: &[u8]) -> Option<String> {
    contracts::SignedTransaction::decode(bytes).ok().map(|t| t.signer.to_hex())
}

pub fn render_state(key: &[u8], value: &[u8]) -> Option<Value> {
    let mut view = contracts::render(key, value)?;
    // An account's value is only its next nonce: name the account, so that a list item says
    // whose it is (the key is in the state key, which list items do not show).
    if let Some(account) = key.strip_prefix(keys::PREFIX_NONCE)
        && account.len() == 32
        && let Some(obj) = view.as_object_mut()
    {
        obj.insert("key".into(), json!(hex::encode(account)));
    }
    Some(view)
}

#[cfg(test)]
mod tests {
    use dpx_crypto::Keypair;

    use super::*;

    #[test]
    fn account_views_name_their_account() {
        let k = Keypair::from_seed([3; 32]).public();
        let view = render_state(&keys::nonce(&k), &5u64.to_be_bytes()).unwrap();
        assert_eq!(view, json!({ "next_nonce": 5, "key": k.to_hex() }));
        // Other kinds are untouched.
        let p = render_state(keys::PREFIX_APPROVAL, b"").unwrap();
        assert_eq!(p, json!({ "approved": true }));
    }
}
