//! `idle-conns`: HTTP connections that hold the node's resources without doing work (issue
//! 14, item 5), all from one address against node 2: connections that send nothing, that send
//! half a request header and stop, that idle after one request, and requests whose body stalls.
//!
//! While they are held, honest requests to the node must still be answered. The node must close
//! each idle or partial connection within the stated bound (`IDLE_CLOSE_S`, a small multiple of
//! `rpc.request_timeout_ms`), cap the connections of one address, and answer a stalled body
//! within `request_timeout_ms` plus a margin.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{Ctx, Report};

/// The node under attack.
const NODE: usize = 2;
/// Every idle or partial connection must be closed by the node within this.
pub const IDLE_CLOSE_S: u64 = 40;
/// A stalled body must be answered or closed within `request_timeout_ms` plus this.
const STALL_MARGIN_S: u64 = 5;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Silent,
    Partial,
    KeepAlive,
}

/// Whether the peer closed the connection (drains whatever it sent first).
fn closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

async fn open(addr: &str, kind: Kind) -> Option<TcpStream> {
    let mut s =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await.ok()?.ok()?;
    match kind {
        Kind::Silent => {}
        Kind::Partial => {
            s.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
                .await
                .ok()?;
        }
        Kind::KeepAlive => {
            s.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
                .await
                .ok()?;
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        }
    }
    Some(s)
}

/// POST with a declared body that never arrives; seconds until the node answers or closes.
async fn stalled_body(addr: &str, limit: Duration) -> Option<f64> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let head = format!(
        "POST /v1/txs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"tx\": \"00"
    );
    s.write_all(head.as_bytes()).await.ok()?;
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(limit, s.read(&mut buf)).await {
        Ok(_) => Some(t0.elapsed().as_secs_f64()),
        Err(_) => None,
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let addr = ctx.net.rpc(NODE).trim_start_matches("http://").to_owned();
    let count: usize = if ctx.opts.short { 300 } else { 1500 };
    let start = ctx.window_start(&[0, 1, 2, 3]).await;
    let stall_limit =
        Duration::from_millis(ctx.net.request_timeout_ms) + Duration::from_secs(STALL_MARGIN_S);
    let stall = {
        let a = addr.clone();
        tokio::spawn(async move { stalled_body(&a, stall_limit + Duration::from_secs(30)).await })
    };
    let kinds = [Kind::Silent, Kind::Partial, Kind::KeepAlive];
    let mut conns = Vec::new();
    let mut refused = 0;
    for chunk in 0..count.div_ceil(50) {
        let n = 50.min(count - chunk * 50);
        let got = futures::future::join_all((0..n).map(|i| open(&addr, kinds[i % 3]))).await;
        for (i, c) in got.into_iter().enumerate() {
            match c {
                Some(s) => conns.push((kinds[i % 3], s)),
                None => refused += 1,
            }
        }
    }
    let opened_at = Instant::now();
    // Honest requests must still be served while the connections are held.
    for _ in 0..3 {
        let t0 = Instant::now();
        match ctx.net.get(NODE, "/v1/status").await {
            Ok((200, _)) if t0.elapsed() < Duration::from_secs(3) => {}
            other => rep.problems.push(format!(
                "an honest /v1/status to node {NODE} answered {:?} in {:.1} s while {} connections were held",
                other.map(|(s, _)| s).ok(),
                t0.elapsed().as_secs_f64(),
                conns.len()
            )),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Wait until the bound for the node to close them.
    let bound = Duration::from_secs(IDLE_CLOSE_S);
    while opened_at.elapsed() < bound && !conns.iter().all(|(_, s)| closed(s)) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut held = [0usize; 3];
    for (k, s) in &conns {
        if !closed(s) {
            held[*k as usize] += 1;
        }
    }
    let still: usize = held.iter().sum();
    rep.refused.push(format!("conns_refused_at_open={refused}/{count}"));
    if still > 0 {
        rep.problems.push(format!(
            "{still} of {} idle connections still open after {IDLE_CLOSE_S} s (silent {}, partial header {}, keep-alive {})",
            conns.len(),
            held[0],
            held[1],
            held[2]
        ));
    } else {
        rep.notes.push(format!("all {} held connections closed by the node", conns.len()));
    }
    drop(conns);
    match stall.await? {
        Some(s) if s <= stall_limit.as_secs_f64() => {
            rep.notes.push(format!("stalled body answered after {s:.1} s"));
        }
        Some(s) => rep.problems.push(format!(
            "a stalled request body was answered only after {s:.1} s (request_timeout_ms {})",
            ctx.net.request_timeout_ms
        )),
        None => rep.problems.push("a stalled request body was never answered".into()),
    }
    rep.window = Some(ctx.window_end(start).await);
    Ok(rep)
}
