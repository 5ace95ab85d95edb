//! A loopback HTTP/1.1 server that can stop listening and listen again on the same port, and lets a handler cut its own connection without answering.
//!
//! The stand-ins serve through this instead of `axum::serve` because they need two
//! things `axum::serve` does not give: a per-connection "hang up now" (for
//! [`Scripted::Drop`](crate::fault::Scripted::Drop)) and an outage that refuses new
//! connections *and* cuts the open ones (keep-alive and websockets alike), then ends.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::StandInError;

/// Handed to every request as an extension: lets the handler hang up its connection,
/// and tells long-lived tasks (websockets) when the server goes down.
#[derive(Clone)]
pub(crate) struct Conn {
    kill: Arc<Notify>,
    down: watch::Receiver<bool>,
}

impl Conn {
    /// Closes this request's TCP connection at once, without an answer.
    pub(crate) fn hang_up(&self) {
        self.kill.notify_one();
    }

    /// Resolves when the server stops listening (or is dropped).
    pub(crate) async fn went_down(&self) {
        let mut down = self.down.clone();
        let _ = down.wait_for(|d| *d).await;
    }
}

struct Running {
    down: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

/// A router served on one fixed loopback port, switchable off and on.
pub(crate) struct Listener {
    addr: SocketAddr,
    router: Router,
    running: Mutex<Option<Running>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds `127.0.0.1:port`, builds the router (and whatever goes with it) from the
/// bound address, and serves it.
pub(crate) async fn start<S>(
    port: u16,
    make: impl FnOnce(SocketAddr) -> (Router, S),
) -> Result<(Listener, S), StandInError> {
    let err = |source| StandInError::Listen { port, source };
    let listener = Listener::bind(port).await.map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let (router, extra) = make(addr);
    let served = Listener::serve(listener, router).map_err(err)?;
    Ok((served, extra))
}

impl Listener {
    /// Binds `127.0.0.1:port` (0 = any free port) now, so the address is known before
    /// the router is built; [`Listener::serve`] starts answering.
    pub(crate) async fn bind(port: u16) -> io::Result<TcpListener> {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await
    }

    /// Serves `router` on an already bound `listener`.
    pub(crate) fn serve(listener: TcpListener, router: Router) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let running = spawn(listener, router.clone());
        Ok(Self {
            addr,
            router,
            running: Mutex::new(Some(running)),
        })
    }

    /// The bound address (always on loopback).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the port is accepting connections.
    pub(crate) fn is_listening(&self) -> bool {
        lock(&self.running).is_some()
    }

    /// Stops listening and cuts every open connection; the port refuses connections
    /// until [`Listener::resume`]. Does nothing when already stopped.
    pub(crate) async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            let _ = running.down.send(true);
            // The accept loop ends as soon as it sees the signal; the listener closes with it.
            let _ = running.accept.await;
        }
    }

    /// Listens again on the same port. Does nothing when already listening.
    pub(crate) async fn resume(&self) -> Result<(), StandInError> {
        if self.is_listening() {
            return Ok(());
        }
        let port = self.addr.port();
        let listener = Self::bind(port)
            .await
            .map_err(|source| StandInError::Listen { port, source })?;
        let running = spawn(listener, self.router.clone());
        let mut slot = lock(&self.running);
        match slot.as_ref() {
            // Someone resumed concurrently: keep theirs, drop ours (its loop ends).
            Some(_) => {
                let _ = running.down.send(true);
            }
            None => *slot = Some(running),
        }
        Ok(())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(running) = lock(&self.running).take() {
            let _ = running.down.send(true);
        }
    }
}

fn spawn(listener: TcpListener, router: Router) -> Running {
    let (down, down_rx) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(listener, router, down_rx));
    Running { down, accept }
}

async fn accept_loop(listener: TcpListener, router: Router, down: watch::Receiver<bool>) {
    let mut stop = down.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|d| *d) => break,
            accepted = listener.accept() => {
                // Accept errors (e.g. too many open files) are transient; keep listening.
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve_connection(stream, router.clone(), down.clone()));
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router, down: watch::Receiver<bool>) {
    let kill = Arc::new(Notify::new());
    let conn = Conn {
        kill: kill.clone(),
        down: down.clone(),
    };
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(conn.clone());
        let router = router.clone();
        async move {
            let answer: Result<Response, Infallible> = router.oneshot(req.map(Body::new)).await;
            answer
        }
    });
    let http = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut down = down;
    // Whichever comes first; dropping the connection future closes the socket.
    tokio::select! {
        _ = http => {}
        _ = kill.notified() => {}
        _ = down.wait_for(|d| *d) => {}
    }
}
