//! Configuration: loading `commands.yaml` and `instances.yaml`, `${VAR}` interpolation,
//! and validation that reports `file:line:column: what is wrong (hint)`.

mod build;
mod duration;
mod interp;
mod model;
mod raw;
mod safety;

pub use model::*;
pub use safety::*;

use std::path::Path;

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where, when known.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
    /// How to fix it (e.g. "did you mean `aliases`?").
    pub hint: Option<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(pos) = &self.pos {
            write!(f, "{pos}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one load; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Looks up environment variables for `${VAR}` interpolation.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads `commands.yaml` and `instances.yaml` from `dir`, interpolating from the
/// process environment; `action:` may name any of `actions` (besides `job` and
/// `http`). `bot_core::load_dir` passes the engine's own actions.
pub fn load_dir(dir: &Path, actions: &[&str]) -> Result<Config, ConfigErrors> {
    load_dir_with_env(dir, &process_env, actions)
}

/// Loads both files from `dir` with a custom variable lookup.
///
/// Error positions name the files by their path (`dir/instances.yaml`).
pub fn load_dir_with_env(
    dir: &Path,
    env: EnvLookup<'_>,
    actions: &[&str],
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut read = |name: &str| {
        let path = dir.join(name);
        let shown = path.display().to_string();
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some((shown, text)),
                Err(e) => {
                    errors.push(not_utf8(&shown, e.as_bytes(), e.utf8_error()));
                    None
                }
            },
            Err(e) => {
                errors.push(ConfigError {
                    pos: None,
                    message: format!("cannot read `{shown}`: {e}"),
                    hint: Some(format!(
                        "the config directory must contain `{COMMANDS_FILE}` and `{INSTANCES_FILE}`"
                    )),
                });
                None
            }
        }
    };
    let commands = read(COMMANDS_FILE);
    let instances = read(INSTANCES_FILE);
    match (commands, instances) {
        (Some((cn, ct)), Some((iname, it))) if errors.is_empty() => {
            from_strs(&cn, &ct, &iname, &it, env, actions)
        }
        _ => Err(ConfigErrors(errors)),
    }
}

/// Name of the vocabulary file inside a config directory.
pub const COMMANDS_FILE: &str = "commands.yaml";
/// Name of the platform file inside a config directory.
pub const INSTANCES_FILE: &str = "instances.yaml";

fn not_utf8(file: &str, bytes: &[u8], e: std::str::Utf8Error) -> ConfigError {
    let valid = &bytes[..e.valid_up_to()];
    let line = valid.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count() as u64
        + 1;
    ConfigError {
        pos: Some(Pos {
            file: file.to_owned(),
            line,
            column,
        }),
        message: format!("`{file}` is not valid UTF-8"),
        hint: Some("save the file as UTF-8".into()),
    }
}

/// Loads from in-memory texts; `*_name` is what error positions call the file, and
/// `action:` may name any of `actions` (besides `job` and `http`).
pub fn from_strs(
    commands_name: &str,
    commands: &str,
    instances_name: &str,
    instances: &str,
    env: EnvLookup<'_>,
    actions: &[&str],
) -> Result<Config, ConfigErrors> {
    let (raw_commands, mut errors) = parse::<raw::CommandsFile>(commands_name, commands);
    let (raw_instances, mut more) = parse::<raw::InstancesFile>(instances_name, instances);
    errors.append(&mut more);
    let mut builder = build::Builder::new(env, actions);
    let mut config = Config::default();
    // instances.yaml first: it defines the groups both files refer to. When one file
    // cannot be read, the other is still checked so every problem shows up at once.
    match raw_instances {
        Some(raw) => builder.instances(instances_name, &raw, &mut config),
        None => builder.groups_known = false,
    }
    if let Some(raw) = raw_commands {
        let (commands, filler) = builder.commands(commands_name, &raw);
        config.commands = commands;
        config.filler = filler;
        config.approval.commands = std::mem::take(&mut builder.command_approvals);
    }
    errors.append(&mut builder.errors);
    if errors.is_empty() {
        return Ok(config);
    }
    // Report in reading order: commands file first, then by position.
    errors.sort_by_key(|e| {
        e.pos
            .as_ref()
            .map(|p| (p.file != commands_name, p.line, p.column))
    });
    Err(ConfigErrors(errors))
}

/// How many unknown keys one file reports before the rest is left unread.
const MAX_UNKNOWN_KEYS: usize = 50;

/// Deserializes one file, turning serde-saphyr's errors into [`ConfigError`]s. An
/// unknown key does not hide the next one: it is reported, its block is left out
/// (lines kept, so positions stay true) and the file is read again, so every
/// unknown key shows at once, and the rest of the file is still checked.
fn parse<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> (Option<T>, Vec<ConfigError>) {
    let mut text = if text.trim().is_empty() {
        "{}".to_owned()
    } else {
        text.to_owned()
    };
    let mut errors = Vec::new();
    loop {
        let e = match serde_saphyr::from_str::<T>(&text) {
            Ok(parsed) => return (Some(parsed), errors),
            Err(e) => e,
        };
        errors.push(yaml_error(file, &e));
        let unknown = match e.without_snippet() {
            serde_saphyr::Error::SerdeUnknownField { field, .. } => field.clone(),
            _ => return (None, errors),
        };
        let line = e.location().map_or(0, |l| l.line());
        match without_key(&text, line, &unknown) {
            Some(rest) if errors.len() < MAX_UNKNOWN_KEYS => text = rest,
            _ => return (None, errors),
        }
    }
}

/// `text` with the block-style key `key` on (1-based) `line` and the lines nested
/// under it blanked; `None` when that line does not start with the key (a key in a
/// `{flow: mapping}`), so nothing is guessed.
fn without_key(text: &str, line: u64, key: &str) -> Option<String> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let at = usize::try_from(line).ok()?.checked_sub(1)?;
    let first = *lines.get(at)?;
    let indent = first.len() - first.trim_start().len();
    let body = first.trim_start();
    let named = body
        .strip_prefix(key)
        .or_else(|| body.strip_prefix(&format!("\"{key}\"")))
        .or_else(|| body.strip_prefix(&format!("'{key}'")))?;
    if !named.trim_start().starts_with(':') {
        return None;
    }
    // A key with nothing after it may own a block sequence at its own indent
    // (`alias:` then `- prod`): that goes with it.
    let bare = named.trim_start().trim_start_matches(':').trim().is_empty()
        || named
            .trim_start()
            .trim_start_matches(':')
            .trim()
            .starts_with('#');
    lines[at] = "";
    for l in lines.iter_mut().skip(at + 1) {
        let blank = l.trim().is_empty() || l.trim_start().starts_with('#');
        let own = l.len() - l.trim_start().len();
        let item = bare && own == indent && l.trim_start().starts_with("- ");
        if !blank && own <= indent && !item {
            break;
        }
        *l = "";
    }
    Some(lines.join("\n"))
}

fn yaml_error(file: &str, error: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::{Error, MessageFormatter};
    let pos = error.location().filter(|l| l.line() > 0).map(|l| Pos {
        file: file.to_owned(),
        line: l.line(),
        column: l.column(),
    });
    let inner = error.without_snippet();
    let (message, hint) = match inner {
        Error::SerdeUnknownField {
            field, expected, ..
        } => (
            format!("unknown key `{field}`"),
            Some(build::suggest(field, expected)),
        ),
        Error::DuplicateMappingKey { key: Some(key), .. } => (
            format!("`{key}` is defined twice"),
            Some("each key may appear only once in a mapping".to_owned()),
        ),
        Error::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`"),
            Some(format!("add `{field}:`")),
        ),
        Error::InvalidScalar { ty, .. } => {
            let hint = match *ty {
                "bool" | "boolean" => "write `true` or `false`",
                t if t.starts_with('u') || t.starts_with('i') => "write a whole number",
                _ => "check the value's type",
            };
            (
                serde_saphyr::UserMessageFormatter
                    .format_message(inner)
                    .into_owned(),
                Some(hint.to_owned()),
            )
        }
        _ => (
            serde_saphyr::UserMessageFormatter
                .format_message(inner)
                .into_owned(),
            None,
        ),
    };
    let message = if pos.is_none() {
        format!("{file}: {message}")
    } else {
        message
    };
    ConfigError { pos, message, hint }
}

impl Config {
    /// Counts of what was loaded, for `crossroads check`.
    pub fn summary(&self) -> Summary {
        let mut words = std::collections::BTreeSet::new();
        let mut pools = 0;
        let mut instances = 0;
        for env in &self.environments {
            words.extend(env.aliases.iter().chain(&env.emoji).map(String::as_str));
            for region in &env.regions {
                words.extend(
                    region
                        .aliases
                        .iter()
                        .chain(&region.emoji)
                        .map(String::as_str),
                );
            }
            for pool in env.sites().iter().flat_map(|s| s.pools) {
                pools += 1;
                words.extend(pool.aliases.iter().map(String::as_str));
                for member in &pool.members {
                    instances += 1;
                    words.extend(
                        member
                            .aliases
                            .iter()
                            .chain(&member.emoji)
                            .map(String::as_str),
                    );
                    words.insert(member.name.as_str());
                }
            }
        }
        Summary {
            commands: self.commands.len(),
            environments: self.environments.len(),
            pools,
            instances,
            aliases: words.len(),
        }
    }
}

/// Counts shown by `crossroads check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Commands.
    pub commands: usize,
    /// Environments.
    pub environments: usize,
    /// Pools.
    pub pools: usize,
    /// Instances.
    pub instances: usize,
    /// Distinct words and phrases that name something (aliases, emoji, member names).
    pub aliases: usize,
}
