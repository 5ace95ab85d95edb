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

/// `GET /api/v1/events`: `text/event-stream` of the board's states.
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let board = state.board.clone();
    let rx = board.subscribe();
    let first = Some(snapshot(&board));
    let ready = state.ready.clone();
    let stream = futures::stream::unfold(
        (board, rx, first, ready),
        |(board, mut rx, first, ready)| async move {
            if let Some(event) = first {
                return Some((Ok(event), (board, rx, None, ready)));
            }
            loop {
                let next = tokio::time::timeout(TICK, rx.recv()).await;
                // The server is shutting down: end the stream so the drain is not held up.
                if !ready.load(Ordering::Relaxed) {
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
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
