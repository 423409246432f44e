//! Block sync: which peer to ask for committed blocks, and what to make of its answer.
//!
//! A peer's `Status` is a *claim*, not a fact: a byzantine peer can announce any height and then
//! answer with nothing. So the claimed tips of all peers are kept as hints, requests rotate
//! among the peers that claim to be ahead, one request is in flight at a time and times out,
//! and a peer whose answer does not deliver what it claimed (nothing while claiming to be
//! ahead, a block that fails the checks, no answer in time) sits out a back-off period that
//! doubles with each consecutive failure. No single peer can hold sync up for longer than one
//! time-out per back-off period.
//!
//! [`SyncPeers`] is synchronous and takes the time as an input, so its tests need no runtime.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpx_app::validate::check_synced;
use libp2p::PeerId;
use tracing::{debug, info, warn};

use super::Driver;
use crate::p2p::Command;
use crate::wire::{self, NetMessage, net_message::Kind};

/// Blocks asked for per sync request (the server may send fewer, to fit its frame).
pub(super) const SYNC_BATCH: u32 = 32;
/// How long an asked peer has to answer.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer's first failure benches it this long; each further failure in a row doubles it.
const BACKOFF_MIN: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_mins(5);
/// Peers whose claims are kept (permitted peers are far fewer; this only caps the table).
const PEERS_MAX: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Claim {
    tip: u64,
    /// Failures in a row; reset by an answer that delivers.
    strikes: u32,
    benched_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    peer: PeerId,
    from_height: u64,
    sent_at: Instant,
}

/// What one answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    /// At least one block was applied.
    Delivered,
    /// Nothing applicable although we still need the block asked for.
    Empty,
    /// A block failed the checks.
    Bad,
    /// Nothing applied, but we no longer need what we asked for (consensus got there first).
    Stale,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct SyncPeers {
    claims: BTreeMap<PeerId, Claim>,
    inflight: Option<Inflight>,
    last_asked: Option<PeerId>,
    pub timeout: Duration,
}

impl SyncPeers {
    pub fn new() -> Self {
        Self { claims: BTreeMap::new(), inflight: None, last_asked: None, timeout: SYNC_TIMEOUT }
    }

    /// `peer` says its tip is `tip`.
    pub fn on_status(&mut self, peer: PeerId, tip: u64) {
        if let Some(c) = self.claims.get_mut(&peer) {
            c.tip = tip;
        } else if self.claims.len() < PEERS_MAX {
            self.claims.insert(peer, Claim { tip, strikes: 0, benched_until: None });
        }
    }

    /// `peer` disconnected: its claim goes, and a request to it is over (without blame).
    pub fn forget(&mut self, peer: &PeerId) {
        if let Some(c) = self.claims.get(peer)
            && c.benched_until.is_none()
        {
            self.claims.remove(peer);
        }
        if self.inflight.is_some_and(|i| i.peer == *peer) {
            self.inflight = None;
        }
    }

    /// Is any unbenched peer ahead of `our_tip`?
    #[cfg(test)]
    fn someone_ahead(&self, our_tip: u64, now: Instant) -> bool {
        self.claims.values().any(|c| c.tip > our_tip && !benched(c, now))
    }

    /// The request to send now, if any: `(peer, from_height)`. A request whose time ran out
    /// benches its peer first (returned as the second value).
    pub fn next_request(
        &mut self,
        our_tip: u64,
        now: Instant,
    ) -> (Option<(PeerId, u64)>, Option<PeerId>) {
        let mut timed_out = None;
        if let Some(i) = self.inflight {
            if now.saturating_duration_since(i.sent_at) < self.timeout {
                return (None, None);
            }
            self.inflight = None;
            self.bench(&i.peer, now);
            timed_out = Some(i.peer);
        }
        let ahead: Vec<PeerId> = self
            .claims
            .iter()
            .filter(|(_, c)| c.tip > our_tip && !benched(c, now))
            .map(|(p, _)| *p)
            .collect();
        // Round robin in peer order, starting after the last peer asked.
        let pick = self
            .last_asked
            .and_then(|last| ahead.iter().find(|p| **p > last))
            .or_else(|| ahead.first())
            .copied();
        let Some(peer) = pick else { return (None, timed_out) };
        let from_height = our_tip + 1;
        self.inflight = Some(Inflight { peer, from_height, sent_at: now });
        self.last_asked = Some(peer);
        (Some((peer, from_height)), timed_out)
    }

    /// The height the request in flight to `peer` asked from, if `peer` is the one asked.
    pub fn asked_from(&self, peer: &PeerId) -> Option<u64> {
        self.inflight.filter(|i| i.peer == *peer).map(|i| i.from_height)
    }

    /// Record `peer`'s answer. Returns true when the peer was benched for it.
    pub fn on_answer(&mut self, peer: &PeerId, answer: Answer, now: Instant) -> bool {
        if self.inflight.is_some_and(|i| i.peer == *peer) {
            self.inflight = None;
        }
        match answer {
            Answer::Delivered => {
                if let Some(c) = self.claims.get_mut(peer) {
                    c.strikes = 0;
                    c.benched_until = None;
                }
                false
            }
            Answer::Stale => false,
            Answer::Empty | Answer::Bad => {
                self.bench(peer, now);
                true
            }
        }
    }

    fn bench(&mut self, peer: &PeerId, now: Instant) {
        // A peer that never sent a status still gets an entry, so the bench holds.
        if !self.claims.contains_key(peer) && self.claims.len() >= PEERS_MAX {
            return;
        }
        let c =
            self.claims.entry(*peer).or_insert(Claim { tip: 0, strikes: 0, benched_until: None });
        let factor = 1u32 << c.strikes.min(16);
        let period = BACKOFF_MIN.saturating_mul(factor).min(BACKOFF_MAX);
        c.strikes = c.strikes.saturating_add(1);
        c.benched_until = Some(now + period);
    }
}

fn benched(c: &Claim, now: Instant) -> bool {
    c.benched_until.is_some_and(|t| now < t)
}

impl Driver {
    pub(super) fn maybe_sync(&mut self) {
        let tip = self.store.tip_height();
        let (request, timed_out) = self.sync.next_request(tip, Instant::now());
        if let Some(peer) = timed_out {
            warn!(%peer, "sync request timed out; benching the peer");
            self.shared.metrics.sync_peers_benched.inc();
        }
        let Some((peer, from)) = request else { return };
        debug!(%peer, from, "requesting blocks");
        self.send(Command::Send(
            peer,
            NetMessage {
                kind: Some(Kind::SyncRequest(wire::SyncRequest {
                    from_height: from,
                    max_blocks: SYNC_BATCH,
                })),
            },
        ));
    }

    pub(super) fn on_synced(
        &mut self,
        from: PeerId,
        resp: wire::SyncResponse,
    ) -> anyhow::Result<()> {
        // What we asked this peer for; a late answer (after its time-out) is still used.
        let asked = self.sync.asked_from(&from).unwrap_or(self.store.tip_height() + 1);
        let mut applied = 0;
        let mut bad = false;
        for sb in resp.blocks.into_iter().take(SYNC_BATCH as usize) {
            let verdict = check_synced(
                &self.store,
                self.block_rules(),
                &self.validators,
                &sb.block,
                &sb.certificate,
                &sb.parent_certificate,
            );
            match verdict {
                Ok(Some((block, hashes, cert))) => {
                    self.apply_block(Arc::new(block), &hashes, &cert, &sb.parent_certificate)?;
                    applied += 1;
                }
                Ok(None) => {} // not the next block
                Err(reason) => {
                    warn!(peer = %from, %reason, "bad block from sync; ignoring the rest");
                    bad = true;
                    break;
                }
            }
        }
        let answer = if bad {
            Answer::Bad
        } else if applied > 0 {
            Answer::Delivered
        } else if self.store.tip_height() < asked {
            Answer::Empty
        } else {
            Answer::Stale
        };
        if self.sync.on_answer(&from, answer, Instant::now()) {
            warn!(peer = %from, ?answer, "sync peer did not deliver what it claimed; benching it");
            self.shared.metrics.sync_peers_benched.inc();
        }
        if applied > 0 {
            info!(peer = %from, applied, tip = self.store.tip_height(), "synced blocks");
        }
        // Ask again at once: the next peer in turn, or the same one for the next batch.
        self.maybe_sync();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    fn peer(i: u8) -> PeerId {
        crate::p2p::peer_id(&Keypair::from_seed([i; 32]).public())
    }

    #[test]
    fn requests_rotate_among_peers_that_claim_to_be_ahead() {
        let mut s = SyncPeers::new();
        let t0 = Instant::now();
        s.on_status(peer(1), 10);
        s.on_status(peer(2), 10);
        s.on_status(peer(3), 3); // not ahead of our 5
        let mut asked = Vec::new();
        for _ in 0..4 {
            let (req, _) = s.next_request(5, t0);
            let (p, from) = req.unwrap();
            assert_eq!(from, 6);
            assert_eq!(s.next_request(5, t0).0, None, "one request in flight at a time");
            s.on_answer(&p, Answer::Delivered, t0);
            asked.push(p);
        }
        assert_eq!(asked[0], asked[2]);
        assert_eq!(asked[1], asked[3]);
        assert_ne!(asked[0], asked[1]);
        assert!(!asked.contains(&peer(3)));
    }

    #[test]
    fn a_peer_that_answers_empty_is_benched_with_growing_back_off() {
        let mut s = SyncPeers::new();
        let t0 = Instant::now();
        s.on_status(peer(1), 1_000_000);
        let (Some((p, _)), _) = s.next_request(0, t0) else { panic!() };
        assert!(s.on_answer(&p, Answer::Empty, t0));
        assert_eq!(s.next_request(0, t0).0, None, "benched");
        assert!(!s.someone_ahead(0, t0));
        let t1 = t0 + BACKOFF_MIN;
        let (Some(_), _) = s.next_request(0, t1) else { panic!("the bench is over") };
        assert!(s.on_answer(&p, Answer::Bad, t1));
        assert_eq!(s.next_request(0, t1 + BACKOFF_MIN).0, None, "the second bench is longer");
        assert!(s.next_request(0, t1 + BACKOFF_MIN * 2).0.is_some());
    }

    #[test]
    fn a_request_that_times_out_benches_its_peer_and_moves_on() {
        let mut s = SyncPeers::new();
        let t0 = Instant::now();
        s.on_status(peer(1), 100);
        s.on_status(peer(2), 100);
        let (Some((first, _)), None) = s.next_request(0, t0) else { panic!() };
        assert_eq!(s.next_request(0, t0 + SYNC_TIMEOUT / 2), (None, None));
        let (Some((second, _)), Some(late)) = s.next_request(0, t0 + SYNC_TIMEOUT) else {
            panic!()
        };
        assert_eq!(late, first);
        assert_ne!(second, first);
    }

    #[test]
    fn a_stale_answer_blames_nobody_and_a_delivery_clears_strikes() {
        let mut s = SyncPeers::new();
        let t0 = Instant::now();
        s.on_status(peer(1), 100);
        let (Some((p, _)), _) = s.next_request(0, t0) else { panic!() };
        assert!(!s.on_answer(&p, Answer::Stale, t0));
        assert!(s.someone_ahead(0, t0));
        s.next_request(0, t0);
        s.on_answer(&p, Answer::Empty, t0);
        let later = t0 + BACKOFF_MIN;
        s.next_request(0, later);
        s.on_answer(&p, Answer::Delivered, later);
        s.next_request(0, later);
        s.on_answer(&p, Answer::Empty, later);
        assert!(s.next_request(0, later + BACKOFF_MIN).0.is_some(), "strikes were reset");
    }

    #[test]
    fn forgetting_a_peer_ends_its_request_but_not_its_bench() {
        let mut s = SyncPeers::new();
        let t0 = Instant::now();
        s.on_status(peer(1), 100);
        s.on_status(peer(2), 100);
        let (Some((p, _)), _) = s.next_request(0, t0) else { panic!() };
        s.forget(&p);
        let (Some((q, _)), None) = s.next_request(0, t0) else { panic!("no wait for a gone peer") };
        assert_ne!(p, q);
        assert!(s.on_answer(&q, Answer::Empty, t0));
        // Reconnecting and claiming again does not lift the bench.
        s.forget(&q);
        s.on_status(q, 100);
        assert!(!s.someone_ahead(0, t0));
        assert!(s.someone_ahead(0, t0 + BACKOFF_MIN));
    }
}
