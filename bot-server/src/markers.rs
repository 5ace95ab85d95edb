//! From a change record in the outbox to its request: GitHub deployments and
//! statuses, Grafana annotations and PagerDuty change events (see
//! [`bot_core::markers`]). Tokens and routing keys come from the configuration in
//! force when it is sent; a status waits for the record before it and for its
//! deployment's GitHub id.

use std::time::Duration;

use bot_core::config::Config;
use bot_core::markers::{GITHUB, GRAFANA, PAGERDUTY_CHANGE};
use bot_core::ports::store::Outgoing;
use bot_core::ports::Store;
use serde_json::Value;

/// How soon a record waiting for the one before it looks again.
pub(crate) const WAIT: Duration = Duration::from_secs(1);

/// A request to send.
pub(crate) struct Request {
    pub url: String,
    pub body: Value,
    /// `Authorization: Bearer …`.
    pub bearer: Option<String>,
    /// GitHub's media type and API version headers.
    pub github: bool,
}

/// Why a record is not sent now.
pub(crate) enum NotYet {
    /// The record before it is not sent yet: look again after this long.
    Wait(Duration),
    /// It can never be sent.
    Never(String),
}

/// The request for `m`, a change record of `kind`; `None` when `kind` is not one.
pub(crate) async fn request(
    config: &Config,
    store: &dyn Store,
    kind: &str,
    m: &Outgoing,
) -> Option<Result<Request, NotYet>> {
    Some(match kind {
        GITHUB => github(config, store, m).await,
        GRAFANA => match config.markers.grafana.as_ref() {
            Some(g) => Ok(Request {
                url: format!("{}/api/annotations", g.url),
                body: m.body.clone(),
                bearer: Some(g.token.expose().to_owned()),
                github: false,
            }),
            None => Err(NotYet::Never("Grafana is no longer configured".into())),
        },
        PAGERDUTY_CHANGE => match config.markers.pagerduty.as_ref() {
            Some(pd) => {
                let mut body = m.body.clone();
                if let Some(obj) = body.as_object_mut() {
                    obj.insert(
                        "routing_key".into(),
                        Value::String(pd.routing_key.expose().to_owned()),
                    );
                }
                Ok(Request {
                    url: pd.url.clone(),
                    body,
                    bearer: None,
                    github: false,
                })
            }
            None => Err(NotYet::Never(
                "PagerDuty change events are no longer configured".into(),
            )),
        },
        _ => return None,
    })
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

async fn github(config: &Config, store: &dyn Store, m: &Outgoing) -> Result<Request, NotYet> {
    let env = text(&m.route, "env");
    let Some(gh) = config.github(env) else {
        return Err(NotYet::Never(format!(
            "GitHub deployments are no longer configured for {env}"
        )));
    };
    let base = format!("{}/repos/{}/deployments", gh.url, gh.repo);
    let bearer = Some(gh.token.expose().to_owned());
    if text(&m.route, "op") == "create" {
        return Ok(Request {
            url: base,
            body: m.body.clone(),
            bearer,
            github: true,
        });
    }
    // A status: after the record before it, on its deployment's GitHub id.
    let looked = |id: &str| {
        let id = id.to_owned();
        async move { store.message(&id).await }
    };
    let after = text(&m.route, "after");
    match looked(after).await {
        Ok(Some(before)) if before.delivered < before.version && !before.given_up => {
            return Err(NotYet::Wait(WAIT))
        }
        Ok(_) => {}
        Err(_) => return Err(NotYet::Wait(WAIT)),
    }
    let deployment = text(&m.route, "deployment");
    match looked(deployment).await {
        Ok(Some(d)) => match d.state.get("id").and_then(Value::as_u64) {
            Some(id) => Ok(Request {
                url: format!("{base}/{id}/statuses"),
                body: m.body.clone(),
                bearer,
                github: true,
            }),
            None if d.given_up => Err(NotYet::Never(
                "its GitHub deployment could not be created".into(),
            )),
            None if d.delivered >= d.version && d.version > 0 => Err(NotYet::Never(
                "GitHub's answer to its deployment had no id".into(),
            )),
            None => Err(NotYet::Wait(WAIT)),
        },
        Ok(None) => Err(NotYet::Never(
            "its GitHub deployment was never recorded".into(),
        )),
        Err(_) => Err(NotYet::Wait(WAIT)),
    }
}

/// What the courier keeps of a successful answer: a created deployment's id.
pub(crate) fn kept(kind: &str, answer: &Value) -> Value {
    match (kind, answer.get("id")) {
        (GITHUB, Some(id)) => serde_json::json!({ "id": id }),
        _ => Value::Null,
    }
}

/// Says once, in the thread of the run's progress message, that GitHub did not take
/// deployment record `m` (`why`): the deploy goes on, and the record is tried again
/// when `retried`.
/// Nothing when the run had no chat message, or it is not posted yet.
pub(crate) async fn note_in_thread(
    store: &dyn Store,
    m: &Outgoing,
    why: &str,
    retried: bool,
    now: std::time::SystemTime,
) {
    use crate::slack::delivery::{Delivered, Destination};
    let Some(thread) = m.route.get("thread").and_then(Value::as_str) else {
        return;
    };
    // One note per thread, whichever record of whichever pool failed first.
    let id = format!("gh-note:{thread}");
    if !matches!(store.message(&id).await, Ok(None)) {
        return;
    }
    let Ok(Some(parent)) = store.message(thread).await else {
        return;
    };
    let Ok(dest) = serde_json::from_value::<Destination>(parent.route.clone()) else {
        return;
    };
    let posted = serde_json::from_value::<Delivered>(parent.state.clone())
        .ok()
        .and_then(|d| d.posted);
    let dest = match dest {
        // A progress message that is itself a thread reply: the note joins that thread.
        Destination::Channel {
            channel,
            user,
            thread_ts,
        } => match thread_ts.or(posted) {
            Some(ts) => Destination::Channel {
                channel,
                thread_ts: Some(ts),
                user,
            },
            None => return,
        },
        Destination::Message { channel, ts, .. } => Destination::Channel {
            channel,
            thread_ts: Some(ts),
            user: String::new(),
        },
        Destination::ResponseUrl { .. } => return,
    };
    let reply = bot_core::Reply::message(
        bot_core::Outcome::Info,
        if retried {
            format!(
                ":warning: GitHub did not take this deploy's deployment record ({why}). The deploy is not affected; I keep trying, and its status arrives once GitHub answers."
            )
        } else {
            format!(
                ":warning: GitHub refused this deploy's deployment record ({why}), so it will not be sent again. The deploy is not affected."
            )
        },
    );
    let (Ok(route), Ok(body)) = (serde_json::to_value(&dest), serde_json::to_value(&reply)) else {
        return;
    };
    let written = async {
        store
            .open_message(
                &id,
                crate::slack::courier::TRANSPORT,
                &route,
                "GitHub note",
                now,
            )
            .await?;
        store.put_message(&id, &body, true).await
    }
    .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not note a GitHub failure in the deploy's thread");
    }
}
