//! `POST /api/v1/chart`: a Chart.js-shaped body (bearer token, rate limited per
//! token) rendered as a PNG and shared in `channel` through Slack's upload flow, or
//! returned as `image/png` with `?format=png`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bot_core::chart::{ChartError, ChartSpec};
use serde::Deserialize;
use serde_json::json;

use crate::errors::error;
use crate::routes::api::{authorised, over_limit, resolve_channel};
use crate::slack::files::{chart_file, share};
use crate::slack::webapi::WebApiError;
use crate::state::AppState;

/// Query of `POST /api/v1/chart`.
#[derive(Debug, Deserialize)]
pub struct ChartQuery {
    /// `png`: answer the image instead of posting it.
    pub format: Option<String>,
}

/// The body: a chart plus where to post it.
#[derive(Debug, Deserialize)]
struct ChartBody {
    /// A channel id (`C…`) or an alias from `instances.yaml` `channels:`.
    #[serde(default)]
    channel: Option<String>,
    #[serde(flatten)]
    chart: ChartSpec,
}

fn bad(reason: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, reason)
}

/// `POST /api/v1/chart[?format=png]` with `Authorization: Bearer
/// <CROSSROADS_API_TOKEN>` and `{"type": "line"|"bar", "title", "labels": […],
/// "datasets": [{"label", "data": […]}, …], "channel": …}`.
/// 200 `image/png` (`?format=png`) or `{"ok":true,"channel":…,"file_id":…}`;
/// 400 bad chart or channel (the reason), 401 bad token, 413 too large, 429 over the
/// token's rate limit (`Retry-After`), 502 Slack refused, 503 no token configured.
pub async fn chart(
    State(state): State<AppState>,
    query: Result<Query<ChartQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(refusal) = authorised(&state, &headers, "the chart API") {
        return refusal.into_response();
    }
    if let Some(limited) = over_limit(&state, "chart") {
        return limited;
    }
    let png_wanted = match query {
        Ok(Query(ChartQuery { format: None })) => false,
        Ok(Query(ChartQuery { format: Some(f) })) if f.eq_ignore_ascii_case("png") => true,
        Ok(Query(ChartQuery { format: Some(f) })) => {
            return bad(format!(
                "`format` must be `png` (or absent, to post to `channel`), got `{}`",
                f.chars().take(20).collect::<String>()
            ))
        }
        Err(e) => return bad(e.body_text()),
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", crate::config::MAX_BODY_BYTES),
            )
        }
        Err(_) => return bad("could not read the body"),
    };
    let ChartBody { channel, chart } = match serde_json::from_slice::<ChartBody>(&body) {
        Ok(b) => b,
        Err(e) => return bad(ChartError::Shape(e.to_string())),
    };
    if let Err(e) = chart.validate() {
        return bad(e);
    }
    let channel = if png_wanted {
        None
    } else {
        let Some(given) = channel.filter(|c| !c.trim().is_empty()) else {
            return bad("give `channel` (an id or an alias from `channels:`) to post the chart to, or ask for `?format=png`");
        };
        match resolve_channel(&state, &given) {
            Ok(c) if c.starts_with('#') => {
                return bad(format!(
                    "`{c}`: files are shared by channel id (C…) or an alias from `channels:`, not by #name"
                ))
            }
            Ok(c) => Some(c),
            Err(refusal) => return refusal.into_response(),
        }
    };
    let file = match chart_file(chart).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "a chart could not be drawn");
            return error(StatusCode::INTERNAL_SERVER_ERROR, e);
        }
    };
    let Some(channel) = channel else {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/png")],
            file.bytes,
        )
            .into_response();
    };
    match share(state.slack.web(), &[file], &channel, None, None).await {
        Ok(ids) => {
            tracing::info!(channel = %channel, "chart posted");
            axum::Json(json!({
                "ok": true,
                "channel": channel,
                "file_id": ids.first(),
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(channel = %channel, error = %e.code(), "chart not posted");
            let reason = match &e {
                WebApiError::Slack { error, .. } => format!("slack: {error}"),
                other => format!("slack: {other}"),
            };
            error(StatusCode::BAD_GATEWAY, reason)
        }
    }
}
