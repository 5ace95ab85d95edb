//! `history [env] [page]`: the audit log from the store, newest first — who, what (as
//! typed, with the ref), target, outcome, duration and every build link; refusals too.

use async_trait::async_trait;

use crate::config::{CommandSpec, Config};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::AuditRecord;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::{code, human, when};

/// Records per page.
const PAGE: usize = 20;

/// `history [env] [page]`.
pub(crate) struct History;

/// The page asked for: the one argument, a whole number from 1; page 1 without one.
fn page(inv: &Invocation) -> Result<usize, Rejection> {
    match inv.args.as_slice() {
        [] => Ok(1),
        [n] => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(Rejection::BadPage { given: n.clone() }),
        },
        more => Err(Rejection::BadPage {
            given: more.join(" "),
        }),
    }
}

#[async_trait]
impl Action for History {
    fn check(&self, _: &Config, inv: &Invocation) -> Result<(), Rejection> {
        page(inv).map(drop)
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let page = match page(&inv) {
            Ok(p) => p,
            Err(refusal) => return refusal.reply(),
        };
        match &inv.target {
            Target::None => history(ctx, None, page).await,
            Target::Env { env, .. } => history(ctx, Some(env), page).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }
}

/// `#7` for a Jenkins build URL ending in its number, else `build`.
fn link_label(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        .map_or_else(|| "build".to_owned(), |n| format!("#{n}"))
}

fn line(r: &AuditRecord) -> String {
    let mut line = format!(
        "{} · {} · {} · {}",
        when(r.at),
        crate::text::who(&r.user),
        code(&r.what()),
        crate::text::escape(&r.outcome)
    );
    if let Some(d) = r.duration {
        line.push_str(&format!(" · {}", human(d)));
    }
    if !r.links.is_empty() {
        let links: Vec<String> = r
            .links
            .iter()
            .map(|l| format!("<{l}|{}>", link_label(l)))
            .collect();
        line.push_str(&format!(" · {}", links.join(", ")));
    }
    line
}

async fn history(ctx: &Ctx<'_>, env: Option<&str>, page: usize) -> Reply {
    let offset = (page - 1) * PAGE;
    // The record written before an action runs ("started") is evidence in the
    // chain; the history shows how things ended.
    let records = match ctx
        .backends
        .store
        .history(env, offset, PAGE)
        .await
        .map(|r| {
            r.into_iter()
                .filter(|r| r.outcome != "started" && !r.outcome.starts_with("approving: "))
                .collect::<Vec<_>>()
        }) {
        Ok(r) => r,
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!("I could not read the history: {}", told(&e)),
            )
        }
    };
    let title = match env {
        Some(e) => format!("Latest actions on {e}"),
        None => "Latest actions".to_owned(),
    };
    let title = if page > 1 {
        format!("{title} (page {page})")
    } else {
        title
    };
    if records.is_empty() {
        return Reply::message(Outcome::Info, format!("{title}: nothing yet."));
    }
    let lines: Vec<String> = records.iter().map(line).collect();
    let mut reply = Reply::new(Outcome::Info)
        .header(title)
        .text(lines.join("\n"));
    if records.len() == PAGE {
        let next = match env {
            Some(e) => format!("history {e} {}", page + 1),
            None => format!("history {}", page + 1),
        };
        reply = reply.context(format!("Older: `{next}`."));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_links_are_labelled_with_their_number() {
        assert_eq!(link_label("http://127.0.0.1:18090/job/deploy-api/7/"), "#7");
        assert_eq!(
            link_label("http://127.0.0.1:18090/job/x/lastBuild"),
            "build"
        );
    }
}
