//! The verification rule under attack: signatures whose `R` carries each of the eight torsion
//! components, keys that carry one, in every batch composition.

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::EdwardsPoint;
use proptest::prelude::*;

use super::*;
use crate::{Domain, Keypair};

/// A valid signature by `seed` over message `n`.
fn signed(seed: u8, n: u64) -> (PublicKey, Hash, Signature) {
    let k = Keypair::from_seed([seed; 32]);
    let d = Hash::of(Domain::TRANSACTION, "c", &n.to_le_bytes());
    (k.public(), d, k.sign_digest(&d))
}

/// A signature by `seed` over message `n` whose `R` carries torsion point `t`, signed by the
/// key holder (the only one who can mount the attack).
fn crafted(seed: u8, n: u64, t: usize) -> (PublicKey, Hash, Signature) {
    let k = Keypair::from_seed([seed; 32]);
    let d = Hash::of(Domain::TRANSACTION, "c", &n.to_le_bytes());
    (k.public(), d, crate::testing::sign_with_torsion_r(&k, &d, t, n))
}

fn item(v: &(PublicKey, Hash, Signature)) -> SignedDigest<'_> {
    SignedDigest { key: &v.0, digest: &v.1, sig: &v.2 }
}

#[test]
fn every_torsion_component_in_r_is_refused_alone_and_in_batches() {
    for t in 1..8 {
        for n in 0..64u64 {
            let other = signed(2, n + 1000);
            let bad = crafted(1, n, t);
            assert!(item(&bad).verify().is_err(), "torsion {t}, message {n}");
            for batch in [vec![&other, &bad], vec![&bad, &other], vec![&other, &bad, &other]] {
                let items: Vec<_> = batch.into_iter().map(item).collect();
                assert!(verify_all(&items).is_err(), "torsion {t}, message {n}");
                let each = verify_each(&items);
                assert_eq!(each, items.iter().map(|i| i.verify().is_ok()).collect::<Vec<_>>());
            }
        }
    }
}

/// The vectors above are a real attack on a batch equation, not a strawman: `ed25519-dalek`'s
/// own batch verification accepts some of them (it is why dpx does not batch). If this ever
/// stops holding, the library changed its equation and the choice can be revisited.
#[test]
fn the_crafted_vectors_do_pass_a_cofactorless_batch_sometimes() {
    let order_two =
        (1..8).find(|&t| (EIGHT_TORSION[t] + EIGHT_TORSION[t]) == EdwardsPoint::default()).unwrap();
    let mut accepted = 0;
    for n in 0..64u64 {
        let other = signed(2, n + 1000);
        let bad = crafted(1, n, order_two);
        let msgs = [other.1.as_bytes().as_slice(), bad.1.as_bytes().as_slice()];
        let sigs = [
            ed25519_dalek::Signature::from_bytes(&other.2.0),
            ed25519_dalek::Signature::from_bytes(&bad.2.0),
        ];
        let keys = [*other.0.inner(), *bad.0.inner()];
        if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > 0, "dalek's batch refused all 64 mixed-order R signatures");
    assert!(accepted < 64, "and it is not simply lax: the verdict depends on the weight");
    // The identity as "torsion" gives an ordinary valid signature: the helper signs correctly.
    assert!(item(&crafted(1, 7, 0)).verify().is_ok());
}

#[test]
fn keys_with_a_torsion_component_are_refused() {
    for seed in 1..=16u8 {
        let pk = Keypair::from_seed([seed; 32]).public();
        for (t, torsion) in EIGHT_TORSION.iter().enumerate().skip(1) {
            let mixed = crate::testing::with_torsion_key(pk.as_bytes(), t).unwrap();
            assert_ne!(mixed, torsion.compress().to_bytes());
            assert!(
                matches!(PublicKey::from_bytes(&mixed), Err(CryptoError::InvalidPublicKey)),
                "seed {seed}, torsion {t}"
            );
            // Refused from the per-thread cache too (a second parse).
            assert!(PublicKey::from_bytes(&mixed).is_err());
        }
        // Every torsion point alone is a small-order key.
        for torsion in &EIGHT_TORSION {
            assert!(PublicKey::from_bytes(torsion.compress().as_bytes()).is_err());
        }
    }
}

#[test]
fn error_names_the_first_bad_signature() {
    let v: Vec<_> = (0..5u64).map(|n| signed(3, n)).collect();
    let mut items: Vec<_> = v.iter().map(item).collect();
    assert!(verify_all(&items).is_ok());
    assert!(verify_all(&[]).is_ok());
    let wrong = signed(4, 99);
    items[3] = SignedDigest { key: &v[3].0, digest: &v[3].1, sig: &wrong.2 };
    assert!(matches!(verify_all(&items), Err(CryptoError::BadSignatureAt { index: 3, count: 5 })));
    assert_eq!(verify_each(&items), vec![true, true, true, false, true]);
}

/// ℓ, the order of the prime-order subgroup, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// What one item of a random batch is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Valid,
    TorsionR(usize),
    WrongMessage,
    HighS,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Valid),
        3 => (1usize..8).prop_map(Kind::TorsionR),
        1 => Just(Kind::WrongMessage),
        1 => Just(Kind::HighS),
    ]
}

fn make(kind: Kind, seed: u8, n: u64) -> (PublicKey, Hash, Signature) {
    let (pk, d, sig) = signed(seed, n);
    match kind {
        Kind::Valid => (pk, d, sig),
        Kind::TorsionR(t) => crafted(seed, n, t),
        Kind::WrongMessage => (pk, Hash::of(Domain::TRANSACTION, "c", b"other"), sig),
        Kind::HighS => {
            // S + ℓ: the same scalar, a non-canonical encoding.
            let mut out = sig.0;
            let mut carry = 0u16;
            for (i, b) in ELL.iter().enumerate() {
                let v = u16::from(out[32 + i]) + u16::from(*b) + carry;
                out[32 + i] = v as u8;
                carry = v >> 8;
            }
            (pk, d, Signature(out))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever else shares the batch and in whatever order, each verdict is the single verdict,
    /// and it is the expected one.
    #[test]
    fn batch_verdicts_are_single_verdicts(
        kinds in proptest::collection::vec((kind(), 1u8..=8, any::<u64>()), 0..12),
        rotate in any::<usize>(),
    ) {
        let v: Vec<_> = kinds.iter().map(|&(k, s, n)| make(k, s, n)).collect();
        let expect: Vec<bool> = kinds.iter().map(|(k, _, _)| matches!(k, Kind::Valid)).collect();
        let items: Vec<_> = v.iter().map(item).collect();
        prop_assert_eq!(verify_each(&items), expect.clone());
        prop_assert_eq!(verify_all(&items).is_ok(), expect.iter().all(|ok| *ok));
        // Another composition of the same items: the same verdicts, item by item.
        let mut order: Vec<usize> = (0..items.len()).collect();
        if !order.is_empty() {
            let k = rotate % order.len();
            order.rotate_left(k);
        }
        let shuffled: Vec<_> = order.iter().map(|&i| items[i]).collect();
        let each = verify_each(&shuffled);
        for (pos, &i) in order.iter().enumerate() {
            prop_assert_eq!(each[pos], expect[i]);
        }
    }
}
