//! Requests into the engine and replies out of it, independent of any transport.

use serde::{Deserialize, Serialize};

use crate::chart::ChartSpec;
use crate::config::InstanceRef;

/// Something a person did: typed text or clicked a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Slack user id of the person (for buttons: who clicked).
    pub user: String,
    /// Channel the request came from, when known.
    pub channel: Option<String>,
    /// What they did.
    pub input: Input,
    /// The inbox delivery it came from, when it was taken durably: a long action it
    /// starts takes the delivery over as a run.
    #[serde(default)]
    pub delivery: Option<String>,
    /// The outbox message its answers go to, when they go through the outbox: a run
    /// taken over after a crash goes on editing it.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The operating-system user and host when it was typed in a shell (`crossroads
    /// run`, `console`): `alice@build-01`. Approvals and freeze overrides are refused
    /// from there, and the audit names who typed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

impl Request {
    /// A typed message.
    pub fn text(user: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            channel: None,
            input: Input::Text(text.into()),
            delivery: None,
            reply_to: None,
            shell: None,
        }
    }

    /// The same request, typed in a shell by `who` (`alice@build-01`).
    pub fn from_shell(mut self, who: impl Into<String>) -> Self {
        self.shell = Some(who.into());
        self
    }

    /// A click on a button whose value the bot produced earlier.
    pub fn button(user: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            channel: None,
            input: Input::Button(value.into()),
            delivery: None,
            reply_to: None,
            shell: None,
        }
    }
}

/// The input of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Message text, with Slack markup as received.
    Text(String),
    /// The `value` of a clicked button.
    Button(String),
}

/// What a command acts on, once resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum Target {
    /// Nothing (`help`, `toy`, `status` of everything).
    None,
    /// One environment; `pools` limits which pools (empty: all).
    Env {
        /// Environment name.
        env: String,
        /// Pools named, empty for all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pools: Vec<String>,
    },
    /// One pool, optionally with the member named.
    Pool {
        /// Environment name.
        env: String,
        /// Pool name.
        pool: String,
        /// Member named, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<String>,
    },
    /// One instance.
    Instance(InstanceRef),
    /// One region of an environment; `pools` limits which pools (empty: all).
    Region {
        /// Environment name.
        env: String,
        /// Region name.
        region: String,
        /// Pools named, empty for all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pools: Vec<String>,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::None => Ok(()),
            Target::Env { env, pools } if pools.is_empty() => f.write_str(env),
            Target::Env { env, pools } => write!(f, "{env} {}", pools.join(" ")),
            Target::Pool {
                env,
                pool,
                member: None,
            } => write!(f, "{env} {pool}"),
            Target::Pool {
                env,
                pool,
                member: Some(m),
            } => write!(f, "{env} {pool} {m}"),
            Target::Instance(r) => write!(f, "{r}"),
            Target::Region { env, region, pools } if pools.is_empty() => {
                write!(f, "{env} {region}")
            }
            Target::Region { env, region, pools } => {
                write!(f, "{env} {region} {}", pools.join(" "))
            }
        }
    }
}

impl Target {
    /// The instance, when the target is one.
    pub fn instance(&self) -> Option<&InstanceRef> {
        match self {
            Target::Instance(r) => Some(r),
            _ => None,
        }
    }

    /// The environment of an environment target (`deploy staging`, `lock master`,
    /// `deploy master us`).
    pub fn environment(&self) -> Option<&str> {
        match self {
            Target::Env { env, .. } | Target::Region { env, .. } => Some(env),
            _ => None,
        }
    }

    /// The region the target is limited to, if any.
    pub fn region(&self) -> Option<&str> {
        match self {
            Target::Region { region, .. } => Some(region),
            Target::Instance(r) => r.region.as_deref(),
            _ => None,
        }
    }

    /// The environment, if the target has one.
    pub fn env(&self) -> Option<&str> {
        match self {
            Target::None => None,
            Target::Env { env, .. } | Target::Pool { env, .. } | Target::Region { env, .. } => {
                Some(env)
            }
            Target::Instance(r) => Some(&r.env),
        }
    }
}

/// A fully resolved command, as carried by a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Canonical command name.
    pub command: String,
    /// Resolved target.
    pub target: Target,
    /// Free arguments (git ref, reason, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// `key=value` arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
    /// Set on the confirmation button of a command that needs one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
    /// Set when four-eyes approval was given: the run is the requester's, approved by
    /// these people (never set from anything a person typed or clicked directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approved>,
    /// The commit shown when it was confirmed or approved: what ships is exactly this
    /// (never set from anything a person typed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
}

/// The head commit of a ref as a confirmation or an approval card showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Full hash.
    pub sha: String,
    /// First line of its message.
    pub title: String,
}

/// The parameter naming the freeze window an override was given for (set by
/// Crossroads, never shown as typed).
pub const OVERRIDE_WINDOW: &str = "override-window";

/// The parameter holding a scheduled invocation's time, in Unix seconds (set by
/// Crossroads once the words are read, never shown as typed).
pub const SCHEDULED_AT: &str = "scheduled-at";

/// The parameter holding the zone a scheduled invocation's time was given in.
pub const SCHEDULED_ZONE: &str = "scheduled-zone";

/// The approval an invocation runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    /// The request's id.
    pub id: String,
    /// Who approved, in order.
    pub by: Vec<String>,
    /// When the approval was complete: it is good to start for the rule's
    /// `valid_for` after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<std::time::SystemTime>,
}

impl Invocation {
    /// The command as a person would type it, e.g. `health master api blue`.
    pub fn as_text(&self) -> String {
        let mut words = vec![self.command.clone()];
        let target = self.target.to_string();
        if !target.is_empty() {
            words.push(target);
        }
        words.extend(self.args.iter().cloned());
        words.extend(
            self.params
                .iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case(OVERRIDE_WINDOW)
                        && k != SCHEDULED_AT
                        && k != SCHEDULED_ZONE
                })
                .map(|(k, v)| format!("{k}={v}")),
        );
        words.join(" ")
    }
}

/// What a button does; kept in the store with its set. (Short-lived values: the size
/// of a `Run` is not worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonAction {
    /// Run a resolved command.
    Run(Invocation),
    /// Handle this text as if typed (a "did you mean" suggestion).
    Text(String),
    /// Do nothing but close the question ("Cancel").
    Cancel,
    /// Approve request `id` (four-eyes approval card).
    Approve(String),
    /// Decline request `id`.
    Decline(String),
}

/// How a reply ended, for transports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Information shown (help, status, health, tasks, history).
    Info,
    /// An action ran to its end successfully.
    Done,
    /// An interim progress message of a long action.
    Progress,
    /// Several targets fit: choose one.
    Choices,
    /// The command looked misspelt: a suggestion, nothing ran.
    Suggestion,
    /// Asks for a confirmation click.
    Confirm,
    /// Refused (not allowed, locked, active instance, not understood).
    Rejected,
    /// Tried and failed (Jenkins down, build failed, gate failed).
    Failed,
    /// A button that was already used or expired.
    Stale,
    /// The run behind this request is carried on elsewhere (another replica took it
    /// over, or this one lost its lease): transports write nothing, since whoever
    /// drives it now writes its progress and final reply.
    HandedOver,
}

/// Visual weight of a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonStyle {
    /// Plain.
    #[default]
    Default,
    /// Green.
    Primary,
    /// Red.
    Danger,
}

/// A native "are you sure?" dialog shown by Slack before the click is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    /// Dialog title.
    pub title: String,
    /// Dialog text (mrkdwn).
    pub text: String,
    /// Confirm button label.
    pub ok: String,
    /// Deny button label.
    pub deny: String,
}

/// A button in a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// Label.
    pub label: String,
    /// Opaque value handed back on click: `<set>.<index>`; what it does is kept on
    /// the server.
    pub value: String,
    /// Style.
    pub style: ButtonStyle,
    /// Optional native confirmation dialog.
    pub confirm: Option<Confirm>,
}

/// One visual part of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Large title.
    Header(String),
    /// Paragraph in Slack mrkdwn.
    Text(String),
    /// Small grey line.
    Context(String),
    /// Horizontal rule.
    Divider,
    /// A row of buttons.
    Buttons(Vec<Button>),
    /// A chart: transports render it as a PNG (Slack uploads it into the
    /// conversation; the console saves it to a file and says where).
    Chart(Box<ChartSpec>),
}

/// A reply: renderable as Block Kit JSON and as plain text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// How it ended.
    pub outcome: Outcome,
    /// Content, top to bottom.
    pub parts: Vec<Part>,
    /// Only the requester should see it.
    pub ephemeral: bool,
    /// What the engine does next, when the action asks it to (never sent anywhere).
    #[serde(skip)]
    pub next: Option<Next>,
}

/// What the engine does after an answer, when the answer asks: handlers and actions
/// never call back up into the engine, they say what comes next. What the answer
/// that asked says is kept, where each variant says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Next {
    /// Read this text as if the same person typed it; what the asking answer says
    /// comes after the answer.
    Read(String),
    /// Check a click by the same person on the button whose value is this
    /// (`<set>.<index>`); what the asking answer says comes after the answer.
    Click(String),
    /// Take this invocation through the gates and run it, as the same person; what the
    /// asking answer says (how a typo was read) comes after the answer.
    Run(Box<Invocation>),
    /// Start pending run `id` (an approved request, recorded with the vote) through
    /// the whole pipeline, as its requester; its progress goes where this reply goes,
    /// and what this reply says comes before its answer.
    Start(String),
    /// The environment is locked: put this deploy in line when it asked to wait,
    /// else offer to, on the refusal that asked.
    WhenLocked(Box<Invocation>),
}

impl Reply {
    /// An empty reply with the given outcome.
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            parts: Vec::new(),
            ephemeral: false,
            next: None,
        }
    }

    /// The reply of a driver whose run is carried on elsewhere: it says nothing more.
    pub fn handed_over() -> Self {
        Self::message(
            Outcome::HandedOver,
            ":arrows_counterclockwise: carried on by another replica",
        )
    }

    /// Asks the engine to do `next` after this reply.
    pub fn then(mut self, next: Next) -> Self {
        self.next = Some(next);
        self
    }

    /// A one-paragraph reply.
    pub fn message(outcome: Outcome, text: impl Into<String>) -> Self {
        Self::new(outcome).text(text)
    }

    /// Adds a header.
    pub fn header(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Header(text.into()));
        self
    }

    /// Adds a paragraph.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// Adds a context line.
    pub fn context(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Context(text.into()));
        self
    }

    /// Adds a divider.
    pub fn divider(mut self) -> Self {
        self.parts.push(Part::Divider);
        self
    }

    /// Adds a row of buttons (Slack allows 25 per block; longer rows are split when rendering).
    pub fn buttons(mut self, buttons: Vec<Button>) -> Self {
        if !buttons.is_empty() {
            self.parts.push(Part::Buttons(buttons));
        }
        self
    }

    /// Adds a chart.
    pub fn chart(mut self, chart: ChartSpec) -> Self {
        self.parts.push(Part::Chart(Box::new(chart)));
        self
    }

    /// Every chart, in order.
    pub fn charts(&self) -> impl Iterator<Item = &ChartSpec> {
        self.parts.iter().filter_map(|p| match p {
            Part::Chart(c) => Some(c.as_ref()),
            _ => None,
        })
    }

    /// The reply without its charts (what goes beside an uploaded image).
    pub fn without_charts(&self) -> Reply {
        let mut reply = self.clone();
        reply.parts.retain(|p| !matches!(p, Part::Chart(_)));
        reply
    }

    /// Marks the reply as visible to the requester only.
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// Every button, in order.
    pub fn all_buttons(&self) -> impl Iterator<Item = &Button> {
        self.parts.iter().flat_map(|p| match p {
            Part::Buttons(b) => b.as_slice(),
            _ => &[],
        })
    }
}
