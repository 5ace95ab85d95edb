//! Resolution: tokens → command + target candidates, using an alias index built at load time.

use crate::config::{Config, InstanceRef};
use crate::grammar::Token;

/// What a selector word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Referent {
    /// An environment (index into `Config::environments`).
    Env(usize),
    /// A pool: (environment index, pool index).
    Pool(usize, usize),
    /// An instance: (environment index, pool index, member index).
    Instance(usize, usize, usize),
}

/// `active` / `inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// Taking traffic.
    Active,
    /// Not taking traffic.
    Inactive,
}

/// Words that constrained the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The words as the user typed them (normalised), e.g. `roi hunter`.
    pub words: String,
    /// The alias they matched, when it differs (fuzzy match), e.g. `master` for `mastr`.
    pub corrected: Option<String>,
    /// Everything these words name.
    pub matches: Vec<Referent>,
}

/// A recognised command with its raw constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMatch {
    /// Index into `Config::commands`.
    pub command: usize,
    /// Selectors in the order typed.
    pub selectors: Vec<Selector>,
    /// `active` / `inactive`, if given.
    pub qualifier: Option<Qualifier>,
    /// Leftover words, in order (arguments or words not understood).
    pub rest: Vec<String>,
    /// `key=value` arguments.
    pub params: Vec<(String, String)>,
}

/// The outcome of parsing a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing but filler, mentions or whitespace.
    Empty,
    /// A command was recognised.
    Command(CommandMatch),
    /// The command word looks misspelt: never executed, suggested instead.
    Misspelt {
        /// What the user typed as the command.
        typed: String,
        /// Index into `Config::commands`.
        command: usize,
        /// The whole message with the command corrected, e.g. `restart master blue`.
        corrected: String,
    },
    /// The first word is no command at all.
    NotACommand {
        /// The word.
        word: String,
    },
}

/// Which targets a command's selectors leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    /// Instances matching every selector (for instance-level commands), in config order.
    Instances(Vec<InstanceRef>),
    /// Conflict: the selectors name nothing in common; the message explains.
    Conflict(String),
}

/// Alias index built once per config: exact lookups by hash, fuzzy lookups without
/// scanning every alias.
#[derive(Debug, Clone)]
pub struct Index {
    _private: (),
}

impl Index {
    /// Builds the index for `config`.
    pub fn build(config: &Config) -> Self {
        let _ = config;
        Self { _private: () }
    }

    /// Parses tokens into a command and its constraints.
    pub fn parse(&self, config: &Config, tokens: &[Token]) -> Parsed {
        let _ = (config, tokens);
        Parsed::Empty
    }

    /// Instances matching all `selectors` (all instances when there are none).
    pub fn candidates(&self, config: &Config, selectors: &[Selector]) -> Candidates {
        let _ = selectors;
        Candidates::Instances(config.instances().map(|(r, _)| r).collect())
    }
}
