//! `crafted-sig`: transactions whose signature's `R` carries a torsion component (issue 14,
//! item 1), submitted through RPC alone and inside a batch.
//!
//! The signature is an honest one with `R' = R + T` for a point `T` of small order, and `s`
//! computed for `R'`: `[s]B = R + [k]A` with `k = H(R' ‖ A ‖ M)`. Strict verification compares
//! `R'` exactly and refuses it; a cofactorless batch equation with weight `z` sees `z·T` left
//! over, so it accepts whenever `z` kills `T` (for the order-2 point: `z` even, half the time).
//! A node must give every transaction the same verdict whether it verified it alone or in a
//! batch; the scenario sends each crafted transaction alone to one node and in a 2-item batch
//! to another and counts disagreements. Signers are fresh keys with no account, so a crafted
//! transaction that passes the signature check is refused by the account check and changes
//! nothing; the verdict is read from the error code (`bad_signature` = refused at the stateless
//! checks, anything else = its signature was accepted).

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha512};

use dpx_contracts::{Operation, Role, SignedTransaction, TransactionBody};
use dpx_crypto::{Domain, Hash, Keypair, Signature};

use super::{Ctx, Report};

/// The point of order 2, `(0, -1)`: encoded `ec ff … ff 7f`.
pub fn order_two_point() -> Option<EdwardsPoint> {
    let mut b = [0xffu8; 32];
    b[0] = 0xec;
    b[31] = 0x7f;
    CompressedEdwardsY(b).decompress()
}

/// An ed25519 signature by `key` over the 32-byte `digest` whose `R` is shifted by `torsion`.
pub fn torsioned_signature(key: &Keypair, digest: &Hash, torsion: &EdwardsPoint) -> Signature {
    // RFC 8032: the expanded key is SHA-512 of the seed; its clamped low half is the secret
    // scalar, its high half the nonce prefix.
    let expanded = Sha512::digest(key.seed());
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&expanded[..32]);
    secret[0] &= 0xf8;
    secret[31] &= 0x7f;
    secret[31] |= 0x40;
    let secret = Scalar::from_bytes_mod_order(secret);
    let public = EdwardsPoint::mul_base(&secret).compress();
    let nonce = wide(&[&expanded[32..], digest.as_bytes()]);
    let big_r = (EdwardsPoint::mul_base(&nonce) + torsion).compress();
    let challenge = wide(&[big_r.as_bytes(), public.as_bytes(), digest.as_bytes()]);
    let big_s = nonce + challenge * secret;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(big_s.as_bytes());
    Signature(sig)
}

fn wide(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&out)
}

/// A transaction from a fresh key: honestly signed, or with `torsion` added to its `R`.
fn tx(chain: &str, torsion: Option<&EdwardsPoint>) -> (String, String) {
    let key = Keypair::generate();
    let op = Operation::Admit {
        key: Keypair::generate().public(),
        name: "crafted".into(),
        roles: vec![Role::Consumer],
    };
    let body = TransactionBody::new(chain, 0, op).encode();
    let signature = match torsion {
        Some(t) => torsioned_signature(&key, &Hash::of(Domain::TRANSACTION, chain, &body), t),
        None => key.sign(Domain::TRANSACTION, chain, &body),
    };
    let tx = SignedTransaction { body, signer: key.public(), signature };
    (hex::encode(tx.encode()), tx.hash().to_string())
}

/// The verdict of one submission on the crafted transaction's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Refused,
    Accepted,
}

fn verdict_single(status: u16, v: &Value) -> Option<Verdict> {
    match status {
        400 if v["error"]["code"] == "bad_signature" => Some(Verdict::Refused),
        200 | 202 | 403 | 409 => Some(Verdict::Accepted),
        _ => None,
    }
}

fn verdict_item(v: &Value) -> Option<Verdict> {
    // Past the signature check, a refusal is a stateful one (nonce, signer, pool limits).
    let stateful = ["nonce_too_low", "nonce_too_high", "nonce_taken", "expired", "unknown_signer"];
    if v["error"]["code"] == "bad_signature" {
        Some(Verdict::Refused)
    } else if v["hash"].is_string()
        || v["error"]["code"].as_str().is_some_and(|c| stateful.contains(&c))
    {
        Some(Verdict::Accepted)
    } else {
        None
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let tries = if ctx.opts.short { 16 } else { 64 };
    let chain = ctx.net.chain_id.clone();
    let torsions: Vec<EdwardsPoint> = EIGHT_TORSION[1..].to_vec();
    let (mut single_refused, mut batch_refused, mut disagree) = (0, 0, 0);
    let start = ctx.window_start(&[0, 1, 2, 3]).await;
    for i in 0..tries {
        let torsion = &torsions[i % torsions.len()];
        let (crafted, hash) = tx(&chain, Some(torsion));
        let (honest, _) = tx(&chain, None);
        let (alone_at, batch_at) = (i % 4, (i + 1) % 4);
        let (s1, v1) = ctx.net.post(alone_at, "/v1/txs", &json!({ "tx": crafted })).await?;
        let single = verdict_single(s1, &v1);
        let (s2, v2) =
            ctx.net.post(batch_at, "/v1/txs/batch", &json!({ "txs": [honest, crafted] })).await?;
        let batch = if s2 == 200 { verdict_item(&v2["results"][1]) } else { None };
        single_refused += usize::from(single == Some(Verdict::Refused));
        batch_refused += usize::from(batch == Some(Verdict::Refused));
        match (single, batch) {
            (Some(alone), Some(batched)) if alone == batched => {}
            (Some(alone), Some(batched)) => {
                disagree += 1;
                if disagree <= 3 {
                    rep.problems.push(format!(
                        "tx {} (R + torsion point {}): node {alone_at} alone says {alone:?}, node {batch_at} in a batch says {batched:?}",
                        &hash[..16],
                        i % torsions.len() + 1,
                    ));
                }
            }
            _ => rep.problems.push(format!(
                "tx {}: unexpected answers: alone {s1} {v1}, batch {s2} {v2}",
                &hash[..16]
            )),
        }
    }
    if disagree > 3 {
        rep.problems
            .push(format!("... {disagree} of {tries} crafted transactions got two verdicts"));
    }
    rep.window = Some(ctx.window_end(start).await);
    rep.refused.push(format!("alone {single_refused}/{tries} batch {batch_refused}/{tries}"));
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_two_point_decodes_and_has_order_two() {
        let t = order_two_point().unwrap();
        assert!(t.is_small_order());
        assert_ne!(t, EdwardsPoint::default());
        assert_eq!(t + t, EdwardsPoint::default());
        assert_eq!(t, EIGHT_TORSION[4]);
    }

    #[test]
    fn a_torsioned_signature_is_mixed_order_and_strictly_refused() {
        let key = Keypair::from_seed([7; 32]);
        let d = Hash::of(Domain::TRANSACTION, "c", b"m");
        for t in &EIGHT_TORSION[1..] {
            let sig = torsioned_signature(&key, &d, t);
            let mut r = [0u8; 32];
            r.copy_from_slice(&sig.0[..32]);
            let big_r = CompressedEdwardsY(r).decompress().unwrap();
            // Not small order (the batch pre-check passes it) but not torsion-free either.
            assert!(!big_r.is_small_order());
            assert!(!big_r.is_torsion_free());
            assert!(key.public().verify_digest(&d, &sig).is_err());
        }
        // With no torsion the construction is an ordinary valid signature.
        let sig = torsioned_signature(&key, &d, &EdwardsPoint::default());
        assert!(key.public().verify_digest(&d, &sig).is_ok());
    }
}
