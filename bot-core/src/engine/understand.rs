//! Text entry: a typed message → tokens → a command and its target(s) → one
//! invocation for the engine to run next, a choice of buttons, or a "did you mean"
//! suggestion.

use crate::config::CommandSpec;
use crate::context::{store_down, Ctx, Offer};
use crate::failure::told;
use crate::lexer;
use crate::rejection::{Rejection, MAX_COMMAND_CHARS};
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Next, Outcome, Reply, Target};
use crate::resolve::targets::{
    filter_by_qualifier, pool_at, pools_of, project, qualified_scope, what_exists, UnknownActive,
};
use crate::resolve::{Candidates, CommandMatch, Parsed};
use crate::text::code;

/// Handles typed text.
pub(super) async fn handle_text(ctx: &Ctx<'_>, text: &str) -> Reply {
    let length = text.chars().count();
    if length > MAX_COMMAND_CHARS {
        return Rejection::TooLong { length }.reply();
    }
    let tokens = lexer::tokenize(text);
    match ctx.generation.index.parse(ctx.config(), &tokens) {
        Parsed::Empty => Rejection::Empty.reply(),
        Parsed::NotACommand { word } => Rejection::UnknownCommand { word }.reply(),
        Parsed::Misspelt {
            typed, corrected, ..
        } => {
            let words: Vec<String> = corrected.split_whitespace().map(str::to_owned).collect();
            let corrected = restore_case(text, &words).join(" ");
            let question = format!(
                "I don't know {}. Did you mean {}?",
                code(&typed),
                code(&corrected)
            );
            let offers = vec![
                Offer::new(
                    corrected.clone(),
                    ButtonAction::Text(corrected),
                    ButtonStyle::Primary,
                ),
                Offer::new("Cancel", ButtonAction::Cancel, ButtonStyle::Default),
            ];
            match ctx.offer(offers).await {
                Ok(buttons) => Reply::message(Outcome::Suggestion, question).buttons(buttons),
                Err(e) => store_down(&e),
            }
        }
        Parsed::Command(mut m) => {
            m.rest = restore_case(text, &m.rest);
            resolve_and_run(ctx, m).await
        }
    }
}

/// The lexer folds case; arguments (git refs, lock reasons) keep the case typed.
fn restore_case(text: &str, words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|word| {
            text.split_whitespace()
                .find_map(|chunk| {
                    let lower = chunk.to_lowercase();
                    let at = lower.find(word.as_str())?;
                    // Slicing by the folded string's offsets is only safe when folding kept byte lengths.
                    (lower.len() == chunk.len()).then(|| chunk.get(at..at + word.len()))?
                })
                .map(str::to_owned)
                .unwrap_or_else(|| word.clone())
        })
        .collect()
}

/// Turns a recognised command into one invocation to run next, or a reply asking to
/// choose.
async fn resolve_and_run(ctx: &Ctx<'_>, m: CommandMatch) -> Reply {
    let config = ctx.config();
    let Some(cmd) = config.commands.get(m.command) else {
        return Reply::message(Outcome::Failed, "internal error: unknown command index");
    };
    if !cmd.takes_args && !m.rest.is_empty() {
        return Rejection::NotUnderstood {
            words: m.rest.clone(),
            command: cmd.name.clone(),
            known: what_exists(config, cmd),
        }
        .reply();
    }
    let instances = match ctx.generation.index.candidates(config, &m.selectors) {
        Candidates::Conflict(msg) => return Rejection::Conflict(msg).reply(),
        Candidates::Instances(list) => list,
    };
    let named_something = !m.selectors.is_empty() || m.qualifier.is_some();
    let instances = match m.qualifier {
        None => instances,
        Some(q) => {
            let scope = qualified_scope(config, &m, instances);
            let actives = ctx.actives_at(pools_of(&scope)).await;
            match filter_by_qualifier(scope, q, &actives) {
                Ok(list) => list,
                Err(UnknownActive { env, pool, error }) => {
                    return Reply::message(
                        Outcome::Failed,
                        format!(
                            "I can't tell which member of {env} {pool} is active: {}",
                            told(&error)
                        ),
                    )
                }
            }
        }
    };
    if instances.is_empty() && named_something {
        return Rejection::NothingMatches.reply();
    }
    let corrections: Vec<String> = m
        .selectors
        .iter()
        .filter_map(|s| {
            s.corrected
                .as_ref()
                .map(|c| format!("{} → {}", code(&s.words), code(c)))
        })
        .collect();
    let targets = project(cmd, &instances, named_something, &m);
    let base = |target: Target| Invocation {
        command: cmd.name.clone(),
        target,
        args: m.rest.clone(),
        params: m.params.clone(),
        confirmed: false,
        approval: None,
        pin: None,
    };
    let mut reply = match targets.len() {
        0 => Rejection::NeedsTarget {
            command: cmd.name.clone(),
            known: what_exists(config, cmd),
        }
        .reply(),
        1 => {
            let target = targets.into_iter().next().unwrap_or(Target::None);
            Reply::new(Outcome::Progress).then(Next::Run(Box::new(base(target))))
        }
        _ => choices(ctx, cmd, targets.into_iter().map(base).collect()).await,
    };
    if !corrections.is_empty() {
        reply = reply.context(format!("Read {}.", corrections.join(", ")));
    }
    reply
}

/// One button per candidate, grouped by environment, active members marked.
async fn choices(ctx: &Ctx<'_>, cmd: &CommandSpec, invocations: Vec<Invocation>) -> Reply {
    let instances: Vec<_> = invocations
        .iter()
        .filter_map(|i| i.target.instance().cloned())
        .collect();
    let actives = ctx.actives_at(pools_of(&instances)).await;
    // Environments in order of first appearance, with how many buttons each has.
    let mut groups: Vec<(String, usize)> = Vec::new();
    let mut offers = Vec::with_capacity(invocations.len());
    for inv in invocations {
        let env = inv.target.env().unwrap_or("").to_owned();
        let label = match &inv.target {
            Target::Instance(r) => {
                let active = matches!(actives.get(&pool_at(r)), Some(Ok(a)) if *a == r.member);
                format!("{r}{}", if active { " (active)" } else { "" })
            }
            other => other.to_string(),
        };
        match groups.iter_mut().find(|(e, _)| *e == env) {
            Some((_, n)) => *n += 1,
            None => groups.push((env, 1)),
        }
        offers.push((
            groups
                .iter()
                .position(|(e, _)| *e == inv.target.env().unwrap_or("")),
            Offer::new(label, ButtonAction::Run(inv), ButtonStyle::Default),
        ));
    }
    // Buttons are listed grouped by environment, in one set.
    offers.sort_by_key(|(group, _)| *group);
    let buttons = match ctx
        .offer(offers.into_iter().map(|(_, o)| o).collect())
        .await
    {
        Ok(buttons) => buttons,
        Err(e) => return store_down(&e),
    };
    let mut reply = Reply::message(
        Outcome::Choices,
        format!("Which one do you mean for `{}`?", cmd.name),
    );
    let grouped = groups.len() > 1 && groups.iter().any(|(_, n)| *n > 1);
    let mut buttons = buttons.into_iter();
    for (env, n) in groups {
        if grouped {
            reply = reply.context(format!("*{env}*"));
        }
        reply = reply.buttons(buttons.by_ref().take(n).collect());
    }
    reply
}
