//! What is being deployed: the commits between the live version and the ref to
//! deploy — from the configured compare endpoint (GitHub or GitLab shape) before the
//! build, else from the Jenkins build's change set once built — rendered for the
//! confirmation, the approval card and the progress message: author, short hash and
//! first line, newest first, capped with "and N more".

use serde::{Deserialize, Serialize};

use crate::config::Environment;
use crate::context::{Ctx, Shipping};
use crate::failure::told;
use crate::ports::Commit;
use crate::reply::Pin;
use crate::steps::health::probe;
use crate::text::{code, escape};

/// Most commits listed; the rest are counted.
pub const SHOWN: usize = 5;

/// What is known about the commits a deploy ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Changes {
    /// Listed, oldest first, by `source`.
    Listed {
        /// The commits, oldest first.
        commits: Vec<Commit>,
        /// Where they come from (`GitHub compare 1.0.0...main`).
        source: String,
    },
    /// Jenkins lists them once it has built (no compare endpoint answered).
    AfterBuild {
        /// Why not before.
        why: String,
    },
    /// Not available, and why.
    Unavailable {
        /// Why.
        why: String,
    },
}

impl Changes {
    /// A few lines of Slack mrkdwn.
    pub fn render(&self) -> String {
        match self {
            Changes::Listed { commits, source } if commits.is_empty() => {
                format!("*Changes:* none — no new commits ({source}).")
            }
            Changes::Listed { commits, source } => {
                let mut lines = vec![format!(
                    "*Changes* ({}, newest first, from {source}):",
                    commits.len()
                )];
                lines.extend(commits.iter().rev().take(SHOWN).map(|c| {
                    let short = short(&c.sha);
                    let author = if c.author.is_empty() {
                        "unknown author"
                    } else {
                        c.author.as_str()
                    };
                    format!(
                        "• {} {} — {}",
                        code(&short),
                        escape(&one_line(&c.title)),
                        escape(author)
                    )
                }));
                if commits.len() > SHOWN {
                    lines.push(format!("…and {} more", commits.len() - SHOWN));
                }
                lines.join("\n")
            }
            Changes::AfterBuild { why } => {
                format!(
                    "*Changes:* listed once Jenkins has built it ({}).",
                    escape(why)
                )
            }
            Changes::Unavailable { why } => {
                format!("*Changes:* not available — {}.", escape(why))
            }
        }
    }
}

/// A commit title as one short line, safe inside the message.
pub(crate) fn one_line(title: &str) -> String {
    let line = title.lines().next().unwrap_or_default().replace('`', "'");
    if line.chars().count() > 72 {
        format!("{}…", line.chars().take(71).collect::<String>())
    } else {
        line
    }
}

/// Before the build: the commits between the live version of `env` (its first pool's
/// active member that reports a version) and `git_ref`, from the compare endpoint.
pub async fn before_build(
    ctx: &Ctx<'_>,
    env: &Environment,
    pools: &[String],
    git_ref: &str,
) -> Changes {
    let jenkins = ctx.config().jenkins.is_some();
    let fallback = |why: String| {
        if jenkins {
            Changes::AfterBuild { why }
        } else {
            Changes::Unavailable {
                why: format!("{why}, and there is no Jenkins build to read a change set from"),
            }
        }
    };
    let Some(compare) = ctx.generation.compare.as_ref() else {
        return fallback(
            "no compare endpoint is configured (`compare:` in instances.yaml)".to_owned(),
        );
    };
    let Some(live) = live_version(ctx, env, pools).await else {
        return fallback(format!(
            "the live version of *{}* is unknown (no `version` in its health recipe, or no answer)",
            env.name
        ));
    };
    match compare.compare(&live, git_ref).await {
        Ok(commits) => Changes::Listed {
            commits,
            source: format!(
                "{} {}",
                compare.source(),
                code(&format!("{live}...{git_ref}"))
            ),
        },
        Err(e) => {
            tracing::warn!(error = %e, "the compare endpoint gave no list of changes");
            fallback(e.to_string())
        }
    }
}

/// The version the active member of the first of `pools` (every pool when empty)
/// reports, read with its health recipe.
async fn live_version(ctx: &Ctx<'_>, env: &Environment, pools: &[String]) -> Option<String> {
    for pool in env
        .pools
        .iter()
        .filter(|p| pools.is_empty() || pools.contains(&p.name))
    {
        let Ok(active) = ctx.active(&env.name, &pool.name).await else {
            continue;
        };
        let Some(member) = pool.members.iter().find(|m| m.name == active) else {
            continue;
        };
        if let Some(version) = probe(ctx, member).await.version {
            return Some(version);
        }
    }
    None
}

/// Once built: the change set of build `url` (#`number`) of `job`; `before` is why
/// there was no list before the build (no compare endpoint, or its failure).
pub async fn from_build(ctx: &Ctx<'_>, job: &str, number: u64, url: &str, before: &str) -> Changes {
    match ctx.backends.ci.changes(job, url).await {
        Ok(Some(commits)) => Changes::Listed {
            commits,
            source: format!("the change set of Jenkins build #{number}"),
        },
        Ok(None) => Changes::Unavailable {
            why: format!("{before}, and the CI lists no change set"),
        },
        Err(e) => Changes::Unavailable {
            why: format!("the change set could not be read: {}", told(&e)),
        },
    }
}

/// What a deploy of `git_ref` (`deploy <env> [pools] [ref]`) ships, for its
/// confirmation and approval card: the commits, and the commit it pins — `pinned`
/// when it was pinned before (a card drawn again), else the head of the listed
/// commits. Without a list, the card says the ref is not pinned.
pub async fn for_deploy(
    ctx: &Ctx<'_>,
    env: &str,
    pools: &[String],
    git_ref: &str,
    pinned: Option<&Pin>,
) -> Option<Shipping> {
    let env = ctx.config().env(env)?;
    let listed = match pinned {
        Some(pin) => up_to(ctx, env, pools, git_ref, pin).await.0,
        None => before_build(ctx, env, pools, git_ref).await,
    };
    let pin = pinned.cloned().or_else(|| match &listed {
        Changes::Listed { commits, .. } => commits.last().map(|c| Pin {
            sha: c.sha.clone(),
            title: one_line(&c.title),
        }),
        _ => None,
    });
    let said = match &pin {
        Some(p) => format!(
            "*Pinned:* {} {} — exactly this commit ships, whatever {} holds by then.",
            code(&short(&p.sha)),
            escape(&p.title),
            code(git_ref)
        ),
        None => format!(
            "*Not pinned:* {} is built as it stands when the deploy starts ({}).",
            code(git_ref),
            match &listed {
                Changes::Listed { .. } => "it has no new commit to pin",
                _ => "no compare endpoint listed its commits",
            }
        ),
    };
    Some(Shipping {
        text: format!("{}\n{said}", listed.render()),
        pin,
    })
}

/// The first seven characters of a hash.
pub fn short(sha: &str) -> String {
    sha.chars().take(7).collect()
}

/// What a deploy pinned to `pin` ships — the commits from the live version up to
/// the pin — and the commits `git_ref` gained after it, not deployed (`None` when
/// that cannot be told). One look at `git_ref` answers both when the pin is on it.
pub async fn up_to(
    ctx: &Ctx<'_>,
    env: &Environment,
    pools: &[String],
    git_ref: &str,
    pin: &Pin,
) -> (Changes, Option<Vec<Commit>>) {
    if let Changes::Listed { commits, source } = before_build(ctx, env, pools, git_ref).await {
        if let Some(i) = commits.iter().position(|c| c.sha == pin.sha) {
            let newer = commits.get(i + 1..).unwrap_or_default().to_vec();
            let shipped = commits.get(..=i).unwrap_or_default().to_vec();
            return (
                Changes::Listed {
                    commits: shipped,
                    source,
                },
                Some(newer),
            );
        }
    }
    // The pin is not on the ref as it is now (rewritten?): each asked on its own.
    let shipped = before_build(ctx, env, pools, &pin.sha).await;
    (shipped, newer_than(ctx, pin, git_ref).await)
}

/// The commits `git_ref` gained after `pin` (the commit a deploy was pinned to), as
/// the compare endpoint lists them; `None` when it cannot say.
pub async fn newer_than(ctx: &Ctx<'_>, pin: &Pin, git_ref: &str) -> Option<Vec<Commit>> {
    if pin.sha == git_ref {
        return Some(Vec::new());
    }
    let compare = ctx.generation.compare.as_ref()?;
    match compare.compare(&pin.sha, git_ref).await {
        Ok(commits) => Some(commits),
        Err(e) => {
            tracing::warn!(error = %e, "could not tell whether the ref moved since it was pinned");
            None
        }
    }
}
