//! Console sign-in without JavaScript cryptography: `dpx console login` signs a short-lived
//! login token with the participant's key; the node checks it once and exchanges it for a
//! session cookie (SPEC.md §14.4, "Console sign-in tokens").
//!
//! Everything here is synchronous and takes `now` (and the session's random id) as inputs, so
//! the rules are tested without a clock or a server:
//! - a token is `v1.<chain id>.<key hex>.<expires unix s>.<nonce>.<signature>` (nonce and
//!   signature in unpadded base64url), the signature being ed25519 over
//!   `H("dpx/console-login/v1", chain id, key ‖ u64le(expires) ‖ nonce)`;
//! - it is accepted only for this node's chain, before it expires, when it expires at most
//!   [`TOKEN_LIFETIME_S_MAX`] after `now` and only once: its (key, nonce) is remembered until it
//!   expires in a table of at most [`NONCES_MAX`] entries, none forgotten early (when full, new
//!   logins are refused until one expires);
//! - a session maps a random id (the cookie) to the key, for [`SESSION_LIFETIME_S`]; at most
//!   [`SESSIONS_MAX`] sessions, at most [`SESSIONS_PER_KEY_MAX`] per key (a key's oldest goes
//!   when it opens one more). The key's rights are not stored: each page resolves the key's
//!   viewer under the latest state, so a rotated-out or suspended key loses access at once.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpx_crypto::{Domain, Keypair, PublicKey, Signature};

/// The token format's version, its first field.
pub const TOKEN_VERSION: &str = "v1";
/// Longest token accepted (a 64-byte chain id gives about 260 characters).
pub const TOKEN_CHARS_MAX: usize = 512;
/// How far in the future a token may expire: a token is a one-time link, not a credential.
pub const TOKEN_LIFETIME_S_MAX: u64 = 600;
/// Random bytes of a token's nonce.
pub const NONCE_BYTES: usize = 16;
/// (key, nonce) pairs remembered at once (each for at most [`TOKEN_LIFETIME_S_MAX`]).
pub const NONCES_MAX: usize = 4096;
/// Open sessions at once, and per key.
pub const SESSIONS_MAX: usize = 1024;
pub const SESSIONS_PER_KEY_MAX: usize = 8;
/// A session's life from sign-in; then the viewer signs in again.
pub const SESSION_LIFETIME_S: u64 = 8 * 3600;

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("the login token is malformed: {0}")]
    Malformed(String),
    #[error("the login token is for chain {token:?}, this node runs {node:?}")]
    WrongChain { token: String, node: String },
    #[error("the login token expired at {expires_s} (now {now_s}): run `dpx console login` again")]
    Expired { expires_s: u64, now_s: u64 },
    #[error(
        "the login token expires {lifetime_s} s from now, more than the {TOKEN_LIFETIME_S_MAX} s \
         a token may live"
    )]
    TooLong { lifetime_s: u64 },
    #[error("the login token's signature does not verify for its key and this chain")]
    BadSignature,
    #[error("this login token was already used: sign a new one")]
    Replayed,
    #[error(
        "the key has no standing on the ledger (neither a participant's nor a data subject's current key)"
    )]
    NoStanding,
    #[error("too many {what} at once; retry in {retry_after_s} s")]
    Full { what: &'static str, retry_after_s: u64 },
}

/// A parsed (not yet verified) login token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginToken {
    pub chain_id: String,
    pub key: PublicKey,
    pub expires_s: u64,
    pub nonce: [u8; NONCE_BYTES],
    pub signature: Signature,
}

/// The bytes a token's signature covers (inside the domain-separated hash with the chain id).
fn signed_bytes(key: &PublicKey, expires_s: u64, nonce: &[u8; NONCE_BYTES]) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + 8 + NONCE_BYTES);
    b.extend_from_slice(&key.to_bytes());
    b.extend_from_slice(&expires_s.to_le_bytes());
    b.extend_from_slice(nonce);
    b
}

impl LoginToken {
    /// Sign a token for `chain_id` that expires at `expires_s` (unix seconds).
    pub fn sign(key: &Keypair, chain_id: &str, expires_s: u64, nonce: [u8; NONCE_BYTES]) -> Self {
        let public = key.public();
        let signature =
            key.sign(Domain::CONSOLE_LOGIN, chain_id, &signed_bytes(&public, expires_s, &nonce));
        Self { chain_id: chain_id.to_owned(), key: public, expires_s, nonce, signature }
    }

    /// The token's text, safe in a URL query as it is (chain ids are `[a-z0-9.-]`).
    pub fn encode(&self) -> String {
        format!(
            "{TOKEN_VERSION}.{}.{}.{}.{}.{}",
            self.chain_id,
            self.key.to_hex(),
            self.expires_s,
            URL_SAFE_NO_PAD.encode(self.nonce),
            URL_SAFE_NO_PAD.encode(self.signature.to_bytes()),
        )
    }

    /// Parse a token's text (the chain id may hold dots: the other fields are counted from
    /// the end).
    pub fn parse(text: &str) -> Result<Self, LoginError> {
        let bad = |m: &str| LoginError::Malformed(m.to_owned());
        if text.len() > TOKEN_CHARS_MAX {
            return Err(bad("longer than 512 characters"));
        }
        let rest = text
            .strip_prefix(TOKEN_VERSION)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(|| bad("it must start with v1."))?;
        let mut fields = rest.rsplitn(5, '.');
        let (Some(sig), Some(nonce), Some(expires), Some(key), Some(chain_id)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("expected v1.<chain>.<key>.<expires>.<nonce>.<signature>"));
        };
        let chain_ok = !chain_id.is_empty()
            && chain_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !chain_ok {
            return Err(bad("the chain id must be [a-z0-9.-]"));
        }
        if key.len() != 64 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the key must be 64 lowercase hex characters"));
        }
        let key: PublicKey = key.parse().map_err(|_| bad("the key is not a valid public key"))?;
        if expires.is_empty() || expires.len() > 15 || !expires.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("expires must be unix seconds, 1 to 15 digits"));
        }
        let expires_s: u64 = expires.parse().map_err(|_| bad("expires is not a number"))?;
        let nonce = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .and_then(|n| <[u8; NONCE_BYTES]>::try_from(n.as_slice()).ok())
            .ok_or_else(|| bad("the nonce must be 16 bytes of unpadded base64url"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or_else(|| bad("the signature must be 64 bytes of unpadded base64url"))?;
        Ok(Self { chain_id: chain_id.to_owned(), key, expires_s, nonce, signature })
    }

    /// Every check but the replay table's: chain, expiry, lifetime, signature.
    pub fn verify(&self, chain_id: &str, now_s: u64) -> Result<(), LoginError> {
        if self.chain_id != chain_id {
            return Err(LoginError::WrongChain {
                token: self.chain_id.clone(),
                node: chain_id.to_owned(),
            });
        }
        if self.expires_s < now_s {
            return Err(LoginError::Expired { expires_s: self.expires_s, now_s });
        }
        let lifetime_s = self.expires_s - now_s;
        if lifetime_s > TOKEN_LIFETIME_S_MAX {
            return Err(LoginError::TooLong { lifetime_s });
        }
        let msg = signed_bytes(&self.key, self.expires_s, &self.nonce);
        self.key
            .verify(Domain::CONSOLE_LOGIN, chain_id, &msg, &self.signature)
            .map_err(|_| LoginError::BadSignature)
    }
}

/// Tokens seen and not yet expired. Bounded; a full table refuses, it never forgets early
/// (forgetting would let a captured link be used twice).
#[derive(Debug)]
pub struct NonceTable {
    seen: HashMap<(PublicKey, [u8; NONCE_BYTES]), u64>,
    by_expiry: BTreeSet<(u64, PublicKey, [u8; NONCE_BYTES])>,
    capacity: usize,
}

impl NonceTable {
    pub fn new(capacity: usize) -> Self {
        Self { seen: HashMap::new(), by_expiry: BTreeSet::new(), capacity: capacity.max(1) }
    }

    /// Record a token's (key, nonce) until `expires_s`; refuse a pair already seen.
    pub fn check_and_insert(
        &mut self,
        key: &PublicKey,
        nonce: &[u8; NONCE_BYTES],
        expires_s: u64,
        now_s: u64,
    ) -> Result<(), LoginError> {
        while let Some(first) = self.by_expiry.first().copied() {
            if first.0 >= now_s {
                break;
            }
            self.by_expiry.remove(&first);
            self.seen.remove(&(first.1, first.2));
        }
        if self.seen.contains_key(&(*key, *nonce)) {
            return Err(LoginError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            let first = self.by_expiry.first().map_or(now_s, |f| f.0);
            return Err(LoginError::Full {
                what: "sign-ins",
                retry_after_s: first.saturating_sub(now_s) + 1,
            });
        }
        self.seen.insert((*key, *nonce), expires_s);
        self.by_expiry.insert((expires_s, *key, *nonce));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A session id: the cookie's value (32 random bytes, hex).
pub type SessionId = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct Session {
    key: PublicKey,
    created_s: u64,
    expires_s: u64,
}

/// Open console sessions.
#[derive(Debug)]
pub struct Sessions {
    by_id: HashMap<SessionId, Session>,
    capacity: usize,
    per_key_max: usize,
}

impl Sessions {
    pub fn new(capacity: usize, per_key_max: usize) -> Self {
        let capacity = capacity.max(1);
        Self { by_id: HashMap::new(), capacity, per_key_max: per_key_max.clamp(1, capacity) }
    }

    fn purge(&mut self, now_s: u64) {
        self.by_id.retain(|_, s| s.expires_s >= now_s);
    }

    /// Open a session for `key` under the (random) `id`.
    pub fn open(&mut self, id: SessionId, key: PublicKey, now_s: u64) -> Result<(), LoginError> {
        self.purge(now_s);
        let mine: Vec<(SessionId, u64)> = self
            .by_id
            .iter()
            .filter(|(_, s)| s.key == key)
            .map(|(id, s)| (*id, s.created_s))
            .collect();
        if mine.len() >= self.per_key_max
            && let Some((oldest, _)) = mine.iter().min_by_key(|(_, created)| *created)
        {
            // The key's own oldest session goes: nobody else's.
            self.by_id.remove(oldest);
        }
        if self.by_id.len() >= self.capacity {
            let first = self.by_id.values().map(|s| s.expires_s).min().unwrap_or(now_s);
            return Err(LoginError::Full {
                what: "console sessions",
                retry_after_s: first.saturating_sub(now_s) + 1,
            });
        }
        let expires_s = now_s.saturating_add(SESSION_LIFETIME_S);
        self.by_id.insert(id, Session { key, created_s: now_s, expires_s });
        Ok(())
    }

    /// The key behind a live session.
    pub fn key(&self, id: &SessionId, now_s: u64) -> Option<PublicKey> {
        self.by_id.get(id).filter(|s| s.expires_s >= now_s).map(|s| s.key)
    }

    pub fn close(&mut self, id: &SessionId) {
        self.by_id.remove(id);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The console's sign-in state of one node: the replay table and the sessions.
#[derive(Debug)]
pub struct SignIn {
    chain_id: String,
    inner: parking_lot::Mutex<(NonceTable, Sessions)>,
}

impl SignIn {
    pub fn new(chain_id: &str) -> Self {
        Self::with_limits(chain_id, NONCES_MAX, SESSIONS_MAX, SESSIONS_PER_KEY_MAX)
    }

    pub fn with_limits(chain_id: &str, nonces: usize, sessions: usize, per_key: usize) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            inner: parking_lot::Mutex::new((
                NonceTable::new(nonces),
                Sessions::new(sessions, per_key),
            )),
        }
    }

    /// Check `token` and open a session under `id` for its key. `standing` says whether the
    /// key is a participant's or an enrolled subject's current key (others read nothing an
    /// anonymous visitor does not, and may not fill the tables).
    pub fn login(
        &self,
        token: &str,
        now_s: u64,
        standing: impl FnOnce(&PublicKey) -> bool,
        id: SessionId,
    ) -> Result<PublicKey, LoginError> {
        let t = LoginToken::parse(token)?;
        t.verify(&self.chain_id, now_s)?;
        if !standing(&t.key) {
            return Err(LoginError::NoStanding);
        }
        let mut g = self.inner.lock();
        let (nonces, sessions) = &mut *g;
        nonces.check_and_insert(&t.key, &t.nonce, t.expires_s, now_s)?;
        sessions.open(id, t.key, now_s)?;
        Ok(t.key)
    }

    pub fn session_key(&self, id: &SessionId, now_s: u64) -> Option<PublicKey> {
        self.inner.lock().1.key(id, now_s)
    }

    pub fn logout(&self, id: &SessionId) {
        self.inner.lock().1.close(id);
    }
}

/// A fresh random session id.
pub fn fresh_session_id() -> SessionId {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

/// A fresh random token nonce.
pub fn fresh_nonce() -> [u8; NONCE_BYTES] {
    let mut b = [0u8; NONCE_BYTES];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: &str = "dpx-test";
    const NOW: u64 = 1_800_000_000;

    fn key(seed: u8) -> Keypair {
        Keypair::from_seed([seed; 32])
    }

    fn token(seed: u8, expires_s: u64, nonce: u8) -> String {
        LoginToken::sign(&key(seed), CHAIN, expires_s, [nonce; NONCE_BYTES]).encode()
    }

    fn login(s: &SignIn, t: &str, now: u64, id: u8) -> Result<PublicKey, LoginError> {
        s.login(t, now, |_| true, [id; 32])
    }

    #[test]
    fn a_token_round_trips_and_signs_in_once() {
        let t = LoginToken::sign(&key(1), CHAIN, NOW + 60, [7; NONCE_BYTES]);
        assert_eq!(LoginToken::parse(&t.encode()).unwrap(), t);
        let s = SignIn::new(CHAIN);
        assert_eq!(login(&s, &t.encode(), NOW, 1).unwrap(), key(1).public());
        assert_eq!(s.session_key(&[1; 32], NOW + 1), Some(key(1).public()));
        assert_eq!(login(&s, &t.encode(), NOW, 2), Err(LoginError::Replayed));
        assert_eq!(s.session_key(&[2; 32], NOW), None);
    }

    #[test]
    fn chain_ids_with_dots_parse() {
        let t = LoginToken::sign(&key(1), "dpx.test-1", NOW, [1; NONCE_BYTES]);
        assert_eq!(LoginToken::parse(&t.encode()).unwrap().chain_id, "dpx.test-1");
    }

    #[test]
    fn expired_tokens_are_refused_at_the_second_after_expiry() {
        let s = SignIn::new(CHAIN);
        assert!(login(&s, &token(1, NOW, 1), NOW, 1).is_ok(), "valid up to its second");
        let e = login(&s, &token(1, NOW - 1, 2), NOW, 2).unwrap_err();
        assert_eq!(e, LoginError::Expired { expires_s: NOW - 1, now_s: NOW });
    }

    #[test]
    fn tokens_living_longer_than_ten_minutes_are_refused() {
        let s = SignIn::new(CHAIN);
        assert!(login(&s, &token(1, NOW + TOKEN_LIFETIME_S_MAX, 1), NOW, 1).is_ok());
        let e = login(&s, &token(1, NOW + TOKEN_LIFETIME_S_MAX + 1, 2), NOW, 2).unwrap_err();
        assert_eq!(e, LoginError::TooLong { lifetime_s: TOKEN_LIFETIME_S_MAX + 1 });
    }

    #[test]
    fn a_token_for_another_chain_is_refused() {
        let t = LoginToken::sign(&key(1), "dpx-other", NOW + 60, [1; NONCE_BYTES]).encode();
        let e = login(&SignIn::new(CHAIN), &t, NOW, 1).unwrap_err();
        assert!(matches!(e, LoginError::WrongChain { .. }), "{e}");
        // Relabelled for this chain, the signature (which covers the chain) fails.
        let relabelled = t.replace("dpx-other", CHAIN);
        let e = login(&SignIn::new(CHAIN), &relabelled, NOW, 1).unwrap_err();
        assert_eq!(e, LoginError::BadSignature);
    }

    #[test]
    fn bad_signatures_and_altered_fields_are_refused() {
        let mut t = LoginToken::sign(&key(1), CHAIN, NOW + 60, [1; NONCE_BYTES]);
        let good = t.clone();
        t.key = key(2).public();
        assert_eq!(login(&SignIn::new(CHAIN), &t.encode(), NOW, 1), Err(LoginError::BadSignature));
        let mut t = good.clone();
        t.expires_s += 1;
        assert_eq!(login(&SignIn::new(CHAIN), &t.encode(), NOW, 1), Err(LoginError::BadSignature));
        let mut t = good.clone();
        t.nonce[0] ^= 1;
        assert_eq!(login(&SignIn::new(CHAIN), &t.encode(), NOW, 1), Err(LoginError::BadSignature));
        // A signature for the same bytes in another domain (an RPC request's) never verifies.
        let mut t = good;
        let msg = signed_bytes(&t.key, t.expires_s, &t.nonce);
        t.signature = key(1).sign(Domain::RPC_REQUEST, CHAIN, &msg);
        assert_eq!(login(&SignIn::new(CHAIN), &t.encode(), NOW, 1), Err(LoginError::BadSignature));
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        let good = token(1, NOW + 60, 1);
        for bad in [
            String::new(),
            "v2".to_owned() + &good[2..],
            good.replacen('.', ":", 1),
            good[..good.len() - 2].to_owned(),
            good.to_uppercase(),
            format!("v1.{}", "a".repeat(600)),
            "v1.dpx-test.00.1.AAAAAAAAAAAAAAAAAAAAAA.x".to_owned(),
        ] {
            let e = login(&SignIn::new(CHAIN), &bad, NOW, 1).unwrap_err();
            assert!(matches!(e, LoginError::Malformed(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn keys_without_standing_get_no_session_and_use_no_nonce() {
        let s = SignIn::new(CHAIN);
        let t = token(1, NOW + 60, 1);
        assert_eq!(s.login(&t, NOW, |_| false, [1; 32]), Err(LoginError::NoStanding));
        assert!(s.inner.lock().0.is_empty());
        assert!(login(&s, &t, NOW, 1).is_ok());
    }

    #[test]
    fn a_full_nonce_table_refuses_until_the_oldest_expires() {
        let s = SignIn::with_limits(CHAIN, 2, 100, 100);
        assert!(login(&s, &token(1, NOW + 10, 1), NOW, 1).is_ok());
        assert!(login(&s, &token(1, NOW + 20, 2), NOW, 2).is_ok());
        let e = login(&s, &token(1, NOW + 30, 3), NOW, 3).unwrap_err();
        assert_eq!(e, LoginError::Full { what: "sign-ins", retry_after_s: 11 });
        // Nothing was forgotten early: the first token is still refused as replayed...
        assert_eq!(login(&s, &token(1, NOW + 10, 1), NOW + 5, 4), Err(LoginError::Replayed));
        // ...until it expired, when its slot is free (and it is refused as expired).
        assert!(login(&s, &token(1, NOW + 30, 3), NOW + 11, 5).is_ok());
        let e = login(&s, &token(1, NOW + 10, 1), NOW + 11, 6).unwrap_err();
        assert!(matches!(e, LoginError::Expired { .. }), "{e}");
    }

    #[test]
    fn a_full_session_table_refuses_and_one_key_only_pushes_out_its_own() {
        let s = SignIn::with_limits(CHAIN, 100, 3, 2);
        assert!(login(&s, &token(1, NOW + 60, 1), NOW, 1).is_ok());
        assert!(login(&s, &token(1, NOW + 60, 2), NOW + 1, 2).is_ok());
        assert!(login(&s, &token(2, NOW + 60, 3), NOW + 2, 3).is_ok());
        // Key 1's third session pushes out key 1's oldest, not key 2's.
        assert!(login(&s, &token(1, NOW + 60, 4), NOW + 3, 4).is_ok());
        assert_eq!(s.session_key(&[1; 32], NOW + 3), None);
        assert_eq!(s.session_key(&[3; 32], NOW + 3), Some(key(2).public()));
        // A third key finds the table full.
        let e = login(&s, &token(3, NOW + 60, 5), NOW + 3, 5).unwrap_err();
        assert!(matches!(e, LoginError::Full { what: "console sessions", .. }), "{e}");
        // Sessions expire, and logging out frees a slot.
        s.logout(&[2; 32]);
        assert!(login(&s, &token(3, NOW + 60, 6), NOW + 4, 6).is_ok());
        assert_eq!(s.session_key(&[6; 32], NOW + 4 + SESSION_LIFETIME_S), Some(key(3).public()));
        assert_eq!(s.session_key(&[6; 32], NOW + 5 + SESSION_LIFETIME_S), None);
    }
}
