//! SPEC.md "Signed RPC requests": a request signed by a key, from the key to the headers, with
//! every intermediate value (signature base, digest) so a client in another language can check
//! each step.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dpx_crypto::{Domain, Hash, Keypair};
use dpx_node::rpc::auth;
use serde_json::{Value, json};

use crate::reference;
use crate::{CHAIN, hx};

fn case(name: &str, method: &str, target: &str, body: &[u8], created: u64, nonce: &str) -> Value {
    let key = Keypair::from_seed([0x21; 32]);
    let headers = auth::sign_request(&key, CHAIN, method, target, body, created, nonce);
    let input = &headers[0].1;
    let params = input.strip_prefix("dpx=").expect("label");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let digest_header = (!body.is_empty()).then(|| auth::content_digest(body));
    let base = auth::signature_base(method, path, query, digest_header.as_deref(), params);
    let digest = Hash::of(Domain::RPC_REQUEST, CHAIN, base.as_bytes());
    assert_eq!(digest, reference::hash_of("dpx/rpc-request/v1", CHAIN, &[base.as_bytes()]));
    let sig = key.sign(Domain::RPC_REQUEST, CHAIN, base.as_bytes());
    assert_eq!(headers[1].1, format!("dpx=:{}:", STANDARD.encode(sig.to_bytes())));
    // The node accepts exactly this request.
    let mut map = HeaderMap::new();
    for (n, v) in &headers {
        map.insert(HeaderName::from_static(n), HeaderValue::from_str(v).expect("header"));
    }
    let uri: Uri = target.parse().expect("uri");
    let p = auth::verify_request(method, &uri, &map, body, CHAIN, created, 60).expect("verifies");
    assert_eq!(p.keyid, key.public());
    json!({
        "name": name,
        "secret_seed": hx(key.seed()),
        "public_key": key.public().to_hex(),
        "chain_id": CHAIN,
        "method": method,
        "path": path,
        "query": query,
        "body": String::from_utf8_lossy(body),
        "created": created,
        "nonce": nonce,
        "content_digest": digest_header,
        "signature_params": params,
        "signature_base": base,
        "domain": Domain::RPC_REQUEST.tag(),
        "preimage": hx(reference::preimage("dpx/rpc-request/v1", CHAIN, &[base.as_bytes()])),
        "digest": digest.to_hex(),
        "signature": hx(sig.to_bytes()),
        "headers": headers.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect::<Vec<_>>(),
    })
}

pub fn rpc_request() -> Value {
    json!({
        "description": "Signed RPC requests (SPEC.md, Signed RPC requests): RFC 9421 profile, label dpx, alg dpx-ed25519-blake3; the ed25519 signature covers blake3(u64le(len(domain)) || domain || u64le(len(chain)) || chain || u64le(len(base)) || base). content_digest is sha-256 of the body (RFC 9530), present only with a body.",
        "cases": [
            case("a GET with a query", "GET", "/v1/state/grants?limit=10&after=00ff", b"", 1_764_489_600, "Zk3mX1q9b2c4d5e6"),
            case("a GET without a query", "GET", "/v1/events", b"", 1_764_489_601, "nonce-without-query_1"),
            case("a POST with a JSON body", "POST", "/v1/txs?wait=commit", br#"{"tx":"0a0b"}"#, 1_764_489_602, "AAAAAAAAAAAAAAAAAAAAAA"),
        ],
    })
}
