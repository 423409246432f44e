//! The simulated node driver: feeds inputs to cores, carries out their outputs (persist before
//! broadcast, timeouts, the application's answers, decisions), gossip, crashes and restarts.

use std::collections::VecDeque;

use super::*;

fn error_kind(e: &Error) -> String {
    let s = format!("{e:?}");
    s.split([' ', '{', '(']).next().unwrap_or("").to_string()
}

fn as_input(m: SignedMessage) -> Input {
    match m {
        SignedMessage::Proposal(p) => Input::Proposal(p),
        SignedMessage::Vote(v) => Input::Vote(v),
    }
}

impl World {
    pub(super) fn boot(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        if matches!(inst.role, Role::Byzantine(_)) || inst.core.is_some() {
            return;
        }
        // Its peers' relays see it (re)connect and forget what they sent it.
        for inst in &mut self.instances {
            for r in inst.gossip.values_mut().flat_map(|ms| ms.values_mut()) {
                r.sent_at[i] = 0;
            }
        }
        let inst = &mut self.instances[i];
        let key = self.keys[inst.validator].clone();
        inst.core = Some(Consensus::new(CHAIN, Some(key), consensus_config(), inst.disk));
        inst.incarnation += 1;
        let height = inst.committed.next();
        let _ = self.feed(i, Input::StartHeight { height, validators: self.set.clone() });
    }

    fn crash(&mut self, i: usize) {
        self.instances[i].core = None;
        self.crashes += 1;
        let after = self.rng.gen_range(50..500);
        self.schedule(after, Event::Restart { to: i });
    }

    pub(super) fn heal(&mut self) {
        for i in 0..self.instances.len() {
            self.boot(i);
        }
        self.heal_height = self.honest_heights().into_iter().max().unwrap_or(0);
    }

    pub(super) fn apply(&mut self, e: Event) {
        match e {
            Event::Deliver { to, from, bytes } => {
                self.trace
                    .update(&[0])
                    .update(&(to as u64).to_le_bytes())
                    .update(&(from as u64).to_le_bytes());
                self.trace.update(&bytes);
                self.delivered += 1;
                if self.is_checked(to) {
                    self.delivered_to_honest += 1;
                }
                self.deliver(to, from, &bytes);
            }
            Event::Timeout { to, incarnation, height, round, step } => {
                if self.instances[to].incarnation == incarnation
                    && self.instances[to].core.is_some()
                {
                    self.trace.update(&[1]).update(&(to as u64).to_le_bytes());
                    let _ = self.feed(to, Input::TimeoutFired { height, round, step });
                }
            }
            Event::Restart { to } => {
                self.trace.update(&[2]).update(&(to as u64).to_le_bytes());
                self.boot(to);
            }
            Event::Gossip => {
                self.gossip();
                self.schedule(GOSSIP_EVERY_MS, Event::Gossip);
            }
            Event::Tick => {
                self.tick();
                self.schedule(TICK_EVERY_MS, Event::Tick);
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, bytes: &[u8]) {
        let msg = match SignedMessage::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                *self.refused.entry(format!("decode:{}", error_kind(&e))).or_default() += 1;
                return;
            }
        };
        if matches!(self.instances[to].role, Role::Byzantine(_)) {
            if self.is_checked(from) {
                self.byz_view = self.byz_view.max((msg.height(), msg.round()));
                self.run_byzantine(to, Some((from, msg)));
            }
            return;
        }
        if self.instances[to].core.is_none() {
            return;
        }
        if let SignedMessage::Proposal(p) = msg {
            self.instances[to]
                .proposals
                .entry((p.proposal.height, p.proposal.value_id))
                .or_insert(p);
        }
        if self.feed(to, as_input(msg)) {
            let n = self.instances.len();
            let relayed = self.instances[to]
                .gossip
                .entry(msg.height())
                .or_default()
                .entry(bytes.to_vec())
                .or_insert_with(|| Relayed::new(msg, n, self.now));
            // The sender has it: no need to send it back.
            relayed.sent_at[from] = relayed.sent_at[from].max(self.now + 1);
        }
    }

    fn run_byzantine(&mut self, i: usize, msg: Option<(usize, SignedMessage)>) {
        let Role::Byzantine(mut b) = std::mem::replace(&mut self.instances[i].role, Role::Honest)
        else {
            return;
        };
        let v = self.instances[i].validator;
        let sends = {
            let mut ctx = ByzCtx {
                chain_id: CHAIN,
                key: &self.keys[v],
                me: ValidatorIndex(v as u32),
                validators: &self.set,
                sides: [&self.sides[0], &self.sides[1]],
                rng: &mut self.rng,
                valid_values: &mut self.valid_values,
                height: self.byz_view.0,
                round: self.byz_view.1,
            };
            match &msg {
                Some((from, m)) => b.on_message(&mut ctx, *from, m),
                None => b.on_tick(&mut ctx),
            }
        };
        self.instances[i].role = Role::Byzantine(b);
        self.sent_by_byzantine += sends.len() as u64;
        for Send { to, bytes } in sends {
            match to {
                Some(t) => self.send_to(i, t, &bytes),
                None => self.send(i, &bytes),
            }
        }
    }

    fn send_to(&mut self, from: usize, to: usize, bytes: &[u8]) {
        if from == to || !byzantine::twins::linked(&self.twin_side, &self.honest_side, from, to) {
            return;
        }
        self.sent += 1;
        for d in self.net.deliveries(&mut self.rng, self.now, from, to) {
            self.schedule(d, Event::Deliver { to, from, bytes: bytes.to_vec() });
        }
    }

    fn send(&mut self, from: usize, bytes: &[u8]) {
        for to in 0..self.instances.len() {
            self.send_to(from, to, bytes);
        }
    }

    /// Feed `input` to instance `i` and carry out everything that follows, in order. Own
    /// broadcasts loop back through the same input path, immediately. True if the core
    /// accepted the first input.
    fn feed(&mut self, i: usize, input: Input) -> bool {
        let mut queue = VecDeque::from([input]);
        let mut first = None;
        while let Some(input) = queue.pop_front() {
            let Some(core) = self.instances[i].core.as_mut() else { break };
            let result = core.handle(input);
            first.get_or_insert(result.is_ok());
            let outputs = match result {
                Ok(o) => o,
                Err(e) => {
                    *self.refused.entry(error_kind(&e)).or_default() += 1;
                    continue;
                }
            };
            for o in outputs {
                if !self.output(i, o, &mut queue) {
                    return true; // crashed mid-way: the rest of the outputs are lost
                }
            }
        }
        first.unwrap_or(false)
    }

    /// Carry out one output; false if the instance crashed.
    fn output(&mut self, i: usize, o: Output, queue: &mut VecDeque<Input>) -> bool {
        match o {
            Output::PersistSafety(s) => {
                self.instances[i].disk = Some(s);
                self.trace.update(&[3]).update(&s.encode());
                // The riskiest crash point: written, not yet sent.
                if self.now < self.cfg.heal_at_ms
                    && self.rng.gen_range(0..2000) < self.cfg.crash_per_mille
                {
                    self.crash(i);
                    return false;
                }
            }
            Output::Broadcast(m) => {
                if self.is_checked(i) {
                    self.checker.signed(i, &m);
                }
                let bytes = m.encode();
                self.trace.update(&[4]).update(&bytes);
                let n = self.instances.len();
                let relayed = Relayed { msg: m, sent_at: vec![self.now + 1; n], since: self.now };
                self.instances[i]
                    .gossip
                    .entry(m.height())
                    .or_default()
                    .insert(bytes.clone(), relayed);
                self.send(i, &bytes);
                queue.push_back(as_input(m));
            }
            Output::ScheduleTimeout { height, round, step, duration_ms } => {
                let incarnation = self.instances[i].incarnation;
                self.schedule(
                    duration_ms,
                    Event::Timeout { to: i, incarnation, height, round, step },
                );
            }
            Output::RequestValue { height, round } => {
                let v = Hash::digest(format!("block {height:?} {round:?} by {i}").as_bytes());
                self.valid_values.insert(v);
                queue.push_back(Input::ProposeValue { height, round, value_id: v });
            }
            Output::ValidateValue { height, round, value_id } => {
                let valid = self.valid_values.contains(&value_id);
                queue.push_back(Input::ValueValidity { height, round, value_id, valid });
            }
            Output::Decide { height, value_id, certificate } => {
                self.trace.update(&[5]).update(value_id.as_bytes());
                if self.is_checked(i) {
                    let valid = self.valid_values.contains(&value_id);
                    self.checker.decided(i, height, value_id, valid);
                    let set = self.set.clone();
                    self.checker.certificate(i, CHAIN, &certificate, &set);
                }
                self.instances[i].committed = height;
                if self.is_checked(i) {
                    // The byzantine validators get the same precommits: they know the height is
                    // decided as soon as the first honest validator does, and a byzantine
                    // proposer of the next height can propose (equivocate) at once.
                    self.byz_view = self.byz_view.max((height.next(), Round(0)));
                    let all = self.honest_heights().into_iter().min().unwrap_or(0);
                    while (self.decided_at_ms.len() as u64) < all {
                        self.decided_at_ms.push(self.now);
                    }
                }
                let (n, now) = (self.instances.len(), self.now);
                let inst = &mut self.instances[i];
                let relay = inst.gossip.entry(height).or_default();
                if let Some(p) = inst.proposals.get(&(height, value_id)) {
                    let m = SignedMessage::Proposal(*p);
                    relay.entry(m.encode()).or_insert_with(|| Relayed::new(m, n, now));
                }
                for (index, signature) in &certificate.signatures {
                    let vote = Vote {
                        kind: VoteKind::Precommit,
                        height,
                        round: certificate.round,
                        value_id: Some(value_id),
                        validator: *index,
                    };
                    let m = SignedMessage::Vote(SignedVote { vote, signature: *signature });
                    relay.entry(m.encode()).or_insert_with(|| Relayed::new(m, n, now));
                }
                queue.push_back(Input::StartHeight {
                    height: height.next(),
                    validators: self.set.clone(),
                });
            }
            Output::Evidence(e) => {
                assert!(
                    e.verify(CHAIN, &self.set).is_ok(),
                    "core emitted unverifiable evidence {e:?}"
                );
                self.evidence += 1;
            }
        }
        true
    }

    fn gossip(&mut self) {
        let n = self.instances.len();
        // Who relays to whom this tick: every peer in the small shapes, GOSSIP_FANOUT random
        // ones in large shapes.
        let relays: Vec<Vec<usize>> = (0..n)
            .map(|j| {
                if n - 1 <= GOSSIP_FANOUT {
                    (0..n).filter(|i| *i != j).collect()
                } else {
                    let mut picked: Vec<usize> =
                        rand::seq::index::sample(&mut self.rng, n - 1, GOSSIP_FANOUT)
                            .into_iter()
                            .map(|k| if k >= j { k + 1 } else { k })
                            .collect();
                    picked.sort_unstable();
                    picked
                }
            })
            .collect();
        for i in 0..n {
            if self.instances[i].core.is_none() {
                continue;
            }
            for j in 0..n {
                let Some(peer) = self.instances[j].core.as_ref() else { continue };
                let Some(hj) = peer.height() else { continue };
                if i == j || relays[j].binary_search(&i).is_err() {
                    continue;
                }
                // Like a real gossip layer that tracks what each peer has, send only what the
                // peer's core does not know yet. And like one that remembers what it sent to
                // each peer: nothing before the signer's own copy should have reached the peer
                // (one network delay bound Δ after the relay got it: relays are for what was lost
                // or what a byzantine signer sent to some validators only), and nothing again
                // while the relay's earlier copy may still be in flight (2Δ). Without the
                // latter, a vote conflicting with one the peer's core already holds (which the
                // core refuses to store, so it never "knows" it) would go out on every tick.
                let now = self.now;
                let relay_after = self.net.max_delay_ms(now);
                let resend_after = 2 * relay_after;
                let (sender, peer_side) = if i < j {
                    let (a, b) = self.instances.split_at_mut(j);
                    (&mut a[i], &b[0])
                } else {
                    let (a, b) = self.instances.split_at_mut(i);
                    (&mut b[0], &a[j])
                };
                let Some(peer) = peer_side.core.as_ref() else { continue };
                let mut msgs = Vec::new();
                if let Some(ms) = sender.gossip.get_mut(&hj) {
                    for (b, r) in ms.iter_mut() {
                        let recent = r.sent_at[j] != 0 && now + 1 < r.sent_at[j] + resend_after;
                        if !recent && now >= r.since + relay_after && !peer.knows(&r.msg) {
                            r.sent_at[j] = now + 1;
                            msgs.push(b.clone());
                        }
                    }
                }
                for bytes in msgs {
                    self.sent_by_gossip += 1;
                    self.send_to(i, j, &bytes);
                }
            }
        }
    }

    fn tick(&mut self) {
        for i in 0..self.instances.len() {
            match self.instances[i].role {
                Role::Byzantine(_) => self.run_byzantine(i, None),
                _ => {
                    if self.now < self.cfg.heal_at_ms
                        && self.instances[i].core.is_some()
                        && self.rng.gen_range(0..1000) < self.cfg.crash_per_mille
                    {
                        self.crash(i);
                    }
                }
            }
        }
    }
}
