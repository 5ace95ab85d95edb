//! `status [env]`: every instance probed concurrently, one report grouped by
//! environment and pool, active member marked, with latency and version.

use crate::actions::health::{probe, Verdict};
use crate::engine::{human, Ctx};
use crate::reply::{Outcome, Reply};

fn icon(v: &Verdict) -> &'static str {
    if v.healthy {
        ":large_green_circle:"
    } else if v.down.is_some() {
        ":red_circle:"
    } else {
        ":warning:"
    }
}

pub(crate) async fn status(ctx: &Ctx<'_>, env: Option<&str>) -> Reply {
    let config = ctx.config();
    let envs: Vec<_> = config
        .environments
        .iter()
        .filter(|e| env.is_none_or(|n| e.name == n))
        .collect();
    // Probe every instance and read every switch at once; each probe has its own timeout.
    let probes = futures::future::join_all(
        envs.iter()
            .flat_map(|e| e.pools.iter().flat_map(|p| p.members.iter()))
            .map(|m| probe(ctx, m)),
    );
    let pools: Vec<(String, String)> = envs
        .iter()
        .flat_map(|e| e.pools.iter().map(|p| (e.name.clone(), p.name.clone())))
        .collect();
    let (verdicts, actives) = tokio::join!(probes, ctx.actives(pools));
    let total = verdicts.len();
    let mut verdicts = verdicts.into_iter();
    let mut healthy_count = 0usize;
    let mut reply = Reply::new(Outcome::Info).header(match env {
        Some(e) => format!("Status of {e}"),
        None => "Platform status".to_owned(),
    });
    for e in &envs {
        let mut lines = vec![format!(
            "*{}*{}",
            e.name,
            if e.protected { " (protected)" } else { "" }
        )];
        for p in &e.pools {
            let active = actives.get(&(e.name.clone(), p.name.clone()));
            let role_note = match active {
                Some(Err(err)) => format!(" — switch: {err}"),
                _ => String::new(),
            };
            lines.push(format!("  _{}_{role_note}", p.name));
            for m in &p.members {
                let Some(v) = verdicts.next() else { break };
                if v.healthy {
                    healthy_count += 1;
                }
                let is_active = matches!(active, Some(Ok(a)) if *a == m.name);
                let mut facts = Vec::new();
                facts.push(v.problem().unwrap_or_else(|| "healthy".to_owned()));
                if v.down.is_none() {
                    if let Some(l) = v.latency {
                        facts.push(human(l));
                    }
                }
                if let Some(ver) = &v.version {
                    facts.push(format!("v{}", ver.trim_start_matches('v')));
                }
                lines.push(format!(
                    "    {} {}{} — {}",
                    icon(&v),
                    m.name,
                    if is_active { " *← active*" } else { "" },
                    facts.join(" · ")
                ));
            }
        }
        reply = reply.text(lines.join("\n"));
    }
    reply.context(format!(
        "{} of {total} instances healthy · probe timeout {}",
        healthy_count,
        human(config.settings.probe_timeout)
    ))
}
