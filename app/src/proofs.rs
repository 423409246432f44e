//! Proof bundles: a state value (or its absence) with everything needed to check it offline
//! against the genesis file — the Merkle proof, the header that commits to the state root, its
//! certificate and the validators that signed it; and a committed transaction with its
//! inclusion proof against the header's `tx_root` and its receipt's against the next header's
//! `prev_receipts_hash` ([`TxProofBundle`], SPEC.md §11.2).

use dpx_consensus::{Certificate, Validator, ValidatorSet};
use dpx_crypto::Hash;
use dpx_genesis::Genesis;
use dpx_ledger::{MerkleProof, StateProof, Store, merkle};
use serde::{Deserialize, Serialize};

use crate::execute::validator_set;

/// A value with everything needed to check it offline: the Merkle proof against the state root
/// in the header of block `version + 1`, and that block's commit certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofBundle {
    pub chain_id: String,
    /// Hex of the state key.
    pub key: String,
    /// Hex of the stored value; absent for a proof of absence.
    pub value: Option<String>,
    /// The state version (block height) the value is proved at.
    pub version: u64,
    pub proof: StateProof,
    /// The block `version + 1`, whose header commits to the state root after `version`.
    pub header: dpx_ledger::Header,
    /// Hex of that block's commit certificate.
    pub certificate: String,
    /// The validators that signed the certificate.
    pub validators: Vec<Validator>,
    /// Every change of the validator set from genesis up to `version + 1`, each certified by
    /// the set it replaces (SPEC.md §11.3). Empty while the genesis set is in force.
    #[serde(default)]
    pub validator_history: Vec<SetHandoff>,
    /// Why `validator_history` is empty although the set changed: this node cannot prove a
    /// change (pruned versions, a ledger begun from a snapshot, a change made with a delay of
    /// 1 before §11.3). Such a bundle verifies only against a set known by other means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_history_error: Option<String>,
}

/// [`validator_history`], or why it cannot be built (the bundle is still served, with the
/// reason, rather than refused: see `validator_history_error`).
fn history_or_reason(store: &Store, height: u64) -> (Vec<SetHandoff>, Option<String>) {
    match validator_history(store, height) {
        Ok(h) => (h, None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// One change of the validator set, certified by the set it replaces (SPEC.md §11.3): the
/// header of block `effective_height - 1` (the last the outgoing set validates, which is why
/// changes take effect at least two blocks after governance decides them), its certificate,
/// and the proof that the state under its root (after block `effective_height - 2`) holds the
/// new set at `valupdate/‖u64be(effective_height)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetHandoff {
    pub effective_height: u64,
    pub header: dpx_ledger::Header,
    /// Hex of the header's commit certificate.
    pub certificate: String,
    /// Hex of the stored new set (the state value at the key above).
    pub value: String,
    pub proof: StateProof,
}

/// Most validator-set changes a bundle carries (a longer history is refused when proving and
/// when verifying: each handoff is a header, a certificate and a state proof).
pub const MAX_HANDOFFS: usize = 4096;

/// The handoffs of every validator-set change that takes effect at or before `height`.
pub fn validator_history(store: &Store, height: u64) -> Result<Vec<SetHandoff>, String> {
    let prefix = dpx_contracts::keys::PREFIX_VALIDATOR_UPDATE;
    let scheduled = store.scan_prefix(prefix, None, MAX_HANDOFFS + 1).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (key, _) in scheduled {
        let Some(eff) = key[prefix.len()..].try_into().ok().map(u64::from_be_bytes) else {
            return Err(format!("a validator update key of {} bytes", key.len()));
        };
        if eff < 3 || eff > height {
            // Scheduled for later (or, below 3, impossible under a delay of at least 2).
            continue;
        }
        if out.len() == MAX_HANDOFFS {
            return Err(format!("more than {MAX_HANDOFFS} validator-set changes"));
        }
        let header = store
            .header(eff - 1)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("header {} missing (the ledger began later?)", eff - 1))?;
        let cert = store
            .certificate(eff - 1)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("certificate {} missing", eff - 1))?;
        let (value, proof) = store.get_with_proof(&key, eff - 2).map_err(|e| {
            format!("proving the validator set of height {eff} at version {}: {e}", eff - 2)
        })?;
        let value =
            value.ok_or_else(|| format!("the set of height {eff} is not in state {}", eff - 2))?;
        out.push(SetHandoff {
            effective_height: eff,
            header,
            certificate: hex::encode(cert),
            value: hex::encode(value),
            proof,
        });
    }
    Ok(out)
}

/// Walk `history` from the genesis set: each handoff must be certified by the set in force
/// before it and prove the next set; returns the set that validates `height` (SPEC.md §11.3).
pub fn verify_history(
    genesis: &Genesis,
    history: &[SetHandoff],
    height: u64,
) -> Result<ValidatorSet, String> {
    let chain_id = &genesis.chain_id;
    if history.len() > MAX_HANDOFFS {
        return Err(format!("more than {MAX_HANDOFFS} validator-set changes"));
    }
    let mut set = genesis.validator_set().map_err(|e| e.to_string())?;
    let mut last = 1;
    for h in history {
        let eff = h.effective_height;
        let at = |what: &str| format!("validator-set change at height {eff}: {what}");
        if eff <= last || eff > height {
            return Err(at(&format!(
                "out of order (after {last}) or after the proved height {height}"
            )));
        }
        if h.header.height != eff - 1 || h.header.chain_id != *chain_id {
            return Err(at("the header is not the block before it on this chain"));
        }
        if h.header.validator_set_hash != set.hash(chain_id) {
            return Err(at("the header names another validator set than the one in force"));
        }
        let cert_bytes =
            hex::decode(&h.certificate).map_err(|e| at(&format!("certificate hex: {e}")))?;
        let cert =
            Certificate::decode(&cert_bytes).map_err(|e| at(&format!("certificate: {e}")))?;
        crate::validate::check_certificate(chain_id, &cert, h.header.height, &h.header.id(), &set)
            .map_err(|e| at(&format!("not certified by the set in force: {e}")))?;
        let key = dpx_contracts::keys::validator_update(eff);
        let value = hex::decode(&h.value).map_err(|e| at(&format!("value hex: {e}")))?;
        dpx_ledger::verify_state_proof(h.header.state_root, &key, Some(&value), &h.proof)
            .map_err(|e| at(&format!("the state proof does not hold: {e}")))?;
        let mut st = dpx_contracts::MemState::new();
        dpx_contracts::State::put(&mut st, key, value);
        let next = dpx_contracts::validator_updates(&st, eff)
            .ok_or_else(|| at("the value is not a validator set"))?;
        set = ValidatorSet::new(
            next.into_iter().map(|(key, power)| Validator { key, power }).collect(),
        )
        .map_err(|e| at(&format!("the new set: {e}")))?;
        last = eff;
    }
    Ok(set)
}

impl ProofBundle {
    pub fn value_bytes(&self) -> Option<Vec<u8>> {
        self.value.as_ref().and_then(|v| hex::decode(v).ok())
    }
}

/// Prove `key` at `version` (default: the latest version a committed header certifies).
pub fn prove(
    store: &Store,
    chain_id: &str,
    key: &[u8],
    version: Option<u64>,
) -> Result<ProofBundle, String> {
    let tip = store.tip_height();
    if tip == 0 {
        return Err("no block committed yet: nothing certifies a state root".into());
    }
    let version = version.unwrap_or(tip - 1);
    if version >= tip {
        return Err(format!(
            "version {version} is not certified yet (latest certified: {})",
            tip - 1
        ));
    }
    let (value, proof) = store.get_with_proof(key, version).map_err(|e| e.to_string())?;
    let header = store.header(version + 1).map_err(|e| e.to_string())?.ok_or("header missing")?;
    let cert =
        store.certificate(version + 1).map_err(|e| e.to_string())?.ok_or("certificate missing")?;
    let validators = validator_set(store, version + 1).map_err(|e| e.to_string())?;
    let (validator_history, validator_history_error) = history_or_reason(store, version + 1);
    Ok(ProofBundle {
        chain_id: chain_id.to_owned(),
        key: hex::encode(key),
        value: value.map(hex::encode),
        version,
        proof,
        header,
        certificate: hex::encode(cert),
        validators: validators.validators().to_vec(),
        validator_history,
        validator_history_error,
    })
}

/// A header with its commit certificate and the validators that signed it: the part of every
/// bundle that ties it to the chain (checked by [`verify_certified`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertifiedHeader {
    pub header: dpx_ledger::Header,
    /// Hex of the block's commit certificate.
    pub certificate: String,
    /// The validators that signed the certificate.
    pub validators: Vec<Validator>,
}

/// A committed transaction's inclusion in its block (`tx_root`) and, once the next block is
/// committed, its receipt's inclusion in the receipts tree that block's `prev_receipts_hash`
/// names. SPEC.md §11.2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxProofBundle {
    pub chain_id: String,
    /// blake3 of the transaction bytes (`Hash::digest`), hex.
    pub tx_hash: Hash,
    pub height: u64,
    pub index: u32,
    /// Hex of the signed transaction bytes.
    pub tx: String,
    /// Inclusion of `tx` under `block.header.tx_root`.
    pub tx_proof: MerkleProof,
    /// The block at `height`.
    pub block: CertifiedHeader,
    /// The receipt and its proof; `None` while block `height + 1` is not committed.
    pub receipt: Option<ReceiptProof>,
    /// Why `receipt` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_pending: Option<String>,
    /// Every change of the validator set from genesis up to the last header in the bundle
    /// (SPEC.md §11.3).
    #[serde(default)]
    pub validator_history: Vec<SetHandoff>,
    /// As [`ProofBundle::validator_history_error`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator_history_error: Option<String>,
}

/// A receipt and its inclusion under `next.header.prev_receipts_hash`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptProof {
    /// Hex of the receipt bytes.
    pub receipt: String,
    pub proof: MerkleProof,
    /// The block at `height + 1`.
    pub next: CertifiedHeader,
}

fn certified(store: &Store, height: u64) -> Result<Option<CertifiedHeader>, String> {
    let Some(header) = store.header(height).map_err(|e| e.to_string())? else { return Ok(None) };
    let cert =
        store.certificate(height).map_err(|e| e.to_string())?.ok_or("certificate missing")?;
    let validators = validator_set(store, height).map_err(|e| e.to_string())?;
    Ok(Some(CertifiedHeader {
        header,
        certificate: hex::encode(cert),
        validators: validators.validators().to_vec(),
    }))
}

/// Prove the committed transaction `tx_hash` (at its first inclusion); `None` if it is not
/// committed.
pub fn prove_tx(
    store: &Store,
    chain_id: &str,
    tx_hash: &Hash,
) -> Result<Option<TxProofBundle>, String> {
    let Some((height, index, tx)) = store.tx(tx_hash).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let block = store.block(height).map_err(|e| e.to_string())?.ok_or("block missing")?;
    let tx_proof = merkle::prove(&block.txs, index as usize).map_err(|e| e.to_string())?;
    let block = certified(store, height)?.ok_or("header missing")?;
    let (receipt, receipt_pending) = match certified(store, height + 1)? {
        Some(next) => {
            let receipts = store.receipts(height).map_err(|e| e.to_string())?;
            let proof =
                merkle::prove_receipt(&receipts, index as usize).map_err(|e| e.to_string())?;
            let receipt = hex::encode(&receipts[index as usize]);
            (Some(ReceiptProof { receipt, proof, next }), None)
        }
        None => (
            None,
            Some(format!(
                "block {} is not committed yet: it is the block whose header commits to the receipts of block {height}",
                height + 1
            )),
        ),
    };
    let (validator_history, validator_history_error) =
        history_or_reason(store, if receipt.is_some() { height + 1 } else { height });
    Ok(Some(TxProofBundle {
        chain_id: chain_id.to_owned(),
        tx_hash: *tx_hash,
        height,
        index,
        tx: hex::encode(tx),
        tx_proof,
        block,
        validator_history,
        validator_history_error,
        receipt,
        receipt_pending,
    }))
}

/// Check that `c` is a header of `chain_id` certified by more than 2/3 of the validator set
/// that validates its height: the genesis set, carried forward through `history` (every change
/// certified by the set it replaces, [`verify_history`]). Returns (signing power, total power).
pub fn verify_certified(
    c: &CertifiedHeader,
    genesis: &Genesis,
    history: &[SetHandoff],
) -> Result<(u64, u64), String> {
    let chain_id = &genesis.chain_id;
    if c.header.chain_id != *chain_id {
        return Err(format!(
            "the header is for chain {:?}, the genesis for {chain_id:?}",
            c.header.chain_id
        ));
    }
    let set = ValidatorSet::new(c.validators.clone())
        .map_err(|e| format!("the bundle's validator set: {e}"))?;
    let in_force = verify_history(genesis, history, c.header.height)?;
    if set.hash(chain_id) != in_force.hash(chain_id) {
        return Err(if history.is_empty() {
            "the bundle's validators are not the genesis set, and it carries no validator-set history".into()
        } else {
            "the bundle's validators are not the set its validator-set history leads to".into()
        });
    }
    if c.header.validator_set_hash != set.hash(chain_id) {
        return Err("the header names another validator set".into());
    }
    let cert_bytes = hex::decode(&c.certificate).map_err(|e| format!("certificate hex: {e}"))?;
    let cert = Certificate::decode(&cert_bytes).map_err(|e| format!("certificate: {e}"))?;
    crate::validate::check_certificate(chain_id, &cert, c.header.height, &c.header.id(), &set)
        .map_err(|e| format!("the header of block {} is not certified: {e}", c.header.height))?;
    let power = cert.signatures.iter().filter_map(|(i, _)| set.get(*i).map(|v| v.power)).sum();
    Ok((power, set.total_power()))
}

/// What a verified transaction bundle showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxVerified {
    /// (signing power, total power) of block `height`'s certificate.
    pub block_power: (u64, u64),
    /// The same for block `height + 1`, when the receipt was proved.
    pub receipt_power: Option<(u64, u64)>,
}

/// Check a transaction bundle against `genesis` (SPEC.md §11.2, in that order).
pub fn verify_tx(b: &TxProofBundle, genesis: &Genesis) -> Result<TxVerified, String> {
    if b.chain_id != genesis.chain_id {
        return Err(format!(
            "the bundle is for chain {:?}, the genesis for {:?}",
            b.chain_id, genesis.chain_id
        ));
    }
    let tx = hex::decode(&b.tx).map_err(|e| format!("tx hex: {e}"))?;
    if Hash::digest(&tx) != b.tx_hash {
        return Err("the transaction bytes do not hash to tx_hash".into());
    }
    if b.block.header.height != b.height {
        return Err(format!("the header is of block {}, not {}", b.block.header.height, b.height));
    }
    if b.tx_proof.index != u64::from(b.index) {
        return Err("the tx proof is for another index".into());
    }
    // The history runs to the last header carried: the block's own check walks the changes up
    // to its height (one taking effect at height + 1 is for the next header), and the next
    // header's, when there is one, walks them all.
    let history = &b.validator_history;
    let upto_block = if b.receipt.is_some() {
        &history[..history.partition_point(|h| h.effective_height <= b.height)]
    } else {
        &history[..]
    };
    let why = |e: String| match &b.validator_history_error {
        Some(h) => format!("{e} (the node could not build the validator-set history: {h})"),
        None => e,
    };
    let block_power = verify_certified(&b.block, genesis, upto_block).map_err(why)?;
    if !b.tx_proof.verify(&b.block.header.tx_root, &tx) {
        return Err("the transaction's Merkle proof does not lead to the header's tx_root".into());
    }
    let Some(r) = &b.receipt else {
        return Ok(TxVerified { block_power, receipt_power: None });
    };
    if r.next.header.height != b.height + 1 {
        return Err(format!(
            "the receipt's header is of block {}, not {}",
            r.next.header.height,
            b.height + 1
        ));
    }
    if r.next.header.parent_id != b.block.header.id() {
        return Err("the next header's parent_id is not the transaction's block".into());
    }
    if r.proof.index != u64::from(b.index) || r.proof.leaf_count != b.tx_proof.leaf_count {
        return Err("the receipt proof is for another index or block size".into());
    }
    let receipt_power = verify_certified(&r.next, genesis, &b.validator_history).map_err(why)?;
    let receipt = hex::decode(&r.receipt).map_err(|e| format!("receipt hex: {e}"))?;
    if !r.proof.verify_receipt(&r.next.header.prev_receipts_hash, &receipt) {
        return Err(
            "the receipt's Merkle proof does not lead to the next header's prev_receipts_hash"
                .into(),
        );
    }
    Ok(TxVerified { block_power, receipt_power: Some(receipt_power) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::ChainBuilder;
    use dpx_crypto::Keypair;

    /// A consensus-only chain (payloads are opaque, every one gets an `ok` receipt): block 1
    /// holds three payloads, block 2 one.
    fn chain(dir: &std::path::Path) -> (Genesis, ChainBuilder) {
        let keys: Vec<Keypair> = (0u8..4).map(|i| Keypair::from_seed([0x20 + i; 32])).collect();
        let agency = Keypair::from_seed([1; 32]);
        let mut genesis = Genesis::example(
            "dpx-proofs",
            &[("Agency", agency.public())],
            &keys.iter().map(Keypair::public).collect::<Vec<_>>(),
        );
        genesis.consensus_only = true;
        let mut b = ChainBuilder::new(dir, &genesis, &keys).expect("builder");
        b.push(vec![b"tx-a".to_vec(), b"tx-b".to_vec(), b"tx-c".to_vec()]).expect("block 1");
        b.push(vec![b"tx-d".to_vec()]).expect("block 2");
        (genesis, b)
    }

    /// A tamper case's edit.
    type Edit = Box<dyn Fn(&mut TxProofBundle)>;

    fn flip(hex_str: &mut String, at: usize) {
        let mut v = hex::decode(&*hex_str).expect("hex");
        let i = at.min(v.len() - 1);
        v[i] ^= 1;
        *hex_str = hex::encode(v);
    }

    #[test]
    fn a_transaction_and_its_receipt_prove_and_every_tamper_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (genesis, b) = chain(dir.path());
        let store = b.store();
        let hash = Hash::digest(b"tx-b");
        let bundle = prove_tx(store, "dpx-proofs", &hash).expect("prove").expect("committed");
        assert_eq!((bundle.height, bundle.index), (1, 1));
        assert!(bundle.receipt_pending.is_none());
        let v = verify_tx(&bundle, &genesis).expect("verifies");
        assert_eq!(v.block_power, (40, 40));
        assert_eq!(v.receipt_power, Some((40, 40)));
        // Through JSON, as the RPC and `dpx audit` carry it.
        let json = serde_json::to_string(&bundle).expect("json");
        let back: TxProofBundle = serde_json::from_str(&json).expect("parse");
        verify_tx(&back, &genesis).expect("verifies after JSON");

        let cases: Vec<(&str, Edit, &str)> = vec![
            ("tx byte", Box::new(|b| flip(&mut b.tx, 0)), "do not hash to tx_hash"),
            (
                "tx and its hash",
                Box::new(|b| {
                    flip(&mut b.tx, 0);
                    b.tx_hash = Hash::digest(&hex::decode(&b.tx).expect("hex"));
                }),
                "tx_root",
            ),
            ("tx proof sibling", Box::new(|b| b.tx_proof.siblings[0].0[0] ^= 1), "tx_root"),
            ("tx proof index", Box::new(|b| b.tx_proof.index = 0), "another index"),
            ("header tx_root", Box::new(|b| b.block.header.tx_root.0[0] ^= 1), "not certified"),
            ("header time", Box::new(|b| b.block.header.time_ms += 1), "not certified"),
            (
                "certificate byte",
                Box::new(|b| {
                    let n = b.block.certificate.len() / 2;
                    flip(&mut b.block.certificate, n - 1);
                }),
                "certif",
            ),
            (
                "validator power",
                Box::new(|b| b.block.validators[0].power += 1),
                "not the genesis set",
            ),
            (
                "receipt byte",
                Box::new(|b| flip(&mut b.receipt.as_mut().expect("receipt").receipt, 0)),
                "prev_receipts_hash",
            ),
            (
                "receipt proof sibling",
                Box::new(|b| b.receipt.as_mut().expect("receipt").proof.siblings[0].0[0] ^= 1),
                "prev_receipts_hash",
            ),
            (
                "next header",
                Box::new(|b| {
                    b.receipt.as_mut().expect("receipt").next.header.prev_receipts_hash.0[0] ^= 1;
                }),
                "not certified",
            ),
            (
                "next certificate",
                Box::new(|b| {
                    let c = &mut b.receipt.as_mut().expect("receipt").next.certificate;
                    let n = c.len() / 2;
                    flip(c, n - 1);
                }),
                "certif",
            ),
            ("chain id", Box::new(|b| b.chain_id = "other".into()), "chain"),
            ("height", Box::new(|b| b.height = 2), "not 2"),
        ];
        for (what, edit, reason) in cases {
            let mut t = bundle.clone();
            edit(&mut t);
            let e = verify_tx(&t, &genesis).expect_err(what);
            assert!(e.contains(reason), "{what}: {e}");
        }
    }

    #[test]
    fn the_tip_blocks_receipt_is_pending_and_unknown_hashes_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (genesis, b) = chain(dir.path());
        let store = b.store();
        let bundle =
            prove_tx(store, "dpx-proofs", &Hash::digest(b"tx-d")).expect("prove").expect("some");
        assert_eq!(bundle.height, 2);
        assert!(bundle.receipt.is_none());
        assert!(bundle.receipt_pending.as_deref().is_some_and(|r| r.contains("block 3")));
        let v = verify_tx(&bundle, &genesis).expect("the inclusion still verifies");
        assert_eq!(v.receipt_power, None);
        assert!(prove_tx(store, "dpx-proofs", &Hash::digest(b"nope")).expect("ok").is_none());
    }
}
