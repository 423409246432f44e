//! Signed requests under attack: every check of the scheme is tried and must refuse.

use axum::http::{HeaderMap, HeaderName, Uri};
use dpx_crypto::Keypair;

use super::*;

const CHAIN: &str = "dpx-auth";
const NOW: u64 = 1_764_489_600;
const SKEW: u64 = 60;
const NONCE: &str = "Zk3mX1q9b2c4d5e6";

fn key() -> Keypair {
    Keypair::from_seed([42; 32])
}

struct Req {
    method: &'static str,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(HeaderName::from_static(n), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn signed(method: &'static str, uri: &str, body: &[u8]) -> Req {
    let h = sign_request(&key(), CHAIN, method, uri, body, NOW, NONCE);
    Req { method, uri: uri.to_owned(), headers: headers(&h), body: body.to_vec() }
}

fn check(r: &Req) -> Result<SignatureParams, AuthError> {
    check_at(r, NOW)
}

fn check_at(r: &Req, now: u64) -> Result<SignatureParams, AuthError> {
    let uri: Uri = r.uri.parse().unwrap();
    verify_request(r.method, &uri, &r.headers, &r.body, CHAIN, now, SKEW)
}

fn refused(r: &Req, want: &str) {
    match check(r) {
        Err(AuthError::Unauthenticated(m)) => assert!(m.contains(want), "{want:?} not in {m:?}"),
        other => panic!("expected a refusal mentioning {want:?}, got {other:?}"),
    }
}

fn set(r: &mut Req, name: &'static str, value: &str) {
    r.headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
}

fn input(r: &Req) -> String {
    r.headers["signature-input"].to_str().unwrap().to_owned()
}

#[test]
fn a_signed_request_verifies_and_names_its_key() {
    let r = signed("GET", "/v1/state/grants?limit=5&after=00", b"");
    let p = check(&r).unwrap();
    assert_eq!(p.keyid, key().public());
    assert_eq!(p.nonce, NONCE);
    assert_eq!(p.created, NOW);
    let r = signed("POST", "/v1/txs?wait=commit", br#"{"tx":"00"}"#);
    assert_eq!(check(&r).unwrap().components.len(), 4);
    // Within the skew on both sides.
    assert!(check_at(&r, NOW + SKEW).is_ok());
    assert!(check_at(&r, NOW - SKEW).is_ok());
}

#[test]
fn the_signature_base_is_as_specified() {
    let base = signature_base("get", "/v1/x", None, None, "(\"@method\")");
    assert_eq!(
        base,
        "\"@method\": GET\n\"@path\": /v1/x\n\"@query\": ?\n\"@signature-params\": (\"@method\")"
    );
    let base = signature_base("POST", "/a%20b", Some("q=1&r"), Some("sha-256=:x:"), "P");
    assert!(base.ends_with(
        "\"@query\": ?q=1&r\n\"content-digest\": sha-256=:x:\n\"@signature-params\": P"
    ));
    assert_eq!(content_digest(b""), "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
}

#[test]
fn tampered_requests_are_refused() {
    // Another path, method, query order or query value under the same signature.
    let base = signed("GET", "/v1/state/grants?limit=5&after=00", b"");
    for uri in [
        "/v1/state/orders?limit=5&after=00",
        "/v1/state/grants?after=00&limit=5",
        "/v1/state/grants?limit=6&after=00",
        "/v1/state/grants",
        "/v1/state/grants?",
        "/v1/state/%67rants?limit=5&after=00",
    ] {
        let r =
            Req { uri: uri.to_owned(), ..signed("GET", "/v1/state/grants?limit=5&after=00", b"") };
        refused(&r, "does not verify");
    }
    let r = Req { method: "POST", ..signed("GET", &base.uri, b"") };
    refused(&r, "does not verify");
    // The body swapped under a valid signature (and its digest recomputed).
    let mut r = signed("POST", "/v1/txs", br#"{"tx":"00"}"#);
    r.body = br#"{"tx":"01"}"#.to_vec();
    refused(&r, "Content-Digest does not match");
    let digest = content_digest(&r.body);
    set(&mut r, "content-digest", &digest);
    refused(&r, "does not verify");
    // A body added to a request signed without one.
    let mut r = signed("POST", "/v1/txs", b"");
    r.body = b"{}".to_vec();
    refused(&r, "must cover \"content-digest\"");
    // Another chain.
    let h = sign_request(&key(), "other-chain", "GET", "/v1/status", b"", NOW, NONCE);
    refused(
        &Req { method: "GET", uri: "/v1/status".into(), headers: headers(&h), body: vec![] },
        "does not verify",
    );
    // Another key's signature under this keyid.
    let mut r = signed("GET", "/v1/status", b"");
    let other =
        sign_request(&Keypair::from_seed([1; 32]), CHAIN, "GET", "/v1/status", b"", NOW, NONCE);
    set(&mut r, "signature", &other[1].1);
    refused(&r, "does not verify");
}

#[test]
fn time_is_checked() {
    let r = signed("GET", "/v1/status", b"");
    assert!(
        matches!(check_at(&r, NOW + SKEW + 1), Err(AuthError::Unauthenticated(m)) if m.contains("behind"))
    );
    assert!(
        matches!(check_at(&r, NOW - SKEW - 1), Err(AuthError::Unauthenticated(m)) if m.contains("ahead"))
    );
    // `expires` in the past, even within the skew.
    let params = format!(
        "(\"@method\" \"@path\" \"@query\");created={NOW};expires={};nonce=\"{NONCE}\";keyid=\"{}\";alg=\"{ALG}\"",
        NOW + 5,
        key().public().to_hex()
    );
    let base = signature_base("GET", "/v1/status", None, None, &params);
    let sig = key().sign(Domain::RPC_REQUEST, CHAIN, base.as_bytes());
    let h = headers(&[
        ("signature-input", format!("dpx={params}")),
        ("signature", format!("dpx=:{}:", STANDARD.encode(sig.to_bytes()))),
    ]);
    let r = Req { method: "GET", uri: "/v1/status".into(), headers: h, body: vec![] };
    assert!(check_at(&r, NOW + 5).is_ok());
    assert!(
        matches!(check_at(&r, NOW + 6), Err(AuthError::Unauthenticated(m)) if m.contains("expired"))
    );
    // Huge numbers neither overflow nor pass.
    let mut r = signed("GET", "/v1/status", b"");
    let huge = input(&r).replace(&format!("created={NOW}"), "created=999999999999999");
    set(&mut r, "signature-input", &huge);
    refused(&r, "ahead");
    let too_long = input(&r).replace("created=999999999999999", "created=9999999999999999999");
    set(&mut r, "signature-input", &too_long);
    refused(&r, "1 to 15 digits");
}

#[test]
fn malformed_headers_are_refused_with_the_check_named() {
    let good = signed("GET", "/v1/status", b"");
    let inp = input(&good);
    let cases: Vec<(String, &str)> = vec![
        (inp.replacen("dpx=", "sig1=", 1), "label must be \"dpx\""),
        (inp.replacen("dpx=", " dpx =", 1), "label"),
        (inp.replace("alg=\"dpx-ed25519-blake3\"", "alg=\"ed25519\""), "alg must be"),
        (inp.replace(";alg=\"dpx-ed25519-blake3\"", ""), "alg is missing"),
        (inp.replace(&format!(";created={NOW}"), ""), "created is missing"),
        (inp.replace(&format!(";nonce=\"{NONCE}\""), ""), "nonce is missing"),
        (inp.replace(";keyid=", ";kid="), "unknown parameter"),
        (format!("{inp};nonce=\"{NONCE}\""), "appears twice"),
        (format!("{inp};created={NOW}"), "appears twice"),
        (format!("{inp};tag=\"x\""), "unknown parameter"),
        (format!("{inp};created"), "has no value"),
        (format!("{inp}, other=(\"@method\");created=1"), "only one signature"),
        (format!("{inp} trailing"), "unexpected text"),
        (inp.replace("(\"@method\" \"@path\" \"@query\")", "(\"@method\" \"@path\")"), "exactly"),
        (
            inp.replace("(\"@method\" \"@path\" \"@query\")", "(\"@path\" \"@method\" \"@query\")"),
            "exactly",
        ),
        (
            inp.replace(
                "(\"@method\" \"@path\" \"@query\")",
                "(\"@method\" \"@path\" \"@query\" \"@authority\")",
            ),
            "exactly",
        ),
        (
            inp.replace("(\"@method\" \"@path\" \"@query\")", "(\"@method\"\"@path\" \"@query\")"),
            "separated",
        ),
        (inp.replace("(\"@method\" \"@path\" \"@query\")", "\"@method\""), "inner list"),
        (
            inp.replace("(\"@method\" \"@path\" \"@query\")", "(\"@method\" \"@path\" \"@query\""),
            "unterminated",
        ),
        (inp.replace(NONCE, "short"), "nonce must be"),
        (inp.replace(NONCE, "bad nonce with spaces!!"), "nonce must be"),
        (inp.replace(NONCE, &"a".repeat(65)), "nonce must be"),
        (
            inp.replace(&key().public().to_hex(), &key().public().to_hex().to_uppercase()),
            "lowercase hex",
        ),
        (inp.replace(&key().public().to_hex(), &"ab".repeat(31)), "64 lowercase hex"),
        // Not a point on the curve / not canonical: the strict key rules.
        (inp.replace(&key().public().to_hex(), &"ff".repeat(32)), "not a valid key"),
        (
            inp.replace(
                &key().public().to_hex(),
                &hex::encode(dpx_crypto::testing::small_order_point(1)),
            ),
            "not a valid key",
        ),
        (inp.replace(NONCE, "Zk3mX1q9b2c4d5e6\\\""), "not allowed"),
        (format!("{inp}{}", " ".repeat(HEADER_BYTES_MAX)), "longer than"),
    ];
    for (value, want) in cases {
        let mut r = signed("GET", "/v1/status", b"");
        set(&mut r, "signature-input", &value);
        refused(&r, want);
    }
    let sig = good.headers["signature"].to_str().unwrap().to_owned();
    for (value, want) in [
        (sig.replacen("dpx=", "x=", 1), "label"),
        (sig.replace(':', ""), "one signature only"),
        (format!("{sig}, dpx=:AAAA:"), "one signature only"),
        ("dpx=:!!!!:".to_owned(), "base64"),
        ("dpx=:AAAA:".to_owned(), "64 bytes"),
    ] {
        let mut r = signed("GET", "/v1/status", b"");
        set(&mut r, "signature", &value);
        refused(&r, want);
    }
    // One header without the other, and duplicated headers.
    let mut r = signed("GET", "/v1/status", b"");
    r.headers.remove("signature");
    refused(&r, "without Signature");
    let mut r = signed("GET", "/v1/status", b"");
    r.headers.remove("signature-input");
    refused(&r, "without Signature-Input");
    let mut r = signed("GET", "/v1/status", b"");
    r.headers.append("signature-input", HeaderValue::from_str(&inp).unwrap());
    refused(&r, "more than one");
    let mut r = signed("POST", "/v1/txs", b"{}");
    let d = content_digest(b"{}");
    r.headers.append("content-digest", HeaderValue::from_str(&d).unwrap());
    refused(&r, "more than one");
    let mut r = signed("POST", "/v1/txs", b"{}");
    r.headers.remove("content-digest");
    refused(&r, "header is missing");
    let mut r = signed("POST", "/v1/txs", b"{}");
    set(&mut r, "content-digest", &format!("sha-512=:{}:, {d}", STANDARD.encode([0u8; 64])));
    refused(&r, "Content-Digest does not match");
    // Non-ASCII bytes in a header value.
    let mut r = signed("GET", "/v1/status", b"");
    r.headers.insert("signature", HeaderValue::from_bytes(b"dpx=:\xff\xfe:").unwrap());
    refused(&r, "printable ASCII");
}

#[test]
fn nonces_are_used_once_and_the_cache_is_bounded() {
    let cache = ReplayCache::new(2, 2);
    let (a, b) = (Keypair::from_seed([1; 32]).public(), Keypair::from_seed([2; 32]).public());
    cache.check_and_insert(&a, NONCE, NOW + 60, NOW).unwrap();
    let again = cache.check_and_insert(&a, NONCE, NOW + 60, NOW + 30);
    assert!(matches!(again, Err(AuthError::Unauthenticated(m)) if m.contains("replayed")));
    // The same nonce under another key is another request.
    cache.check_and_insert(&b, NONCE, NOW + 70, NOW).unwrap();
    // Full: refused with the time until the first entry expires, nothing forgotten early.
    let full = cache.check_and_insert(&a, "another-nonce-123", NOW + 60, NOW + 10);
    assert_eq!(full, Err(AuthError::ReplayCacheFull { retry_after_s: 51 }));
    assert_eq!(cache.len(), 2);
    assert!(cache.check_and_insert(&a, NONCE, NOW + 60, NOW + 60).is_err(), "still remembered");
    // Once expired, entries make room (and the request they belong to is past its window).
    cache.check_and_insert(&a, "another-nonce-123", NOW + 121, NOW + 61).unwrap();
    assert_eq!(cache.len(), 2);
}

#[test]
fn the_client_signs_what_the_server_checks() {
    // Paths with percent-encoding and queries are signed as they go on the wire.
    for uri in ["/v1/state/grants/%41?prove=true", "/v1/events?kinds=grant.consumed,block", "/"] {
        assert!(check(&signed("GET", uri, b"")).is_ok(), "{uri}");
    }
    let fresh = fresh_nonce();
    assert_eq!(fresh.len(), 22);
    assert_ne!(fresh, fresh_nonce());
    assert!(parse_signature_input(&input(&signed("GET", "/", b""))).is_ok());
}

#[test]
fn one_key_cannot_take_the_whole_cache() {
    let cache = ReplayCache::new(10, 3);
    let (a, b) = (Keypair::from_seed([1; 32]).public(), Keypair::from_seed([2; 32]).public());
    let nonce = |i: u32| format!("nonce-of-sixteen-{i:05}");
    for i in 0..3 {
        cache.check_and_insert(&a, &nonce(i), NOW + 60 + u64::from(i), NOW).unwrap();
    }
    // The fourth of `a` is refused for `a` alone, with the time until its first nonce expires.
    let quota = cache.check_and_insert(&a, &nonce(3), NOW + 60, NOW + 20);
    assert_eq!(quota, Err(AuthError::KeyQuotaFull { max: 3, retry_after_s: 41 }));
    assert_eq!(cache.len_of(&a), 3);
    // Everyone else still gets in.
    for i in 0..3 {
        cache.check_and_insert(&b, &nonce(i), NOW + 60, NOW + 20).unwrap();
    }
    // A replay is still a replay, whatever the quota.
    let again = cache.check_and_insert(&a, &nonce(0), NOW + 60, NOW + 20);
    assert!(matches!(again, Err(AuthError::Unauthenticated(m)) if m.contains("replayed")));
    // When `a`'s first nonce expires, `a` has room for one more.
    // (`b`'s three expired at the same second.)
    cache.check_and_insert(&a, &nonce(3), NOW + 122, NOW + 61).unwrap();
    assert_eq!((cache.len_of(&a), cache.len_of(&b), cache.len()), (3, 0, 3));
    // Past every expiry the per-key records go too.
    cache.check_and_insert(&b, &nonce(9), NOW + 400, NOW + 300).unwrap();
    assert_eq!((cache.len_of(&a), cache.len_of(&b), cache.len()), (0, 1, 1));
}

#[test]
fn the_per_key_limit_is_clamped_to_the_capacity() {
    let cache = ReplayCache::new(2, 0);
    let a = Keypair::from_seed([1; 32]).public();
    cache.check_and_insert(&a, NONCE, NOW + 60, NOW).unwrap();
    let second = cache.check_and_insert(&a, "another-nonce-123", NOW + 60, NOW);
    assert!(matches!(second, Err(AuthError::KeyQuotaFull { max: 1, .. })), "{second:?}");
    let big = ReplayCache::new(2, usize::MAX);
    big.check_and_insert(&a, NONCE, NOW + 60, NOW).unwrap();
    big.check_and_insert(&a, "another-nonce-123", NOW + 60, NOW).unwrap();
    let full = big.check_and_insert(&a, "a-third-nonce-1234", NOW + 60, NOW);
    assert!(matches!(full, Err(AuthError::KeyQuotaFull { max: 2, .. })), "{full:?}");
}
