//! Socket Mode: our own client of Slack's websocket protocol, feeding the same Slack transport as the HTTP routes.
//!
//! For teams without a public URL (`SLACK_APP_TOKEN`, `crossroads serve --socket-mode`).
//! Each of the configured connections ([`crate::ServeConfig::socket_connections`]) is
//! opened with `apps.connections.open` through the Web API client (http or https, so
//! `SLACK_API_URL` may point at a stand-in), then the websocket (tokio-tungstenite,
//! rustls for `wss://`); it counts as connected only after Slack's `hello`.
//!
//! Every envelope is handed to the [`Slack`] transport and acknowledged once the
//! transport has accepted it (or found it a duplicate, or refused it and told the
//! person to retry), well within Slack's 3 seconds. Slack delivers an envelope again
//! when its ack is late, and the intake's keys (`event_id`, `trigger_id`) make the
//! repeat a no-op. A `disconnect` (`refresh_requested`, `warning`) opens the new
//! connection before the old one is closed; a lost connection is reopened with
//! backoff; frames that are not Slack's are logged and skipped.

use std::sync::Arc;
use std::time::Duration;

use bot_core::config::Secret;
use bot_core::slack::payload::{EventsPayload, InteractionPayload};
use bot_core::slack::socket::{parse_frame, Envelope, EnvelopeContent, SocketFrame};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::intake::Accepted;
use crate::slack::ack::{command_ack, command_refusal};
use crate::slack::webapi::WebApiError;
use crate::slack::Slack;

/// Longest wait for the websocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for Slack's `hello` after the handshake.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the client pings Slack.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Nothing at all from Slack for this long (not even a pong): the connection is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// When closing, how long acks still being made and Slack's close frame are awaited.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// First wait before reopening a connection that failed; doubled up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between two attempts to open a connection.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The largest frame or message taken from the socket: Slack's envelopes are a few
/// kilobytes; anything near this is not Slack's and closes the connection.
const MAX_FRAME: usize = 1024 * 1024;

/// `wait`, less a random part of up to half of it, so replicas and connections that
/// lost Slack at the same moment do not all come back at the same moment.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(1.0 - fastrand::f64() / 2.0)
}

/// A connection that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// An envelope accepted slower than this is logged: Slack gives 3 seconds.
const SLOW_ACK: Duration = Duration::from_secs(2);

/// Why Socket Mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum SocketModeError {
    /// `SLACK_APP_TOKEN` is missing.
    #[error("SLACK_APP_TOKEN is not set (Socket Mode needs an app-level token, xapp-…)")]
    NoAppToken,
}

/// Why one connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("apps.connections.open failed: {0}")]
    Api(#[from] WebApiError),
    #[error("the websocket to {host} did not open: {reason}")]
    Connect { host: String, reason: String },
    #[error("Slack sent no hello: {0}")]
    Hello(String),
}

impl OpenError {
    /// Slack refused the app-level token: retrying will not help until it is fixed.
    fn is_token_refused(&self) -> bool {
        matches!(
            self,
            OpenError::Api(WebApiError::Slack { error, .. })
                if matches!(error.as_str(), "invalid_auth" | "not_authed" | "not_allowed_token_type" | "account_inactive" | "token_revoked")
        )
    }
}

/// How many Socket Mode connections are open (past Slack's `hello`); `/readyz` reads
/// it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SocketStatus {
    open: Arc<watch::Sender<usize>>,
}

impl Default for SocketStatus {
    fn default() -> Self {
        Self {
            open: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl SocketStatus {
    /// No connection open yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Waits until at least `n` connections are open, or `timeout` passes; `true` when they are.
    pub async fn wait_open(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.open.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|open| *open >= n))
            .await
            .map(|r| r.is_ok());
        waited == Ok(true)
    }

    /// A guard counting one open connection until dropped.
    fn opened(&self) -> OpenGuard {
        self.open.send_modify(|n| *n += 1);
        OpenGuard(self.clone())
    }
}

/// Counts one open connection while alive.
struct OpenGuard(SocketStatus);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// What every connection shares.
struct Shared {
    slack: Slack,
    app_token: Secret,
    status: SocketStatus,
}

/// Running Socket Mode: its connections, kept open until [`SocketMode::close`].
pub struct SocketMode {
    stop: watch::Sender<bool>,
    slots: Vec<JoinHandle<()>>,
    status: SocketStatus,
}

impl SocketMode {
    /// Opens `connections` connections (at least one) with the app-level token and
    /// keeps them open: events, clicks and slash commands go to `slack`; `status`
    /// counts the open ones.
    pub fn start(
        slack: Slack,
        app_token: Secret,
        connections: usize,
        status: SocketStatus,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            slack,
            app_token,
            status: status.clone(),
        });
        let slots = (1..=connections.max(1))
            .map(|slot| tokio::spawn(keep_open(shared.clone(), slot, stop.subscribe())))
            .collect();
        Self {
            stop,
            slots,
            status,
        }
    }

    /// The open connections.
    pub fn status(&self) -> &SocketStatus {
        &self.status
    }

    /// Closes every connection: acks being made are sent first, then a close frame.
    pub async fn close(self) {
        self.stop.send_replace(true);
        for slot in self.slots {
            let abort = slot.abort_handle();
            if tokio::time::timeout(CLOSE_GRACE * 2, slot).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// One slot: keeps one connection open, replacing it when Slack asks and reopening
/// it (with backoff) when it is lost, until `stop`.
async fn keep_open(shared: Arc<Shared>, slot: usize, mut stop: watch::Receiver<bool>) {
    let mut backoff = BACKOFF_FIRST;
    let mut current: Option<Connection> = None;
    loop {
        let conn = match current.as_mut() {
            Some(conn) => conn,
            None => {
                let opened = tokio::select! {
                    opened = open(&shared, slot) => opened,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match opened {
                    Ok(conn) => current.insert(conn),
                    Err(e) => {
                        let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
                        if e.is_token_refused() {
                            tracing::error!(
                                slot,
                                retry_in_ms,
                                "Socket Mode: {e} (check SLACK_APP_TOKEN: an app-level xapp- token with connections:write)"
                            );
                        } else {
                            tracing::warn!(slot, retry_in_ms, "Socket Mode: {e}");
                        }
                        tokio::select! {
                            () = tokio::time::sleep(jittered(backoff)) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        let event = tokio::select! {
            _ = stop.wait_for(|s| *s) => None,
            event = conn.events.recv() => Some(event),
        };
        match event {
            None => {
                if let Some(conn) = current.take() {
                    conn.close().await;
                }
                return;
            }
            Some(Some(Event::Refresh(reason))) => {
                tracing::info!(
                    slot,
                    reason,
                    "Slack asked for a new Socket Mode connection; opening it before closing this one"
                );
                let opened = tokio::select! {
                    opened = open(&shared, slot) => Some(opened),
                    _ = stop.wait_for(|s| *s) => None,
                };
                match opened {
                    Some(Ok(new)) => {
                        if let Some(old) = current.replace(new) {
                            tokio::spawn(old.close());
                        }
                    }
                    Some(Err(e)) => tracing::warn!(
                        slot,
                        "Socket Mode: {e}; keeping the old connection until Slack closes it"
                    ),
                    None => {
                        if let Some(conn) = current.take() {
                            conn.close().await;
                        }
                        return;
                    }
                }
            }
            Some(None) => {
                let lived = current
                    .take()
                    .map_or(Duration::ZERO, |c| c.opened.elapsed());
                tracing::warn!(slot, "Socket Mode connection lost; reconnecting");
                // A connection that keeps dying young is reopened with backoff.
                if lived >= STABLE_AFTER {
                    backoff = BACKOFF_FIRST;
                } else {
                    tokio::select! {
                        () = tokio::time::sleep(jittered(backoff)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// What a connection tells its slot.
enum Event {
    /// Slack sent `disconnect` with this reason: open a replacement.
    Refresh(String),
}

/// Frames to send, in order.
enum Out {
    Text(String),
    /// Push out what the protocol layer queued (the pong to a ping).
    Flush,
    Close,
}

/// One open connection; its task ends (and `events` closes) when it does.
struct Connection {
    opened: tokio::time::Instant,
    close: oneshot::Sender<()>,
    events: mpsc::Receiver<Event>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Closes it: the acks being made are sent, then a close frame; waits (bounded)
    /// for Slack's close frame.
    async fn close(self) {
        let _ = self.close.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(CLOSE_GRACE * 2, self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The host of a websocket URL, for logs (the URL itself holds a one-time ticket).
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Opens one connection and waits for Slack's `hello`.
async fn open(shared: &Arc<Shared>, slot: usize) -> Result<Connection, OpenError> {
    let url = shared
        .slack
        .web()
        .connections_open(&shared.app_token)
        .await?;
    let host = host_of(&url);
    let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME))
        .max_message_size(Some(MAX_FRAME));
    let connect = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(url, Some(limits), false),
    );
    let mut socket: Socket = match connect.await {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(e)) => {
            return Err(OpenError::Connect {
                host,
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(OpenError::Connect {
                host,
                reason: format!("no handshake within {}s", CONNECT_TIMEOUT.as_secs()),
            })
        }
    };
    let connections = tokio::time::timeout(HELLO_TIMEOUT, hello(&mut socket))
        .await
        .map_err(|_| OpenError::Hello(format!("none within {}s", HELLO_TIMEOUT.as_secs())))??;
    let guard = shared.status.opened();
    tracing::info!(
        slot,
        host,
        slack_connections = connections,
        "Socket Mode connected"
    );
    let (close_tx, close_rx) = oneshot::channel();
    let (events_tx, events) = mpsc::channel(4);
    let task = tokio::spawn(run(
        shared.clone(),
        slot,
        socket,
        close_rx,
        events_tx,
        guard,
    ));
    Ok(Connection {
        opened: tokio::time::Instant::now(),
        close: close_tx,
        events,
        task,
    })
}

/// Reads until Slack's `hello`; returns the connection count it reports.
async fn hello(socket: &mut Socket) -> Result<Option<u64>, OpenError> {
    loop {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => match parse_frame(text.as_str(), None) {
                Ok(SocketFrame::Hello { connections }) => return Ok(connections),
                _ => tracing::debug!("Socket Mode: a frame before hello was skipped"),
            },
            Some(Ok(Frame::Close(_))) | None => {
                return Err(OpenError::Hello("the connection closed first".into()))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(OpenError::Hello(e.to_string())),
        }
    }
}

/// Serves one connection until it ends or `close` fires: envelopes handed over and
/// acknowledged, `disconnect` passed to the slot, pings sent, silence detected.
async fn run(
    shared: Arc<Shared>,
    slot: usize,
    socket: Socket,
    mut close: oneshot::Receiver<()>,
    events: mpsc::Sender<Event>,
    _open: OpenGuard,
) {
    let (write, mut read) = socket.split();
    let (out, out_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_frames(write, out_rx));
    let mut acks: JoinSet<()> = JoinSet::new();
    let mut closing = false;
    let close_deadline = tokio::time::sleep(SILENCE_LIMIT);
    tokio::pin!(close_deadline);
    loop {
        let frame = tokio::select! {
            Some(_) = acks.join_next(), if !acks.is_empty() => continue,
            _ = &mut close, if !closing => {
                closing = true;
                // The acks being made go out before the close frame.
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    while acks.join_next().await.is_some() {}
                })
                .await;
                let _ = out.send(Out::Close);
                close_deadline.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
                continue;
            }
            () = &mut close_deadline, if closing => break,
            frame = tokio::time::timeout(SILENCE_LIMIT, read.next()) => frame,
        };
        let frame = match frame {
            Err(_) => {
                tracing::warn!(
                    slot,
                    "Socket Mode: nothing from Slack for {}s; reconnecting",
                    SILENCE_LIMIT.as_secs()
                );
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                if !closing {
                    tracing::warn!(slot, "Socket Mode connection failed: {e}");
                }
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Frame::Text(text) => match parse_frame(text.as_str(), shared.slack.bot_user()) {
                Ok(SocketFrame::Envelope(envelope)) => {
                    let slack = shared.slack.clone();
                    let out = out.clone();
                    acks.spawn(async move {
                        let ack = deliver(&slack, &envelope).await;
                        let _ = out.send(Out::Text(ack.to_string()));
                    });
                }
                Ok(SocketFrame::Disconnect { reason }) => {
                    if reason == "link_disabled" {
                        tracing::error!(
                            slot,
                            "Slack turned Socket Mode off for this app (link_disabled)"
                        );
                    }
                    let _ = events.try_send(Event::Refresh(reason));
                }
                Ok(SocketFrame::Hello { .. }) => {}
                Ok(SocketFrame::Other(kind)) => {
                    tracing::debug!(slot, kind, "Socket Mode frame skipped")
                }
                Err(e) => tracing::warn!(
                    slot,
                    "Socket Mode: a frame that is not Slack's was skipped ({e}): {}",
                    crate::intake::excerpt(text.as_str())
                ),
            },
            Frame::Binary(bytes) => tracing::warn!(
                slot,
                len = bytes.len(),
                "Socket Mode: a binary frame was skipped (Slack sends text)"
            ),
            Frame::Ping(_) | Frame::Close(_) => {
                let _ = out.send(Out::Flush);
            }
            Frame::Pong(_) | Frame::Frame(_) => {}
        }
    }
    writer.abort();
}

/// Sends what the connection hands it, and a ping every [`PING_EVERY`].
async fn write_frames(
    mut write: futures::stream::SplitSink<Socket, Frame>,
    mut out: mpsc::UnboundedReceiver<Out>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let sent = tokio::select! {
            next = out.recv() => match next {
                Some(Out::Text(text)) => write.send(Frame::text(text)).await,
                Some(Out::Flush) => write.flush().await,
                Some(Out::Close) => write.send(Frame::Close(None)).await,
                None => return,
            },
            _ = ping.tick() => write.send(Frame::Ping(Vec::new().into())).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Hands one envelope to the transport; returns its acknowledgement (with the
/// immediate answer of a slash command where Slack accepts one).
async fn deliver(slack: &Slack, envelope: &Envelope) -> Value {
    let started = tokio::time::Instant::now();
    let payload = match &envelope.content {
        Err(e) => {
            tracing::warn!(
                envelope = %envelope.id,
                "Socket Mode: an envelope with an unreadable payload was acknowledged and dropped ({e})"
            );
            None
        }
        Ok(content) => accept(slack, content).await,
    };
    if started.elapsed() > SLOW_ACK {
        tracing::warn!(
            envelope = %envelope.id,
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "Socket Mode: accepting an envelope was slow; Slack allows 3 seconds"
        );
    }
    let mut ack = json!({ "envelope_id": envelope.id });
    if let (Some(payload), true) = (payload, envelope.accepts_response_payload) {
        ack["payload"] = payload;
    }
    ack
}

/// Gives the content to the transport. Socket Mode cannot ask Slack to deliver again
/// later, so refused work is answered with a short "try again" (in the DM, ephemerally
/// in a channel or to whoever clicked, in a slash command's immediate answer).
async fn accept(slack: &Slack, content: &EnvelopeContent) -> Option<Value> {
    match content {
        EnvelopeContent::Events(EventsPayload::Callback { event_id, message }) => {
            let accepted = slack.accept_message(event_id, message.clone()).await;
            if let (true, Some(m)) = (accepted.refused(), message) {
                tracing::warn!(
                    event_id,
                    ?accepted,
                    "event refused; asking the sender to retry"
                );
                slack.refuse_message(m.clone(), accepted);
            }
            None
        }
        EnvelopeContent::Interaction(InteractionPayload::Click(click)) => {
            let accepted = slack.accept_click(click.clone()).await;
            if accepted.refused() {
                tracing::warn!(?accepted, "click refused; asking the user to retry");
                slack.refuse_click(click.clone(), accepted);
            }
            None
        }
        EnvelopeContent::Command(command) => {
            let ack = command_ack(&command.text);
            let answer = match slack.accept_command(command.clone()).await {
                why if why.refused() => {
                    tracing::warn!(?why, "slash command refused; asking the user to retry");
                    Some(command_refusal(why))
                }
                // A repeat: answered once already.
                Accepted::Duplicate => None,
                _ => Some(ack),
            };
            answer.and_then(|a| serde_json::to_value(a).ok())
        }
        EnvelopeContent::Events(_)
        | EnvelopeContent::Interaction(InteractionPayload::Other(_))
        | EnvelopeContent::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_waits_are_spread_between_half_and_all_of_the_backoff() {
        let wait = Duration::from_secs(8);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(wait)).collect();
        assert!(
            waits.iter().all(|w| *w >= wait / 2 && *w <= wait),
            "{waits:?}"
        );
        let distinct: std::collections::BTreeSet<Duration> = waits.iter().copied().collect();
        assert!(
            distinct.len() > 100,
            "replicas that lost Slack together do not come back together: {} distinct waits",
            distinct.len()
        );
    }
}
