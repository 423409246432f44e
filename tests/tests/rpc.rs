//! The RPC under abuse: malformed, oversized and rate-exceeding requests get the right status
//! codes and JSON errors, and the chain is unaffected.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dpx_tests::{Cluster, metric, post_json};
use serde_json::json;

#[test]
fn malformed_oversized_and_flooding_requests_are_refused() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    // A tight per-IP limit, so a modest flood crosses it whatever the machine's speed.
    let cfg_path = net.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    cfg.rpc.per_ip_requests_per_s = 20;
    cfg.rpc.per_ip_burst = 200;
    cfg.save(&cfg_path)?;
    net.start_all()?;
    net.wait_height(0, 1, Duration::from_mins(1))?;
    let rpc = net.rpc[0].clone();
    let txs = format!("{rpc}/v1/txs");

    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({"tx": "zz"}), 400, "bad_encoding"),
        (json!({"tx": "00ff00ff"}), 400, "malformed_tx"),
        (json!({"nope": 1}), 400, "bad_json"),
    ];
    for (body, status, code) in cases {
        let (got, v) = post_json(&txs, &body)?;
        assert_eq!(got, status, "{body} -> {v}");
        assert_eq!(v["error"]["code"], code, "{body} -> {v}");
    }
    let (got, v) = post_json(&format!("{txs}?wait=never"), &json!({"tx": "00"}))?;
    assert_eq!((got, v["error"]["code"].as_str()), (400, Some("bad_wait")));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let client = reqwest::Client::new();
    rt.block_on(async {
        // (The 2 MiB body limit is checked on raw sockets in rpc_errors.rs: the server may
        // answer 413 and close before a client has written the whole body.)
        // Unknown routes, bad path parameters, unknown objects.
        for (path, status) in [
            ("/v1/nope", 404),
            ("/v1/blocks/abc", 400),
            ("/v1/blocks/999999", 404),
            ("/v1/txs/xyz", 400),
            (&format!("/v1/txs/{}", "00".repeat(32)), 404),
            ("/v1/state/unicorns", 404),
            ("/v1/state/grants/not-hex", 400),
        ] {
            let r = client.get(format!("{rpc}{path}")).send().await?;
            assert_eq!(r.status().as_u16(), status, "{path}");
            let v: serde_json::Value = r.json().await?;
            assert!(v["error"]["code"].is_string(), "{path}: {v}");
        }
        // A flood from one address runs into the per-IP limit (429), and the node stays up.
        let mut handles = Vec::new();
        for _ in 0..400 {
            let (cl, url) = (client.clone(), format!("{rpc}/health"));
            handles.push(tokio::spawn(async move {
                cl.get(url).send().await.map(|r| r.status().as_u16())
            }));
        }
        let mut limited = 0;
        for h in handles {
            if let Ok(Ok(429)) = h.await {
                limited += 1;
            }
        }
        println!("{limited} of 400 flood requests were rate limited");
        assert!(limited > 0, "no request was rate limited");
        anyhow::Ok(())
    })?;

    // The flood's client keeps its connections pooled, up to the per-IP connection cap: let
    // them go, as a client that is done does.
    drop(client);
    drop(rt);

    // The chain goes on and no garbage reached it.
    std::thread::sleep(Duration::from_secs(3)); // let the bucket refill
    let h = net.height(0)?;
    net.wait_height(0, h + 2, Duration::from_mins(1))?;
    for height in 1..=h {
        let b = net.get(0, &format!("/v1/blocks/{height}"))?;
        assert_eq!(b["txs"].as_array().map(Vec::len), Some(0), "garbage committed at {height}");
    }
    Ok(())
}

// ----- raw HTTP/1.1 over TCP: what a misbehaving client does --------------------------------

/// `host:port` of an RPC URL.
fn addr_of(rpc: &str) -> String {
    rpc.trim_start_matches("http://").trim_end_matches('/').to_owned()
}

/// Open a connection, send `GET path`, and read the status line and headers (not the body:
/// an event stream never ends). Returns the stream (kept open) and the status code.
fn raw_get(addr: &str, path: &str) -> anyhow::Result<(TcpStream, u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(s.read(&mut byte)? == 1, "connection closed before the headers");
        head.push(byte[0]);
        anyhow::ensure!(head.len() < 16 << 10, "headers too long");
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((s, status, head))
}

/// A GET answered with a JSON body of known length: (status, body).
fn raw_get_json(addr: &str, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let (mut s, status, head) = raw_get(addr, path)?;
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no content-length in {head}"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((status, serde_json::from_slice(&body)?))
}

/// Time until the server closes `s` (reads and discards whatever it sends), up to `max`.
fn time_to_close(s: &mut TcpStream, max: Duration) -> Option<Duration> {
    let start = Instant::now();
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while start.elapsed() < max {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()), // reset
        }
    }
    None
}

#[test]
fn event_subscribers_free_their_slots_and_bad_queries_get_400() -> anyhow::Result<()> {
    const SLOTS: usize = 4;
    let mut net = Cluster::init(1)?;
    let cfg_path = net.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    cfg.rpc.max_subscribers = SLOTS;
    cfg.save(&cfg_path)?;
    net.start_all()?;
    net.wait_height(0, 2, Duration::from_mins(1))?;
    let addr = addr_of(&net.rpc[0]);

    // Twice as many subscriptions as slots, with a filter that never matches, then gone.
    let never = format!("/v1/events?kinds=grant.consumed&participant={}", "0".repeat(64));
    let mut open = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..2 * SLOTS {
        let (s, status, _) = raw_get(&addr, &never)?;
        statuses.push(status);
        open.push(s);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), SLOTS, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    drop(open);

    // The slots come back: a new subscriber is served and sees block events.
    let left = Instant::now();
    let deadline = left + Duration::from_secs(20);
    let (mut s, freed_after) = loop {
        let (s, status, _) = raw_get(&addr, "/v1/events?from_height=1&kinds=block")?;
        if status == 200 {
            break (s, left.elapsed());
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "event slots never freed after the clients left");
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("slots free again {freed_after:?} after the clients left");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.contains("event: block"), "{text}");
    drop(s);

    // Malformed filters and heights far in the future: 400 with a JSON error, not a stream.
    let tip = net.height(0)?;
    for path in [
        "/v1/events?participant=zz".to_owned(),
        format!("/v1/events?participant={}", "0".repeat(63)),
        "/v1/events?kinds=block,no_such_kind".to_owned(),
        "/v1/events?product=not-an-id".to_owned(),
        format!("/v1/events?from_height={}", tip + 1_000_000),
        "/v1/events?unknown=1".to_owned(),
        // A state cursor longer than any key (1 KiB).
        format!("/v1/state/grants?after={}", "ab".repeat(1025)),
    ] {
        let (status, v) = raw_get_json(&addr, &path)?;
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v["error"]["code"].is_string(), "{path}: {v}");
    }
    // Well-formed filters still work (uppercase hex is the same key).
    let (_s, status, _) = raw_get(&addr, &format!("/v1/events?participant={}", "AB".repeat(32)))?;
    assert_eq!(status, 200);
    Ok(())
}

#[test]
fn idle_stalled_and_excess_connections_are_closed() -> anyhow::Result<()> {
    const PER_IP: usize = 8;
    let header_timeout = Duration::from_secs(1);
    let idle_timeout = Duration::from_secs(2);
    let request_timeout = Duration::from_millis(1500);
    let mut net = Cluster::init(1)?;
    let cfg_path = net.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    cfg.rpc.header_read_timeout_ms = header_timeout.as_millis() as u64;
    cfg.rpc.idle_timeout_ms = idle_timeout.as_millis() as u64;
    cfg.rpc.request_timeout_ms = request_timeout.as_millis() as u64;
    cfg.rpc.per_ip_max_connections = PER_IP;
    cfg.save(&cfg_path)?;
    net.start_all()?;
    net.wait_height(0, 1, Duration::from_mins(1))?;
    let rpc = net.rpc[0].clone();
    let addr = addr_of(&rpc);
    let margin = Duration::from_millis(1500);

    // A connection that sends nothing.
    let mut silent = TcpStream::connect(&addr)?;
    let t = time_to_close(&mut silent, Duration::from_secs(10));
    println!("silent connection closed after {t:?}");
    assert!(t.is_some_and(|t| t < header_timeout + margin), "silent connection held: {t:?}");

    // Partial headers, then nothing.
    let mut partial = TcpStream::connect(&addr)?;
    write!(partial, "GET /health HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ")?;
    let t = time_to_close(&mut partial, Duration::from_secs(10));
    println!("partial-header connection closed after {t:?}");
    assert!(t.is_some_and(|t| t < header_timeout + margin), "partial headers held: {t:?}");

    // Idle between requests (keep-alive): served, then closed after the idle timeout.
    let (status, _) = raw_get_json(&addr, "/health")?;
    assert_eq!(status, 200);
    let (mut kept, status, head) = raw_get(&addr, "/health")?;
    assert_eq!(status, 200, "{head}");
    let t = time_to_close(&mut kept, Duration::from_secs(10));
    println!("idle keep-alive connection closed after {t:?}");
    assert!(t.is_some_and(|t| t < idle_timeout + margin), "idle connection held: {t:?}");

    // A stalled body gets 408 after request_timeout_ms, not the commit wait.
    let mut stalled = TcpStream::connect(&addr)?;
    write!(
        stalled,
        "POST /v1/txs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"tx\":"
    )?;
    stalled.set_read_timeout(Some(Duration::from_secs(10)))?;
    let start = Instant::now();
    let mut buf = [0u8; 512];
    let n = stalled.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    println!(
        "stalled body answered after {:?}: {}",
        start.elapsed(),
        answer.lines().next().unwrap_or("")
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The rest of the body was never read: the connection cannot be reused, and says so.
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(start.elapsed() < request_timeout + margin, "408 after {:?}", start.elapsed());

    // The per-IP cap: PER_IP connections are held, the next one is refused at once.
    let held: Vec<TcpStream> =
        (0..PER_IP).map(|_| TcpStream::connect(&addr)).collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = TcpStream::connect(&addr)?;
    extra.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut answer = String::new();
    let _ = extra.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "connection {} was not refused: {answer:?}",
        PER_IP + 1
    );
    assert!(answer.contains("too_many_connections"), "{answer}");
    drop(held);
    // Once they are gone, the address is served again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match raw_get_json(&addr, "/health") {
            Ok((200, _)) => break,
            other => assert!(Instant::now() < deadline, "not served again: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = metric(&rpc, "dpx_rpc_connections_refused_total")?;
    assert!(refused >= 1, "refused connections not counted: {refused}");
    let timed_out = metric(&rpc, "dpx_rpc_connections_timed_out_total")?;
    assert!(timed_out >= 3, "timed-out connections not counted: {timed_out}");
    Ok(())
}
