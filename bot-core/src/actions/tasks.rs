//! `show tasks <instance>`: the instance's tasks endpoint, rendered as a list.

use async_trait::async_trait;

use crate::config::{CommandSpec, InstanceRef};
use crate::context::{Action, Ctx};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
use crate::steps::health::join_url;

const MAX_TASKS: usize = 40;

fn field<'a>(item: &'a serde_json::Value, names: &[&str]) -> Option<&'a serde_json::Value> {
    names
        .iter()
        .find_map(|n| item.get(*n))
        .filter(|v| !v.is_null())
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn state_icon(state: &str) -> &'static str {
    match state.to_ascii_lowercase().as_str() {
        "running" | "in_progress" | "active" => ":arrows_counterclockwise:",
        "queued" | "pending" | "waiting" => ":hourglass_flowing_sand:",
        "done" | "finished" | "complete" | "completed" | "success" => ":white_check_mark:",
        "failed" | "error" => ":x:",
        _ => ":small_blue_diamond:",
    }
}

/// Renders one task object: name, state, progress, anything else short.
fn task_line(item: &serde_json::Value) -> String {
    if !item.is_object() {
        return format!(":small_blue_diamond: {}", text(item));
    }
    let name = field(item, &["name", "title", "task", "id"])
        .map(text)
        .unwrap_or_else(|| "task".into());
    let state = field(item, &["state", "status"]).map(text);
    let mut line = format!("{} *{}*", state_icon(state.as_deref().unwrap_or("")), name);
    if let Some(s) = &state {
        line.push_str(&format!(" — {s}"));
    }
    if let Some(p) = field(item, &["progress", "percent"]) {
        let p = text(p);
        line.push_str(&format!(
            " · {}{}",
            p,
            if p.ends_with('%') { "" } else { "%" }
        ));
    }
    if let Some(id) =
        field(item, &["id"]).filter(|_| field(item, &["name", "title", "task"]).is_some())
    {
        line.push_str(&format!(" · #{}", text(id)));
    }
    line
}

/// `show tasks <instance>`.
pub(crate) struct Tasks;

#[async_trait]
impl Action for Tasks {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        match inv.target.instance() {
            Some(r) => tasks(ctx, r).await,
            None => Rejection::unsupported(&cmd.name, &inv.target).reply(),
        }
    }
}

async fn tasks(ctx: &Ctx<'_>, r: &InstanceRef) -> Reply {
    let Some(instance) = ctx.config().instance(r) else {
        return Rejection::NoSuchInstance(r.clone()).reply();
    };
    let Some(path) = &instance.tasks else {
        return Rejection::NoTasksEndpoint(r.clone()).reply();
    };
    let url = join_url(&instance.url, path);
    let timeout = ctx.config().settings.probe_timeout;
    let snap = match ctx.backends.probe.get(&url, timeout).await {
        Ok(s) => s,
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!(":red_circle: I could not read the tasks of *{r}*: {e}"),
            )
            .context(url)
        }
    };
    if !(200..300).contains(&snap.status) {
        return Reply::message(
            Outcome::Failed,
            format!(
                ":warning: The tasks endpoint of *{r}* answered HTTP {}.",
                snap.status
            ),
        )
        .context(url);
    }
    let json: Option<serde_json::Value> = serde_json::from_str(&snap.body).ok();
    let items = json.as_ref().and_then(|j| match j {
        serde_json::Value::Array(a) => Some(a.clone()),
        serde_json::Value::Object(o) => ["tasks", "items", "data", "jobs"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|v| v.as_array()).cloned()),
        _ => None,
    });
    let header = format!("Tasks on *{r}*");
    match items {
        Some(items) if items.is_empty() => {
            Reply::message(Outcome::Info, format!("{header}: none.")).context(url)
        }
        Some(items) => {
            let mut lines: Vec<String> = items.iter().take(MAX_TASKS).map(task_line).collect();
            if items.len() > MAX_TASKS {
                lines.push(format!("…and {} more", items.len() - MAX_TASKS));
            }
            Reply::message(Outcome::Info, format!("{header} ({}):", items.len()))
                .text(lines.join("\n"))
                .context(url)
        }
        None => {
            let body: String = snap.body.chars().take(2500).collect();
            Reply::message(Outcome::Info, format!("{header}:"))
                .text(format!("```{}```", body.replace("```", "'''")))
                .context(url)
        }
    }
}
