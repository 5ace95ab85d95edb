//! The status board: `GET /board`, one page of plain HTML, CSS and a small script
//! (no build step, no external requests: its Content-Security-Policy allows only this
//! server), and `GET /api/v1/events`, the Server-Sent Events that keep it live — a
//! `snapshot` on connect, then a `box` event per change. States only: never URLs,
//! reasons or secrets.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::monitor::board::{Board, BoardEvent};
use crate::state::AppState;

/// The page.
pub const PAGE: &str = include_str!("board/board.html");

/// How often an idle event stream checks that the server is still serving.
const TICK: Duration = Duration::from_secs(1);
/// How long one event stream lasts; the browser's `EventSource` then reconnects (and
/// gets a fresh snapshot), so no client holds a slot for ever.
const STREAM_LIFETIME: Duration = Duration::from_secs(600);

/// One open event stream, counted while it lives.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /board`.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

fn snapshot(board: &Board) -> Event {
    let data = json!({"monitored": board.monitored(), "boxes": board.snapshot()});
    Event::default().event("snapshot").data(data.to_string())
}

/// `GET /api/v1/events`: `text/event-stream` of the board's states; at most
/// `CROSSROADS_MAX_STREAMS` at once (`503` with `Retry-After` beyond), each ending
/// after ten minutes for the browser to reconnect.
pub async fn events(State(state): State<AppState>) -> Response {
    let open = state.streams.fetch_add(1, Ordering::SeqCst);
    let counted = Counted(state.streams.clone());
    if open >= state.max_streams {
        drop(counted);
        tracing::info!(open, "event stream refused: CROSSROADS_MAX_STREAMS reached");
        let mut res = crate::errors::error(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams are open; retry in a few seconds",
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return res;
    }
    stream(state, counted).into_response()
}

fn stream(state: AppState, counted: Counted) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let board = state.board.clone();
    let rx = board.subscribe();
    let first = Some(snapshot(&board));
    let ready = state.ready.clone();
    let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
    let stream = futures::stream::unfold(
        (board, rx, first, ready),
        move |(board, mut rx, first, ready)| async move {
            if let Some(event) = first {
                return Some((Ok(event), (board, rx, None, ready)));
            }
            loop {
                let next = tokio::time::timeout(TICK, rx.recv()).await;
                // The server is shutting down, or the stream has lived its time: end
                // it so the drain is not held up and the slot comes back.
                if !ready.load(Ordering::Relaxed) || tokio::time::Instant::now() >= ends {
                    return None;
                }
                let event = match next {
                    Err(_) => continue,
                    Ok(Ok(BoardEvent::Snapshot(_))) | Ok(Err(RecvError::Lagged(_))) => {
                        snapshot(&board)
                    }
                    Ok(Ok(BoardEvent::Changed(b))) => {
                        Event::default().event("box").data(json!(b).to_string())
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                };
                return Some((Ok(event), (board, rx, None, ready)));
            }
        },
    );
    let stream = futures::StreamExt::map(stream, move |event| {
        let _ = &counted;
        event
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
