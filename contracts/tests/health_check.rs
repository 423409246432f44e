//! Scenario 2, the article's health check (健康易通): checkpoints verify a person's health
//! status many times a day, one grant per check. The status product is grade 4: each grant is
//! short-lived (at most the governed grade-4 lifetime), names a grade-4 purpose, is bound to
//! one checkpoint, expires by block time, and every use is reported to regulators.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::Keypair;

const MINUTE_MS: u64 = 60_000;

struct Town {
    w: World,
    checkpoints: Vec<Keypair>,
    status: ProductId,
}

fn town() -> Town {
    let mut w = World::new();
    let health_authority = kp(1);
    w.admit(&health_authority, &[Role::Provider]);
    w.rate(&health_authority.public(), 4);
    let status = w.list(
        &health_authority,
        4,
        ProductConditions { purposes: vec!["health-check".into()], ..Default::default() },
    );
    let checkpoints: Vec<Keypair> = (0..3).map(|i| kp(20 + i)).collect();
    for c in &checkpoints {
        w.admit(c, &[Role::Consumer]);
    }
    Town { w, checkpoints, status }
}

/// A day of checks: every 45 minutes the person shows a fresh grant (valid 5 minutes) to the
/// next checkpoint, which uses it once within its lifetime.
#[test]
fn a_day_of_checkpoints_one_grant_per_check() {
    let Town { mut w, checkpoints, status } = town();
    let person = kp(3);
    let sid = w.enrol(&person, "person-3");
    let neighbour = kp(4);
    let nid = w.enrol(&neighbour, "person-4");
    let day_start = T0_MS + 8 * 60 * MINUTE_MS; // 08:00
    let checks = 24u8;
    for n in 0..checks {
        let at = day_start + u64::from(n) * 45 * MINUTE_MS;
        w.next_block();
        w.at_time(at);
        let gate = &checkpoints[usize::from(n) % checkpoints.len()];
        let g = grant(&person, sid, n, &gate.public(), status, "health-check", at + 5 * MINUTE_MS);
        // Shown at the gate two seconds later, in the next block.
        w.next_block();
        w.at_time(at + 2_000);
        let r = w.ok(&gate.clone(), use_inline(&g, &[b'c', n]));
        let e = r.events_of("grant.grade4_used").next().unwrap();
        assert_eq!(e.get("subject"), Some(sid.to_string().as_str()));
        let usage: UsageReceipt = w.get(&keys::usage(&g.grant.id())).unwrap();
        assert_eq!(
            (usage.subject, usage.consumer, usage.time_ms),
            (sid, gate.public(), at + 2_000)
        );
    }
    // Regulators see every check, and only checks of this person name its subject id.
    let uses: Vec<_> = w.events("grant.grade4_used").collect();
    assert_eq!(uses.len(), usize::from(checks));
    assert!(uses.iter().all(|e| e.get("subject") == Some(sid.to_string().as_str())));
    assert!(uses.iter().all(|e| e.get("purpose") == Some("health-check")));
    assert_eq!(w.subject(&nid).grant_epoch, 0, "the neighbour is untouched");
}

/// What a checkpoint cannot do with a health grant.
#[test]
fn health_grants_are_per_check_per_checkpoint_and_short_lived() {
    let Town { mut w, checkpoints, status } = town();
    let (gate_a, gate_b) = (checkpoints[0].clone(), checkpoints[1].clone());
    let person = kp(3);
    let sid = w.enrol(&person, "person-3");
    let now = w.time_ms();
    let lifetime = params(&w.st).grade4_grant_lifetime_ms_max;
    let g = |n, gate: &Keypair, purpose: &str, exp| {
        grant(&person, sid, n, &gate.public(), status, purpose, exp)
    };

    // A grant for gate A is refused at gate B, and used once at gate A.
    let for_a = g(1, &gate_a, "health-check", now + 5 * MINUTE_MS);
    w.fail(&gate_b, use_inline(&for_a, b"b"), Code::Failed, "names consumer");
    w.ok(&gate_a, use_inline(&for_a, b"a"));
    w.fail(&gate_a, use_inline(&for_a, b"a2"), Code::Failed, "already consumed");
    // A standing permission (a day long) is refused for grade 4; an hour is the most.
    w.fail(
        &gate_a,
        use_inline(&g(2, &gate_a, "health-check", now + 24 * 60 * MINUTE_MS), b"c"),
        Code::Failed,
        "grade-4 grant may expire at most",
    );
    w.ok(&gate_a, use_inline(&g(3, &gate_a, "health-check", now + lifetime), b"d"));
    // Only a purpose governance flagged for grade 4.
    w.fail(
        &gate_a,
        use_inline(&g(4, &gate_a, "credit-check", now + MINUTE_MS), b"e"),
        Code::Failed,
        "allowed up to grade 3",
    );
    // Shown too late: refused by block time, to the millisecond.
    let late = g(5, &gate_a, "health-check", now + MINUTE_MS);
    w.at_time(now + MINUTE_MS + 1);
    w.fail(&gate_a, use_inline(&late, b"f"), Code::Failed, "expired");
    // The person loses the phone: the registrar rotates the key; grants signed on the lost
    // phone and never shown are refused, new ones work.
    let reg = w.registrar.clone();
    let new_phone = kp(5);
    let t = w.time_ms();
    let lost = g(6, &gate_a, "health-check", t + 10 * MINUTE_MS);
    w.ok(
        &reg,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: new_phone.public(),
            new_key_signature: subject_key_proof(&new_phone, &sid),
        },
    );
    w.fail(&gate_a, use_inline(&lost, b"g"), Code::Failed, "not its subject's current key");
    let fresh =
        grant(&new_phone, sid, 7, &gate_a.public(), status, "health-check", t + 10 * MINUTE_MS);
    w.ok(&gate_a, use_inline(&fresh, b"h"));
}
