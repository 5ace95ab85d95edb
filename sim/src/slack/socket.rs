//! Socket Mode on the Slack stand-in: `apps.connections.open`, the `/link` websocket, envelopes out, acknowledgements in.
//!
//! Wire format as Slack sends it: on connect a `hello`
//! (`{"type":"hello","num_connections":N,"debug_info":{"host":…},"connection_info":{"app_id":…}}`);
//! envelopes `{"envelope_id","payload","type","accepts_response_payload"}` (plus
//! `retry_attempt`/`retry_reason` on `events_api`); `{"type":"disconnect","reason",…}`.
//! The client acknowledges with `{"envelope_id":…}` and, where allowed, a `payload`.
//! Pings are answered with pongs. Disconnect messages are only messages: the
//! connection stays open until the client closes it or a test calls
//! [`SlackStandIn::close_connection`] / [`SlackStandIn::cut_connection`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

use super::answer::{fail, json_answer, SLACK};
use super::{Shared, SlackStandIn, LINK};
use crate::listen::Conn;
use crate::record::Log;
use crate::wire::parse_form;

/// What kind of envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// `events_api`: payload is an `event_callback`.
    EventsApi,
    /// `interactive`: payload is e.g. `block_actions`.
    Interactive,
    /// `slash_commands`: payload is the slash command's fields.
    SlashCommands,
}

impl EnvelopeKind {
    /// The `type` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventsApi => "events_api",
            Self::Interactive => "interactive",
            Self::SlashCommands => "slash_commands",
        }
    }
}

static NEXT_ENVELOPE: AtomicU64 = AtomicU64::new(1);

/// One Socket Mode envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Id the client must acknowledge.
    pub envelope_id: String,
    /// Kind (`type` on the wire).
    pub kind: EnvelopeKind,
    /// The payload.
    pub payload: Value,
    /// Whether the ack may carry a response payload.
    pub accepts_response_payload: bool,
    /// 0 on first delivery.
    pub retry_attempt: u32,
    /// `""` on first delivery, e.g. `timeout` on a retry.
    pub retry_reason: String,
}

impl Envelope {
    fn new(kind: EnvelopeKind, payload: Value, accepts_response_payload: bool) -> Self {
        let n = NEXT_ENVELOPE.fetch_add(1, Ordering::Relaxed);
        Self {
            envelope_id: format!("5e1f0000-0000-4000-8000-{n:012x}"),
            kind,
            payload,
            accepts_response_payload,
            retry_attempt: 0,
            retry_reason: String::new(),
        }
    }
    /// An `events_api` envelope around an `event_callback` payload.
    pub fn events_api(payload: Value) -> Self {
        Self::new(EnvelopeKind::EventsApi, payload, false)
    }
    /// An `interactive` envelope (e.g. `block_actions`), accepting a response payload.
    pub fn interactive(payload: Value) -> Self {
        Self::new(EnvelopeKind::Interactive, payload, true)
    }
    /// A `slash_commands` envelope, accepting a response payload.
    pub fn slash_commands(payload: Value) -> Self {
        Self::new(EnvelopeKind::SlashCommands, payload, true)
    }
    /// Uses this envelope id instead of a generated one.
    pub fn with_id(mut self, id: &str) -> Self {
        self.envelope_id = id.to_owned();
        self
    }
    /// The frame's JSON. `retry_attempt`/`retry_reason` appear on `events_api`
    /// envelopes (as Slack sends them) and on any retried envelope.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.kind.as_str(),
            "accepts_response_payload": self.accepts_response_payload,
        });
        if self.kind == EnvelopeKind::EventsApi || self.retry_attempt > 0 {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("retry_attempt".into(), Value::from(self.retry_attempt));
                obj.insert(
                    "retry_reason".into(),
                    Value::from(self.retry_reason.clone()),
                );
            }
        }
        v
    }
}

/// Why Slack asks the client to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The connection is due for renewal: open a new one, then drop this one.
    RefreshRequested,
    /// The connection will be closed in about 10 seconds.
    Warning,
    /// Socket Mode was turned off for the app.
    LinkDisabled,
}

impl DisconnectReason {
    /// The `reason` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshRequested => "refresh_requested",
            Self::Warning => "warning",
            Self::LinkDisabled => "link_disabled",
        }
    }
}

/// Frames a client must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A text frame that is not JSON.
    NotJson,
    /// JSON without a `type`.
    NoType,
    /// A binary frame.
    Binary,
}

/// One websocket connection, open or closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// 1, 2, … in order of opening.
    pub id: u64,
    /// The ticket it connected with.
    pub ticket: String,
    /// When the handshake completed.
    pub opened_at: Instant,
    /// When it closed (either side), if it has.
    pub closed_at: Option<Instant>,
}

/// An acknowledgement the client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// The envelope acknowledged.
    pub envelope_id: String,
    /// The response payload, if any.
    pub payload: Option<Value>,
    /// Connection it came on.
    pub connection: u64,
    /// Time since the envelope was (last) sent on that connection; `None` when it
    /// was never sent there.
    pub delay: Option<Duration>,
    /// When it arrived.
    pub at: Instant,
    /// The frame as received.
    pub raw: String,
}

/// A text frame from the client that is not an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Connection it came on.
    pub connection: u64,
    /// The text.
    pub text: String,
    /// When it arrived.
    pub at: Instant,
}

/// Why a Socket Mode push could not go out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketModeError {
    /// Nobody is connected.
    #[error("no Socket Mode connection is open")]
    NoOpenConnection,
    /// No open connection has this id.
    #[error("Socket Mode connection {0} is not open")]
    UnknownConnection(u64),
    /// No envelope with this id was ever sent.
    #[error("no envelope {0} was sent")]
    UnknownEnvelope(String),
}

/// How long a connection the stand-in closed waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

enum Out {
    Text(String),
    Binary(Vec<u8>),
    Close,
    Cut,
}

#[derive(Default)]
struct HubState {
    next_ticket: u64,
    /// Ticket → already used.
    tickets: HashMap<String, bool>,
    next_conn: u64,
    live: BTreeMap<u64, mpsc::UnboundedSender<Out>>,
    envelopes: HashMap<String, Envelope>,
    sent: HashMap<(String, u64), Instant>,
}

/// Socket Mode state of one stand-in.
#[derive(Default)]
pub(super) struct Hub {
    state: Mutex<HubState>,
    connections: Log<Connection>,
    acks: Log<Ack>,
    frames: Log<ClientFrame>,
}

impl Hub {
    fn state(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, ticket: String, tx: mpsc::UnboundedSender<Out>) -> (u64, usize) {
        let mut st = self.state();
        st.next_conn += 1;
        let id = st.next_conn;
        st.live.insert(id, tx);
        let open = st.live.len();
        drop(st);
        self.connections.push(Connection {
            id,
            ticket,
            opened_at: Instant::now(),
            closed_at: None,
        });
        (id, open)
    }

    fn closed(&self, id: u64) {
        self.state().live.remove(&id);
        let now = Instant::now();
        self.connections.update(|all| {
            if let Some(c) = all.iter_mut().find(|c| c.id == id) {
                c.closed_at.get_or_insert(now);
            }
        });
    }

    fn received(&self, connection: u64, text: &str) {
        let parsed = serde_json::from_str::<Value>(text).ok();
        let envelope_id = parsed
            .as_ref()
            .and_then(|v| v.get("envelope_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let at = Instant::now();
        match envelope_id {
            Some(envelope_id) => {
                let sent = self
                    .state()
                    .sent
                    .get(&(envelope_id.clone(), connection))
                    .copied();
                self.acks.push(Ack {
                    payload: parsed.as_ref().and_then(|v| v.get("payload")).cloned(),
                    delay: sent.map(|s| at.saturating_duration_since(s)),
                    envelope_id,
                    connection,
                    at,
                    raw: text.to_owned(),
                });
            }
            None => {
                self.frames.push(ClientFrame {
                    connection,
                    text: text.to_owned(),
                    at,
                });
            }
        }
    }

    /// Sends `out()` to `to` (or every open connection); the ids it went to.
    fn send(&self, to: Option<u64>, out: impl Fn() -> Out) -> Result<Vec<u64>, SocketModeError> {
        let st = self.state();
        let targets: Vec<u64> = match to {
            Some(id) if st.live.contains_key(&id) => vec![id],
            Some(id) => return Err(SocketModeError::UnknownConnection(id)),
            None if st.live.is_empty() => return Err(SocketModeError::NoOpenConnection),
            None => st.live.keys().copied().collect(),
        };
        for id in &targets {
            if let Some(tx) = st.live.get(id) {
                // A connection ending right now drops the frame, as a real socket would.
                let _ = tx.send(out());
            }
        }
        Ok(targets)
    }

    fn send_envelope(
        &self,
        to: Option<u64>,
        envelope: Envelope,
    ) -> Result<String, SocketModeError> {
        let text = envelope.to_json().to_string();
        let id = envelope.envelope_id.clone();
        let targets = self.send(to, || Out::Text(text.clone()))?;
        let now = Instant::now();
        let mut st = self.state();
        for conn in targets {
            st.sent.insert((id.clone(), conn), now);
        }
        st.envelopes.insert(id.clone(), envelope);
        Ok(id)
    }
}

/// `apps.connections.open`, called from the Web API handler (already recorded and
/// past its scripted answers).
pub(super) fn connections_open(shared: &Shared, token: Option<&str>) -> Response {
    match token {
        None => return fail("not_authed"),
        Some(t) if t == shared.setup.app_token => {}
        Some(t) if !t.starts_with("xapp-") => return fail("not_allowed_token_type"),
        Some(_) => return fail("invalid_auth"),
    }
    let mut st = shared.socket.state();
    st.next_ticket += 1;
    let ticket = format!("sim-ticket-{}", st.next_ticket);
    st.tickets.insert(ticket.clone(), false);
    let url = format!(
        "{}/link?ticket={ticket}",
        shared.base.replacen("http://", "ws://", 1)
    );
    json_answer(StatusCode::OK, json!({"ok": true, "url": url}))
}

fn debug_info(shared: &Shared) -> Value {
    json!({"host": format!("applink-sim-{}", shared.setup.app_id.to_ascii_lowercase()), "build_number": 1, "approximate_connection_time": 18060})
}

/// `GET /link?ticket=…`: the websocket handshake, then the connection's life.
pub(super) async fn link(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    mut req: Request,
) -> Response {
    if let Some(resp) = shared.faults.apply(LINK, &SLACK, &conn).await {
        return resp;
    }
    let ticket = parse_form(req.uri().query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v)
        .unwrap_or_default();
    {
        let mut st = shared.socket.state();
        match st.tickets.get_mut(&ticket) {
            Some(used) if !*used => *used = true,
            _ => return (StatusCode::UNAUTHORIZED, "invalid ticket").into_response(),
        }
    }
    let headers = req.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()));
    let (true, Some(accept)) = (is_upgrade, key) else {
        return (StatusCode::BAD_REQUEST, "websocket upgrade expected").into_response();
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            run(shared, ws, ticket, conn).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn run(
    shared: Arc<Shared>,
    mut ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    ticket: String,
    conn: Conn,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, open) = shared.socket.register(ticket, tx);
    let hello = json!({
        "type": "hello",
        "num_connections": open,
        "debug_info": debug_info(&shared),
        "connection_info": {"app_id": shared.setup.app_id},
    });
    // After the stand-in sends a close frame, how long it waits for the client's.
    let mut closing: Option<tokio::time::Instant> = None;
    if ws.send(Frame::text(hello.to_string())).await.is_ok() {
        loop {
            let close_deadline = closing.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                _ = tokio::time::sleep_until(close_deadline), if closing.is_some() => break,
                frame = ws.next() => match frame {
                    Some(Ok(Frame::Text(text))) => shared.socket.received(id, text.as_str()),
                    // The pong is queued by the protocol layer; push it out now.
                    Some(Ok(Frame::Ping(_))) => {
                        if ws.flush().await.is_err() {
                            break;
                        }
                    }
                    // Close frames are answered by the protocol layer; the stream then ends.
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                out = rx.recv() => {
                    let sent = match out {
                        Some(Out::Text(t)) => ws.send(Frame::text(t)).await,
                        Some(Out::Binary(b)) => ws.send(Frame::binary(b)).await,
                        Some(Out::Close) => {
                            closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                            ws.close(None).await
                        }
                        Some(Out::Cut) | None => break,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                _ = conn.went_down() => break,
            }
        }
    }
    shared.socket.closed(id);
}

impl SlackStandIn {
    /// Socket Mode connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.socket.state().live.len()
    }

    /// Every Socket Mode connection so far (open and closed), in order of opening.
    pub fn connections(&self) -> Vec<Connection> {
        self.shared.socket.connections.all()
    }

    /// Waits until exactly `n` connections are open; returns every connection so far.
    pub async fn wait_for_open_connections(&self, n: usize) -> Vec<Connection> {
        let what = format!("{n} open Socket Mode connection(s)");
        self.shared
            .socket
            .connections
            .wait(self.shared.setup.wait_timeout, &what, |all| {
                let open = all.iter().filter(|c| c.closed_at.is_none()).count();
                (open == n).then(|| all.to_vec())
            })
            .await
    }

    /// Waits until `n` connections have been opened in all (open or since closed).
    pub async fn wait_for_connections_opened(&self, n: usize) -> Vec<Connection> {
        let what = format!("{n} Socket Mode connection(s) opened");
        self.shared
            .socket
            .connections
            .wait(self.shared.setup.wait_timeout, &what, |all| {
                (all.len() >= n).then(|| all.to_vec())
            })
            .await
    }

    /// Sends `envelope` on every open connection; returns its id.
    pub fn send(&self, envelope: Envelope) -> Result<String, SocketModeError> {
        self.shared.socket.send_envelope(None, envelope)
    }

    /// Sends `envelope` on one connection.
    pub fn send_to(&self, connection: u64, envelope: Envelope) -> Result<String, SocketModeError> {
        self.shared.socket.send_envelope(Some(connection), envelope)
    }

    /// Sends an envelope sent before again, as Slack's retry: `retry_attempt` one
    /// higher, `retry_reason` as given (Slack uses `timeout`), on every open connection.
    pub fn resend(&self, envelope_id: &str, reason: &str) -> Result<Envelope, SocketModeError> {
        let mut envelope = self
            .shared
            .socket
            .state()
            .envelopes
            .get(envelope_id)
            .cloned()
            .ok_or_else(|| SocketModeError::UnknownEnvelope(envelope_id.to_owned()))?;
        envelope.retry_attempt += 1;
        envelope.retry_reason = reason.to_owned();
        self.shared.socket.send_envelope(None, envelope.clone())?;
        Ok(envelope)
    }

    /// Sends `{"type":"disconnect","reason":…}` on every open connection (or one).
    pub fn disconnect(
        &self,
        reason: DisconnectReason,
        connection: Option<u64>,
    ) -> Result<(), SocketModeError> {
        let text = json!({
            "type": "disconnect",
            "reason": reason.as_str(),
            "debug_info": debug_info(&self.shared),
        })
        .to_string();
        self.shared
            .socket
            .send(connection, || Out::Text(text.clone()))
            .map(|_| ())
    }

    /// Sends a frame a client must survive, on every open connection.
    pub fn send_malformed(&self, kind: Malformed) -> Result<(), SocketModeError> {
        let out = move || match kind {
            Malformed::NotJson => Out::Text("this is not json {".into()),
            Malformed::NoType => {
                Out::Text(json!({"envelope_id": "no-type", "payload": {}}).to_string())
            }
            Malformed::Binary => Out::Binary(vec![0, 159, 146, 150]),
        };
        self.shared.socket.send(None, out).map(|_| ())
    }

    /// Sends any text frame on every open connection (or one).
    pub fn send_text(&self, text: &str, connection: Option<u64>) -> Result<(), SocketModeError> {
        self.shared
            .socket
            .send(connection, || Out::Text(text.to_owned()))
            .map(|_| ())
    }

    /// Closes a connection cleanly (a websocket close frame).
    pub fn close_connection(&self, connection: u64) -> Result<(), SocketModeError> {
        self.shared
            .socket
            .send(Some(connection), || Out::Close)
            .map(|_| ())
    }

    /// Drops a connection's TCP stream without a close frame.
    pub fn cut_connection(&self, connection: u64) -> Result<(), SocketModeError> {
        self.shared
            .socket
            .send(Some(connection), || Out::Cut)
            .map(|_| ())
    }

    /// Every acknowledgement so far, oldest first.
    pub fn acks(&self) -> Vec<Ack> {
        self.shared.socket.acks.all()
    }

    /// Waits for the (first) acknowledgement of `envelope_id`.
    pub async fn wait_for_ack(&self, envelope_id: &str) -> Ack {
        let what = format!("an ack of envelope {envelope_id}");
        self.shared
            .socket
            .acks
            .wait(self.shared.setup.wait_timeout, &what, |acks| {
                acks.iter().find(|a| a.envelope_id == envelope_id).cloned()
            })
            .await
    }

    /// Text frames from clients that were not acknowledgements.
    pub fn client_frames(&self) -> Vec<ClientFrame> {
        self.shared.socket.frames.all()
    }
}
