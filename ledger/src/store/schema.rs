//! Column families and the byte layout of their keys and values.
//!
//! Heights and versions are big-endian so RocksDB's byte order is numeric order.

use dpx_crypto::Hash;
use jmt::KeyHash;
use jmt::storage::{NibblePath, Node, NodeKey};

use crate::LedgerError;

/// On-disk format version written by this code. A store with a higher number is refused; one
/// with a lower number is upgraded by the first batch written (every earlier layout is still
/// read; opening alone, as an audit replay from a stopped node does, changes nothing).
///
/// - 1: the first.
/// - 2: stale records batched per version ([`STALE_BATCH`]); an older binary would fail to
///   prune them, so it must refuse the store.
pub const FORMAT_VERSION: u32 = 2;

/// meta: chain id, format version, tip, oldest retained version, genesis flag.
pub const CF_META: &str = "meta";
/// headers: height → encoded header.
pub const CF_HEADERS: &str = "headers";
/// txs: height ‖ index → transaction bytes.
pub const CF_TXS: &str = "txs";
/// block_ids: block id → height.
pub const CF_BLOCK_IDS: &str = "block_ids";
/// certificates: height → commit certificate bytes.
pub const CF_CERTS: &str = "certificates";
/// receipts: height ‖ index → receipt bytes.
pub const CF_RECEIPTS: &str = "receipts";
/// tx_index: tx hash → height ‖ index.
pub const CF_TX_INDEX: &str = "tx_index";
/// roots: height → state root after the block ‖ receipts hash of the block.
pub const CF_ROOTS: &str = "roots";
/// jmt_nodes: borsh(NodeKey) → borsh(Node).
pub const CF_NODES: &str = "jmt_nodes";
/// jmt_values: key hash ‖ version → tag ‖ key length ‖ key ‖ value (tag 0 = deleted).
pub const CF_VALUES: &str = "jmt_values";
/// state: key → value, the latest state only (for listing by prefix).
pub const CF_STATE: &str = "state";
/// stale: stale-since version ‖ kind ‖ what → empty; what pruning may delete and when.
pub const CF_STALE: &str = "stale";

pub const ALL_CFS: [&str; 12] = [
    CF_META,
    CF_HEADERS,
    CF_TXS,
    CF_BLOCK_IDS,
    CF_CERTS,
    CF_RECEIPTS,
    CF_TX_INDEX,
    CF_ROOTS,
    CF_NODES,
    CF_VALUES,
    CF_STATE,
    CF_STALE,
];

pub const META_CHAIN_ID: &[u8] = b"chain_id";
pub const META_FORMAT: &[u8] = b"format_version";
pub const META_TIP: &[u8] = b"tip";
pub const META_OLDEST: &[u8] = b"oldest";
pub const META_GENESIS: &[u8] = b"genesis";
/// Height a snapshot was imported at (its block has no receipts here).
pub const META_BASE: &[u8] = b"snapshot_base";

/// A stale record of one tree node: key `since ‖ STALE_NODE ‖ node key`, empty value. Written
/// by stores before one entry held a whole version's records; still pruned.
pub const STALE_NODE: u8 = 0;
/// A stale record of one value entry: key `since ‖ STALE_VALUE ‖ value key`, empty value.
pub const STALE_VALUE: u8 = 1;
/// Every stale record of one version in one entry: key `since ‖ STALE_BATCH`, value the
/// records one after another, each `kind (STALE_NODE | STALE_VALUE) ‖ u16 BE length ‖ key`
/// ([`push_stale`], [`stale_records`]). One put per block instead of one per replaced node
/// and value: about 29% of a full-mix block's RocksDB puts.
pub const STALE_BATCH: u8 = 2;

pub fn u64_key(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

pub fn read_u64(bytes: &[u8]) -> Result<u64, LedgerError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt(format!("bad u64 of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

/// height ‖ index, for txs, receipts and the tx index.
pub fn pos_key(height: u64, index: u32) -> [u8; 12] {
    let mut k = [0; 12];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn read_pos(bytes: &[u8]) -> Result<(u64, u32), LedgerError> {
    if bytes.len() != 12 {
        return Err(LedgerError::Corrupt(format!("bad position of {} bytes", bytes.len())));
    }
    let h = read_u64(&bytes[..8])?;
    let i = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    Ok((h, i))
}

pub fn roots_value(state_root: &Hash, receipts_hash: &Hash) -> [u8; 64] {
    let mut v = [0; 64];
    v[..32].copy_from_slice(&state_root.0);
    v[32..].copy_from_slice(&receipts_hash.0);
    v
}

/// (state root, receipts hash).
pub fn read_roots(bytes: &[u8]) -> Result<(Hash, Hash), LedgerError> {
    if bytes.len() != 64 {
        return Err(LedgerError::Corrupt(format!("bad roots entry of {} bytes", bytes.len())));
    }
    let mut a = [0; 32];
    let mut b = [0; 32];
    a.copy_from_slice(&bytes[..32]);
    b.copy_from_slice(&bytes[32..]);
    Ok((Hash(a), Hash(b)))
}

pub fn node_key(key: &NodeKey) -> Result<Vec<u8>, LedgerError> {
    borsh::to_vec(key).map_err(|e| LedgerError::Tree(e.to_string()))
}

/// Key of the root node of `version` (the node at the empty nibble path).
pub fn root_node_key(version: u64) -> Result<Vec<u8>, LedgerError> {
    // jmt keeps `NibblePath::new` private; borsh of an empty path is a zero length (u64) and an
    // empty byte vector (u32 length), which its public decoder accepts.
    let empty: NibblePath =
        borsh::from_slice(&[0u8; 12]).map_err(|e| LedgerError::Tree(e.to_string()))?;
    node_key(&NodeKey::new(version, empty))
}

pub fn encode_node(node: &Node) -> Result<Vec<u8>, LedgerError> {
    borsh::to_vec(node).map_err(|e| LedgerError::Tree(e.to_string()))
}

pub fn decode_node(bytes: &[u8]) -> Result<Node, LedgerError> {
    borsh::from_slice(bytes).map_err(|e| LedgerError::Corrupt(format!("tree node: {e}")))
}

pub fn value_key(kh: &KeyHash, version: u64) -> [u8; 40] {
    let mut k = [0; 40];
    k[..32].copy_from_slice(&kh.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

/// (key hash, version) of a jmt_values key.
pub fn read_value_key(bytes: &[u8]) -> Result<(KeyHash, u64), LedgerError> {
    if bytes.len() != 40 {
        return Err(LedgerError::Corrupt(format!("bad value key of {} bytes", bytes.len())));
    }
    let mut kh = [0; 32];
    kh.copy_from_slice(&bytes[..32]);
    Ok((KeyHash(kh), read_u64(&bytes[32..])?))
}

/// Keep the raw key next to the value: snapshots at old heights need the key, which the tree
/// (holding only its hash) cannot give back.
pub fn encode_value(key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + key.len() + value.map_or(0, <[u8]>::len));
    out.push(u8::from(value.is_some()));
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    out
}

/// (key, value) of a jmt_values entry.
pub fn decode_value(bytes: &[u8]) -> Result<(&[u8], Option<&[u8]>), LedgerError> {
    let bad = || LedgerError::Corrupt("bad state value entry".into());
    if bytes.len() < 5 {
        return Err(bad());
    }
    let key_len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    let rest = &bytes[5..];
    if rest.len() < key_len {
        return Err(bad());
    }
    let (key, value) = rest.split_at(key_len);
    match bytes[0] {
        0 if value.is_empty() => Ok((key, None)),
        1 => Ok((key, Some(value))),
        _ => Err(bad()),
    }
}

pub fn stale_key(since: u64, kind: u8, what: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + what.len());
    k.extend_from_slice(&since.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(what);
    k
}

/// Append one record to a version's [`STALE_BATCH`] entry.
pub fn push_stale(buf: &mut Vec<u8>, kind: u8, what: &[u8]) -> Result<(), LedgerError> {
    let len = u16::try_from(what.len())
        .map_err(|_| LedgerError::Corrupt(format!("stale key of {} bytes", what.len())))?;
    buf.push(kind);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(what);
    Ok(())
}

/// The records of a [`STALE_BATCH`] entry, in order: `(kind, key)`. A truncated entry or an
/// unknown kind is an error (the store is corrupt), never a panic.
pub fn stale_records(mut bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, LedgerError> {
    let bad = |what: &str| LedgerError::Corrupt(format!("stale batch: {what}"));
    let mut out = Vec::new();
    while let [kind, a, b, rest @ ..] = bytes {
        if ![STALE_NODE, STALE_VALUE].contains(kind) {
            return Err(bad(&format!("kind {kind}")));
        }
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if rest.len() < len {
            return Err(bad("truncated key"));
        }
        out.push((*kind, &rest[..len]));
        bytes = &rest[len..];
    }
    if !bytes.is_empty() {
        return Err(bad("truncated record"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stale_batches_round_trip(
            records in proptest::collection::vec(
                (prop_oneof![Just(STALE_NODE), Just(STALE_VALUE)], proptest::collection::vec(any::<u8>(), 0..80)),
                0..40,
            )
        ) {
            let mut buf = Vec::new();
            for (kind, what) in &records {
                push_stale(&mut buf, *kind, what).unwrap();
            }
            let got = stale_records(&buf).unwrap();
            let want: Vec<(u8, &[u8])> = records.iter().map(|(k, w)| (*k, &w[..])).collect();
            prop_assert_eq!(got, want);
            // Any cut but the record boundaries is refused, never a panic.
            for cut in 0..buf.len() {
                let _ = stale_records(&buf[..cut]);
            }
        }

        #[test]
        fn any_stale_batch_bytes_decode_or_refuse(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(records) = stale_records(&bytes) {
                let mut again = Vec::new();
                for (kind, what) in records {
                    push_stale(&mut again, kind, what).unwrap();
                }
                prop_assert_eq!(again, bytes, "accepted bytes are canonical");
            }
        }
    }

    #[test]
    fn stale_batches_refuse_bad_bytes() {
        assert!(stale_records(&[]).unwrap().is_empty());
        assert!(stale_records(&[STALE_NODE, 0]).is_err(), "a record cut in its length");
        assert!(stale_records(&[STALE_VALUE, 0, 3, 1, 2]).is_err(), "a key cut short");
        assert!(stale_records(&[9, 0, 0]).is_err(), "an unknown kind");
        assert!(push_stale(&mut Vec::new(), STALE_NODE, &vec![0; 70_000]).is_err());
    }

    proptest! {
        #[test]
        fn value_entries_round_trip(key in proptest::collection::vec(any::<u8>(), 0..64),
                                    value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))) {
            let bytes = encode_value(&key, value.as_deref());
            let (k, v) = decode_value(&bytes).unwrap();
            prop_assert_eq!(k, &key[..]);
            prop_assert_eq!(v, value.as_deref());
        }

        #[test]
        fn root_node_key_is_the_empty_path(v in any::<u64>()) {
            let key: NodeKey = borsh::from_slice(&root_node_key(v).unwrap()).unwrap();
            prop_assert_eq!(key.version(), v);
            prop_assert_eq!(key.nibble_path().num_nibbles(), 0);
        }

        #[test]
        fn keys_round_trip(h in any::<u64>(), i in any::<u32>(), kh in any::<[u8; 32]>()) {
            prop_assert_eq!(read_pos(&pos_key(h, i)).unwrap(), (h, i));
            prop_assert_eq!(read_value_key(&value_key(&KeyHash(kh), h)).unwrap(), (KeyHash(kh), h));
            prop_assert_eq!(read_u64(&u64_key(h)).unwrap(), h);
        }
    }
}
