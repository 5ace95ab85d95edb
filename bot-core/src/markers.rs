//! Where deploys show up: GitHub deployments and their statuses, Grafana annotations
//! and PagerDuty change events, written to the outbox (transport [`TRANSPORT`]) and
//! sent from there, with retries, by the server's hook courier. Nothing here fails
//! an action: a record that cannot be written is logged and the action goes on.
//!
//! Every record has an id made from its run, so a run taken over writes nothing
//! twice. A GitHub deployment's records form a chain (`…:0` create, `…:1`
//! `in_progress`, `…:2` its outcome, `…:3` `inactive`): each names the one it waits
//! for (`after`), and a status names its deployment, whose GitHub id the courier
//! keeps when the create is sent. Secrets (tokens, routing keys) are never stored:
//! the courier adds them from the configuration in force when it sends. A GitHub
//! record names the run's progress message (`thread`): the first time GitHub refuses
//! one, the courier says so in that message's thread.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::context::Ctx;

/// The outbox transport of hook events (incident hooks and change markers).
pub const TRANSPORT: &str = "hooks";

/// Route kind: a GitHub deployment (`op: create`) or status (`op: status`).
pub const GITHUB: &str = "github";
/// Route kind: a Grafana annotation.
pub const GRAFANA: &str = "grafana";
/// Route kind: a PagerDuty change event.
pub const PAGERDUTY_CHANGE: &str = "pagerduty_change";

/// One pool moving onto a member, as a GitHub deployment describes it.
pub struct Move<'a> {
    /// The environment.
    pub env: &'a str,
    /// Its region, in an environment with regions.
    pub region: Option<&'a str>,
    /// The pool.
    pub pool: &'a str,
    /// The member live before.
    pub from: &'a str,
    /// The member going live.
    pub to: &'a str,
    /// What is deployed: the pinned commit when known, else the ref.
    pub git_ref: &'a str,
    /// The ref as asked (`main`), when it differs from `git_ref`.
    pub ref_name: &'a str,
    /// Who asked.
    pub requester: &'a str,
    /// `deploy`, `rollback` or `switch`.
    pub task: &'a str,
}

/// The chain of records of one GitHub deployment: `gh:{run}:{slot}`.
pub fn deployment_key(run: &str, slot: usize) -> String {
    format!("gh:{run}:{slot}")
}

fn ms(t: SystemTime) -> i64 {
    i64::try_from(crate::steps::watch::unix_ms(t)).unwrap_or(i64::MAX)
}

/// Writes record `id` for sending, whoever writes it first: opening is idempotent
/// and a record's final content, once set, is never replaced, so a takeover that
/// writes it again changes nothing (and an open whose write failed is completed).
pub async fn write(
    store: &dyn crate::ports::Store,
    id: &str,
    route: &Value,
    body: &Value,
    now: SystemTime,
) -> Result<(), crate::ports::StoreError> {
    store.open_message(id, TRANSPORT, route, id, now).await?;
    store.put_message(id, body, true).await
}

/// [`write`] with `since` (ms) in the route, from which the courier gives a change
/// record up; logged and forgotten on failure: nothing here fails an action.
async fn put(ctx: &Ctx<'_>, id: &str, mut route: Value, body: Value) {
    if let Some(r) = route.as_object_mut() {
        r.insert("since".into(), json!(ms(ctx.now())));
    }
    if let Err(e) = write(&*ctx.backends.store, id, &route, &body, ctx.now()).await {
        tracing::warn!(record = %id, error = %e, "could not write a change record; it is not sent");
    }
}

/// A GitHub deployment begins: it is created (`auto_merge: false`, no required
/// contexts, a payload naming pool, member, region and requester) and marked
/// `in_progress`, with `log_url` when known.
pub async fn deployment_started(ctx: &Ctx<'_>, key: &str, m: &Move<'_>, log_url: Option<&str>) {
    let Some(gh) = ctx.config().github(m.env) else {
        return;
    };
    let environment = gh.environment(m.env);
    let place = match m.region {
        Some(r) => format!("{} {r} {}", m.env, m.pool),
        None => format!("{} {}", m.env, m.pool),
    };
    let create = json!({
        "ref": m.git_ref,
        "task": m.task,
        "environment": environment,
        "auto_merge": false,
        "required_contexts": [],
        "transient_environment": false,
        "description": format!("{} {} to {place} ({} → {}) by {}", m.task, m.ref_name, m.from, m.to, m.requester),
        "payload": {
            "pool": m.pool,
            "member": m.to,
            "from": m.from,
            "region": m.region,
            "requester": m.requester,
            "ref_name": m.ref_name,
            "crossroads_env": m.env,
        },
    });
    let create_id = format!("{key}:0");
    put(
        ctx,
        &create_id,
        json!({"kind": GITHUB, "op": "create", "env": m.env, "thread": ctx.reply_to}),
        create,
    )
    .await;
    status(
        ctx,
        key,
        1,
        m.env,
        "in_progress",
        log_url,
        &format!("{} of {} started", m.task, m.ref_name),
    )
    .await;
}

/// How a GitHub deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Live.
    Success,
    /// The build, gate, canary or watch said no.
    Failure,
    /// Something Crossroads relies on did not answer (Jenkins, the switch).
    Error,
}

impl Ended {
    fn state(self) -> &'static str {
        match self {
            Ended::Success => "success",
            Ended::Failure => "failure",
            Ended::Error => "error",
        }
    }
}

/// A GitHub deployment's outcome.
pub async fn deployment_ended(
    ctx: &Ctx<'_>,
    key: &str,
    env: &str,
    ended: Ended,
    log_url: Option<&str>,
    description: &str,
) {
    status(ctx, key, 2, env, ended.state(), log_url, description).await;
}

/// A GitHub deployment is no longer live (rolled back, by hand or by the watch).
pub async fn deployment_inactive(ctx: &Ctx<'_>, key: &str, env: &str, description: &str) {
    status(ctx, key, 3, env, "inactive", None, description).await;
}

/// Status number `seq` of deployment `key`, sent after `seq - 1`.
async fn status(
    ctx: &Ctx<'_>,
    key: &str,
    seq: u32,
    env: &str,
    state: &str,
    log_url: Option<&str>,
    description: &str,
) {
    let Some(gh) = ctx.config().github(env) else {
        return;
    };
    // No status without its deployment (a pool that failed before it knew its
    // members, a run from before `github:` was configured).
    let create = format!("{key}:0");
    if !matches!(ctx.backends.store.message(&create).await, Ok(Some(_))) {
        return;
    }
    let mut body = json!({
        "state": state,
        "description": clip(description, 140),
        "environment": gh.environment(env),
        // Every pool of a run is a deployment of one GitHub environment: GitHub's
        // own clean-up would mark a run's earlier pools inactive. Crossroads marks
        // a deployment inactive itself when traffic leaves it.
        "auto_inactive": false,
    });
    if let Some(url) = log_url.filter(|u| !u.is_empty()) {
        body["log_url"] = json!(url);
    }
    if let Some(url) = gh.environment_urls.get(env) {
        body["environment_url"] = json!(url);
    }
    let route = json!({
        "kind": GITHUB,
        "op": "status",
        "env": env,
        "deployment": create,
        "after": format!("{key}:{}", seq - 1),
        // `inactive` may be of an older run's deployment: its thread is not this one.
        "thread": if seq < 3 { ctx.reply_to } else { None },
    });
    put(ctx, &format!("{key}:{seq}"), route, body).await;
}

/// GitHub keeps a status's description to 140 characters.
fn clip(text: &str, max: usize) -> String {
    let plain = crate::text::plain(text);
    if plain.chars().count() <= max {
        return plain;
    }
    let mut out: String = plain.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A change to mark: one deploy, rollback, switch or canary step.
pub struct Change<'a> {
    /// The record's id (made from its run, so it is written once).
    pub id: String,
    /// The environment.
    pub env: &'a str,
    /// The pools it touched.
    pub pools: Vec<String>,
    /// `success`, `failure`, `rolled-back`, `canary` …
    pub outcome: &'a str,
    /// When it began and ended.
    pub began: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// What, who and the commits, in one line or a few.
    pub text: String,
    /// Links (the build), as (href, text).
    pub links: Vec<(String, String)>,
}

/// Each name once, in first-seen order (the pools a change touched, over regions).
pub fn distinct<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

/// A Grafana annotation for `change`: `time`, `timeEnd`, tags
/// `[crossroads, <env>, <pool>…, <outcome>]` and the text.
pub async fn annotate(ctx: &Ctx<'_>, change: &Change<'_>) {
    let Some(g) = ctx.config().markers.grafana.as_ref() else {
        return;
    };
    let mut tags = vec!["crossroads".to_owned(), change.env.to_owned()];
    tags.extend(change.pools.iter().cloned());
    tags.push(change.outcome.to_owned());
    let mut text = change.text.clone();
    for (href, label) in &change.links {
        text.push_str(&format!("\n{label}: {href}"));
    }
    let mut body = json!({
        "time": ms(change.began),
        "timeEnd": ms(change.ended.max(change.began)),
        "tags": tags,
        "text": text,
    });
    if let Some(uid) = &g.dashboard_uid {
        body["dashboardUID"] = json!(uid);
    }
    put(
        ctx,
        &format!("grafana:{}", change.id),
        json!({"kind": GRAFANA}),
        body,
    )
    .await;
}

/// A PagerDuty change event for `change`, with its links.
pub async fn change_event(ctx: &Ctx<'_>, change: &Change<'_>) {
    if ctx.config().markers.pagerduty.is_none() {
        return;
    }
    let summary = clip(change.text.lines().next().unwrap_or_default(), 1024);
    let links: Vec<Value> = change
        .links
        .iter()
        .map(|(href, text)| json!({"href": href, "text": text}))
        .collect();
    let ended = crate::monitor::words::timestamp(change.ended);
    let body = json!({
        "payload": {
            "summary": summary,
            "timestamp": ended,
            "source": "crossroads",
            "custom_details": {
                "environment": change.env,
                "pools": change.pools,
                "outcome": change.outcome,
                "text": change.text,
            },
        },
        "links": links,
    });
    put(
        ctx,
        &format!("pd-change:{}", change.id),
        json!({"kind": PAGERDUTY_CHANGE}),
        body,
    )
    .await;
}
