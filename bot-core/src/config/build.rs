//! Raw files → validated [`Config`]: interpolation, normalisation and every semantic
//! check, collecting all problems in one pass.

mod monitor;
mod safety;
mod showing;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_saphyr::Location;

use super::duration::parse_duration;
use super::interp::{interpolate, InterpError};
use super::raw::{
    CommandsFile, InstancesFile, OMap, RawAction, RawCommand, RawEnvironment, RawHealth, RawMember,
    RawPool, RawSwitch, S,
};
use super::{
    ActionKind, ActionSpec, Analysis, Canary, CanaryQuery, CommandSpec, CompareConfig, CompareKind,
    Config, ConfigError, EnvLookup, Environment, HealthRecipe, HttpRequestSpec, Instance,
    JenkinsConfig, JobSpec, Pool, Pos, Secret, Settings, SwitchSpec, TargetKind, ToyConfig, Watch,
    WeightsSpec,
};

mod regions;

/// Target names accepted by `target:`.
const TARGETS: &[&str] = &["nothing", "environment", "pool", "instance"];
/// Switch types accepted by `switch.type`.
const SWITCH_TYPES: &[&str] = &["haproxy", "http", "jenkins", "memory"];
/// Accepted `off_state` values.
const OFF_STATES: &[&str] = &["drain", "maint"];
/// Accepted HTTP methods.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The closest candidate to `word`, when it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&word, c), *c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" or the list of valid values.
pub(crate) fn suggest(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("expected one of {}", backticked(candidates)),
    }
}

fn backticked(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lower-cases and collapses whitespace: how aliases and phrases are stored.
pub(crate) fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `:Large_Blue_Circle:` → `large_blue_circle`.
fn normalise_emoji(text: &str) -> String {
    text.trim().trim_matches(':').to_lowercase()
}

/// Who owns a word of the alias namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// An environment's name, alias or emoji.
    Env(String),
    /// A pool's name or alias (pools of the same name may share).
    Pool(String),
    /// An instance's own alias.
    Instance(String),
    /// A member name (members of the same name may share).
    Member(String),
    /// A member emoji (members of the same name may share).
    MemberEmoji(String),
    /// A region's name, alias or emoji (regions of the same name may share).
    Region(String),
}

/// A health recipe with only the fields one place set, already validated.
#[derive(Clone, Default)]
struct PartialHealth {
    path: Option<String>,
    expect_status: Option<u16>,
    json: Option<Vec<(String, serde_json::Value)>>,
    contains: Option<Vec<String>>,
    max_latency: Option<Duration>,
    version_pointer: Option<String>,
}

impl PartialHealth {
    /// Fields of `self` win; the rest come from `fallback`, then from the built-in default.
    fn over(&self, fallback: &PartialHealth) -> HealthRecipe {
        let base = HealthRecipe::default();
        HealthRecipe {
            path: self
                .path
                .clone()
                .or_else(|| fallback.path.clone())
                .unwrap_or(base.path),
            expect_status: self
                .expect_status
                .or(fallback.expect_status)
                .unwrap_or(base.expect_status),
            json: self
                .json
                .clone()
                .or_else(|| fallback.json.clone())
                .unwrap_or(base.json),
            contains: self
                .contains
                .clone()
                .or_else(|| fallback.contains.clone())
                .unwrap_or(base.contains),
            max_latency: self.max_latency.or(fallback.max_latency),
            version_pointer: self
                .version_pointer
                .clone()
                .or_else(|| fallback.version_pointer.clone()),
        }
    }
}

/// Builds a [`Config`] while collecting every problem.
pub(crate) struct Builder<'a> {
    env: EnvLookup<'a>,
    /// Built-in action names `action:` may take (from the engine's registry).
    actions: &'a [&'a str],
    /// File the values currently being read come from.
    file: String,
    pub(crate) errors: Vec<ConfigError>,
    /// Word → (owner, where first claimed).
    claims: HashMap<String, (Owner, String, Pos)>,
    /// Group names defined in `instances.yaml`.
    groups: BTreeSet<String>,
    /// False when `instances.yaml` could not be read, so group names cannot be checked.
    pub(crate) groups_known: bool,
    /// `approval:` of each command, by canonical name.
    pub(crate) command_approvals: BTreeMap<String, super::ApprovalRule>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(env: EnvLookup<'a>, actions: &'a [&'a str]) -> Self {
        Self {
            env,
            actions,
            file: String::new(),
            errors: Vec::new(),
            claims: HashMap::new(),
            groups: BTreeSet::new(),
            groups_known: true,
            command_approvals: BTreeMap::new(),
        }
    }

    fn pos(&self, loc: &Location) -> Pos {
        Pos {
            file: self.file.clone(),
            line: loc.line(),
            column: loc.column(),
        }
    }

    fn error(&mut self, loc: &Location, message: impl Into<String>, hint: Option<String>) {
        let pos = self.pos(loc);
        self.errors.push(ConfigError {
            pos: Some(pos),
            message: message.into(),
            hint,
        });
    }

    /// Interpolates a string value; on failure reports and returns the text as written.
    fn text(&mut self, value: &S<String>) -> String {
        self.try_text(value).unwrap_or_else(|| value.value.clone())
    }

    /// Interpolates a string value; `None` (after reporting) when a variable is missing,
    /// so later checks do not pile a second error onto the same value.
    fn try_text(&mut self, value: &S<String>) -> Option<String> {
        match interpolate(&value.value, self.env) {
            Ok(text) => Some(text),
            Err(problems) => {
                for problem in problems {
                    let (message, hint) = match problem {
                        InterpError::Undefined(name) => (
                            format!("environment variable `{name}` is not set"),
                            format!("set it, or give a default: `${{{name}:-value}}`"),
                        ),
                        InterpError::Unterminated => (
                            "`${` without a closing `}`".to_owned(),
                            "write `${VAR}`, or `$${` for a literal `${`".to_owned(),
                        ),
                        InterpError::BadName(name) => (
                            format!("`${{{name}}}` is not a valid variable reference"),
                            "write `${VAR}` or `${VAR:-default}` (letters, digits, `_`)".to_owned(),
                        ),
                    };
                    self.error(&value.referenced, message, Some(hint));
                }
                None
            }
        }
    }

    fn opt_text(&mut self, value: &Option<S<String>>) -> Option<String> {
        value.as_ref().map(|v| self.text(v))
    }

    fn duration(&mut self, value: &Option<S<String>>, default: Duration) -> Duration {
        let Some(raw) = value else { return default };
        let Some(text) = self.try_text(raw) else {
            return default;
        };
        match parse_duration(&text) {
            Some(d) => d,
            None => {
                self.error(
                    &raw.referenced,
                    format!("`{}` is not a duration", raw.value),
                    Some("write a number and a unit, e.g. `1500ms`, `2s`, `30m`, `1h`".into()),
                );
                default
            }
        }
    }

    /// Checks an http(s) URL; `{placeholders}` are allowed anywhere.
    fn check_url(&mut self, raw: &S<String>, value: &str) {
        let mut probe = String::with_capacity(value.len());
        let mut in_placeholder = false;
        for c in value.chars() {
            match c {
                '{' => {
                    in_placeholder = true;
                    probe.push('x');
                }
                '}' if in_placeholder => in_placeholder = false,
                _ if in_placeholder => {}
                _ => probe.push(c),
            }
        }
        let problem = match url::Url::parse(&probe) {
            Ok(u) if u.scheme() != "http" && u.scheme() != "https" => {
                Some(format!("scheme `{}` is not http or https", u.scheme()))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("it has no host".to_owned()),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            let shown = if raw.value.contains('$') {
                format!("`{}` (after interpolation)", raw.value)
            } else {
                format!("`{}`", raw.value)
            };
            self.error(
                &raw.referenced,
                format!("{shown} is not an http(s) URL: {problem}"),
                Some("write a full URL such as `http://127.0.0.1:8080`".into()),
            );
        }
    }

    fn url(&mut self, raw: &S<String>) -> String {
        match self.try_text(raw) {
            Some(value) => {
                self.check_url(raw, &value);
                value
            }
            None => raw.value.clone(),
        }
    }

    /// A JSON pointer, which must start with `/`.
    fn pointer(&mut self, raw: &S<String>) -> String {
        match self.try_text(raw) {
            Some(value) => {
                self.check_pointer(&raw.referenced, &value);
                value
            }
            None => raw.value.clone(),
        }
    }

    fn check_pointer(&mut self, loc: &Location, value: &str) {
        if !value.starts_with('/') {
            self.error(
                loc,
                format!("JSON pointer `{value}` must start with `/`"),
                Some(format!("write `/{}`", value.trim_start_matches('/'))),
            );
        }
    }

    fn path(&mut self, raw: &S<String>) -> String {
        let Some(value) = self.try_text(raw) else {
            return raw.value.clone();
        };
        if !value.starts_with('/') {
            self.error(
                &raw.referenced,
                format!("path `{value}` must start with `/`"),
                Some(format!("write `/{value}`")),
            );
        }
        value
    }

    fn check_groups(&mut self, allowed: &[S<String>]) -> Vec<String> {
        let mut out = Vec::new();
        for group in allowed {
            let name = self.text(group);
            if self.groups_known && !self.groups.contains(&name) {
                let known: Vec<&str> = self.groups.iter().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "define it under `groups:` in instances.yaml".to_owned()
                } else {
                    format!(
                        "{} Groups are defined under `groups:` in instances.yaml.",
                        suggest(&name, &known)
                    )
                };
                self.error(
                    &group.referenced,
                    format!("unknown group `{name}`"),
                    Some(hint),
                );
            }
            out.push(name);
        }
        out
    }

    fn params(&mut self, map: &Option<OMap<S<String>>>) -> Vec<(String, String)> {
        let Some(map) = map else { return Vec::new() };
        map.0
            .iter()
            .map(|(k, v)| (k.value.clone(), self.text(v)))
            .collect()
    }

    fn job(&mut self, job: &S<String>, params: &Option<OMap<S<String>>>) -> JobSpec {
        let name = self.text(job);
        if name.trim().is_empty() || name.starts_with('/') || name.ends_with('/') {
            self.error(
                &job.referenced,
                format!("`{name}` is not a Jenkins job path"),
                Some("write folders and job separated by `/`, e.g. `platform/deploy-api`".into()),
            );
        }
        JobSpec {
            job: name,
            parameters: self.params(params),
        }
    }

    fn http_request(
        &mut self,
        at: &Location,
        method: &Option<S<String>>,
        url: &Option<S<String>>,
        headers: &Option<OMap<S<String>>>,
        body: &Option<S<String>>,
        what: &str,
    ) -> HttpRequestSpec {
        let method = match method {
            Some(m) => {
                let value = self.text(m).to_uppercase();
                if !METHODS.contains(&value.as_str()) {
                    let hint = suggest(&value, METHODS);
                    self.error(
                        &m.referenced,
                        format!("unknown HTTP method `{}`", m.value),
                        Some(hint),
                    );
                }
                value
            }
            None => "POST".to_owned(),
        };
        let url = match url {
            Some(u) => self.url(u),
            None => {
                self.error(
                    at,
                    format!("{what} has no `url`"),
                    Some("add `url: http://…`".into()),
                );
                String::new()
            }
        };
        HttpRequestSpec {
            method,
            url,
            headers: self.params(headers),
            body: self.opt_text(body),
        }
    }

    /// A restart-style action: a Jenkins job or an HTTP request.
    fn action(&mut self, raw: &S<RawAction>, what: &str) -> Option<ActionSpec> {
        let a = &raw.value;
        let is_http =
            a.method.is_some() || a.url.is_some() || a.headers.is_some() || a.body.is_some();
        match (&a.job, is_http) {
            (Some(_), true) => {
                self.error(
                    &raw.referenced,
                    format!("{what} has both `job` and an HTTP request"),
                    Some(
                        "use either `job` (+ `parameters`) or `method`/`url`/`headers`/`body`"
                            .into(),
                    ),
                );
                None
            }
            (Some(job), false) => Some(ActionSpec::Job(self.job(job, &a.parameters))),
            (None, true) => {
                if let Some((k, _)) = a.parameters.as_ref().and_then(|p| p.0.first()) {
                    self.error(
                        &k.referenced,
                        "`parameters` belongs to a Jenkins `job`",
                        Some("an HTTP request sends `body` and `headers`".into()),
                    );
                }
                Some(ActionSpec::Http(self.http_request(
                    &raw.referenced,
                    &a.method,
                    &a.url,
                    &a.headers,
                    &a.body,
                    what,
                )))
            }
            (None, false) => {
                self.error(
                    &raw.referenced,
                    format!("{what} has neither `job` nor `url`"),
                    Some("add `job: folder/name` or `url: http://…`".into()),
                );
                None
            }
        }
    }

    /// Claims `word` for `owner`; a different owner already holding it is an error.
    /// `what` says what the word is here, e.g. "alias of environment `master`".
    /// Normalises, claims and collects a list of words (aliases or emoji) into `into`,
    /// distinct and in file order; a word equal to `skip` (the member's own name) is ignored.
    fn claim_all(
        &mut self,
        raw: &[S<String>],
        norm: fn(&str) -> String,
        what: &str,
        owner: &Owner,
        skip: Option<&str>,
        into: &mut Vec<String>,
    ) {
        for item in raw {
            let word = norm(&self.text(item));
            if skip == Some(word.as_str()) {
                continue;
            }
            self.claim(&word, what.to_owned(), owner.clone(), &item.referenced);
            if !word.is_empty() && !into.contains(&word) {
                into.push(word);
            }
        }
    }

    fn claim(&mut self, word: &str, what: String, owner: Owner, loc: &Location) {
        if word.is_empty() {
            self.error(loc, format!("empty {what}"), Some("remove it".into()));
            return;
        }
        let pos = self.pos(loc);
        match self.claims.get(word) {
            None => {
                self.claims.insert(word.to_owned(), (owner, what, pos));
            }
            Some((first, _, _)) if *first == owner => {}
            Some((_, first_what, first_pos)) => {
                let message = format!("`{word}` ({what}) is already used as the {first_what}");
                let hint = format!("first claimed at {first_pos}; a word may name only one thing");
                self.errors.push(ConfigError {
                    pos: Some(pos),
                    message,
                    hint: Some(hint),
                });
            }
        }
    }

    // ---- commands.yaml ------------------------------------------------------------

    pub(crate) fn commands(
        &mut self,
        file: &str,
        raw: &CommandsFile,
    ) -> (Vec<CommandSpec>, Vec<String>) {
        self.file = file.to_owned();
        let mut filler = Vec::new();
        let mut filler_set = BTreeSet::new();
        for word in &raw.filler {
            let w = normalise(&self.text(word));
            if w.is_empty() {
                self.error(
                    &word.referenced,
                    "empty filler word",
                    Some("remove it".into()),
                );
            } else if filler_set.insert(w.clone()) {
                filler.push(w);
            }
        }
        let mut phrases: HashMap<String, (String, Pos)> = HashMap::new();
        let mut commands = Vec::new();
        for (name, cmd) in &raw.commands.0 {
            if let Some(spec) = self.command(name, cmd, &filler_set, &mut phrases) {
                commands.push(spec);
            }
        }
        (commands, filler)
    }

    fn command(
        &mut self,
        name: &S<String>,
        raw: &RawCommand,
        filler: &BTreeSet<String>,
        seen: &mut HashMap<String, (String, Pos)>,
    ) -> Option<CommandSpec> {
        let canonical = normalise(&name.value);
        let mut phrases: Vec<String> = Vec::new();
        let candidates = std::iter::once((canonical.clone(), name.referenced)).chain(
            raw.phrases
                .iter()
                .map(|p| (normalise(&p.value), p.referenced)),
        );
        let candidates: Vec<_> = candidates.collect();
        for (phrase, loc) in candidates {
            if phrases.contains(&phrase) {
                continue;
            }
            if phrase.is_empty() {
                self.error(&loc, "empty phrase", Some("remove it".into()));
                continue;
            }
            if filler.contains(&phrase) {
                self.error(
                    &loc,
                    format!("phrase `{phrase}` of command `{canonical}` is a filler word"),
                    Some("filler words are ignored in messages, so it could never match; remove it from `filler` or from `phrases`".into()),
                );
            }
            let pos = self.pos(&loc);
            match seen.get(&phrase) {
                Some((other, first)) if *other != canonical => {
                    let message = format!(
                        "phrase `{phrase}` of command `{canonical}` already invokes command `{other}`"
                    );
                    let hint =
                        format!("first claimed at {first}; a phrase may invoke only one command");
                    self.errors.push(ConfigError {
                        pos: Some(pos),
                        message,
                        hint: Some(hint),
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(phrase.clone(), (canonical.clone(), pos));
                }
            }
            phrases.push(phrase);
        }

        let action = self.action_kind(raw)?;
        let target = match &raw.target {
            None => TargetKind::Nothing,
            Some(t) => match t.value.trim().to_lowercase().as_str() {
                "nothing" => TargetKind::Nothing,
                "environment" => TargetKind::Environment,
                "pool" => TargetKind::Pool,
                "instance" => TargetKind::Instance,
                other => {
                    let hint = suggest(other, TARGETS);
                    self.error(
                        &t.referenced,
                        format!("unknown target `{}`", t.value),
                        Some(hint),
                    );
                    TargetKind::Nothing
                }
            },
        };
        let allowed = self.check_groups(&raw.allowed);
        if let Some(rule) = raw.approval.as_ref().and_then(|a| self.approval_rule(a)) {
            self.command_approvals.insert(canonical.clone(), rule);
        }
        let help = self.opt_text(&raw.help).unwrap_or_default();
        let examples = raw.examples.iter().map(|e| self.text(e)).collect();
        let yaml = matches!(action, ActionKind::Job(_) | ActionKind::Http(_));
        let mut params = Vec::new();
        for p in &raw.params {
            let name = p.value.trim().to_lowercase();
            if !yaml {
                self.error(
                    &p.referenced,
                    "`params` is for `action: job` and `action: http` commands",
                    Some("built-in actions know their own arguments".into()),
                );
            } else if crate::config::BUILT_INS.contains(&name.as_str()) {
                self.error(
                    &p.referenced,
                    format!("`{name}` is set by Crossroads itself"),
                    Some(format!(
                        "typed words never set the built-ins ({}); pick another name",
                        crate::config::BUILT_INS.join(", ")
                    )),
                );
            } else if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                self.error(
                    &p.referenced,
                    format!("`{}` is not a parameter name", p.value),
                    Some("use letters, digits, `_` or `-`".into()),
                );
            } else {
                params.push(name);
            }
        }
        let freeze_exempt = match &raw.freeze {
            None => false,
            Some(f) if f.value.trim().eq_ignore_ascii_case("exempt") && yaml => true,
            Some(f) if yaml => {
                self.error(
                    &f.referenced,
                    format!("unknown `freeze: {}`", f.value),
                    Some(
                        "the only value is `freeze: exempt` (the command runs during freezes)"
                            .into(),
                    ),
                );
                false
            }
            Some(f) => {
                self.error(
                    &f.referenced,
                    "`freeze` is for `action: job` and `action: http` commands",
                    Some("built-in actions follow the freeze rules of their kind".into()),
                );
                false
            }
        };
        Some(CommandSpec {
            name: canonical,
            phrases,
            action,
            target,
            target_optional: raw.optional,
            takes_args: raw.args,
            confirm: raw.confirm,
            allowed,
            help,
            examples,
            params,
            freeze_exempt,
            pos: self.pos(&name.referenced),
        })
    }

    fn action_kind(&mut self, raw: &RawCommand) -> Option<ActionKind> {
        let a = &raw.action;
        let word = a.value.trim().to_lowercase().replace([' ', '-'], "_");
        let kind = match word.as_str() {
            "job" => match &raw.job {
                Some(job) => ActionKind::Job(self.job(job, &raw.parameters)),
                None => {
                    self.error(
                        &a.referenced,
                        "`action: job` needs `job`",
                        Some("add `job: folder/name`, and `parameters:` if it takes any".into()),
                    );
                    return None;
                }
            },
            "http" => ActionKind::Http(self.http_request(
                &a.referenced,
                &raw.method,
                &raw.url,
                &raw.headers,
                &raw.body,
                "`action: http`",
            )),
            builtin if self.actions.contains(&builtin) => ActionKind::Builtin(builtin.to_owned()),
            other => {
                let mut known: Vec<&str> = self.actions.to_vec();
                known.extend(["job", "http"]);
                let hint = suggest(other, &known);
                self.error(
                    &a.referenced,
                    format!("unknown action `{}`", a.value),
                    Some(hint),
                );
                return None;
            }
        };
        // Fields that belong to another action.
        let job_fields = [
            ("job", raw.job.as_ref().map(|v| v.referenced)),
            (
                "parameters",
                raw.parameters
                    .as_ref()
                    .and_then(|p| p.0.first().map(|(k, _)| k.referenced)),
            ),
        ];
        let http_fields = [
            ("method", raw.method.as_ref().map(|v| v.referenced)),
            ("url", raw.url.as_ref().map(|v| v.referenced)),
            (
                "headers",
                raw.headers
                    .as_ref()
                    .and_then(|p| p.0.first().map(|(k, _)| k.referenced)),
            ),
            ("body", raw.body.as_ref().map(|v| v.referenced)),
        ];
        let stray: Vec<(&str, Location, &str)> = match kind {
            ActionKind::Job(_) => http_fields
                .iter()
                .filter_map(|(f, l)| l.map(|l| (*f, l, "http")))
                .collect(),
            ActionKind::Http(_) => job_fields
                .iter()
                .filter_map(|(f, l)| l.map(|l| (*f, l, "job")))
                .collect(),
            _ => job_fields
                .iter()
                .map(|(f, l)| (*f, *l, "job"))
                .chain(http_fields.iter().map(|(f, l)| (*f, *l, "http")))
                .filter_map(|(f, l, w)| l.map(|l| (f, l, w)))
                .collect(),
        };
        for (field, loc, wants) in stray {
            self.error(
                &loc,
                format!("`{field}` is only used with `action: {wants}`"),
                Some(format!("remove it, or set `action: {wants}`")),
            );
        }
        Some(kind)
    }

    // ---- instances.yaml -----------------------------------------------------------

    pub(crate) fn instances(&mut self, file: &str, raw: &InstancesFile, config: &mut Config) {
        self.file = file.to_owned();
        // Groups first: `allowed` lists in both files refer to them.
        for (name, members) in &raw.groups.0 {
            self.groups.insert(name.value.clone());
            let ids = members.iter().map(|m| self.text(m)).collect();
            config.groups.insert(name.value.clone(), ids);
        }
        for (name, id) in &raw.channels.0 {
            let id = self.text(id);
            config.channels.insert(name.value.clone(), id);
        }

        if let Some(s) = &raw.settings {
            let base = Settings::default();
            let gate = s.gate.as_ref();
            let consecutive = match gate.and_then(|g| g.consecutive.as_ref()) {
                Some(c) if c.value == 0 => {
                    self.error(
                        &c.referenced,
                        "`consecutive` must be at least 1",
                        Some("a gate needs at least one healthy probe".into()),
                    );
                    base.gate_consecutive
                }
                Some(c) => c.value,
                None => base.gate_consecutive,
            };
            config.settings = Settings {
                probe_timeout: self.duration(&s.probe_timeout, base.probe_timeout),
                gate_consecutive: consecutive,
                gate_interval: self
                    .duration(&gate.and_then(|g| g.interval.clone()), base.gate_interval),
                gate_timeout: self
                    .duration(&gate.and_then(|g| g.timeout.clone()), base.gate_timeout),
                lock_lease: self.duration(&s.lock_lease, base.lock_lease),
                lease: self.duration(&s.lease, base.lease),
                button_ttl: self.duration(&s.button_ttl, base.button_ttl),
                status_cache: self.duration(&s.status_cache, base.status_cache),
                retention: self.duration(&s.retention, base.retention),
            };
        }

        let defaults = raw.defaults.as_ref();
        let default_health = defaults
            .and_then(|d| d.health.as_ref())
            .map(|h| self.health(h))
            .unwrap_or_default();
        let default_tasks = defaults
            .and_then(|d| d.tasks.as_ref())
            .map(|t| self.path(t));

        if let Some(j) = &raw.jenkins {
            config.jenkins = self.jenkins(j);
        }
        if let Some(t) = &raw.toy {
            config.toy = self.toy(t);
        }
        if let Some(c) = &raw.compare {
            config.compare = self.compare(c);
        }

        let mut env_names: Vec<String> = Vec::new();
        for (name, env) in &raw.environments.0 {
            if let Some(e) =
                self.environment(name, env, &default_health, &default_tasks, &mut env_names)
            {
                self.watches(&e.name, env, &mut config.watches);
                for (pool, p) in &env.pools.0 {
                    if let Some(raw) = p.canary.as_ref().or(env.canary.as_ref()) {
                        if let Some(c) = self.canary(raw) {
                            config
                                .canaries
                                .insert((e.name.clone(), pool.value.trim().to_owned()), c);
                        }
                    }
                }
                config.environments.push(e);
            }
        }
        // Safety sections: global freeze first, then each environment's.
        if let Some(f) = &raw.freeze {
            let windows = self.freeze_windows(f, None);
            config.freeze.extend(windows);
        }
        for (name, env) in &raw.environments.0 {
            let env_name = name.value.trim();
            if let Some(rule) = env.approval.as_ref().and_then(|a| self.approval_rule(a)) {
                config.approval.envs.insert(env_name.to_owned(), rule);
            }
            if let Some(f) = &env.freeze {
                let windows = self.freeze_windows(f, Some(env_name));
                config.freeze.extend(windows);
            }
        }
        self.monitor_and_checks(raw, config);
        self.showing(raw, config);
    }

    /// A `canary:` section, checked.
    fn canary(&mut self, raw: &S<super::raw::RawCanary>) -> Option<Canary> {
        let c = &raw.value;
        let Some(steps) = &c.steps else {
            self.error(
                &raw.referenced,
                "a `canary` needs `steps`",
                Some("add `steps: [10, 50, 100]` (percent of traffic on the new member)".into()),
            );
            return None;
        };
        let mut ok = true;
        let mut percents = Vec::new();
        for s in steps {
            let previous = percents.last().copied().unwrap_or(0);
            match u8::try_from(s.value) {
                Ok(p) if (1..=100).contains(&p) && p > previous => percents.push(p),
                Ok(p) if (1..=100).contains(&p) => {
                    self.error(
                        &s.referenced,
                        format!(
                            "canary step {p} % does not rise above the step before ({previous} %)"
                        ),
                        Some("list the steps from the smallest share to 100".into()),
                    );
                    ok = false;
                }
                _ => {
                    self.error(
                        &s.referenced,
                        format!("canary step `{}` is not a percent from 1 to 100", s.value),
                        None,
                    );
                    ok = false;
                }
            }
        }
        if ok && percents.last() != Some(&100) {
            let at = steps.last().map_or(raw.referenced, |s| s.referenced);
            self.error(
                &at,
                "the last canary step must be 100",
                Some("a canary ends with all traffic on the new member: add `100`".into()),
            );
            ok = false;
        }
        let pause = self.duration(&c.pause, Duration::from_secs(120));
        let mut interval = Duration::from_secs(10);
        let mut failures = 2;
        let analysis = match &c.analysis {
            None => None,
            Some(a) => {
                let a_raw = a;
                let a = &a.value;
                interval = self.duration(&a.interval, interval);
                if interval.is_zero() {
                    if let Some(i) = &a.interval {
                        self.error(&i.referenced, "`interval` must be more than 0", None);
                    }
                    ok = false;
                }
                match &a.failures {
                    Some(f) if f.value == 0 => {
                        self.error(
                            &f.referenced,
                            "`failures` must be at least 1",
                            Some("how many failing readings in a row abort the canary".into()),
                        );
                        ok = false;
                    }
                    Some(f) => failures = f.value,
                    None => {}
                }
                let no_data_fails = match &a.no_data {
                    None => true,
                    Some(n) => match self.text(n).trim().to_lowercase().as_str() {
                        "fail" => true,
                        "pass" => false,
                        other => {
                            let hint = suggest(other, &["fail", "pass"]);
                            self.error(
                                &n.referenced,
                                format!("unknown no_data `{}`", n.value),
                                Some(hint),
                            );
                            ok = false;
                            true
                        }
                    },
                };
                let prometheus = match &a.prometheus {
                    Some(u) => self.url(u),
                    None => {
                        self.error(
                            &a_raw.referenced,
                            "a canary's `analysis` needs `prometheus`",
                            Some("add `prometheus: http://127.0.0.1:9090`".into()),
                        );
                        ok = false;
                        String::new()
                    }
                };
                if a.queries.is_empty() {
                    self.error(
                        &a_raw.referenced,
                        "a canary's `analysis` needs `queries`",
                        Some("add `queries: [{ name: error rate, query: '…', max: 0.02 }]`".into()),
                    );
                    ok = false;
                }
                let mut queries = Vec::new();
                for q in &a.queries {
                    let (Some(name), Some(query), Some(max)) =
                        (&q.value.name, &q.value.query, &q.value.max)
                    else {
                        self.error(
                            &q.referenced,
                            "a canary query needs `name`, `query` and `max`",
                            Some("e.g. `{ name: error rate, query: '…', max: 0.02 }`".into()),
                        );
                        ok = false;
                        continue;
                    };
                    if !max.value.is_finite() {
                        self.error(&max.referenced, "`max` must be a number", None);
                        ok = false;
                    }
                    queries.push(CanaryQuery {
                        name: self.text(name),
                        query: self.text(query),
                        max: max.value,
                    });
                }
                Some(Analysis {
                    prometheus,
                    no_data_fails,
                    queries,
                })
            }
        };
        // Each step must have room for the readings that can abort it.
        let needed = interval.saturating_mul(failures);
        if analysis.is_some() && pause < needed {
            let at = c.pause.as_ref().map_or(raw.referenced, |p| p.referenced);
            self.error(
                &at,
                format!(
                    "a canary `pause` of {} is shorter than `interval` × `failures` ({}): a step would pass before its readings could abort it",
                    crate::text::human(pause),
                    crate::text::human(needed)
                ),
                Some("make the pause longer, or the interval shorter".into()),
            );
            ok = false;
        }
        ok.then_some(Canary {
            steps: percents,
            pause,
            analysis,
            interval,
            failures,
        })
    }

    /// The post-switch watch of each pool of `env`: the pool's own keys over its
    /// environment's.
    fn watches(
        &mut self,
        env: &str,
        raw: &RawEnvironment,
        into: &mut BTreeMap<(String, String), Watch>,
    ) {
        for (pool, p) in &raw.pools.0 {
            let duration = p.watch.as_ref().or(raw.watch.as_ref());
            let every = p.watch_every.as_ref().or(raw.watch_every.as_ref());
            let failures = p.watch_failures.as_ref().or(raw.watch_failures.as_ref());
            let auto = p.auto_rollback.as_ref().or(raw.auto_rollback.as_ref());
            let Some(duration) = duration else {
                for (key, loc) in [
                    ("watch_every", every.map(|e| e.referenced)),
                    ("watch_failures", failures.map(|f| f.referenced)),
                    (
                        "auto_rollback",
                        auto.filter(|a| a.value).map(|a| a.referenced),
                    ),
                ] {
                    if let Some(loc) = loc {
                        self.error(
                            &loc,
                            format!("`{key}` has no `watch` to go with"),
                            Some("add `watch: 2m` (how long to watch after a switch)".into()),
                        );
                    }
                }
                continue;
            };
            let failures = match failures {
                Some(f) if f.value == 0 => {
                    self.error(
                        &f.referenced,
                        "`watch_failures` must be at least 1",
                        Some("how many failed probes in a row count as unhealthy".into()),
                    );
                    2
                }
                Some(f) => f.value,
                None => 2,
            };
            let watch = Watch {
                duration: self.duration(&Some(duration.clone()), Duration::from_secs(120)),
                every: self.duration(&every.cloned(), Duration::from_secs(5)),
                failures,
                auto_rollback: auto.is_some_and(|a| a.value),
            };
            into.insert((env.to_owned(), pool.value.trim().to_owned()), watch);
        }
    }

    fn jenkins(&mut self, raw: &S<super::raw::RawJenkins>) -> Option<JenkinsConfig> {
        let j = &raw.value;
        let url = match &j.url {
            Some(u) => self.url(u),
            None => {
                self.error(
                    &raw.referenced,
                    "`jenkins` has no `url`",
                    Some("add `url: ${JENKINS_URL}`".into()),
                );
                String::new()
            }
        };
        let user = self.opt_text(&j.user).unwrap_or_default();
        let token = match &j.token {
            Some(t) => Secret::new(self.text(t)),
            None => {
                self.error(
                    &raw.referenced,
                    "`jenkins` has no `token`",
                    Some(
                        "add `token: ${JENKINS_TOKEN}`; never write the token itself in the file"
                            .into(),
                    ),
                );
                Secret::default()
            }
        };
        Some(JenkinsConfig {
            url,
            user,
            token,
            timeout: self.duration(&j.timeout, Duration::from_secs(30 * 60)),
            poll_interval: self.duration(&j.poll_interval, Duration::from_millis(500)),
        })
    }

    fn compare(&mut self, raw: &S<super::raw::RawCompare>) -> Option<CompareConfig> {
        let c = &raw.value;
        let kind = match &c.kind {
            None => {
                self.error(
                    &raw.referenced,
                    "`compare` has no `type`",
                    Some("add `type: github` or `type: gitlab`".into()),
                );
                None
            }
            Some(k) => match k.value.trim().to_ascii_lowercase().as_str() {
                "github" => Some(CompareKind::Github),
                "gitlab" => Some(CompareKind::Gitlab),
                other => {
                    let hint = suggest(other, &["github", "gitlab"]);
                    self.error(
                        &k.referenced,
                        format!("unknown compare type `{other}`"),
                        Some(hint),
                    );
                    None
                }
            },
        };
        let mut need = |field: &Option<S<String>>, name: &str, example: &str| match field {
            Some(v) => Some(v.clone()),
            None => {
                self.error(
                    &raw.referenced,
                    format!("`compare` has no `{name}`"),
                    Some(format!("add `{name}: {example}`")),
                );
                None
            }
        };
        let url = need(&c.url, "url", "${GITHUB_API_URL}");
        let repo = need(&c.repo, "repo", "owner/name");
        let token = need(
            &c.token,
            "token",
            "${GITHUB_TOKEN}` (never the token itself in the file",
        );
        let url = url.map(|u| self.url(&u));
        let repo = repo.map(|r| self.text(&r));
        let token = token.map(|t| Secret::new(self.text(&t)));
        Some(CompareConfig {
            kind: kind?,
            url: url?,
            repo: repo?,
            token: token?,
        })
    }

    fn toy(&mut self, raw: &S<super::raw::RawToy>) -> Option<ToyConfig> {
        let t = &raw.value;
        let Some(job) = &t.job else {
            self.error(
                &raw.referenced,
                "`toy` has no `job`",
                Some("add `job: folder/name`".into()),
            );
            return None;
        };
        let job = self.job(job, &t.parameters);
        let mut users = BTreeMap::new();
        for (user, db) in &t.users.0 {
            let db = self.text(db);
            users.insert(user.value.clone(), db);
        }
        Some(ToyConfig { job, users })
    }

    fn health(&mut self, raw: &RawHealth) -> PartialHealth {
        let status = raw.expect_status.as_ref().map(|s| {
            if !(100..=599).contains(&s.value) {
                self.error(
                    &s.referenced,
                    format!("`{}` is not an HTTP status", s.value),
                    Some("use a status between 100 and 599, e.g. 200".into()),
                );
            }
            s.value
        });
        let json = raw.json.as_ref().map(|map| {
            map.0
                .iter()
                .map(|(pointer, expected)| {
                    self.check_pointer(&pointer.referenced, &pointer.value);
                    let value = match &expected.value {
                        serde_json::Value::String(s) => {
                            let spanned = S::new(s.clone(), expected.referenced, expected.defined);
                            serde_json::Value::String(self.text(&spanned))
                        }
                        other => other.clone(),
                    };
                    (pointer.value.clone(), value)
                })
                .collect()
        });
        PartialHealth {
            path: raw.path.as_ref().map(|p| self.path(p)),
            expect_status: status,
            json,
            contains: raw
                .contains
                .as_ref()
                .map(|c| c.iter().map(|s| self.text(s)).collect()),
            max_latency: raw
                .max_latency
                .as_ref()
                .map(|m| self.duration(&Some(m.clone()), Duration::ZERO)),
            version_pointer: raw.version.as_ref().map(|v| self.pointer(v)),
        }
    }

    fn environment(
        &mut self,
        name: &S<String>,
        raw: &RawEnvironment,
        default_health: &PartialHealth,
        default_tasks: &Option<String>,
        env_names: &mut Vec<String>,
    ) -> Option<Environment> {
        let env_name = name.value.trim().to_owned();
        let owner = Owner::Env(env_name.clone());
        env_names.push(env_name.clone());
        let mut aliases = vec![normalise(&env_name)];
        self.claim(
            &normalise(&env_name),
            format!("name of environment `{env_name}`"),
            owner.clone(),
            &name.referenced,
        );
        let what = format!("alias of environment `{env_name}`");
        self.claim_all(&raw.aliases, normalise, &what, &owner, None, &mut aliases);
        let mut emoji = Vec::new();
        let what = format!("emoji of environment `{env_name}`");
        self.claim_all(&raw.emoji, normalise_emoji, &what, &owner, None, &mut emoji);
        let allowed = self.check_groups(&raw.allowed);
        let regional = !raw.regions.0.is_empty();
        let mut pools = Vec::new();
        let mut pool_names: HashMap<String, Pos> = HashMap::new();
        for (pool_name, pool) in &raw.pools.0 {
            let key = normalise(&pool_name.value);
            if let Some(first) = pool_names.get(&key) {
                let hint = format!("first defined at {first}");
                self.error(
                    &pool_name.referenced,
                    format!("environment `{env_name}` has two pools named `{key}`"),
                    Some(hint),
                );
                continue;
            }
            pool_names.insert(key, self.pos(&pool_name.referenced));
            if let Some(p) = self.pool(
                &env_name,
                pool_name,
                pool,
                default_health,
                default_tasks,
                regional,
            ) {
                pools.push(p);
            }
        }
        if raw.pools.0.is_empty() {
            self.error(
                &name.referenced,
                format!("environment `{env_name}` has no pools"),
                Some("add `pools:` with at least one pool of two members".into()),
            );
        }
        let regions = self.regions(&env_name, &raw.regions, &pools);
        let rollout = self.rollout(&env_name, raw.rollout.as_ref(), &regions);
        // Code that knows nothing of regions sees the first region as the environment.
        let pools = regions.first().map_or(pools, |r| r.pools.clone());
        Some(Environment {
            name: env_name,
            aliases,
            emoji,
            protected: raw.protected,
            allowed,
            pools,
            regions,
            rollout,
            pos: self.pos(&name.referenced),
        })
    }

    fn pool(
        &mut self,
        env: &str,
        name: &S<String>,
        raw: &RawPool,
        default_health: &PartialHealth,
        default_tasks: &Option<String>,
        regional: bool,
    ) -> Option<Pool> {
        let pool_name = name.value.trim().to_owned();
        let owner = Owner::Pool(normalise(&pool_name));
        let mut aliases = vec![normalise(&pool_name)];
        self.claim(
            &normalise(&pool_name),
            format!("name of pool `{env} {pool_name}`"),
            owner.clone(),
            &name.referenced,
        );
        let what = format!("alias of pool `{env} {pool_name}`");
        self.claim_all(&raw.aliases, normalise, &what, &owner, None, &mut aliases);
        let deploy = raw.deploy.as_ref().and_then(|d| {
            match self.action(d, &format!("`deploy` of pool `{pool_name}`"))? {
                ActionSpec::Job(job) => Some(job),
                ActionSpec::Http(_) => {
                    self.error(
                        &d.referenced,
                        format!("`deploy` of pool `{pool_name}` must be a Jenkins job"),
                        Some("use `job:` and `parameters:`".into()),
                    );
                    None
                }
            }
        });
        let pool_restart = raw
            .restart
            .as_ref()
            .and_then(|r| self.action(r, &format!("`restart` of pool `{pool_name}`")));

        let mut members = Vec::new();
        let mut member_names: HashMap<String, Pos> = HashMap::new();
        for (member_name, member) in &raw.members.0 {
            let key = normalise(&member_name.value);
            if let Some(first) = member_names.get(&key) {
                let hint = format!("first defined at {first}");
                self.error(
                    &member_name.referenced,
                    format!("pool `{pool_name}` has two members named `{key}`"),
                    Some(hint),
                );
                continue;
            }
            member_names.insert(key, self.pos(&member_name.referenced));
            members.push(self.member(
                env,
                &pool_name,
                member_name,
                member,
                default_health,
                default_tasks,
                &pool_restart,
                regional,
            ));
        }
        match raw.members.0.len() {
            0 => self.error(&name.referenced, format!("pool `{pool_name}` has no members"), Some("add `members:` with at least two instances (e.g. blue and green)".into())),
            1 => self.error(&name.referenced, format!("pool `{pool_name}` has only one member"), Some("blue/green needs at least two members to move traffic between; add another under `members:`".into())),
            _ => {}
        }

        let switch = match &raw.switch {
            // Each region gives its own; a placeholder until then.
            None if regional => Some(SwitchSpec::Memory {
                initial: String::new(),
            }),
            Some(s) if regional => {
                self.error(
                    &s.referenced,
                    format!("pool `{pool_name}` of an environment with regions has a switch of its own"),
                    Some(format!("each region has its own switch: move it to `regions: <region>: pools: {pool_name}: switch:`")),
                );
                Some(SwitchSpec::Memory {
                    initial: String::new(),
                })
            }
            None => {
                self.error(
                    &name.referenced,
                    format!("pool `{pool_name}` has no traffic switch"),
                    Some("add `switch:` with type haproxy, http, jenkins or memory".into()),
                );
                None
            }
            Some(s) => self.switch(&pool_name, s, &members),
        };
        Some(Pool {
            name: pool_name,
            aliases,
            switch: switch?,
            deploy,
            members,
            region: None,
            pos: self.pos(&name.referenced),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn member(
        &mut self,
        env: &str,
        pool: &str,
        name: &S<String>,
        raw: &RawMember,
        default_health: &PartialHealth,
        default_tasks: &Option<String>,
        pool_restart: &Option<ActionSpec>,
        regional: bool,
    ) -> Instance {
        let member_name = name.value.trim().to_owned();
        let word = normalise(&member_name);
        self.claim(
            &word,
            format!("name of member `{env} {pool} {member_name}`"),
            Owner::Member(word.clone()),
            &name.referenced,
        );
        let owner = Owner::Instance(format!("{env} {pool} {member_name}"));
        let mut aliases = Vec::new();
        let what = format!("alias of instance `{env} {pool} {member_name}`");
        self.claim_all(
            &raw.aliases,
            normalise,
            &what,
            &owner,
            Some(&word),
            &mut aliases,
        );
        let mut emoji = Vec::new();
        let what = format!("emoji of member `{env} {pool} {member_name}`");
        let emoji_owner = Owner::MemberEmoji(word.clone());
        self.claim_all(
            &raw.emoji,
            normalise_emoji,
            &what,
            &emoji_owner,
            None,
            &mut emoji,
        );
        let url = match &raw.url {
            Some(u) if regional => {
                self.error(
                    &u.referenced,
                    format!("instance `{env} {pool} {member_name}` has a `url` of its own, but its environment has regions"),
                    Some(format!("each region has its own URLs: move it to `regions: <region>: pools: {pool}: members: {member_name}: url:`")),
                );
                String::new()
            }
            Some(u) => self.url(u),
            None if regional => String::new(),
            None => {
                self.error(
                    &name.referenced,
                    format!("instance `{env} {pool} {member_name}` has no `url`"),
                    Some("add `url: http://…` (its base URL)".into()),
                );
                String::new()
            }
        };
        let health = match &raw.health {
            Some(h) => self.health(h).over(default_health),
            None => default_health.over(&PartialHealth::default()),
        };
        let tasks = match &raw.tasks {
            Some(t) => Some(self.path(t)),
            None => default_tasks.clone(),
        };
        let restart = match &raw.restart {
            Some(r) => self.action(r, &format!("`restart` of `{env} {pool} {member_name}`")),
            None => pool_restart.clone(),
        };
        Instance {
            name: member_name,
            aliases,
            emoji,
            url,
            health,
            tasks,
            restart,
            pos: self.pos(&name.referenced),
        }
    }

    /// An `http` switch's `weights` request and `weights_pointer`: both or neither.
    fn weights_spec(&mut self, s: &RawSwitch, pool: &str) -> Option<WeightsSpec> {
        match (&s.weights, &s.weights_pointer) {
            (None, None) => None,
            (Some(w), None) => {
                self.error(
                    &w.referenced,
                    format!("the switch of pool `{pool}` has `weights` but no `weights_pointer`"),
                    Some("add `weights_pointer: /weights`: where its `get` answer shows the weights in force".into()),
                );
                None
            }
            (None, Some(p)) => {
                self.error(
                    &p.referenced,
                    format!("the switch of pool `{pool}` has `weights_pointer` but no `weights`"),
                    Some(
                        "add `weights: { method: POST, url: http://…, body: '{weights}' }`".into(),
                    ),
                );
                None
            }
            (Some(w), Some(p)) => {
                let pointer = self.pointer(p);
                match self.action(w, &format!("`weights` of the switch of pool `{pool}`"))? {
                    ActionSpec::Http(set) => Some(WeightsSpec { set, pointer }),
                    ActionSpec::Job(_) => {
                        self.error(
                            &w.referenced,
                            "`weights` of an `http` switch must be an HTTP request",
                            None,
                        );
                        None
                    }
                }
            }
        }
    }

    fn switch(
        &mut self,
        pool: &str,
        raw: &S<RawSwitch>,
        members: &[Instance],
    ) -> Option<SwitchSpec> {
        let s = &raw.value;
        let Some(kind) = &s.kind else {
            self.error(
                &raw.referenced,
                format!("the switch of pool `{pool}` has no `type`"),
                Some("add `type:` haproxy, http, jenkins or memory".into()),
            );
            return None;
        };
        let kind_word = kind.value.trim().to_lowercase();
        if !SWITCH_TYPES.contains(&kind_word.as_str()) {
            let hint = suggest(&kind_word, SWITCH_TYPES);
            self.error(
                &kind.referenced,
                format!("unknown switch type `{}`", kind.value),
                Some(hint),
            );
            return None;
        }
        let first_key = |m: &Option<OMap<S<String>>>| {
            m.as_ref()
                .and_then(|m| m.0.first().map(|(k, _)| k.referenced))
        };
        let fields: [(&str, Option<Location>, &[&str]); 12] = [
            (
                "address",
                s.address.as_ref().map(|v| v.referenced),
                &["haproxy"],
            ),
            (
                "backend",
                s.backend.as_ref().map(|v| v.referenced),
                &["haproxy"],
            ),
            ("servers", first_key(&s.servers), &["haproxy"]),
            (
                "off_state",
                s.off_state.as_ref().map(|v| v.referenced),
                &["haproxy"],
            ),
            ("set", s.set.as_ref().map(|v| v.referenced), &["http"]),
            (
                "get",
                s.get.as_ref().map(|v| v.referenced),
                &["http", "jenkins"],
            ),
            (
                "pointer",
                s.pointer.as_ref().map(|v| v.referenced),
                &["http", "jenkins"],
            ),
            ("job", s.job.as_ref().map(|v| v.referenced), &["jenkins"]),
            ("parameters", first_key(&s.parameters), &["jenkins"]),
            (
                "initial",
                s.initial.as_ref().map(|v| v.referenced),
                &["memory"],
            ),
            (
                "weights",
                s.weights.as_ref().map(|v| v.referenced),
                &["http"],
            ),
            (
                "weights_pointer",
                s.weights_pointer.as_ref().map(|v| v.referenced),
                &["http"],
            ),
        ];
        for (field, loc, types) in fields {
            if let Some(loc) = loc {
                if !types.contains(&kind_word.as_str()) {
                    self.error(
                        &loc,
                        format!("`{field}` is not used by a `{kind_word}` switch"),
                        Some(format!("it belongs to a {} switch", types.join(" or "))),
                    );
                }
            }
        }
        let member_names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let missing = |this: &mut Self, field: &str, example: &str| {
            this.error(
                &raw.referenced,
                format!("a `{kind_word}` switch needs `{field}`"),
                Some(format!("add `{field}: {example}`")),
            );
        };
        match kind_word.as_str() {
            "haproxy" => {
                let address = match &s.address {
                    Some(a) => self.text(a),
                    None => {
                        missing(self, "address", "127.0.0.1:9999");
                        String::new()
                    }
                };
                let backend = match &s.backend {
                    Some(b) => self.text(b),
                    None => {
                        missing(self, "backend", "be_app");
                        String::new()
                    }
                };
                let mut servers = Vec::new();
                for (member, server) in s
                    .servers
                    .as_ref()
                    .map(|m| m.0.as_slice())
                    .unwrap_or_default()
                {
                    if !member_names.contains(&member.value.as_str()) {
                        let hint = suggest(&member.value, &member_names);
                        self.error(
                            &member.referenced,
                            format!("`{}` is not a member of pool `{pool}`", member.value),
                            Some(hint),
                        );
                    }
                    let server = self.text(server);
                    servers.push((member.value.clone(), server));
                }
                let off_state = match &s.off_state {
                    Some(o) => {
                        let v = self.text(o).to_lowercase();
                        if !OFF_STATES.contains(&v.as_str()) {
                            let hint = suggest(&v, OFF_STATES);
                            self.error(
                                &o.referenced,
                                format!("unknown off_state `{}`", o.value),
                                Some(hint),
                            );
                        }
                        v
                    }
                    None => "drain".to_owned(),
                };
                Some(SwitchSpec::Haproxy {
                    address,
                    backend,
                    servers,
                    off_state,
                })
            }
            "http" | "jenkins" => {
                let get_url = match &s.get {
                    Some(g) => self.url(g),
                    None => {
                        missing(self, "get", "http://127.0.0.1:8080/active");
                        String::new()
                    }
                };
                let pointer = match &s.pointer {
                    Some(p) => self.pointer(p),
                    None => {
                        missing(self, "pointer", "/active");
                        String::new()
                    }
                };
                if kind_word == "http" {
                    let set = match &s.set {
                        Some(set) => match self
                            .action(set, &format!("`set` of the switch of pool `{pool}`"))?
                        {
                            ActionSpec::Http(req) => req,
                            ActionSpec::Job(_) => {
                                self.error(
                                    &set.referenced,
                                    "`set` of an `http` switch must be an HTTP request",
                                    Some("use a `jenkins` switch to run a job".into()),
                                );
                                return None;
                            }
                        },
                        None => {
                            missing(self, "set", "{ method: POST, url: http://…, body: … }");
                            return None;
                        }
                    };
                    let weights = self.weights_spec(s, pool);
                    Some(SwitchSpec::Http {
                        set,
                        get_url,
                        pointer,
                        weights,
                    })
                } else {
                    let job = match &s.job {
                        Some(j) => self.job(j, &s.parameters),
                        None => {
                            missing(self, "job", "folder/switch");
                            return None;
                        }
                    };
                    Some(SwitchSpec::Jenkins {
                        job,
                        get_url,
                        pointer,
                    })
                }
            }
            _ => {
                let initial = match &s.initial {
                    Some(i) => {
                        let v = self.text(i);
                        if !member_names.contains(&v.as_str()) {
                            let hint = suggest(&v, &member_names);
                            self.error(
                                &i.referenced,
                                format!("`initial` member `{v}` is not a member of pool `{pool}`"),
                                Some(hint),
                            );
                        }
                        v
                    }
                    None => member_names
                        .first()
                        .map(|m| (*m).to_owned())
                        .unwrap_or_default(),
                };
                Some(SwitchSpec::Memory { initial })
            }
        }
    }
}
