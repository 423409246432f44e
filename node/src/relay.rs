//! Transactions relayed by peers: bounded verification work, and a penalty for a peer that
//! relays invalid ones.
//!
//! A relayed batch is verified on a blocking thread, off the consensus driver. The work peers
//! can cause is bounded three ways:
//! - a batch holds at most `Limits::max_relay_batch` transactions (and fits a frame);
//! - at most `p2p.max_relay_verifications` batches are verified at once, from all peers
//!   together (a semaphore); batches over that wait their turn in a queue of at most
//!   `p2p.max_relay_queued` batches in all (default [`QUEUED_MAX`]) and a quarter of that per
//!   peer, and of at most [`QUEUED_BYTES_MAX`] / [`QUEUED_BYTES_PER_PEER_MAX`]. A batch over the
//!   queue's bounds is dropped and counted (`dpx_p2p_relay_dropped`): the node that relayed it
//!   still holds the transactions and proposes them in its turn, and a compact proposal block
//!   naming them makes this node fetch them (`driver::compact`). Before compact blocks a busy
//!   node dropped at once; under load that lost most relayed batches, and each lost one now
//!   costs a fetch round trip in the next block;
//! - a batch is verified in chunks of [`VERIFY_CHUNK`], and verification stops after the first
//!   chunk that holds an invalid transaction: a batch of 10,000 bad signatures costs one chunk.
//!
//! An honest node relays only transactions that passed its stateless checks, which are a pure
//! function of the bytes and the chain id, so an invalid relayed transaction is the sender's
//! doing. Each batch holding one is a strike; at [`STRIKES_MAX`] strikes the peer's relayed
//! batches are dropped unverified (`dpx_p2p_relay_muted`) for [`MUTE_BASE`], doubling with each
//! repeat up to [`MUTE_MAX`]. Its consensus messages and sync traffic are untouched: muting the
//! relay removes the cost without cutting off a validator (a version skew in the stateless
//! rules during an upgrade must not partition the network).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpx_app::admit::{CheckedTx, TxChecker};
use libp2p::PeerId;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use crate::driver::DriverMsg;
use crate::node::Shared;

/// Relayed transactions verified together; a batch's verification stops after the first chunk
/// holding an invalid one. Large enough for batch verification to pay off.
pub const VERIFY_CHUNK: usize = 256;
/// Batches with invalid transactions before a peer's relay is muted.
pub const STRIKES_MAX: u32 = 3;
/// The first mute; each further one doubles it.
pub const MUTE_BASE: Duration = Duration::from_mins(1);
/// The longest mute.
pub const MUTE_MAX: Duration = Duration::from_hours(1);
/// Relayed batches waiting for a verification slot (or being verified) in all, by default
/// (`p2p.max_relay_queued`); a peer may hold a quarter of them (a peer that floods fills
/// only its own share). By bytes, per peer and in all: a peer's share holds two batches of
/// the default 16 MiB frame.
pub const QUEUED_MAX: usize = 64;
pub const QUEUED_BYTES_PER_PEER_MAX: usize = 32 << 20;
pub const QUEUED_BYTES_MAX: usize = 128 << 20;

/// What one peer has queued: batches and bytes.
type Queued = Arc<Mutex<BTreeMap<PeerId, (usize, usize)>>>;
/// Peers with a record kept at most (permitted peers are a few dozen; this bounds the table
/// whatever happens).
const PEERS_MAX: usize = 4096;

#[derive(Debug, Default)]
struct PeerRecord {
    strikes: u32,
    muted_until: Option<Instant>,
    mutes: u32,
}

/// Why a relayed batch was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The peer relayed invalid transactions recently.
    Muted,
    /// The queue for verification is full (for this peer, or in all).
    Busy,
}

/// The shared bound on relay verification and the peers' records.
#[derive(Debug)]
pub struct RelayGate {
    permits: Arc<Semaphore>,
    queued_max: usize,
    queued_per_peer_max: usize,
    /// Batches admitted and not yet verified, per peer (waiting or being verified).
    queued: Queued,
    peers: Mutex<BTreeMap<PeerId, PeerRecord>>,
}

/// A relayed batch's place: in the queue until [`Ticket::verify_slot`] gives it a
/// verification slot; the place is freed when the ticket is dropped.
#[derive(Debug)]
pub struct Ticket {
    peer: PeerId,
    bytes: usize,
    queued: Queued,
    permits: Arc<Semaphore>,
}

impl Ticket {
    /// Wait for one of the `max_relay_verifications` slots.
    pub async fn verify_slot(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.permits).acquire_owned().await.expect("the semaphore is never closed")
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut q = self.queued.lock();
        if let Some((n, bytes)) = q.get_mut(&self.peer) {
            *n -= 1;
            *bytes -= self.bytes;
            if *n == 0 {
                q.remove(&self.peer);
            }
        }
    }
}

/// What verifying one relayed batch found.
#[derive(Debug)]
pub struct Verified {
    pub good: Vec<CheckedTx>,
    /// Transactions that failed the stateless checks.
    pub bad: usize,
    /// Transactions left unverified after a chunk with invalid ones.
    pub unchecked: usize,
}

impl RelayGate {
    /// At most `max_concurrent` (at least 1) batches verified at once, and `max_queued` (at
    /// least 1) admitted and not yet verified, a quarter of them (at least 1) per peer.
    pub fn new(max_concurrent: usize, max_queued: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            queued_max: max_queued.max(1),
            queued_per_peer_max: (max_queued / 4).max(1),
            queued: Arc::new(Mutex::new(BTreeMap::new())),
            peers: Mutex::new(BTreeMap::new()),
        }
    }

    /// May a batch of `bytes` from `peer` be queued for verification? The ticket holds its
    /// place.
    pub fn admit(&self, peer: &PeerId, bytes: usize, now: Instant) -> Result<Ticket, Refused> {
        if self.peers.lock().get(peer).and_then(|r| r.muted_until).is_some_and(|t| now < t) {
            return Err(Refused::Muted);
        }
        let mut q = self.queued.lock();
        let (count, total_bytes) = q.values().fold((0, 0), |(c, b), (n, m)| (c + n, b + m));
        let (mine, my_bytes) = q.get(peer).copied().unwrap_or((0, 0));
        if count >= self.queued_max
            || mine >= self.queued_per_peer_max
            || total_bytes + bytes > QUEUED_BYTES_MAX
            || my_bytes + bytes > QUEUED_BYTES_PER_PEER_MAX
        {
            return Err(Refused::Busy);
        }
        q.insert(*peer, (mine + 1, my_bytes + bytes));
        Ok(Ticket {
            peer: *peer,
            bytes,
            queued: Arc::clone(&self.queued),
            permits: Arc::clone(&self.permits),
        })
    }

    /// Record a verified batch from `peer` with `bad` invalid transactions. Returns the mute
    /// when this batch was the strike that earned one.
    pub fn record(&self, peer: PeerId, bad: usize, now: Instant) -> Option<Duration> {
        if bad == 0 {
            return None;
        }
        let mut peers = self.peers.lock();
        if !peers.contains_key(&peer) && peers.len() >= PEERS_MAX {
            // Forget peers that are not muted now; their strikes start over.
            peers.retain(|_, r| r.muted_until.is_some_and(|t| now < t));
        }
        let r = peers.entry(peer).or_default();
        r.strikes += 1;
        if r.strikes < STRIKES_MAX {
            return None;
        }
        r.strikes = 0;
        let mute = MUTE_BASE.saturating_mul(1u32 << r.mutes.min(6)).min(MUTE_MAX);
        r.mutes = r.mutes.saturating_add(1);
        r.muted_until = Some(now + mute);
        Some(mute)
    }
}

/// The stateless checks of a relayed batch, chunk by chunk, stopping after the first chunk
/// that holds an invalid transaction.
pub fn verify(checker: &TxChecker, txs: Vec<Vec<u8>>) -> Verified {
    let total = txs.len();
    let (mut good, mut bad, mut done) = (Vec::with_capacity(total), 0, 0);
    let mut rest = txs.into_iter();
    while bad == 0 {
        let chunk: Vec<Vec<u8>> = rest.by_ref().take(VERIFY_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        done += chunk.len();
        for r in checker.check_batch(chunk) {
            match r {
                Ok(tx) => good.push(tx),
                Err(_) => bad += 1,
            }
        }
    }
    Verified { good, bad, unchecked: total - done }
}

/// A batch relayed by `from`: refused (and counted) when oversized, when `from` is muted or
/// when the verification queue is full; otherwise verified on a blocking thread when a slot
/// frees and the valid transactions handed to the driver for admission (a full driver queue
/// drops them, counted too).
pub fn admit_from_peer(shared: &Arc<Shared>, from: PeerId, txs: Vec<Vec<u8>>) {
    let metrics = &shared.metrics;
    if txs.len() > shared.limits.max_relay_batch {
        warn!(peer = %from, count = txs.len(), "oversized transaction batch from a peer dropped");
        metrics.p2p_relay_dropped.inc();
        if shared.relay.record(from, txs.len(), Instant::now()).is_some() {
            metrics.p2p_peers_penalised.inc();
        }
        return;
    }
    let bytes = txs.iter().map(Vec::len).sum();
    let ticket = match shared.relay.admit(&from, bytes, Instant::now()) {
        Ok(t) => t,
        Err(refused) => {
            match refused {
                Refused::Muted => metrics.p2p_relay_muted.inc(),
                Refused::Busy => metrics.p2p_relay_dropped.inc(),
            };
            return;
        }
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let permit = ticket.verify_slot().await;
        let verifier = Arc::clone(&shared);
        let Ok(v) = tokio::task::spawn_blocking(move || verify(&verifier.checker, txs)).await
        else {
            return; // the runtime is shutting down
        };
        drop(permit);
        drop(ticket);
        if v.bad > 0 {
            shared.metrics.p2p_relay_bad_txs.inc_by(v.bad as u64);
            if let Some(mute) = shared.relay.record(from, v.bad, Instant::now()) {
                shared.metrics.p2p_peers_penalised.inc();
                warn!(
                    peer = %from, bad = v.bad, mute_s = mute.as_secs(),
                    "peer relays invalid transactions; ignoring its relayed batches for a while"
                );
            }
        }
        if !v.good.is_empty() {
            let msg = DriverMsg::Admit { txs: v.good, from_peer: true, reply: None };
            if shared.driver_tx.try_send(msg).is_err() {
                shared.metrics.p2p_relay_dropped.inc();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_contracts::{Operation, Role, SignedTransaction, TransactionBody};
    use dpx_crypto::{Keypair, Signature};

    const CHAIN: &str = "dpx-test";

    fn peer(i: u8) -> PeerId {
        crate::p2p::peer_id(&Keypair::from_seed([i; 32]).public())
    }

    fn signed(seed: u32) -> Vec<u8> {
        let mut s = [7u8; 32];
        s[..4].copy_from_slice(&seed.to_be_bytes());
        let k = Keypair::from_seed(s);
        let op =
            Operation::Admit { key: k.public(), name: "x".into(), roles: vec![Role::Consumer] };
        TransactionBody::new(CHAIN, 0, op).sign(&k).encode()
    }

    fn forged(seed: u32) -> Vec<u8> {
        let mut tx = SignedTransaction::decode(&signed(seed)).unwrap();
        let mut sig = tx.signature.to_bytes();
        sig[0] ^= 1;
        tx.signature = Signature::from_slice(&sig).unwrap();
        tx.encode()
    }

    /// The work a peer's batch of bad signatures causes is one chunk, not the whole batch
    /// (before: every one of them verified, one by one after the batch check failed).
    #[test]
    fn a_batch_of_bad_signatures_costs_one_chunk() {
        let checker = TxChecker::new(CHAIN, false, 10_000);
        let bad: Vec<Vec<u8>> = (0..2_000).map(forged).collect();
        let v = verify(&checker, bad);
        assert!(v.good.is_empty());
        assert_eq!((v.bad, v.unchecked), (VERIFY_CHUNK, 2_000 - VERIFY_CHUNK));
        assert!(checker.verifications() <= VERIFY_CHUNK as u64, "{}", checker.verifications());
        // An honest batch is verified whole.
        let good: Vec<Vec<u8>> = (0..600).map(signed).collect();
        let v = verify(&checker, good);
        assert_eq!((v.good.len(), v.bad, v.unchecked), (600, 0, 0));
    }

    #[tokio::test]
    async fn verification_is_capped_and_the_queue_bounded_per_peer_and_in_all() {
        let gate = RelayGate::new(2, QUEUED_MAX);
        let now = Instant::now();
        // Two verify at once; a third waits for a slot.
        let (t1, t2, t3) = (
            gate.admit(&peer(1), 10, now).unwrap(),
            gate.admit(&peer(2), 10, now).unwrap(),
            gate.admit(&peer(3), 10, now).unwrap(),
        );
        let s1 = t1.verify_slot().await;
        let _s2 = t2.verify_slot().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), t3.verify_slot()).await;
        assert!(waiting.is_err(), "a third verification ran beside two");
        drop(s1);
        drop(t1);
        let _s3 = tokio::time::timeout(Duration::from_secs(5), t3.verify_slot())
            .await
            .expect("a finished verification frees its slot");
        // One peer fills only its own share of the queue.
        let flood: Vec<Ticket> =
            std::iter::from_fn(|| gate.admit(&peer(9), 10, now).ok()).take(1000).collect();
        assert_eq!(flood.len(), QUEUED_MAX / 4);
        assert_eq!(gate.admit(&peer(9), 10, now).unwrap_err(), Refused::Busy);
        assert!(gate.admit(&peer(4), 10, now).is_ok(), "others still get in");
        // In all: many peers, each within its share, up to the total.
        let mut held = Vec::new();
        for p in 10..40 {
            while let Ok(t) = gate.admit(&peer(p), 10, now) {
                held.push(t);
            }
        }
        let queued: usize = gate.queued.lock().values().map(|(n, _)| n).sum();
        assert_eq!(queued, QUEUED_MAX);
        drop(held);
        // By bytes: a peer's share, and the total.
        let big = QUEUED_BYTES_PER_PEER_MAX / 2;
        let mut big_ones = vec![gate.admit(&peer(50), big, now).unwrap()];
        big_ones.push(gate.admit(&peer(50), big, now).unwrap());
        assert_eq!(gate.admit(&peer(50), 1, now).unwrap_err(), Refused::Busy);
        big_ones.push(gate.admit(&peer(51), QUEUED_BYTES_PER_PEER_MAX, now).unwrap());
        big_ones.push(gate.admit(&peer(52), QUEUED_BYTES_PER_PEER_MAX, now).unwrap());
        let used: usize = gate.queued.lock().values().map(|(_, b)| b).sum();
        let room = QUEUED_BYTES_MAX - used;
        assert!(room < QUEUED_BYTES_PER_PEER_MAX, "the total binds before the peer's share");
        assert_eq!(gate.admit(&peer(53), room + 1, now).unwrap_err(), Refused::Busy);
        big_ones.push(gate.admit(&peer(53), room, now).unwrap());
        drop(big_ones);
        let held: Vec<Ticket> = Vec::new();
        drop(held);
        drop(flood);
        drop((t2, t3));
        assert!(gate.queued.lock().is_empty(), "every place is freed with its ticket");
    }

    #[test]
    fn a_peer_that_keeps_relaying_bad_transactions_is_muted_longer_each_time() {
        let gate = RelayGate::new(4, QUEUED_MAX);
        let (bad, honest) = (peer(1), peer(2));
        let t0 = Instant::now();
        assert_eq!(gate.record(bad, 0, t0), None, "clean batches are no strike");
        for _ in 1..STRIKES_MAX {
            assert_eq!(gate.record(bad, 5, t0), None);
        }
        assert_eq!(gate.record(bad, 5, t0), Some(MUTE_BASE));
        assert_eq!(gate.admit(&bad, 1, t0).unwrap_err(), Refused::Muted);
        assert!(gate.admit(&honest, 1, t0).is_ok(), "others are not affected");
        let t1 = t0 + MUTE_BASE;
        assert!(gate.admit(&bad, 1, t1).is_ok(), "the mute ends");
        for _ in 1..STRIKES_MAX {
            gate.record(bad, 1, t1);
        }
        assert_eq!(gate.record(bad, 1, t1), Some(2 * MUTE_BASE));
        let mut t = t1;
        for _ in 0..10 {
            t += MUTE_MAX;
            for _ in 1..STRIKES_MAX {
                gate.record(bad, 1, t);
            }
            assert!(gate.record(bad, 1, t).unwrap() <= MUTE_MAX);
        }
    }
}
