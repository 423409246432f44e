//! SPEC.md §2 and §3: domain-separated hashing, keys, signatures and the verification rule.

use dpx_crypto::testing::{
    sign_under_torsion_key, sign_with_identity_r, sign_with_torsion_r, small_order_point,
    with_s_plus_order, with_torsion_key,
};
use dpx_crypto::{Domain, Hash, HashWriter, Keypair, PublicKey, Signature};
use serde_json::{Value, json};

use crate::reference;
use crate::{CHAIN, hx};

/// Every domain tag the code defines, and what it covers (SPEC.md §2.2).
pub fn domains() -> Vec<(&'static str, Domain, &'static str)> {
    vec![
        (
            "Domain::TRANSACTION",
            Domain::TRANSACTION,
            "TransactionBody bytes as carried in SignedTransaction.body",
        ),
        ("Domain::GRANT", Domain::GRANT, "the encoded Grant (not SignedGrant)"),
        (
            "Domain::VOTE",
            Domain::VOTE,
            "vote sign bytes (prevotes, precommits, certificate signatures)",
        ),
        ("Domain::PROPOSAL", Domain::PROPOSAL, "proposal sign bytes"),
        ("Domain::HEADER", Domain::HEADER, "the encoded Header: the block id (hashed, not signed)"),
        ("Domain::VALIDATOR_SET", Domain::VALIDATOR_SET, "the validator set hash in headers"),
        (
            "Domain::MERKLE_LEAF",
            Domain::MERKLE_LEAF,
            "leaves of the transaction tree (chain id empty)",
        ),
        (
            "Domain::MERKLE_NODE",
            Domain::MERKLE_NODE,
            "inner nodes of the transaction and receipt trees (chain id empty)",
        ),
        ("Domain::RECEIPTS", Domain::RECEIPTS, "leaves of the receipt tree (chain id empty)"),
        (
            "Domain::CERTIFICATE",
            Domain::CERTIFICATE,
            "defined but not used by the protocol (headers name certificates by plain blake3)",
        ),
        ("Domain::ATTESTATION", Domain::ATTESTATION, "defined but not used by the protocol"),
        (
            "dpx_contracts::types::OBJECT_ID_DOMAIN",
            dpx_contracts::OBJECT_ID_DOMAIN,
            "ids of new products, demands, orders and proposals",
        ),
        (
            "dpx_contracts::ROTATE_KEY_DOMAIN",
            dpx_contracts::ROTATE_KEY_DOMAIN,
            "a new key's proof of possession in rotate_key",
        ),
        (
            "dpx_contracts::SUBJECT_KEY_DOMAIN",
            dpx_contracts::SUBJECT_KEY_DOMAIN,
            "a new subject key's proof of possession in rotate_subject_key (over the subject id)",
        ),
        (
            "dpx_contracts::grants::GRANT_ID_DOMAIN",
            dpx_contracts::grants::GRANT_ID_DOMAIN,
            "grant ids from (subject id, serial) (chain id empty)",
        ),
    ]
}

fn case(name: &str, domain: Domain, chain: &str, parts: &[&[u8]]) -> Value {
    let mut w = HashWriter::new(domain, chain);
    for p in parts {
        w.update(p);
    }
    let digest = w.finish();
    assert_eq!(digest, reference::hash_of(domain.tag(), chain, parts), "{name}");
    if let [single] = parts {
        assert_eq!(digest, Hash::of(domain, chain, single), "{name}");
    }
    json!({
        "name": name,
        "domain": domain.tag(),
        "chain_id": chain,
        "parts": parts.iter().map(hx).collect::<Vec<_>>(),
        "preimage": hx(reference::preimage(domain.tag(), chain, parts)),
        "digest": digest.to_hex(),
    })
}

pub fn hashing() -> Value {
    let domains: Vec<Value> = domains()
        .into_iter()
        .map(|(name, d, covers)| json!({ "rust": name, "tag": d.tag(), "covers": covers }))
        .collect();
    let cases = vec![
        case("empty message", Domain::TRANSACTION, CHAIN, &[b""]),
        case("one part", Domain::VOTE, CHAIN, &[b"hello"]),
        case("empty chain id (tree hashes)", Domain::MERKLE_LEAF, "", &[b"tx-0"]),
        case("two parts differ from their concatenation", Domain::MERKLE_NODE, "", &[b"ab", b"c"]),
        case("the concatenation", Domain::MERKLE_NODE, "", &[b"abc"]),
    ];
    let plain: Vec<Value> = [&b""[..], b"hello", b"dpx"]
        .iter()
        .map(|m| json!({ "message": hx(m), "blake3": Hash::digest(m).to_hex() }))
        .collect();
    json!({
        "description": "SPEC.md §2. H(domain, chain_id, parts…) = blake3(preimage), where the preimage is u64le(len)‖bytes for the domain tag, the chain id and each part, in that order. Hash::of is the one-part case. `plain` is unprefixed blake3 (transaction hashes, certificate hashes in headers, state-tree key and value hashes).",
        "domains": domains,
        "cases": cases,
        "plain": plain,
    })
}

fn seeds() -> Vec<[u8; 32]> {
    let mut counting = [0u8; 32];
    for (i, b) in counting.iter_mut().enumerate() {
        *b = i as u8;
    }
    vec![[0; 32], [1; 32], [42; 32], counting]
}

pub fn keys() -> Value {
    let valid: Vec<Value> = seeds()
        .into_iter()
        .map(|seed| {
            let k = Keypair::from_seed(seed);
            json!({ "seed": hx(seed), "public_key": k.public().to_hex() })
        })
        .collect();
    let base = Keypair::from_seed([1; 32]).public().to_bytes();
    let mut invalid = Vec::new();
    let mut refuse = |name: String, bytes: [u8; 32], why: &str| {
        assert!(PublicKey::from_bytes(&bytes).is_err(), "{name} must be refused");
        invalid.push(json!({ "name": name, "public_key": hx(bytes), "valid": false, "why": why }));
    };
    for t in 0..8 {
        refuse(
            format!("small-order point T{t}"),
            small_order_point(t),
            "a point of small order (T0 is the identity)",
        );
    }
    for t in [1, 2, 4] {
        let mixed = with_torsion_key(&base, t).expect("a point");
        refuse(
            format!("seed 01.. key + T{t}"),
            mixed,
            "mixed order: not in the prime-order subgroup",
        );
    }
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    refuse("y = 2".into(), not_a_point, "not the encoding of a curve point");
    // Every encoding with y ≥ p (19 values, 2 sign bits), and x = 0 with the sign bit set.
    for i in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut b = [0xff; 32];
            b[0] = 0xed + i;
            b[31] = 0x7f | sign;
            refuse(format!("y = p + {i}, sign {}", sign >> 7), b, "non-canonical: y ≥ p");
        }
    }
    // The two points with x = 0 (y = 1, the identity; y = −1, of order 2) with the sign bit set.
    let mut neg_zero = small_order_point(0);
    neg_zero[31] |= 0x80;
    refuse("y = 1, sign 1".into(), neg_zero, "non-canonical: x = 0 with sign 1");
    let mut minus_one = [0xff; 32];
    minus_one[0] = 0xec;
    refuse("y = p - 1, sign 1".into(), minus_one, "non-canonical: x = 0 with sign 1");
    json!({
        "description": "SPEC.md §3.1. `valid`: seed → public key (RFC 8032 key generation). `invalid`: 32-byte strings dpx refuses as public keys; every one must be refused.",
        "valid": valid,
        "invalid": invalid,
    })
}

fn positive(seed: [u8; 32], domain: Domain, chain: &str, msg: &[u8]) -> Value {
    let k = Keypair::from_seed(seed);
    let digest = Hash::of(domain, chain, msg);
    let sig = k.sign(domain, chain, msg);
    assert!(k.public().verify_digest(&digest, &sig).is_ok());
    json!({
        "seed": hx(seed),
        "public_key": k.public().to_hex(),
        "domain": domain.tag(),
        "chain_id": chain,
        "message": hx(msg),
        "digest": digest.to_hex(),
        "signature": sig.to_hex(),
        "valid": true,
    })
}

fn negative(
    name: &str,
    key: &[u8; 32],
    digest: &Hash,
    sig: &Signature,
    why: &str,
    also: &[&str],
) -> Value {
    let verdict = PublicKey::from_bytes(key).is_ok_and(|k| k.verify_digest(digest, sig).is_ok());
    assert!(!verdict, "{name} must not verify");
    json!({
        "name": name,
        "public_key": hx(key),
        "digest": digest.to_hex(),
        "signature": sig.to_hex(),
        "valid": false,
        "why": why,
        "accepted_by": also,
    })
}

pub fn signatures() -> Value {
    let valid = vec![
        positive([1; 32], Domain::TRANSACTION, CHAIN, b"hello"),
        positive([2; 32], Domain::VOTE, CHAIN, b""),
        positive([42; 32], Domain::GRANT, "another-chain", &[0xff; 40]),
    ];
    let key = Keypair::from_seed([42; 32]);
    let pk = key.public().to_bytes();
    let digest = Hash::of(Domain::TRANSACTION, CHAIN, b"negative vector");
    let honest = key.sign_digest(&digest);
    let weak = small_order_point(0);
    let (mixed, mixed_sig) = sign_under_torsion_key(&key, &digest, 1).expect("a nonce works");
    let mut zero_sig = [0u8; 64];
    zero_sig[..32].copy_from_slice(&small_order_point(0));
    let cofactored = "cofactored verifiers (ZIP-215, ed25519-consensus, batch equations)";
    let no_small_r = "RFC 8032 cofactorless verifiers without a small-order check on R (e.g. ed25519-dalek `verify`, OpenSSL, Go crypto/ed25519)";
    let invalid = vec![
        negative(
            "honest signature, other domain",
            &pk,
            &Hash::of(Domain::VOTE, CHAIN, b"negative vector"),
            &honest,
            "the digest of another domain: domain separation",
            &[],
        ),
        negative(
            "torsion in R (T1, order 8)",
            &pk,
            &digest,
            &sign_with_torsion_r(&key, &digest, 1, 0),
            "R = r·B + T: the cofactorless equation misses by −T",
            &[cofactored],
        ),
        negative(
            "torsion in R (T4, order 2)",
            &pk,
            &digest,
            &sign_with_torsion_r(&key, &digest, 4, 0),
            "R = r·B + T: the cofactorless equation misses by −T",
            &[cofactored],
        ),
        negative(
            "R is the identity",
            &pk,
            &digest,
            &sign_with_identity_r(&key, &digest),
            "R of small order (S = k·a makes the equation hold exactly)",
            &[no_small_r, cofactored],
        ),
        negative(
            "S + ℓ",
            &pk,
            &digest,
            &with_s_plus_order(&honest),
            "S ≥ ℓ (non-canonical scalar; S mod ℓ would verify)",
            &["verifiers that reduce S mod ℓ instead of refusing S ≥ ℓ"],
        ),
        negative(
            "mixed-order key",
            &mixed,
            &digest,
            &mixed_sig,
            "A = a·B + T1 is not in the prime-order subgroup (the equation holds exactly)",
            &["verifiers that refuse only small-order keys (libsodium)", no_small_r, cofactored],
        ),
        negative(
            "identity key, identity R, S = 0",
            &weak,
            &digest,
            &Signature(zero_sig),
            "a small-order key: this signature 'verifies' any message under lax rules",
            &[no_small_r, cofactored],
        ),
    ];
    json!({
        "description": "SPEC.md §3. `valid`: seed, domain, chain id, message → digest → signature; the signature is ed25519 over the 32-byte digest. `invalid`: (public key, digest, signature) triples that every dpx verifier must refuse; `accepted_by` names verifier families that would accept them (checked in crypto/src/testing.rs), i.e. the verifiers that disagree with dpx.",
        "valid": valid,
        "invalid": invalid,
    })
}
