//! What a person is told when the bot says no: every refusal is a [`Rejection`],
//! rendered into one reply in one place.

use std::time::SystemTime;

use crate::config::InstanceRef;
use crate::ports::Lock;
use crate::reply::{Outcome, Reply};
use crate::text::{code, either, escape, human};

/// Longest message read as a command. Commands are short; the limit also keeps every
/// button value (which carries the command) under Slack's 2,000 characters.
pub const MAX_COMMAND_CHARS: usize = 1000;

/// A refusal: nothing ran, and the reply says why and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// An empty message.
    Empty,
    /// A message longer than [`MAX_COMMAND_CHARS`].
    TooLong {
        /// Its length in characters.
        length: usize,
    },
    /// The first word is no command, nor close to one.
    UnknownCommand {
        /// The word.
        word: String,
    },
    /// Words left over that the command does not take.
    NotUnderstood {
        /// The words.
        words: Vec<String>,
        /// The command.
        command: String,
        /// What can be named instead.
        known: String,
    },
    /// The words name things that cannot go together (the resolver's explanation).
    Conflict(String),
    /// The words fit no instance together.
    NothingMatches,
    /// The command needs a target and none was named.
    NeedsTarget {
        /// The command.
        command: String,
        /// What can be named.
        known: String,
    },
    /// The command is limited to some groups.
    CommandNotAllowed {
        /// Who asked.
        user: String,
        /// The command.
        command: String,
        /// Groups allowed.
        groups: Vec<String>,
    },
    /// Changes to the environment are limited to some groups.
    EnvNotAllowed {
        /// Who asked.
        user: String,
        /// The environment.
        env: String,
        /// Groups allowed.
        groups: Vec<String>,
    },
    /// The environment is locked.
    Locked {
        /// The lock.
        lock: Box<Lock>,
        /// When it was found (for "for 4m 05s").
        now: SystemTime,
        /// Who was refused (the holder is told differently from others).
        user: String,
    },
    /// `unlock` of a lock that a running action holds.
    HeldByRunningAction {
        /// The lock.
        lock: Box<Lock>,
        /// When it was found.
        now: SystemTime,
    },
    /// A button value that the bot did not produce.
    ForgedButton,
    /// A button of a set someone already used.
    AlreadyUsed {
        /// Who used it.
        by: String,
    },
    /// A button past its lifetime.
    Expired,
    /// A button the store does not know (forged, or long gone).
    UnknownButtons,
    /// A button clicked in another conversation than the one it was offered in.
    ElsewhereIssued,
    /// A button naming a command that is no longer configured.
    CommandGone {
        /// The command.
        command: String,
    },
    /// A button naming a target that is no longer configured.
    TargetGone {
        /// The target as text.
        target: String,
    },
    /// No such instance.
    NoSuchInstance(InstanceRef),
    /// No such environment.
    NoSuchEnvironment(String),
    /// The instance has no restart action.
    NoRestartAction(InstanceRef),
    /// The instance has no tasks endpoint.
    NoTasksEndpoint(InstanceRef),
    /// `restart` of the instance taking traffic.
    InstanceIsLive(InstanceRef),
    /// `toy` without a `toy:` section.
    ToyNotConfigured,
    /// `toy` for someone without a toy database.
    NoToyDatabase {
        /// Who asked.
        user: String,
    },
    /// `deploy` with more than one ref or stray words.
    DeployArguments {
        /// The stray words.
        words: Vec<String>,
    },
    /// `deploy` of pools without a deploy job.
    NoDeployJob {
        /// The environment.
        env: String,
        /// Pools without a job.
        pools: Vec<String>,
        /// A pool that has one, for the example.
        example: String,
    },
    /// `history` with a page that is not a whole number from 1.
    BadPage {
        /// What was given.
        given: String,
    },
    /// `help` about an unknown command.
    NoHelp {
        /// What was asked.
        asked: String,
    },
    /// An approval click by the person who asked.
    SelfApproval {
        /// The request's id.
        id: String,
    },
    /// An approval (or decline) by someone outside the approving groups.
    NotApprover {
        /// Who clicked.
        user: String,
        /// Groups that approve.
        groups: Vec<String>,
    },
    /// An approval after the request expired.
    ApprovalExpired {
        /// The request's id.
        id: String,
        /// Who asked.
        requester: String,
    },
    /// An approved request that did not start within the rule's `valid_for` (it
    /// waited in line, or its button was clicked late).
    ApprovalStale {
        /// The request's id.
        id: String,
        /// Who asked.
        requester: String,
        /// How long an approval is good to start.
        valid_for: std::time::Duration,
        /// The command, to ask again with.
        command: String,
    },
    /// Someone clicked a button offered to someone else.
    NotYourButton {
        /// Who it was offered to.
        owner: String,
    },
    /// Something only a person in Slack may do was asked from a shell.
    NotFromShell {
        /// What (`approve`, `a freeze override`).
        what: String,
    },
    /// `key=value` words a command does not declare (or that Crossroads itself sets).
    UndeclaredParams {
        /// The command.
        command: String,
        /// The names refused.
        names: Vec<String>,
        /// The names it takes (`params:` in commands.yaml).
        declared: Vec<String>,
        /// Of `names`, those Crossroads sets itself (`user`, `env` …).
        builtin: Vec<String>,
    },
    /// A vote on a request decided before.
    ApprovalClosed {
        /// The request's id.
        id: String,
        /// `approved by <@U1>` / `declined by <@U2>`.
        how: String,
    },
    /// A second approval by the same person.
    AlreadyApproved {
        /// The request's id.
        id: String,
    },
    /// No request with that id.
    NoSuchApproval {
        /// The id given.
        id: String,
    },
    /// A frozen environment.
    Frozen(Box<FrozenAt>),
    /// `override=` by someone outside the override groups.
    OverrideNotAllowed {
        /// Who asked.
        user: String,
        /// The environment.
        env: String,
        /// Groups that may override.
        groups: Vec<String>,
    },
    /// The command's action cannot act on that kind of target.
    Unsupported {
        /// The command.
        command: String,
        /// The target as text.
        target: String,
    },
    /// A chart's time window that is not a number of hours or days in range.
    BadWindow {
        /// What was given.
        given: String,
        /// How the command is typed, e.g. `chart deploys [env] [30d]`.
        usage: String,
        /// The longest window, e.g. `365d`.
        longest: String,
    },
}

/// A freeze that stopped an action: the window and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenAt {
    /// The environment.
    pub env: String,
    /// The window, as configured.
    pub window: String,
    /// When it ends, in the window's zone (`Mon 30 Nov 08:00 CET`).
    pub ends_local: String,
    /// When it ends, as a Slack date each reader sees in their own zone.
    pub ends_reader: String,
    /// How long from now (`2h 10m`).
    pub left: String,
    /// Groups that may override; empty when nobody may.
    pub overriders: Vec<String>,
    /// The command as typed, for the override example.
    pub command: String,
}

impl Rejection {
    /// `command` cannot act on `target` (a button or reload mismatch).
    pub fn unsupported(command: &str, target: &crate::reply::Target) -> Rejection {
        Rejection::Unsupported {
            command: command.to_owned(),
            target: target.to_string(),
        }
    }

    /// How the reply ends: buttons that are used up or expired are `Stale`.
    pub fn outcome(&self) -> Outcome {
        match self {
            Rejection::AlreadyUsed { .. } | Rejection::Expired | Rejection::UnknownButtons => {
                Outcome::Stale
            }
            _ => Outcome::Rejected,
        }
    }

    /// Whether only the person should see it: refusals of a click leave the message
    /// with its buttons as it is for everyone else.
    pub fn ephemeral(&self) -> bool {
        matches!(
            self,
            Rejection::ForgedButton
                | Rejection::SelfApproval { .. }
                | Rejection::NotApprover { .. }
                | Rejection::ApprovalExpired { .. }
                | Rejection::NotYourButton { .. }
                | Rejection::ApprovalClosed { .. }
                | Rejection::AlreadyApproved { .. }
                | Rejection::AlreadyUsed { .. }
                | Rejection::Expired
                | Rejection::UnknownButtons
                | Rejection::ElsewhereIssued
        )
    }

    /// The reply.
    pub fn reply(&self) -> Reply {
        let reply = Reply::message(self.outcome(), self.to_string());
        if self.ephemeral() {
            reply.ephemeral()
        } else {
            reply
        }
    }
}

impl From<Rejection> for Reply {
    fn from(r: Rejection) -> Reply {
        r.reply()
    }
}

fn held_for(lock: &Lock, now: SystemTime) -> String {
    human(now.duration_since(lock.since).unwrap_or_default())
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Empty => f.write_str(
                "Tell me what to do, e.g. `status`, `health rh blue` or `deploy staging`. `help` lists everything.",
            ),
            Rejection::TooLong { length } => write!(
                f,
                "That is {length} characters: too long to be a command (I read at most {MAX_COMMAND_CHARS}). Try `help`."
            ),
            Rejection::UnknownCommand { word } => write!(
                f,
                "I don't know the command {}. Try `help` to see what I can do.",
                code(word)
            ),
            Rejection::NotUnderstood {
                words,
                command,
                known,
            } => {
                let words: Vec<String> = words.iter().map(|w| code(w)).collect();
                write!(
                    f,
                    "I didn't understand {} in `{command}`. {known}",
                    words.join(", ")
                )
            }
            Rejection::Conflict(explanation) => f.write_str(explanation),
            Rejection::NothingMatches => {
                f.write_str("Nothing matches that: no instance fits all of those words.")
            }
            Rejection::NeedsTarget { command, known } => {
                write!(f, "`{command}` needs a target. {known}")
            }
            Rejection::CommandNotAllowed {
                user,
                command,
                groups,
            } => write!(
                f,
                "Sorry <@{user}>, `{command}` is limited to {}.",
                either(groups)
            ),
            Rejection::EnvNotAllowed { user, env, groups } => write!(
                f,
                "Sorry <@{user}>, changes to `{env}` are limited to {}.",
                either(groups)
            ),
            Rejection::Locked { lock, now, user } => {
                let yours = lock.holder == *user;
                let by = if yours {
                    "you".to_owned()
                } else {
                    format!("<@{}>", lock.holder)
                };
                let hint = match (&lock.action, yours) {
                    (Some(action), true) => {
                        format!("Your `{action}` is still running; try again when it is done.")
                    }
                    (Some(_), false) => "Try again when it is done.".to_owned(),
                    (None, true) => format!("`unlock {}` first if it is safe now.", lock.env),
                    (None, false) => format!(
                        "Ask <@{}> to unlock it, or `unlock {}` yourself when it is safe.",
                        lock.holder, lock.env
                    ),
                };
                write!(
                    f,
                    ":lock: *{}* is locked by {by} ({}, for {}). {hint}",
                    lock.env,
                    escape(&lock.reason),
                    held_for(lock, *now)
                )
            }
            Rejection::HeldByRunningAction { lock, now } => write!(
                f,
                ":lock: *{}* is held by a running `{}` of <@{}> ({}, for {}). It unlocks itself when that is done.",
                lock.env,
                lock.action.as_deref().unwrap_or("action"),
                lock.holder,
                escape(&lock.reason),
                held_for(lock, *now)
            ),
            Rejection::ForgedButton => f.write_str("That button is not one of mine."),
            Rejection::AlreadyUsed { by } => write!(f, "Already handled by <@{by}>."),
            Rejection::Expired => f.write_str("These buttons have expired; ask me again."),
            Rejection::UnknownButtons => {
                f.write_str("I don't know these buttons (they are not mine, or long gone); ask me again.")
            }
            Rejection::ElsewhereIssued => f.write_str(
                "Those buttons belong to another conversation; ask me here instead.",
            ),
            Rejection::CommandGone { command } => {
                write!(f, "There is no command `{command}` any more.")
            }
            Rejection::TargetGone { target } => {
                write!(f, "{target} no longer exists in the configuration.")
            }
            Rejection::NoSuchInstance(r) => write!(f, "There is no {r}."),
            Rejection::NoSuchEnvironment(env) => write!(f, "There is no environment {env}."),
            Rejection::NoRestartAction(r) => {
                write!(f, "*{r}* has no restart action configured.")
            }
            Rejection::NoTasksEndpoint(r) => {
                write!(f, "*{r}* has no tasks endpoint configured.")
            }
            Rejection::InstanceIsLive(r) => write!(
                f,
                ":no_entry: *{r}* is taking traffic right now, so I won't restart it: users would see errors. \
                 Restart the inactive member, switch traffic first, or use `force restart` if you really must."
            ),
            Rejection::ToyNotConfigured => f.write_str(
                "Toy databases are not configured here (no `toy:` section in instances.yaml).",
            ),
            Rejection::NoToyDatabase { user } => write!(
                f,
                "<@{user}>, you have no toy database yet. Ask an admin to add `{user}: toy_<yourname>` under `toy.users` in instances.yaml."
            ),
            Rejection::DeployArguments { words } => {
                let words: Vec<String> = words.iter().map(|w| code(w)).collect();
                write!(
                    f,
                    "I didn't understand {} — `deploy` takes an environment, optionally pools, and one git ref (or `ref=…`).",
                    words.join(", ")
                )
            }
            Rejection::NoDeployJob {
                env,
                pools,
                example,
            } => write!(
                f,
                "No `deploy` job is configured for {} in *{env}*, so I deploy nothing. Name the pools to deploy, e.g. `deploy {env} {example}`.",
                pools.join(", ")
            ),
            Rejection::BadPage { given } => write!(
                f,
                "{} is not a page number: `history [env] [page]`, e.g. `history staging 2`.",
                code(given)
            ),
            Rejection::NoHelp { asked } => {
                write!(f, "There is no command {}. `help` lists them all.", code(asked))
            }
            Rejection::Unsupported { command, target } => {
                write!(f, "`{command}` cannot act on `{target}`.")
            }
            Rejection::SelfApproval { id } => write!(
                f,
                "You asked for `{id}` yourself, so your approval does not count: someone else has to approve it."
            ),
            Rejection::NotApprover { user, groups } => write!(
                f,
                "Sorry <@{user}>, approvals here come from {}.",
                either(groups)
            ),
            Rejection::ApprovalStale {
                id,
                requester,
                valid_for,
                command,
            } => write!(
                f,
                ":hourglass: Request `{id}` was approved more than {} ago without starting, so it no longer runs on that approval. <@{requester}>, ask again: {}.",
                human(*valid_for),
                code(command)
            ),
            Rejection::NotYourButton { owner } => write!(
                f,
                "This is <@{owner}>'s question, so only they can answer it. Ask me yourself to get your own."
            ),
            Rejection::NotFromShell { what } => write!(
                f,
                "{what} comes from a person in Slack, never from `crossroads run` or `console`: nothing was done."
            ),
            Rejection::UndeclaredParams {
                command,
                names,
                declared,
                builtin,
            } => {
                let list = |v: &[String]| v.iter().map(|n| code(n)).collect::<Vec<_>>().join(", ");
                let own = if builtin.is_empty() {
                    String::new()
                } else {
                    format!(" {} {} set by Crossroads itself, never by typed words.", list(builtin), if builtin.len() == 1 { "is" } else { "are" })
                };
                let takes = if declared.is_empty() {
                    format!("{} takes no `key=value` words.", code(command))
                } else {
                    format!("{} takes {}.", code(command), list(declared))
                };
                write!(
                    f,
                    "I won't pass {} to {}: {takes}{own} Nothing was run.",
                    list(names),
                    code(command)
                )
            }
            Rejection::ApprovalExpired { id, requester } => write!(
                f,
                ":hourglass: Request `{id}` has expired, so it can no longer be approved. <@{requester}> can ask again."
            ),
            Rejection::ApprovalClosed { id, how } => {
                write!(f, "Request `{id}` was already {how}.")
            }
            Rejection::AlreadyApproved { id } => write!(
                f,
                "Your approval of `{id}` is counted already; it needs someone else as well."
            ),
            Rejection::NoSuchApproval { id } => write!(
                f,
                "There is no approval request {}. The id is on the approval card.",
                code(id)
            ),
            Rejection::Frozen(frozen) => {
                let FrozenAt {
                    env,
                    window,
                    ends_local,
                    ends_reader,
                    left,
                    overriders,
                    command,
                } = &**frozen;
                write!(
                    f,
                    ":snowflake: *{env}* is frozen (`{window}`) until {ends_reader} ({ends_local}), in {left}. Deploys, switches, rollbacks and forced restarts wait until then."
                )?;
                if !overriders.is_empty() {
                    write!(
                        f,
                        " Members of {} may override: `{command} override=\"why\"`.",
                        either(overriders)
                    )?;
                }
                Ok(())
            }
            Rejection::OverrideNotAllowed { user, env, groups } => write!(
                f,
                "Sorry <@{user}>, only {} may override the freeze on *{env}*.",
                if groups.is_empty() {
                    "nobody (no `override` groups are configured)".to_owned()
                } else {
                    either(groups)
                }
            ),
            Rejection::BadWindow {
                given,
                usage,
                longest,
            } => write!(
                f,
                "`{}` is not a time window: give hours or days up to {longest}, e.g. `24h` or `7d` (`{usage}`).",
                given.replace('`', "'")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_a_click_are_ephemeral_and_stale_ones_say_so() {
        let used = Rejection::AlreadyUsed { by: "U1".into() }.reply();
        assert!(used.ephemeral);
        assert_eq!(used.outcome, Outcome::Stale);
        assert_eq!(used.to_plain_text(), "Already handled by <@U1>.");
        let forged = Rejection::ForgedButton.reply();
        assert!(forged.ephemeral);
        assert_eq!(forged.outcome, Outcome::Rejected);
        let typed = Rejection::NothingMatches.reply();
        assert!(!typed.ephemeral);
        assert_eq!(typed.outcome, Outcome::Rejected);
    }
}
