//! The Tendermint state machine (arXiv 1807.04938, Algorithm 1) as a pure function of its
//! inputs: [`Consensus::handle`] takes one [`Input`] and returns the [`Output`]s (effects) the
//! driver must carry out, in order. No clock, no randomness, no I/O.
//!
//! Rules are evaluated as the paper states them, as conditions over the message log: after any
//! input the core fires every rule whose condition holds, one at a time, until none does
//! ([`HeightState::progress`]). Each firing changes the state so it cannot fire again, so the
//! loop ends.

use std::collections::{BTreeMap, BTreeSet};

use dpx_crypto::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

use crate::round_state::{Added, RoundState};
use crate::safety::ValueRound;
use crate::{
    Certificate, ConsensusConfig, Error, Evidence, Hash, Height, Proposal, ProposerSchedule, Round,
    SafetyState, SignedMessage, SignedProposal, SignedVote, Step, ValidatorIndex, ValidatorSet,
    Vote, VoteKind, WeightedRoundRobin,
};

/// Everything that can happen to the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// Begin `height` with its validator set (paper line 10 / line 54).
    StartHeight { height: Height, validators: ValidatorSet },
    /// A proposal from the network, or our own looped back by the driver.
    Proposal(SignedProposal),
    /// A vote from the network, or our own looped back by the driver.
    Vote(SignedVote),
    /// A timeout scheduled by [`Output::ScheduleTimeout`] expired.
    TimeoutFired { height: Height, round: Round, step: Step },
    /// The application's answer to [`Output::RequestValue`] (the paper's `getValue()`).
    ProposeValue { height: Height, round: Round, value_id: Hash },
    /// The application's answer to [`Output::ValidateValue`] (the paper's `valid(v)`).
    ValueValidity { height: Height, round: Round, value_id: Hash, valid: bool },
}

/// An effect for the driver. Carry them out in order: a [`Output::PersistSafety`] must be
/// durable before any later [`Output::Broadcast`] leaves the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this state durably before sending anything that follows.
    PersistSafety(SafetyState),
    /// Send to every validator, and loop back to this core as an input.
    Broadcast(SignedMessage),
    /// Fire [`Input::TimeoutFired`] with these fields after `duration_ms`.
    ScheduleTimeout { height: Height, round: Round, step: Step, duration_ms: u64 },
    /// We propose in this round: answer with [`Input::ProposeValue`].
    RequestValue { height: Height, round: Round },
    /// A proposal names this value: answer with [`Input::ValueValidity`] once the block is
    /// known and checked.
    ValidateValue { height: Height, round: Round, value_id: Hash },
    /// The value decided at `height` and its commit certificate (paper line 51).
    Decide { height: Height, value_id: Hash, certificate: Certificate },
    /// A validator equivocated.
    Evidence(Evidence),
}

/// The state the conformance harness and operators look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    pub height: Height,
    pub round: Round,
    pub step: Step,
    pub decision: Option<Hash>,
    pub locked: Option<ValueRound>,
    pub valid: Option<ValueRound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validity {
    Pending,
    Valid,
    Invalid,
}

/// What the core does with an admitted message.
enum Admit {
    Current,
    NextHeight,
    Ignore,
}

/// Everything the core keeps across heights.
#[derive(Debug)]
struct Ctx {
    chain_id: String,
    signer: Option<Keypair>,
    /// A validator key governance rotates this node to: it replaces `signer` at the first
    /// height whose set holds it (see [`Consensus::stage_next_signer`]).
    next_signer: Option<Keypair>,
    config: ConsensusConfig,
    schedule: Box<dyn ProposerSchedule>,
    safety: SafetyState,
}

/// The Tendermint core of one node. See the crate docs for a walk-through.
#[derive(Debug)]
pub struct Consensus {
    ctx: Ctx,
    current: Option<HeightState>,
    /// Messages for the height after the current one, replayed when it starts.
    next_height: Vec<SignedMessage>,
}

impl Consensus {
    /// A core for `chain_id`. `signer: None` makes a follower that runs the algorithm but never
    /// signs. `persisted` is the last [`Output::PersistSafety`] the driver wrote, if any.
    pub fn new(
        chain_id: impl Into<String>,
        signer: Option<Keypair>,
        config: ConsensusConfig,
        persisted: Option<SafetyState>,
    ) -> Self {
        Self {
            ctx: Ctx {
                chain_id: chain_id.into(),
                signer,
                next_signer: None,
                config,
                schedule: Box::new(WeightedRoundRobin),
                safety: persisted.unwrap_or_default(),
            },
            current: None,
            next_height: Vec::new(),
        }
    }

    /// Stage the key a governed rotation moves this validator to. From the first height whose
    /// validator set holds `next`, the core signs with it and drops the old key for good; before
    /// that it signs with the old one. One key per height, so a rotation can never sign the
    /// same height twice (once with each key); if a set holds both, the new key alone signs.
    pub fn stage_next_signer(&mut self, next: Keypair) {
        self.ctx.next_signer = Some(next);
    }

    /// The key this core signs with now (after any rotation).
    pub fn signer_key(&self) -> Option<PublicKey> {
        self.ctx.signer.as_ref().map(Keypair::public)
    }

    /// Replace the proposer rule (default: [`WeightedRoundRobin`]).
    #[must_use]
    pub fn with_proposer_schedule(mut self, schedule: Box<dyn ProposerSchedule>) -> Self {
        self.ctx.schedule = schedule;
        self
    }

    /// Apply one input. An `Err` means the input was refused and nothing changed.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Output>, Error> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight { height, validators } => {
                self.start_height(height, validators, &mut out)?;
            }
            Input::Proposal(p) => self.on_message(SignedMessage::Proposal(p), &mut out)?,
            Input::Vote(v) => self.on_message(SignedMessage::Vote(v), &mut out)?,
            Input::TimeoutFired { height, round, step } => {
                if let Some(hs) = self.current.as_mut()
                    && hs.height == height
                {
                    hs.on_timeout(round, step, &mut self.ctx, &mut out);
                }
            }
            Input::ProposeValue { height, round, value_id } => {
                if let Some(hs) = self.current.as_mut()
                    && hs.height == height
                {
                    hs.on_propose_value(round, value_id, &mut self.ctx, &mut out);
                }
            }
            Input::ValueValidity { height, value_id, valid, .. } => {
                if let Some(hs) = self.current.as_mut()
                    && hs.height == height
                {
                    hs.on_validity(value_id, valid, &mut self.ctx, &mut out);
                }
            }
        }
        Ok(out)
    }

    /// Would this message be accepted? Checks height, round window, membership, proposer and
    /// signature, without changing anything (for gossip validation before relaying).
    pub fn check(&self, msg: &SignedMessage) -> Result<(), Error> {
        self.admit(msg).map(|_| ())
    }

    /// Is this exact signed message already in the current height's log? For a gossip layer
    /// deciding what a peer still needs.
    pub fn knows(&self, msg: &SignedMessage) -> bool {
        self.current.as_ref().is_some_and(|hs| hs.height == msg.height() && hs.knows(msg))
    }

    /// The current state, once a height has started.
    pub fn view(&self) -> Option<StateView> {
        self.current.as_ref().map(|hs| StateView {
            height: hs.height,
            round: hs.round,
            step: hs.step,
            decision: hs.decision,
            locked: hs.locked,
            valid: hs.valid,
        })
    }

    /// The current height, once started.
    pub fn height(&self) -> Option<Height> {
        self.current.as_ref().map(|hs| hs.height)
    }

    /// The safety state as last emitted (what a restart must be given).
    pub fn safety(&self) -> &SafetyState {
        &self.ctx.safety
    }

    /// The current height's validator set.
    pub fn validators(&self) -> Option<&ValidatorSet> {
        self.current.as_ref().map(|hs| &hs.validators)
    }

    /// Our index in the current validator set, if we are a member with a key.
    pub fn my_index(&self) -> Option<ValidatorIndex> {
        self.current.as_ref().and_then(|hs| hs.me)
    }

    /// The chain this core runs on.
    pub fn chain_id(&self) -> &str {
        &self.ctx.chain_id
    }

    fn start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        out: &mut Vec<Output>,
    ) -> Result<(), Error> {
        if let Some(hs) = &self.current
            && height <= hs.height
        {
            return Err(Error::BadStartHeight { got: height, current: hs.height });
        }
        // A staged key takes over at the first height whose set holds it, before `me` is known:
        // the whole height (every round) is signed with one key.
        if let Some(next) = &self.ctx.next_signer
            && validators.index_of(&next.public()).is_some()
        {
            self.ctx.signer = self.ctx.next_signer.take();
        }
        let me = self.ctx.signer.as_ref().and_then(|k| validators.index_of(&k.public()));
        let safety = &mut self.ctx.safety;
        if height > safety.height {
            *safety = SafetyState::at_height(height);
        }
        // A restart at the height we last signed in resumes at that round with the persisted
        // lock: rounds below are over for us, and the guard refuses anything we already passed.
        let (round, locked, valid) = if safety.height == height {
            (safety.last_signed.map_or(Round(0), |(r, _)| r), safety.locked, safety.valid)
        } else {
            (Round(0), None, None)
        };
        let mut hs = HeightState {
            height,
            validators,
            me,
            round,
            step: Step::Propose,
            decision: None,
            locked,
            valid,
            rounds: BTreeMap::new(),
            validity: BTreeMap::new(),
            awaiting_value: None,
            evidence_sent: BTreeSet::new(),
        };
        hs.start_round(round, &mut self.ctx, out); // L10 / L54
        // After a crash between persist and send, the last signed message may never have left:
        // send it again (it is the identical message, so it conflicts with nothing).
        // A proposal was sent again by `start_round` already (we resume in its round).
        if let Some(last @ SignedMessage::Vote(_)) = self.ctx.safety.last_message
            && self.ctx.safety.height == height
        {
            out.push(Output::Broadcast(last));
        }
        self.current = Some(hs);
        for msg in std::mem::take(&mut self.next_height) {
            if msg.height() == height {
                // Never admitted before: a bad one is dropped here like any refused message.
                let _ = self.on_message(msg, out);
            }
        }
        Ok(())
    }

    fn on_message(&mut self, msg: SignedMessage, out: &mut Vec<Output>) -> Result<(), Error> {
        match self.admit(&msg)? {
            Admit::Ignore => {}
            Admit::NextHeight => self.next_height.push(msg),
            Admit::Current => {
                if let Some(hs) = self.current.as_mut() {
                    hs.record(msg, &self.ctx, out);
                    hs.progress(&mut self.ctx, out);
                }
            }
        }
        Ok(())
    }

    fn admit(&self, msg: &SignedMessage) -> Result<Admit, Error> {
        let hs = self.current.as_ref().ok_or(Error::NotStarted)?;
        let height = msg.height();
        if height < hs.height {
            return Err(Error::WrongHeight { got: height, current: hs.height });
        }
        if height > hs.height.next() {
            return Err(Error::FarFutureHeight { got: height, current: hs.height });
        }
        if height == hs.height.next() {
            // Verified only when that height starts: its validator set is not known yet.
            let max = self.ctx.config.next_height_buffer_max;
            if self.next_height.len() >= max {
                return Err(Error::BufferFull { max });
            }
            return Ok(Admit::NextHeight);
        }
        if hs.decision.is_some() {
            return Ok(Admit::Ignore);
        }
        let round_max = Round(hs.round.0.saturating_add(self.ctx.config.rounds_ahead_max));
        if msg.round() > round_max {
            return Err(Error::FarFutureRound { got: msg.round(), current: hs.round });
        }
        let signer = msg.signer();
        if hs.validators.get(signer).is_none() {
            return Err(Error::UnknownValidator { index: signer, len: hs.validators.len() });
        }
        if let SignedMessage::Proposal(p) = msg {
            let expected = self.ctx.schedule.proposer(&hs.validators, hs.height, p.proposal.round);
            if p.proposal.proposer != expected {
                return Err(Error::NotProposer { round: p.proposal.round, got: signer, expected });
            }
        }
        // Gossip re-sends messages many times; byte-identical ones were verified on arrival.
        if hs.knows(msg) {
            return Ok(Admit::Ignore);
        }
        msg.verify(&self.ctx.chain_id, &hs.validators)?;
        Ok(Admit::Current)
    }
}

/// The state of the height being decided.
#[derive(Debug)]
struct HeightState {
    height: Height,
    validators: ValidatorSet,
    me: Option<ValidatorIndex>,
    round: Round,
    step: Step,
    decision: Option<Hash>,
    locked: Option<ValueRound>,
    valid: Option<ValueRound>,
    rounds: BTreeMap<Round, RoundState>,
    validity: BTreeMap<Hash, Validity>,
    awaiting_value: Option<Round>,
    /// One evidence per offender and (round, step) is enough to prove it.
    evidence_sent: BTreeSet<(ValidatorIndex, Round, Step)>,
}

impl HeightState {
    /// Is this exact signed message (signature included) already in the log?
    fn knows(&self, msg: &SignedMessage) -> bool {
        match msg {
            SignedMessage::Proposal(p) => {
                self.rounds.get(&p.proposal.round).is_some_and(|rs| rs.proposals.contains(p))
            }
            SignedMessage::Vote(v) => {
                self.rounds.get(&v.vote.round).is_some_and(|rs| match v.vote.kind {
                    VoteKind::Prevote => rs.prevotes.contains(v),
                    VoteKind::Precommit => rs.precommits.contains(v),
                })
            }
        }
    }

    fn is_valid(&self, value: &Hash) -> bool {
        self.validity.get(value) == Some(&Validity::Valid)
    }

    fn timeout(&self, ctx: &Ctx, step: Step, out: &mut Vec<Output>) {
        out.push(Output::ScheduleTimeout {
            height: self.height,
            round: self.round,
            step,
            duration_ms: ctx.config.timeouts.duration_ms(step, self.round),
        });
    }

    /// L11: StartRound.
    fn start_round(&mut self, round: Round, ctx: &mut Ctx, out: &mut Vec<Output>) {
        self.round = round; // L12
        self.step = Step::Propose; // L13
        self.awaiting_value = None;
        let proposer = ctx.schedule.proposer(&self.validators, self.height, round);
        if self.me == Some(proposer) && ctx.signer.is_some() {
            // L14
            let signed = ctx
                .safety
                .proposal
                .filter(|p| ctx.safety.height == self.height && p.proposal.round == round);
            if let Some(p) = signed {
                // A restart in a round we already proposed in: L14–L17 ran before the crash
                // and what they signed is on disk. Send exactly that again; asking for a new
                // value would only meet the guard's refusal and lose the round.
                self.validity.insert(p.proposal.value_id, Validity::Valid);
                out.push(Output::Broadcast(SignedMessage::Proposal(p)));
            } else if let Some(v) = self.valid {
                self.propose(v.value_id, Some(v.round), ctx, out); // L15
            } else {
                // L16: getValue() is asynchronous; the answer is Input::ProposeValue.
                self.awaiting_value = Some(round);
                out.push(Output::RequestValue { height: self.height, round });
            }
        }
        // L19. The proposer schedules it too (the paper does not): if the application never
        // answers RequestValue the round still ends. OnTimeoutPropose only acts while still in
        // the propose step, so this never changes what a timely proposer does.
        self.timeout(ctx, Step::Propose, out);
    }

    /// L17: broadcast ⟨PROPOSAL, h, r, v, vr⟩, after the guard allows and the state is persisted.
    fn propose(
        &mut self,
        value_id: Hash,
        pol_round: Option<Round>,
        ctx: &mut Ctx,
        out: &mut Vec<Output>,
    ) {
        let (Some(me), Some(key)) = (self.me, ctx.signer.as_ref()) else { return };
        let proposal =
            Proposal { height: self.height, round: self.round, value_id, pol_round, proposer: me };
        let digest = proposal.digest(&ctx.chain_id);
        if ctx.safety.sign(self.height, self.round, Step::Propose, digest).is_err() {
            return;
        }
        let signature = key.sign_digest(&digest);
        // Our own value (or our valid value) needs no validation round trip.
        self.validity.insert(value_id, Validity::Valid);
        let signed = SignedProposal { proposal, signature };
        ctx.safety.locked = self.locked;
        ctx.safety.valid = self.valid;
        ctx.safety.last_message = Some(SignedMessage::Proposal(signed));
        ctx.safety.proposal = Some(signed);
        out.push(Output::PersistSafety(ctx.safety));
        out.push(Output::Broadcast(SignedMessage::Proposal(signed)));
    }

    /// Broadcast a vote, after the guard allows and the state is persisted. A refused vote is
    /// simply not sent: the step still advances, exactly as if the message were lost.
    fn cast(
        &mut self,
        kind: VoteKind,
        value_id: Option<Hash>,
        ctx: &mut Ctx,
        out: &mut Vec<Output>,
    ) {
        let (Some(me), Some(key)) = (self.me, ctx.signer.as_ref()) else { return };
        let vote = Vote { kind, height: self.height, round: self.round, value_id, validator: me };
        let digest = vote.digest(&ctx.chain_id);
        if ctx.safety.sign(self.height, self.round, kind.step(), digest).is_err() {
            return;
        }
        let signature = key.sign_digest(&digest);
        let msg = SignedMessage::Vote(SignedVote { vote, signature });
        ctx.safety.locked = self.locked;
        ctx.safety.valid = self.valid;
        ctx.safety.last_message = Some(msg);
        out.push(Output::PersistSafety(ctx.safety));
        out.push(Output::Broadcast(msg));
    }

    fn on_propose_value(
        &mut self,
        round: Round,
        value_id: Hash,
        ctx: &mut Ctx,
        out: &mut Vec<Output>,
    ) {
        // A late answer for a round we left is dropped.
        if self.decision.is_none()
            && self.awaiting_value == Some(round)
            && self.round == round
            && self.step == Step::Propose
        {
            self.awaiting_value = None;
            self.propose(value_id, None, ctx, out); // L16–L17
            self.progress(ctx, out);
        }
    }

    fn on_validity(&mut self, value_id: Hash, valid: bool, ctx: &mut Ctx, out: &mut Vec<Output>) {
        // Only answers to our own requests are taken, so the table stays bounded.
        if self.validity.get(&value_id) == Some(&Validity::Pending) {
            self.validity.insert(value_id, if valid { Validity::Valid } else { Validity::Invalid });
            self.progress(ctx, out);
        }
    }

    fn on_timeout(&mut self, round: Round, step: Step, ctx: &mut Ctx, out: &mut Vec<Output>) {
        if self.decision.is_some() || round != self.round {
            return;
        }
        match step {
            Step::Propose if self.step == Step::Propose => {
                // L57–L60
                self.cast(VoteKind::Prevote, None, ctx, out);
                self.step = Step::Prevote;
            }
            Step::Prevote if self.step == Step::Prevote => {
                // L61–L64
                self.cast(VoteKind::Precommit, None, ctx, out);
                self.step = Step::Precommit;
            }
            Step::Precommit => self.start_round(round.next(), ctx, out), // L65–L67
            _ => return,
        }
        self.progress(ctx, out);
    }

    /// Add an admitted (verified, current-height) message to the log.
    fn record(&mut self, msg: SignedMessage, ctx: &Ctx, out: &mut Vec<Output>) {
        let signer = msg.signer();
        let power = self.validators.get(signer).map_or(0, |v| v.power);
        match msg {
            SignedMessage::Vote(sv) => {
                let v = sv.vote;
                let rs = self.rounds.entry(v.round).or_default();
                let tally = match v.kind {
                    VoteKind::Prevote => &mut rs.prevotes,
                    VoteKind::Precommit => &mut rs.precommits,
                };
                match tally.add(sv, power) {
                    Added::New => rs.add_sender(signer, power),
                    Added::Duplicate => {}
                    Added::Conflict(first) => {
                        if self.evidence_sent.insert((signer, v.round, v.kind.step())) {
                            out.push(Output::Evidence(Evidence::votes(first, sv)));
                        }
                    }
                }
            }
            SignedMessage::Proposal(sp) => {
                let p = sp.proposal;
                let rs = self.rounds.entry(p.round).or_default();
                if rs.proposals.iter().any(|x| x.proposal == p) {
                    return;
                }
                if let Some(first) = rs.proposals.first()
                    && self.evidence_sent.insert((signer, p.round, Step::Propose))
                {
                    out.push(Output::Evidence(Evidence::proposals(*first, sp)));
                }
                if rs.proposals.len() >= ctx.config.proposals_per_round_max {
                    return;
                }
                rs.proposals.push(sp);
                rs.add_sender(signer, power);
                if let std::collections::btree_map::Entry::Vacant(e) =
                    self.validity.entry(p.value_id)
                {
                    e.insert(Validity::Pending);
                    out.push(Output::ValidateValue {
                        height: self.height,
                        round: p.round,
                        value_id: p.value_id,
                    });
                }
            }
        }
    }

    /// Fire rules until none holds.
    fn progress(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) {
        while self.decision.is_none() && self.fire_one(ctx, out) {}
    }

    fn fire_one(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        self.upon_decide(out)
            || self.upon_round_skip(ctx, out)
            || self.upon_proposal_in_propose(ctx, out)
            || self.upon_prevote_quorum_any(ctx, out)
            || self.upon_proposal_and_prevote_quorum(ctx, out)
            || self.upon_prevote_quorum_nil(ctx, out)
            || self.upon_precommit_quorum_any(ctx, out)
    }

    /// L49: ⟨PROPOSAL, h, r, v, ∗⟩ from proposer(h, r) AND 2f+1 ⟨PRECOMMIT, h, r, id(v)⟩, any
    /// round r, while decision = nil.
    fn upon_decide(&mut self, out: &mut Vec<Output>) -> bool {
        let quorum = self.validators.quorum();
        let found = self.rounds.iter().find_map(|(r, rs)| {
            rs.precommits
                .values_with(quorum)
                .find(|v| {
                    self.is_valid(v) && rs.proposals.iter().any(|p| p.proposal.value_id == *v)
                }) // L50
                .map(|v| (*r, v))
        });
        let Some((round, value_id)) = found else { return false };
        let signatures = self.rounds[&round].precommits.signatures_for(Some(value_id));
        self.decision = Some(value_id); // L51
        out.push(Output::Decide {
            height: self.height,
            value_id,
            certificate: Certificate { height: self.height, round, value_id, signatures },
        });
        // L52–L54 (next height, reset, StartRound(0)) are the driver's Input::StartHeight.
        true
    }

    /// L55: f+1 messages of a higher round → StartRound(that round). The highest such round.
    fn upon_round_skip(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        let needed = self.validators.one_third_plus();
        let target = self
            .rounds
            .iter()
            .rev()
            .take_while(|(r, _)| **r > self.round)
            .find(|(_, rs)| rs.sender_power >= needed)
            .map(|(r, _)| *r);
        match target {
            Some(r) => {
                self.start_round(r, ctx, out); // L56
                true
            }
            None => false,
        }
    }

    /// L22 and L28, in the propose step. Proposals are considered in arrival order; the first
    /// that satisfies either rule is acted on. A verdict still pending blocks (the paper's
    /// `valid(v)` is just slow); the propose timeout bounds the wait.
    fn upon_proposal_in_propose(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Propose {
            return false;
        }
        let Some(rs) = self.rounds.get(&self.round) else { return false };
        let quorum = self.validators.quorum();
        let mut vote = None;
        for sp in &rs.proposals {
            let p = sp.proposal;
            let v = p.value_id;
            let allowed = match p.pol_round {
                // L22: ⟨PROPOSAL, h, r, v, −1⟩. L23: lockedRound = −1 ∨ lockedValue = v.
                None => self.locked.is_none_or(|l| l.value_id == v),
                // L28: ⟨PROPOSAL, h, r, v, vr⟩ AND 2f+1 ⟨PREVOTE, h, vr, id(v)⟩, 0 ≤ vr < r.
                // L29: lockedRound ≤ vr ∨ lockedValue = v.
                Some(vr) if vr < self.round => {
                    let pol = self
                        .rounds
                        .get(&vr)
                        .is_some_and(|x| x.prevotes.power_for(Some(v)) >= quorum);
                    if !pol {
                        continue;
                    }
                    self.locked.is_none_or(|l| l.round <= vr || l.value_id == v)
                }
                Some(_) => continue,
            };
            match self.validity.get(&v) {
                Some(Validity::Valid) => vote = Some(if allowed { Some(v) } else { None }), // L24/L30
                Some(Validity::Invalid) => vote = Some(None), // L26/L32
                Some(Validity::Pending) | None => return false,
            }
            break;
        }
        let Some(value) = vote else { return false };
        self.cast(VoteKind::Prevote, value, ctx, out);
        self.step = Step::Prevote; // L27/L33
        true
    }

    /// L34: 2f+1 ⟨PREVOTE, h, r, ∗⟩ while step = prevote, for the first time.
    fn upon_prevote_quorum_any(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Prevote {
            return false;
        }
        let quorum = self.validators.quorum();
        let Some(rs) = self.rounds.get_mut(&self.round) else { return false };
        if rs.fired.l34_prevote_timeout || rs.prevotes.total_power() < quorum {
            return false;
        }
        rs.fired.l34_prevote_timeout = true;
        self.timeout(ctx, Step::Prevote, out); // L35
        true
    }

    /// L36: ⟨PROPOSAL, h, r, v, ∗⟩ AND 2f+1 ⟨PREVOTE, h, r, id(v)⟩ while valid(v) ∧ step ≥
    /// prevote, for the first time.
    fn upon_proposal_and_prevote_quorum(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        if self.step == Step::Propose {
            return false;
        }
        let quorum = self.validators.quorum();
        let Some(rs) = self.rounds.get(&self.round) else { return false };
        if rs.fired.l36_lock {
            return false;
        }
        let Some(v) = rs
            .proposals
            .iter()
            .map(|p| p.proposal.value_id)
            .find(|v| self.is_valid(v) && rs.prevotes.power_for(Some(*v)) >= quorum)
        else {
            return false;
        };
        if let Some(rs) = self.rounds.get_mut(&self.round) {
            rs.fired.l36_lock = true;
        }
        let here = ValueRound { value_id: v, round: self.round };
        self.valid = Some(here); // L42–L43, set first so the persisted state carries it
        if self.step == Step::Prevote {
            self.locked = Some(here); // L38–L39
            self.cast(VoteKind::Precommit, Some(v), ctx, out); // L40
            self.step = Step::Precommit; // L41
        }
        true
    }

    /// L44: 2f+1 ⟨PREVOTE, h, r, nil⟩ while step = prevote.
    fn upon_prevote_quorum_nil(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        if self.step != Step::Prevote {
            return false;
        }
        let quorum = self.validators.quorum();
        if self.rounds.get(&self.round).is_none_or(|rs| rs.prevotes.power_for(None) < quorum) {
            return false;
        }
        self.cast(VoteKind::Precommit, None, ctx, out); // L45
        self.step = Step::Precommit; // L46
        true
    }

    /// L47: 2f+1 ⟨PRECOMMIT, h, r, ∗⟩ for the first time.
    fn upon_precommit_quorum_any(&mut self, ctx: &mut Ctx, out: &mut Vec<Output>) -> bool {
        let quorum = self.validators.quorum();
        let Some(rs) = self.rounds.get_mut(&self.round) else { return false };
        if rs.fired.l47_precommit_timeout || rs.precommits.total_power() < quorum {
            return false;
        }
        rs.fired.l47_precommit_timeout = true;
        self.timeout(ctx, Step::Precommit, out); // L48
        true
    }
}
