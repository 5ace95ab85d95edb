//! Slack endpoints: buffer the body, verify the signature with
//! [`bot_core::slack::verify`], parse, acknowledge at once and work in the background.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_core::slack::payload::{self, EventsPayload, InteractionPayload};
use bot_core::slack::verify::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use super::error;
use crate::dispatch::Accepted;
use crate::AppState;

/// Checks size and signature; returns the body or the error answer.
fn verified(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Refusal> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", crate::config::MAX_BODY_BYTES),
            )
        } else {
            Refusal(StatusCode::BAD_REQUEST, "could not read the body".into())
        }
    })?;
    let Some(secret) = &state.signing_secret else {
        return Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "SLACK_SIGNING_SECRET is not set; Slack requests cannot be verified".into(),
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    verify::verify(
        secret.expose(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
    )
    .map_err(|e| Refusal(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok(body)
}

/// A request refused before parsing: status and reason.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// The answer to refused work (overload or shutdown): 503, so Slack delivers an
/// event again later (to this replica or another).
fn refused(why: Accepted) -> Response {
    let reason = match why {
        Accepted::ShuttingDown => "shutting down; deliver again later",
        _ => "too much work in flight; deliver again later",
    };
    error(StatusCode::SERVICE_UNAVAILABLE, reason)
}

/// `POST /slack/events`.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match verified(&state, &headers, body) {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(),
    };
    let parsed = match payload::parse_events(&body, state.dispatcher.bot_user()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match parsed {
        EventsPayload::UrlVerification { challenge } => challenge.into_response(),
        EventsPayload::Other => StatusCode::OK.into_response(),
        EventsPayload::Callback { event_id, message } => {
            match state.dispatcher.accept_message(&event_id, message).await {
                Accepted::Scheduled | Accepted::Ignored => StatusCode::OK.into_response(),
                Accepted::Duplicate => {
                    let mut res = StatusCode::OK.into_response();
                    res.headers_mut()
                        .insert("x-slack-no-retry", HeaderValue::from_static("1"));
                    res
                }
                why @ (Accepted::Overloaded | Accepted::ShuttingDown) => refused(why),
            }
        }
    }
}

/// `POST /slack/interactions`.
pub async fn interactions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match verified(&state, &headers, body) {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(),
    };
    match payload::parse_interaction(&body) {
        Err(e) => error(StatusCode::BAD_REQUEST, e),
        Ok(InteractionPayload::Other(kind)) => {
            tracing::debug!(kind, "interaction ignored");
            StatusCode::OK.into_response()
        }
        Ok(InteractionPayload::Click(click)) => match state.dispatcher.accept_click(click) {
            why if why.refused() => refused(why),
            _ => StatusCode::OK.into_response(),
        },
    }
}

/// `POST /slack/commands`.
pub async fn commands(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match verified(&state, &headers, body) {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(),
    };
    let command = match payload::parse_command(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let ack = crate::dispatch::command_ack(&command.text);
    match state.dispatcher.accept_command(command).await {
        why if why.refused() => refused(why),
        // A replayed request (same trigger_id): answered once already.
        Accepted::Duplicate => StatusCode::OK.into_response(),
        _ => axum::Json(ack).into_response(),
    }
}
