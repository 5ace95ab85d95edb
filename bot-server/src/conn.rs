//! The HTTP accept loop: per-connection timeouts (request head, body, idle keep-alive), a cap on open connections that closes an older one to make room (never pausing), and graceful shutdown.
//!
//! `axum::serve` has no timeouts: a client that sends half a request head, or half a
//! body, holds its connection (and a file descriptor) forever, and enough of them
//! starve everyone, `/healthz` included. Here every connection is served by hyper's
//! HTTP/1.1 connection builder under a watchdog that knows whether a request is in
//! flight:
//!
//! - a connection with no request in flight must deliver a complete request head
//!   within [`HttpLimits::header_timeout`] of connecting or of its first byte;
//! - a keep-alive connection with nothing in flight and no bytes arriving is closed
//!   after [`HttpLimits::idle_timeout`];
//! - a request body must arrive whole within [`HttpLimits::body_timeout`] of its head
//!   (the handler sees an error, answered `408`);
//! - at most [`HttpLimits::max_connections`] connections are open (fewer when the
//!   process' open-file limit is lower): a new connection beyond it closes an older
//!   one — the one waiting longest for a request, else the oldest event stream, else
//!   the oldest request (a trickled body) — and accepting never pauses, so Slack,
//!   `/healthz` and `/readyz` always get in, whatever anonymous clients hold.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

/// Timeouts and the connection cap of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A complete request head must arrive within this, counted from the connection's
    /// start or from the first byte of the head (`CROSSROADS_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this after its head
    /// (`CROSSROADS_BODY_TIMEOUT`).
    pub body_timeout: Duration,
    /// A keep-alive connection waiting for its next request is closed after this
    /// (`CROSSROADS_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// Most connections open at once (`CROSSROADS_MAX_CONNECTIONS`); lowered to fit
    /// the process' open-file limit.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// 10 s for a head, 15 s for a body, 75 s idle (longer than the 60 s of common
    /// load balancers, so they close first), 1024 connections.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1024,
        }
    }
}

/// File descriptors kept free for everything besides incoming connections (Slack
/// and Jenkins clients, probes, the store, logs).
const FD_RESERVE: u64 = 128;
/// A connection this young that has sent nothing yet is closed to make room only
/// when nothing else can be.
const GRACE: Duration = Duration::from_secs(1);
/// After an accept error (out of file descriptors), how long before trying again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Accept errors are logged at most this often.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft open-file limit to the hard one (as Go and nginx do), then
/// returns how many connections fit: `wanted`, or fewer when the limit, less a
/// reserve for everything else, is lower.
pub fn fit_connections(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            let reserve = FD_RESERVE.min(soft / 4);
            let room = usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX);
            if room < wanted {
                tracing::info!(
                    wanted,
                    open_file_limit = soft,
                    max_connections = room.max(1),
                    "fewer HTTP connections than configured fit the open-file limit"
                );
                return room.max(1);
            }
        }
    }
    wanted.max(1)
}

/// What one connection is doing, for its watchdog and for eviction.
struct Activity {
    /// Requests in flight (head read, response body not yet sent).
    busy: usize,
    /// Requests answered so far.
    served: u64,
    /// When it last had nothing in flight (its start, or its last response's end).
    idle_since: Instant,
    /// First byte of a request head that has not yet completed.
    head_started: Option<Instant>,
    /// Closed to make room for a new connection.
    evicted: bool,
    /// Since when a request has been in flight, while one is.
    busy_since: Option<Instant>,
    /// The request in flight answers with a stream (`text/event-stream`).
    streaming: bool,
}

/// One open connection's shared state.
struct Conn {
    activity: Mutex<Activity>,
    changed: Notify,
}

impl Conn {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            activity: Mutex::new(Activity {
                busy: 0,
                served: 0,
                idle_since: Instant::now(),
                head_started: None,
                evicted: false,
                busy_since: None,
                streaming: false,
            }),
            changed: Notify::new(),
        })
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived: when nothing is in flight, they start a request head.
    fn bytes_arrived(&self) {
        let mut a = self.activity();
        if a.busy == 0 && a.head_started.is_none() {
            a.head_started = Some(Instant::now());
            drop(a);
            self.changed.notify_one();
        }
    }

    /// A request head was read; the guard ends the request when the response has been sent.
    fn request_started(self: &Arc<Self>) -> RequestGuard {
        let mut a = self.activity();
        a.busy += 1;
        a.head_started = None;
        a.busy_since.get_or_insert_with(Instant::now);
        drop(a);
        self.changed.notify_one();
        RequestGuard(self.clone())
    }

    /// Its place in the eviction order (lowest first): waiting for a request, longest
    /// first; then answering with a stream, oldest first; then any other request,
    /// oldest first (a body trickling in holds its request longest).
    fn eviction_rank(&self) -> Option<(u8, Instant)> {
        let a = self.activity();
        if a.evicted {
            return None;
        }
        let fresh = a.served == 0 && a.head_started.is_none() && a.idle_since.elapsed() < GRACE;
        Some(if a.busy == 0 && fresh {
            // Just connected: its request is surely on its way; closed last.
            (3, a.idle_since)
        } else if a.busy == 0 {
            (0, a.head_started.unwrap_or(a.idle_since))
        } else if a.streaming {
            (1, a.busy_since.unwrap_or(a.idle_since))
        } else {
            (2, a.busy_since.unwrap_or(a.idle_since))
        })
    }

    /// The response in flight is a stream.
    fn streaming(&self) {
        self.activity().streaming = true;
    }

    /// When the watchdog closes it, and why, as things stand; `None` while busy.
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, &'static str)> {
        let a = self.activity();
        if a.evicted {
            return Some((Instant::now(), "closed to make room for a new connection"));
        }
        if a.busy > 0 {
            return None;
        }
        Some(match a.head_started {
            Some(t) => (t + limits.header_timeout, "request head too slow"),
            None if a.served == 0 => (a.idle_since + limits.header_timeout, "no request"),
            None => (a.idle_since + limits.idle_timeout, "idle keep-alive"),
        })
    }

    fn evict(&self) {
        self.activity().evicted = true;
        self.changed.notify_one();
    }
}

/// Ends a request when dropped (with the response body).
struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut a = self.0.activity();
        a.busy = a.busy.saturating_sub(1);
        a.served += 1;
        if a.busy == 0 {
            a.idle_since = Instant::now();
            a.busy_since = None;
            a.streaming = false;
        }
        drop(a);
        self.0.changed.notify_one();
    }
}

/// Resolves when the connection must be closed, with the reason.
async fn watchdog(conn: Arc<Conn>, limits: HttpLimits) -> &'static str {
    loop {
        let changed = conn.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match conn.deadline(&limits) {
            None => changed.await,
            Some((at, why)) => {
                if at <= Instant::now() {
                    return why;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = changed => {}
                }
            }
        }
    }
}

/// The open connections, for the cap.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    closed: Notify,
}

impl Registry {
    fn open(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes one connection to make room: the one waiting longest for a request,
    /// else the oldest stream, else the oldest request; `false` only when none is open.
    fn evict_one(&self) -> bool {
        let mut open = self.open();
        let oldest = open
            .iter()
            .filter_map(|(id, c)| c.eviction_rank().map(|rank| (rank, *id)))
            .min();
        match oldest.and_then(|(_, id)| open.remove(&id)) {
            Some(conn) => {
                conn.evict();
                true
            }
            None => false,
        }
    }
}

/// A TCP stream that tells its connection when bytes arrive.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The error a request body gives when it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {}s", .0.as_secs_f64())]
pub struct BodyTimeout(pub Duration);

pin_project_lite::pin_project! {
    /// A request body that must arrive whole before a deadline.
    struct DeadlineBody {
        #[pin]
        body: Incoming,
        #[pin]
        deadline: tokio::time::Sleep,
        timeout: Duration,
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(*this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves; then
/// stops accepting, lets each connection finish the request it is serving (idle
/// ones close at once), and returns when every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let max = fit_connections(limits.max_connections);
    let registry = Arc::new(Registry::default());
    let (stop, _) = watch::channel(false);
    let (live_tx, mut live) = watch::channel(0usize);
    let live_tx = Arc::new(live_tx);
    let mut next_id = 0u64;
    let mut last_accept_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    'accept: loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if last_accept_log.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY) {
                        tracing::warn!(open = registry.open().len(), "accept error (logged at most every 10 s): {e}");
                        last_accept_log = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break 'accept,
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        // Room for this one: close an older connection (never pausing accept, and
        // never this one, so a new client always gets in, whatever others hold).
        while registry.open().len() >= max {
            if !registry.evict_one() {
                break;
            }
        }
        next_id += 1;
        let id = next_id;
        let conn = Conn::new();
        registry.open().insert(id, conn.clone());
        live_tx.send_modify(|n| *n += 1);
        let task = serve_connection(
            stream,
            Peer(peer.ip()),
            conn,
            router.clone(),
            limits,
            stop.subscribe(),
        );
        let registry = registry.clone();
        let live_tx = live_tx.clone();
        tokio::spawn(async move {
            task.await;
            registry.open().remove(&id);
            registry.closed.notify_one();
            live_tx.send_modify(|n| *n = n.saturating_sub(1));
        });
    }
    // New connections are refused from now on.
    drop(listener);
    stop.send_replace(true);
    let _ = live.wait_for(|n| *n == 0).await;
    Ok(())
}

/// The address a request came from, as the TCP connection says (a request's
/// extension: handlers limit per client with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::IpAddr);

/// Serves one connection until the client closes it, the watchdog does, or shutdown
/// has let its request finish.
async fn serve_connection(
    stream: TcpStream,
    peer: Peer,
    conn: Arc<Conn>,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        stream,
        conn: conn.clone(),
    });
    let for_requests = conn.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = for_requests.request_started();
        let conn_of_request = for_requests.clone();
        let router = router.clone();
        async move {
            let mut req: Request = req.map(|body| {
                Body::new(DeadlineBody {
                    body,
                    deadline: tokio::time::sleep(limits.body_timeout),
                    timeout: limits.body_timeout,
                })
            });
            req.extensions_mut().insert(peer);
            let res = match router.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            let stream = res
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if stream {
                conn_of_request.streaming();
            }
            // The request ends when its response body has been sent.
            Ok::<_, Infallible>(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &guard;
                    frame
                }))
            }))
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(served);
    let dog = watchdog(conn, limits);
    tokio::pin!(dog);
    let mut stopping = *stop.borrow();
    if stopping {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            ended = served.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            why = &mut dog => {
                tracing::debug!(why, "HTTP connection closed");
                return;
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn room_is_made_from_the_idle_then_streams_then_the_oldest_request() {
        let registry = Registry::default();
        let working = Conn::new();
        let _work = working.request_started();
        tokio::time::advance(Duration::from_secs(5)).await;
        let stream = Conn::new();
        let _streaming = stream.request_started();
        stream.streaming();
        let idle = Conn::new();
        tokio::time::advance(Duration::from_secs(5)).await;
        let fresh = Conn::new();
        for (id, c) in [(1, &working), (2, &stream), (3, &idle), (4, &fresh)] {
            registry.open().insert(id, c.clone());
        }
        assert!(registry.evict_one());
        assert!(
            idle.activity().evicted,
            "the one waiting for a request goes first"
        );
        assert!(registry.evict_one());
        assert!(stream.activity().evicted, "then the oldest stream");
        assert!(registry.evict_one());
        assert!(working.activity().evicted, "then the oldest request");
        assert!(!fresh.activity().evicted, "one just connected goes last");
        assert!(registry.evict_one());
        assert!(!registry.evict_one(), "nothing left to close");
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_what_the_connection_is_doing() {
        let limits = HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            ..HttpLimits::default()
        };
        let conn = Conn::new();
        let start = Instant::now();
        assert_eq!(
            conn.deadline(&limits),
            Some((start + Duration::from_secs(10), "no request"))
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        conn.bytes_arrived();
        assert_eq!(
            conn.deadline(&limits).map(|d| d.1),
            Some("request head too slow")
        );
        let request = conn.request_started();
        assert_eq!(conn.deadline(&limits), None, "busy: no deadline");
        drop(request);
        assert_eq!(
            conn.deadline(&limits),
            Some((Instant::now() + Duration::from_secs(75), "idle keep-alive"))
        );
    }
}
