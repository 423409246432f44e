//! The RPC's listener: our own accept loop over hyper's HTTP/1 connections, so that every
//! connection is bounded in number and in time.
//!
//! `axum::serve` holds every connection for as long as the client likes: one that sends
//! nothing, half a header, or nothing more after a response stays open for minutes, and one
//! address can open thousands. Here:
//! - at most `max_connections` are open at once, and at most `per_ip_max_connections` from one
//!   address; a connection over either cap is answered `503 too_many_connections` and closed
//!   at once, before any byte of it is read;
//! - a new connection must deliver its first request's headers within `header_read_timeout_ms`
//!   of connecting, and a later request's headers must be complete within that time of their
//!   first byte;
//! - a kept-alive connection with no request in flight is closed after `idle_timeout_ms`, and
//!   so is one whose client has stopped reading a response for that long (a write that cannot
//!   proceed);
//! - time spent inside a request (its body, the handler) is bounded by the request timeout
//!   middleware in `rpc/mod.rs`; a long-lived event stream is a request in flight, so it is not
//!   idle while its client reads it.
//!
//! Each connection has a watchdog: a [`ConnClock`] updated by the socket wrapper ([`WatchedIo`],
//! reads and blocked writes) and by the service (requests starting and their responses
//! finishing), and the connection's task sleeps until the clock's next deadline.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::config::RpcSection;
use crate::metrics::Metrics;

/// How long to wait before accepting again after `accept` failed (e.g. out of file
/// descriptors): a failing accept returns at once, and retrying at once would spin.
const ACCEPT_RETRY_MS: u64 = 50;

/// Connection limits, from the `[rpc]` config.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub per_ip_max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnLimits {
    pub fn from_config(rpc: &RpcSection) -> Self {
        Self {
            max_connections: rpc.max_connections.max(1),
            per_ip_max_connections: rpc.per_ip_max_connections.max(1),
            header_read_timeout: Duration::from_millis(rpc.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(rpc.idle_timeout_ms.max(1)),
        }
    }
}

// ----- open connections, by address ---------------------------------------------------------

/// Open connections in total and by address. An address leaves the map when its last
/// connection closes, so the map never holds more than `max_connections` entries.
#[derive(Debug, Default)]
struct ConnTable {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives the place back.
#[derive(Debug)]
struct ConnSlot {
    table: Arc<Mutex<ConnTable>>,
    ip: IpAddr,
    metrics: Metrics,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock();
        t.total = t.total.saturating_sub(1);
        if let Some(n) = t.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_ip.remove(&self.ip);
            }
        }
        self.metrics.rpc_connections_open.set(t.total as i64);
    }
}

/// Take a place for a connection from `ip`, or say which cap it is over.
fn admit(
    table: &Arc<Mutex<ConnTable>>,
    ip: IpAddr,
    limits: &ConnLimits,
    metrics: &Metrics,
) -> Result<ConnSlot, &'static str> {
    let mut t = table.lock();
    if t.total >= limits.max_connections {
        return Err("the node has as many open connections as it allows; retry later");
    }
    let n = t.per_ip.entry(ip).or_insert(0);
    if *n >= limits.per_ip_max_connections {
        return Err("this address has as many open connections as the node allows");
    }
    *n += 1;
    t.total += 1;
    metrics.rpc_connections_open.set(t.total as i64);
    Ok(ConnSlot { table: table.clone(), ip, metrics: metrics.clone() })
}

/// Answer a refused connection with a 503 and close it. Best effort: one non-blocking write of
/// a response that fits in any socket buffer; nothing of the client's is read.
fn refuse(stream: &TcpStream, reason: &str) {
    let body =
        serde_json::json!({ "error": { "code": "too_many_connections", "message": reason } })
            .to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(resp.as_bytes());
}

// ----- the accept loop ----------------------------------------------------------------------

/// Serve `app` on `listener` until `shutdown` becomes true, then ask open connections to
/// finish (the caller bounds how long it waits for this future).
pub async fn serve_on(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let table = Arc::new(Mutex::new(ConnTable::default()));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|v| *v) => break,
            a = listener.accept() => a,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "RPC accept failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        match admit(&table, remote.ip(), &limits, &metrics) {
            Ok(slot) => {
                let conn = Connection {
                    stream,
                    remote,
                    app: app.clone(),
                    limits,
                    metrics: metrics.clone(),
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(conn.run(slot));
            }
            Err(reason) => {
                metrics.rpc_connections_refused.inc();
                debug!(%remote, reason, "RPC connection refused");
                refuse(&stream, reason);
            }
        }
    }
    drop(listener);
    // Connections see the same shutdown signal and close once their requests are answered.
    while table.lock().total > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One accepted connection, served until it closes, times out or the node shuts down.
struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: ConnLimits,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, slot: ConnSlot) {
        let clock = Arc::new(ConnClock::new(Instant::now()));
        let io =
            hyper_util::rt::TokioIo::new(WatchedIo { inner: self.stream, clock: clock.clone() });
        let (app, remote, svc_clock) = (self.app, self.remote, clock.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let in_flight = InFlight::start(&svc_clock);
            let app = app.clone();
            async move {
                let Ok(resp) = app.oneshot(req.map(Body::new)).await;
                Ok::<_, Infallible>(resp.map(|inner| TrackedBody { inner, _in_flight: in_flight }))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
        tokio::pin!(conn);
        let mut shutting_down = false;
        loop {
            let deadline = clock.deadline(&self.limits);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%remote, error = %e, "RPC connection ended");
                    }
                    break;
                }
                () = clock.changed.notified() => {}
                () = sleep_until_opt(deadline) => {
                    if clock.deadline(&self.limits).is_some_and(|d| d <= Instant::now()) {
                        self.metrics.rpc_connections_timed_out.inc();
                        debug!(%remote, "RPC connection timed out");
                        break; // dropping the connection closes the socket
                    }
                }
                _ = self.shutdown.wait_for(|v| *v), if !shutting_down => {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        drop(slot);
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

// ----- the watchdog's clock -----------------------------------------------------------------

/// What a connection is doing, for its deadlines.
#[derive(Debug)]
struct ClockState {
    /// Requests whose response has not finished (0 or 1 over HTTP/1).
    in_flight: usize,
    /// Whether a request was ever received (the first one's headers are timed from connect).
    served_any: bool,
    /// When the connection last became idle (connect, or the end of the last response).
    idle_since: Instant,
    /// When the first byte of the next request's headers arrived, while idle.
    head_started: Option<Instant>,
    /// Since when a write has been unable to proceed (the client is not reading).
    write_blocked_since: Option<Instant>,
}

#[derive(Debug)]
struct ConnClock {
    state: Mutex<ClockState>,
    /// Woken when a deadline may have moved earlier.
    changed: Notify,
}

impl ConnClock {
    fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(ClockState {
                in_flight: 0,
                served_any: false,
                idle_since: now,
                head_started: None,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
        }
    }

    /// When the connection must be closed unless something changes; `None`: not while the
    /// current request is in flight and its response moves.
    fn deadline(&self, l: &ConnLimits) -> Option<Instant> {
        let s = self.state.lock();
        let waiting = (s.in_flight == 0).then(|| {
            if !s.served_any {
                s.idle_since + l.header_read_timeout
            } else if let Some(h) = s.head_started {
                h + l.header_read_timeout
            } else {
                s.idle_since + l.idle_timeout
            }
        });
        let stalled = s.write_blocked_since.map(|w| w + l.idle_timeout);
        match (waiting, stalled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn read_bytes(&self) {
        let mut s = self.state.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let mut s = self.state.lock();
        match (blocked, s.write_blocked_since.is_some()) {
            (true, false) => {
                s.write_blocked_since = Some(Instant::now());
                drop(s);
                self.changed.notify_one();
            }
            (false, true) => s.write_blocked_since = None,
            _ => {}
        }
    }
}

/// A request in flight on a connection: from the service call until its response body is
/// finished (or dropped).
#[derive(Debug)]
struct InFlight(Arc<ConnClock>);

impl InFlight {
    fn start(clock: &Arc<ConnClock>) -> Self {
        let mut s = clock.state.lock();
        s.in_flight += 1;
        s.served_any = true;
        s.head_started = None;
        drop(s);
        Self(clock.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
        drop(s);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request in flight until hyper is done with it.
#[derive(Debug)]
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the clock when request bytes arrive and when writes block.
#[derive(Debug)]
struct WatchedIo {
    inner: TcpStream,
    clock: Arc<ConnClock>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.read_bytes();
        }
        r
    }
}

impl WatchedIo {
    fn note_write<T>(&self, r: &Poll<io::Result<T>>) {
        self.clock.write_blocked(r.is_pending());
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        this.note_write(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.note_write(&r);
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn limits(per_ip: usize, max: usize, header_ms: u64, idle_ms: u64) -> ConnLimits {
        ConnLimits {
            max_connections: max,
            per_ip_max_connections: per_ip,
            header_read_timeout: Duration::from_millis(header_ms),
            idle_timeout: Duration::from_millis(idle_ms),
        }
    }

    fn app() -> Router {
        let endless = || async {
            let chunk = Bytes::from(vec![b'x'; 64 << 10]);
            Body::from_stream(futures::stream::repeat_with(move || {
                Ok::<_, Infallible>(chunk.clone())
            }))
        };
        let ticks = || async {
            let s = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b"tick\n")), ()))
            });
            Body::from_stream(s)
        };
        Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route("/endless", get(endless))
            .route("/ticks", get(ticks))
    }

    struct Server {
        addr: SocketAddr,
        metrics: Metrics,
        _stop: watch::Sender<bool>,
    }

    async fn start(l: ConnLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Metrics::new();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(serve_on(listener, app(), l, metrics.clone(), rx));
        Server { addr, metrics, _stop: stop }
    }

    /// Read until the server closes (`Some(elapsed)`), or `None` if still open after `max`.
    async fn closed_within(s: &mut TcpStream, max: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match tokio::time::timeout_at(start + max, s.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
    }

    async fn get_ok(s: &mut TcpStream) -> String {
        s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn connections_over_the_per_ip_or_global_cap_are_refused() {
        let srv = start(limits(2, 100, 5000, 5000)).await;
        let mut a = TcpStream::connect(srv.addr).await.unwrap();
        let _b = TcpStream::connect(srv.addr).await.unwrap();
        let mut c = TcpStream::connect(srv.addr).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too_many_connections"), "{answer}");
        assert_eq!(srv.metrics.rpc_connections_refused.get(), 1);
        assert!(get_ok(&mut a).await.starts_with("HTTP/1.1 200"));
        drop(a);
        // The place is given back once the connection is gone.
        let mut ok = false;
        for _ in 0..50 {
            let mut d = TcpStream::connect(srv.addr).await.unwrap();
            if get_ok(&mut d).await.starts_with("HTTP/1.1 200") {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "the closed connection's place was not given back");

        let srv = start(limits(100, 3, 5000, 5000)).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(srv.addr).await.unwrap());
        }
        let mut d = TcpStream::connect(srv.addr).await.unwrap();
        let mut answer = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), d.read_to_string(&mut answer)).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    }

    #[tokio::test]
    async fn silent_partial_and_idle_connections_are_closed_on_time() {
        let srv = start(limits(100, 100, 300, 1500)).await;
        let max = Duration::from_secs(5);

        let mut silent = TcpStream::connect(srv.addr).await.unwrap();
        let t = closed_within(&mut silent, max).await.expect("silent connection held");
        assert!(t >= Duration::from_millis(250) && t < Duration::from_millis(1200), "{t:?}");

        let mut partial = TcpStream::connect(srv.addr).await.unwrap();
        partial.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let t = closed_within(&mut partial, max).await.expect("partial headers held");
        assert!(t < Duration::from_millis(1200), "{t:?}");

        // Served, then idle: closed after the idle timeout, not the header timeout.
        let mut idle = TcpStream::connect(srv.addr).await.unwrap();
        assert!(get_ok(&mut idle).await.starts_with("HTTP/1.1 200"));
        let t = closed_within(&mut idle, max).await.expect("idle connection held");
        assert!(t >= Duration::from_millis(1400) && t < Duration::from_millis(2500), "{t:?}");

        // A later request's headers, started and never finished: the header timeout.
        let mut slow = TcpStream::connect(srv.addr).await.unwrap();
        assert!(get_ok(&mut slow).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(50)).await; // the response is finished
        slow.write_all(b"GET /ok HTTP/1.1\r\n").await.unwrap();
        let t = closed_within(&mut slow, max).await.expect("second request's headers held");
        assert!(t < Duration::from_millis(1200), "{t:?}");

        // A busy keep-alive connection is not idle.
        let mut busy = TcpStream::connect(srv.addr).await.unwrap();
        for _ in 0..8 {
            assert!(get_ok(&mut busy).await.starts_with("HTTP/1.1 200"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(srv.metrics.rpc_connections_timed_out.get() >= 4);
    }

    #[tokio::test]
    async fn a_long_response_read_steadily_stays_open_and_a_stalled_one_is_cut() {
        let srv = start(limits(100, 100, 300, 500)).await;
        let mut ticks = TcpStream::connect(srv.addr).await.unwrap();
        ticks.write_all(b"GET /ticks HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        assert!(
            closed_within(&mut ticks, Duration::from_millis(1500)).await.is_none(),
            "a streamed response that the client reads was cut"
        );

        // A client that asks for an endless body and never reads it: once the socket buffers
        // are full the server's writes block, and after the idle timeout it lets go.
        let mut stalled = TcpStream::connect(srv.addr).await.unwrap();
        stalled.write_all(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let before = srv.metrics.rpc_connections_timed_out.get();
        let mut cut = false;
        for _ in 0..100 {
            if srv.metrics.rpc_connections_timed_out.get() > before {
                cut = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(cut, "a connection whose client stopped reading was held");
        assert!(closed_within(&mut stalled, Duration::from_secs(10)).await.is_some());
    }
}
