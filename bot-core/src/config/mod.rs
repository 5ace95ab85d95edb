//! Configuration: loading `commands.yaml` and `instances.yaml`, `${VAR}` interpolation,
//! and validation that reports `file:line:column: what is wrong (hint)`.

mod model;

pub use model::*;

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

/// Loads `commands.yaml` and `instances.yaml` from `dir`, interpolating from the process environment.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    load_dir_with_env(dir, &process_env)
}

/// Loads both files from `dir` with a custom variable lookup.
pub fn load_dir_with_env(dir: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigErrors> {
    let _ = (dir, env);
    Err(ConfigErrors(vec![ConfigError {
        pos: None,
        message: "config loading is not implemented yet".into(),
        hint: None,
    }]))
}

/// Loads from in-memory texts; `*_name` is what error positions call the file.
pub fn from_strs(
    commands_name: &str,
    commands: &str,
    instances_name: &str,
    instances: &str,
    env: EnvLookup<'_>,
) -> Result<Config, ConfigErrors> {
    let _ = (commands_name, commands, instances_name, instances, env);
    load_dir_with_env(Path::new("."), env)
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
