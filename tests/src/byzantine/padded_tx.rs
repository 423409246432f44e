//! `padded-tx`: signed transactions carrying unknown protobuf fields (issue 14, item 6).
//!
//! A body with an unknown field appended decodes to the same operation, so anyone with a key
//! can pad a transaction to the size limit (and one operation has many byte forms). Signed
//! structures must decode canonically: the node refuses such a transaction with `malformed_tx`.
//! One padded body is signed by a founding agency with its next nonce, so a node that accepts
//! it commits it (the report names the height); the others come from fresh keys. The same is
//! tried on the envelope (`SignedTransaction`), which is already checked canonically.

use serde_json::{Value, json};

use dpx_contracts::{Operation, Role, SignedTransaction, TransactionBody};
use dpx_crypto::{Domain, Keypair};

use super::{Ctx, Report};

/// Field number used for padding: unknown to every dpx message.
const PAD_FIELD: u64 = 1000;

/// `bytes` followed by a length-delimited unknown field of `len` zero bytes.
pub fn pad(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    varint(&mut out, (PAD_FIELD << 3) | 2);
    varint(&mut out, len as u64);
    out.resize(out.len() + len, 0);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn admit(chain: &str, nonce: u64) -> TransactionBody {
    let op = Operation::Admit {
        key: Keypair::generate().public(),
        name: "padded".into(),
        roles: vec![Role::Consumer],
    };
    TransactionBody::new(chain, nonce, op)
}

/// A transaction whose signed body is padded by `len` bytes.
fn body_padded(key: &Keypair, chain: &str, nonce: u64, len: usize) -> String {
    let body = pad(&admit(chain, nonce).encode(), len);
    let signature = key.sign(Domain::TRANSACTION, chain, &body);
    hex::encode(SignedTransaction { body, signer: key.public(), signature }.encode())
}

/// "refused" when the node answered `malformed_tx`, else what it did.
fn outcome(status: u16, v: &Value) -> String {
    match status {
        400 if v["error"]["code"] == "malformed_tx" => "refused".into(),
        200 if v["status"] == "committed" => format!("COMMITTED at height {}", v["height"]),
        _ => format!(
            "accepted ({status} {})",
            v["status"].as_str().unwrap_or_else(|| { v["error"]["code"].as_str().unwrap_or("?") })
        ),
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let chain = ctx.net.chain_id.clone();
    let start = ctx.window_start(&[0, 1, 2, 3]).await;
    // Founding agency 2 is not used by the background load.
    let agency = ctx.net.agency(2)?;
    let (s, v) = ctx.net.get(0, &format!("/v1/state/accounts/{}", agency.public())).await?;
    let nonce = if s == 200 { v["value"]["next_nonce"].as_u64().unwrap_or(0) } else { 0 };
    let pad_len = 60 * 1024;
    let mut refused = 0;
    let mut tries = Vec::new();
    let signed = body_padded(&agency, &chain, nonce, pad_len);
    let (s, v) =
        ctx.net.post(0, "/v1/txs?wait=commit&timeout_ms=5000", &json!({ "tx": signed })).await?;
    tries.push(("agency tx, body padded by 60 KiB, alone", outcome(s, &v)));
    for (i, len) in [1usize, 64, pad_len].into_iter().enumerate() {
        let tx = body_padded(&Keypair::generate(), &chain, 0, len);
        let (s, v) = ctx.net.post(1 + i % 3, "/v1/txs", &json!({ "tx": tx })).await?;
        tries.push(("fresh key, body padded, alone", outcome(s, &v)));
        let honest = honest_unpadded(&chain);
        let (s, v) =
            ctx.net.post(1 + i % 3, "/v1/txs/batch", &json!({ "txs": [honest, tx] })).await?;
        let item = &v["results"][1];
        let o = if s == 200 && item["error"]["code"] == "malformed_tx" {
            "refused".to_owned()
        } else {
            format!("accepted ({s} {item})")
        };
        tries.push(("fresh key, body padded, in a batch", o));
    }
    // The envelope: padding after the signature.
    let key = Keypair::generate();
    let env = pad(&admit(&chain, 0).sign(&key).encode(), 1024);
    let (s, v) = ctx.net.post(2, "/v1/txs", &json!({ "tx": hex::encode(env) })).await?;
    tries.push(("fresh key, envelope padded, alone", outcome(s, &v)));
    for (what, o) in &tries {
        if o == "refused" {
            refused += 1;
        } else {
            rep.problems.push(format!("{what}: {o}"));
        }
    }
    rep.refused.push(format!("{refused}/{} refused", tries.len()));
    rep.window = Some(ctx.window_end(start).await);
    Ok(rep)
}

/// An ordinary, unpadded transaction from a fresh key (the batch's honest companion).
fn honest_unpadded(chain: &str) -> String {
    hex::encode(admit(chain, 0).sign(&Keypair::generate()).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_body_still_decodes_to_the_same_operation_today() {
        // What makes padding possible: protobuf skips unknown fields. (When the body decode
        // becomes canonical this decode fails, and the scenario's expectation holds.)
        let body = admit("c", 3);
        let padded = pad(&body.encode(), 100);
        assert_eq!(padded.len(), body.encode().len() + 100 + 3);
        if let Ok(back) = TransactionBody::decode(&padded) {
            assert_eq!(back, body);
        }
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut v = Vec::new();
        varint(&mut v, (PAD_FIELD << 3) | 2);
        assert_eq!(v, [0xc2, 0x3e]);
    }
}
