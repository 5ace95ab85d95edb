//! A TCP proxy between a process and one upstream, for tests that cut a connection
//! (a replica losing its database while it can still reach everything else) and
//! watch what passes through it (what a replica sends a traffic switch, and when).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a client sent upstream: one chunk, as (lossy) text, and when.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When it passed.
    pub at: Instant,
    /// What it said.
    pub text: String,
}

struct State {
    upstream: SocketAddr,
    cut: AtomicBool,
    /// Bumped by every cut: open connections end when it changes.
    generation: watch::Sender<u64>,
    sent: Mutex<Vec<Sent>>,
    /// Connections open now, and the most ever open at once.
    open: AtomicUsize,
    peak: AtomicUsize,
}

/// A running proxy on `127.0.0.1`; stops when dropped.
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Proxies a free port on `127.0.0.1` to `upstream` (a loopback address).
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            cut: AtomicBool::new(false),
            generation: watch::Sender::new(0),
            sent: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if state.cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    tokio::spawn(pipe(state.clone(), client));
                }
            }
        });
        Ok(Self { addr, state, task })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the line: every open connection is closed, and new ones are closed as
    /// soon as they are accepted, until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.generation.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// The most connections that were ever open through it at once.
    pub fn peak(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// What clients sent upstream so far, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.state
            .sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.state.generation.send_modify(|g| *g += 1);
    }
}

/// Counts one open connection while it lives.
struct Open(Arc<State>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn pipe(state: Arc<State>, mut client: TcpStream) {
    let now = state.open.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak.fetch_max(now, Ordering::SeqCst);
    let _open = Open(state.clone());
    let mut cut = state.generation.subscribe();
    let Ok(mut upstream) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Some(chunk) = buf.get(..n) {
                state
                    .sent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Sent {
                        at: Instant::now(),
                        text: String::from_utf8_lossy(chunk).into_owned(),
                    });
                if uw.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut ur, &mut cw).await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = cut.changed() => {}
    }
}
