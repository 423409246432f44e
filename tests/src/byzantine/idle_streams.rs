//! `idle-streams`: event-stream subscribers that cost the node without ever being served
//! (issue 14, item 5), all against node 1:
//!
//! - more short-lived subscriptions than `rpc.max_subscribers`, each with a filter that never
//!   matches (`kinds=grant.consumed&participant=<64 zeros>`), opened and dropped;
//! - malformed filters (`participant=zz`, an unknown kind), which must be refused with 400;
//! - stalled subscribers that replay the chain from height 1 and never read a byte.
//!
//! Afterwards a fresh subscription must be served (not 503): a subscriber that went away must
//! free its slot even if no event ever matched, and a stalled one must cost O(1).

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::{Ctx, Report};

/// The node under attack.
const NODE: usize = 1;
/// Subscriptions opened at once.
const PARALLEL: usize = 32;

fn attacker() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Open a subscription, wait for its status, hold it `hold`, drop it. Returns the status.
async fn subscribe(c: &reqwest::Client, url: String, hold: Duration) -> Option<u16> {
    let r = c.get(url).send().await.ok()?;
    let s = r.status().as_u16();
    tokio::time::sleep(hold).await;
    drop(r);
    Some(s)
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let c = attacker()?;
    let base = ctx.net.rpc(NODE).to_owned();
    let start = ctx.window_start(&[0, 1, 2, 3]).await;

    // 1. Malformed filters must be refused (before the slots are taken, so a 503 hides nothing).
    for q in ["participant=zz", "kinds=no.such.kind", &format!("participant={}", "g".repeat(64))] {
        match subscribe(&c, format!("{base}/v1/events?{q}"), Duration::ZERO).await {
            Some(400) => rep.refused.push(format!("'{q}' 400")),
            other => rep.problems.push(format!("/v1/events?{q} answered {other:?}, not 400")),
        }
    }

    // 2. More never-matching subscriptions than there are slots, each short-lived.
    let zeros = "0".repeat(64);
    let idle = format!("{base}/v1/events?kinds=grant.consumed&participant={zeros}");
    let total = ctx.net.max_subscribers + 16;
    let (mut ok, mut busy, mut failed) = (0, 0, 0);
    let mut opened = 0;
    while opened < total {
        let n = PARALLEL.min(total - opened);
        let hold = Duration::from_millis(300);
        let got =
            futures::future::join_all((0..n).map(|_| subscribe(&c, idle.clone(), hold))).await;
        for s in got {
            match s {
                Some(200) => ok += 1,
                Some(503) => busy += 1,
                _ => failed += 1,
            }
        }
        opened += n;
    }
    rep.notes.push(format!(
        "{total} never-matching subscriptions: {ok} served, {busy} 503, {failed} failed"
    ));

    // 3. Stalled subscribers: replay from height 1, never read.
    let addr = base.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(&addr).await?;
        let req = format!("GET /v1/events?from_height=1 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        stalled.push(s);
    }
    // The honest load keeps committing meanwhile: events pile up for the stalled readers.
    tokio::time::sleep(ctx.opts.attack()).await;

    // 4. A fresh subscriber must be served within a few blocks of the idle ones leaving.
    let t0 = Instant::now();
    let mut served = None;
    while t0.elapsed() < Duration::from_secs(10) {
        if let Some(200) = subscribe(&c, format!("{base}/v1/events"), Duration::ZERO).await {
            served = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    match served {
        Some(_) => rep.notes.push("a fresh subscriber is served".into()),
        None => rep.problems.push(format!(
            "/v1/events still refuses a fresh subscriber {:.0} s after the idle ones left",
            t0.elapsed().as_secs_f64() + ctx.opts.attack().as_secs_f64()
        )),
    }
    drop(stalled);
    rep.window = Some(ctx.window_end(start).await);
    Ok(rep)
}
