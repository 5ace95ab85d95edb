//! Slack's HTTP endpoints. Every body passes one extractor, [`Verified`], which
//! buffers it within the size limit and checks Slack's signature with
//! [`bot_core::slack::verify`]; the handlers parse, hand the work over and
//! acknowledge at once.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_core::config::Secret;
use bot_core::slack::payload::{self, EventsPayload, InteractionPayload};
use bot_core::slack::verify::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::errors::error;
use crate::intake::Accepted;
use crate::slack::ack::command_ack;
use crate::slack::Slack;

/// What Slack's routes need of the app's state.
#[derive(Clone)]
pub struct SlackHttp {
    /// The transport.
    pub slack: Slack,
    /// `SLACK_SIGNING_SECRET`; the routes answer 503 without it.
    pub signing_secret: Option<Secret>,
}

/// A request body that came from Slack: within the size limit, signed with the
/// signing secret, recent. Anything else is answered before a handler runs: 413 too
/// large, 400 unreadable, 401 unsigned or stale, 503 without a signing secret.
pub struct Verified(pub Bytes);

impl<S> FromRequest<S> for Verified
where
    S: Send + Sync,
    SlackHttp: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let SlackHttp { signing_secret, .. } = SlackHttp::from_ref(state);
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than {} bytes", crate::config::MAX_BODY_BYTES),
                )
            } else if let Some(timeout) = body_timeout(&rejection) {
                error(StatusCode::REQUEST_TIMEOUT, timeout)
            } else {
                error(StatusCode::BAD_REQUEST, "could not read the body")
            }
        })?;
        let Some(secret) = &signing_secret else {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SLACK_SIGNING_SECRET is not set; Slack requests cannot be verified",
            ));
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        verify::verify(
            secret.expose(),
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            &body,
        )
        .map_err(|e| error(StatusCode::UNAUTHORIZED, e))?;
        Ok(Verified(body))
    }
}

/// The body timeout behind a failure to read a body, if that is what it was.
fn body_timeout(rejection: &axum::extract::rejection::BytesRejection) -> Option<String> {
    use std::error::Error;
    let mut next: Option<&(dyn Error + 'static)> = rejection.source();
    while let Some(e) = next {
        if let Some(timeout) = e.downcast_ref::<crate::conn::BodyTimeout>() {
            return Some(timeout.to_string());
        }
        next = e.source();
    }
    None
}

/// The answer to refused work (overload or shutdown): 503, so Slack delivers an
/// event again later (to this replica or another).
fn refused(why: Accepted) -> Response {
    let reason = match why {
        Accepted::ShuttingDown => "shutting down; deliver again later",
        Accepted::Unavailable => "the state store is unavailable; deliver again later",
        _ => "too much work in flight; deliver again later",
    };
    error(StatusCode::SERVICE_UNAVAILABLE, reason)
}

/// `POST /slack/events`.
pub async fn events(State(state): State<SlackHttp>, Verified(body): Verified) -> Response {
    let parsed = match payload::parse_events(&body, state.slack.bot_user()) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match parsed {
        EventsPayload::UrlVerification { challenge } => challenge.into_response(),
        EventsPayload::Other => StatusCode::OK.into_response(),
        EventsPayload::Callback { event_id, message } => {
            match state.slack.accept_message(&event_id, message).await {
                Accepted::Scheduled | Accepted::Ignored => StatusCode::OK.into_response(),
                Accepted::Duplicate => {
                    let mut res = StatusCode::OK.into_response();
                    res.headers_mut()
                        .insert("x-slack-no-retry", HeaderValue::from_static("1"));
                    res
                }
                why @ (Accepted::Overloaded | Accepted::ShuttingDown | Accepted::Unavailable) => {
                    refused(why)
                }
            }
        }
    }
}

/// `POST /slack/interactions`.
pub async fn interactions(State(state): State<SlackHttp>, Verified(body): Verified) -> Response {
    match payload::parse_interaction(&body) {
        Err(e) => error(StatusCode::BAD_REQUEST, e),
        Ok(InteractionPayload::Other(kind)) => {
            tracing::debug!(kind, "interaction ignored");
            StatusCode::OK.into_response()
        }
        Ok(InteractionPayload::Click(click)) => match state.slack.accept_click(click).await {
            why if why.refused() => refused(why),
            _ => StatusCode::OK.into_response(),
        },
    }
}

/// `POST /slack/commands`.
pub async fn commands(State(state): State<SlackHttp>, Verified(body): Verified) -> Response {
    let command = match payload::parse_command(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let ack = command_ack(&command.text);
    match state.slack.accept_command(command).await {
        why if why.refused() => refused(why),
        // A replayed request (same trigger_id): answered once already.
        Accepted::Duplicate => StatusCode::OK.into_response(),
        _ => axum::Json(ack).into_response(),
    }
}
