//! Resolution: tokens → command + target candidates, using an alias index built at load time.
//!
//! [`Index::build`] turns the config into hash tables (alias phrase → what it names,
//! emoji → what it names, command phrase → command, filler words) plus a fuzzy index
//! for typos. [`Index::parse`] finds the command phrase and the selectors;
//! [`Index::candidates`] intersects the selectors into instances.
//!
//! Matching rules, in order of strength: an exact phrase always beats a fuzzy one
//! covering as many words; among matches starting at the same word the one covering
//! the most words wins (`roih hunter` is the alias `roi hunter`, not `roih` followed by
//! an unknown `hunter`). Typos are tolerated for 4+ characters (one edit; 8+: two,
//! transpositions counting one). A misspelt command is never run: it is reported as
//! [`Parsed::Misspelt`] so the reply can offer the corrected command.

mod fuzzy;
pub mod targets;

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use crate::config::{Config, InstanceRef};
use crate::lexer::Token;
use fuzzy::{Fuzzy, FxHasher, FxMap};

/// What a selector word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Referent {
    /// An environment (index into `Config::environments`).
    Env(usize),
    /// A pool: (environment index, pool index).
    Pool(usize, usize),
    /// An instance: (environment index, pool index, member index), in every region.
    Instance(usize, usize, usize),
    /// A region: (environment index, region index).
    Region(usize, usize),
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

/// Words that qualify the target by live state, unless an alias claims them.
const QUALIFIERS: [(&str, Qualifier); 6] = [
    ("active", Qualifier::Active),
    ("current", Qualifier::Active),
    ("inactive", Qualifier::Inactive),
    ("idle", Qualifier::Inactive),
    ("standby", Qualifier::Inactive),
    ("passive", Qualifier::Inactive),
];

/// What a fuzzy key stands for.
#[derive(Debug, Clone)]
enum Meaning {
    /// An alias phrase and everything it names (sorted, no duplicates).
    Names(Vec<Referent>),
    /// A qualifier word.
    Qualifier(Qualifier),
}

/// One alias phrase (or qualifier word) of the selector vocabulary.
#[derive(Debug, Clone)]
struct Alias {
    phrase: String,
    words: usize,
    meaning: Meaning,
}

/// One command phrase.
#[derive(Debug, Clone)]
struct Phrase {
    phrase: String,
    words: usize,
    command: usize,
}

/// A contiguous run of global instance numbers `[start, end)`.
type Span = (u32, u32);

/// Up to this many instances left, selectors are applied by membership test.
const FEW: u32 = 64;

/// Alias index built once per config: exact lookups by hash, fuzzy lookups without
/// scanning every alias.
#[derive(Debug, Clone)]
pub struct Index {
    /// Alias phrases (then qualifier words), by id.
    aliases: Vec<Alias>,
    /// Alias phrase → id in `aliases` (qualifiers are not in here).
    exact: FxMap<Box<str>, u32>,
    /// Emoji shortcode → what it names.
    emoji: FxMap<Box<str>, Vec<Referent>>,
    /// Qualifier words no alias claims.
    qualifiers: FxMap<Box<str>, Qualifier>,
    /// Longest alias, in words.
    max_words: usize,
    /// Whether any alias has more than one word (fuzzy n-grams are pointless otherwise).
    multi_word: bool,
    /// Fuzzy index over `aliases`.
    alias_fuzzy: Fuzzy,
    /// Command phrases, by id.
    phrases: Vec<Phrase>,
    /// Command phrase → id in `phrases`.
    commands: FxMap<Box<str>, u32>,
    /// Longest command phrase, in words.
    max_command_words: usize,
    /// Fuzzy index over `phrases`.
    command_fuzzy: Fuzzy,
    /// Filler words.
    filler: HashSet<Box<str>, BuildHasherDefault<FxHasher>>,
    /// First global instance number of each environment, plus the total at the end.
    env_start: Vec<u32>,
    /// First global instance number of each site (region, or the environment itself),
    /// per environment.
    site_start: Vec<Vec<u32>>,
    /// First global instance number of each pool, per environment and site.
    pool_start: Vec<Vec<Vec<u32>>>,
    /// Global instance number → (environment, site, pool, member).
    addresses: Vec<(u32, u32, u32, u32)>,
}

/// One way to read the words at a position.
struct Reading {
    /// Tokens consumed.
    len: usize,
    /// The words as typed.
    typed: String,
    /// The alias when matched fuzzily.
    corrected: Option<String>,
    meaning: Meaning,
}

impl Index {
    /// Builds the index for `config`.
    pub fn build(config: &Config) -> Self {
        let mut names: FxMap<String, Vec<Referent>> = FxMap::default();
        let mut order: Vec<String> = Vec::new();
        let mut emoji: FxMap<Box<str>, Vec<Referent>> = FxMap::default();
        let mut add = |phrase: &str, referent: Referent| {
            let phrase = normalise(phrase);
            if phrase.is_empty() {
                return;
            }
            if !names.contains_key(&phrase) {
                order.push(phrase.clone());
            }
            names.entry(phrase).or_default().push(referent);
        };
        let mut add_emoji = |code: &str, referent: Referent| {
            let code = code.trim_matches(':').to_lowercase();
            if !code.is_empty() {
                emoji
                    .entry(code.into_boxed_str())
                    .or_default()
                    .push(referent);
            }
        };
        let mut env_start = Vec::with_capacity(config.environments.len() + 1);
        let mut site_start = Vec::with_capacity(config.environments.len());
        let mut pool_start = Vec::with_capacity(config.environments.len());
        let mut addresses = Vec::new();
        for (e, env) in config.environments.iter().enumerate() {
            env_start.push(count(addresses.len()));
            add(&env.name, Referent::Env(e));
            for alias in &env.aliases {
                add(alias, Referent::Env(e));
            }
            for code in &env.emoji {
                add_emoji(code, Referent::Env(e));
            }
            for (r, region) in env.regions.iter().enumerate() {
                add(&region.name, Referent::Region(e, r));
                for alias in &region.aliases {
                    add(alias, Referent::Region(e, r));
                }
                for code in &region.emoji {
                    add_emoji(code, Referent::Region(e, r));
                }
            }
            for (p, pool) in env.pools.iter().enumerate() {
                add(&pool.name, Referent::Pool(e, p));
                for alias in &pool.aliases {
                    add(alias, Referent::Pool(e, p));
                }
                for (m, member) in pool.members.iter().enumerate() {
                    let me = Referent::Instance(e, p, m);
                    add(&member.name, me);
                    for alias in &member.aliases {
                        add(alias, me);
                    }
                    for code in &member.emoji {
                        add_emoji(code, me);
                    }
                }
            }
            let sites = env.sites();
            let mut site_starts = Vec::with_capacity(sites.len());
            let mut pool_starts = Vec::with_capacity(sites.len());
            for (r, site) in sites.iter().enumerate() {
                site_starts.push(count(addresses.len()));
                let mut starts = Vec::with_capacity(site.pools.len());
                for (p, pool) in site.pools.iter().enumerate() {
                    starts.push(count(addresses.len()));
                    for m in 0..pool.members.len() {
                        addresses.push((count(e), count(r), count(p), count(m)));
                    }
                }
                pool_starts.push(starts);
            }
            site_start.push(site_starts);
            pool_start.push(pool_starts);
        }
        env_start.push(count(addresses.len()));
        for referents in emoji.values_mut() {
            referents.sort_unstable();
            referents.dedup();
        }

        let mut aliases = Vec::with_capacity(order.len() + QUALIFIERS.len());
        let mut exact = FxMap::default();
        for phrase in order {
            let mut referents = names.remove(&phrase).unwrap_or_default();
            referents.sort_unstable();
            referents.dedup();
            exact.insert(phrase.clone().into_boxed_str(), count(aliases.len()));
            aliases.push(Alias {
                words: phrase.split(' ').count(),
                phrase,
                meaning: Meaning::Names(referents),
            });
        }
        let mut qualifiers = FxMap::default();
        for (word, qualifier) in QUALIFIERS {
            if exact.contains_key(word) {
                continue;
            }
            qualifiers.insert(Box::from(word), qualifier);
            aliases.push(Alias {
                phrase: word.to_string(),
                words: 1,
                meaning: Meaning::Qualifier(qualifier),
            });
        }
        let max_words = aliases.iter().map(|a| a.words).max().unwrap_or(1);
        let alias_fuzzy = Fuzzy::build(aliases.iter().map(|a| a.phrase.as_str()));

        let mut phrases = Vec::new();
        let mut commands = FxMap::default();
        for (c, spec) in config.commands.iter().enumerate() {
            for phrase in std::iter::once(&spec.name).chain(&spec.phrases) {
                let phrase = normalise(phrase);
                if phrase.is_empty() || commands.contains_key(phrase.as_str()) {
                    continue;
                }
                commands.insert(phrase.clone().into_boxed_str(), count(phrases.len()));
                phrases.push(Phrase {
                    words: phrase.split(' ').count(),
                    phrase,
                    command: c,
                });
            }
        }
        let max_command_words = phrases.iter().map(|p| p.words).max().unwrap_or(1);
        let command_fuzzy = Fuzzy::build(phrases.iter().map(|p| p.phrase.as_str()));

        let filler = config
            .filler
            .iter()
            .map(|w| normalise(w).into_boxed_str())
            .collect();

        Self {
            multi_word: max_words > 1,
            aliases,
            exact,
            emoji,
            qualifiers,
            max_words,
            alias_fuzzy,
            phrases,
            commands,
            max_command_words,
            command_fuzzy,
            filler,
            env_start,
            site_start,
            pool_start,
            addresses,
        }
    }

    /// Parses tokens into a command and its constraints.
    pub fn parse(&self, config: &Config, tokens: &[Token]) -> Parsed {
        let _ = config;
        let mut buf = String::new();
        for (i, token) in tokens.iter().enumerate() {
            let word = match token {
                Token::Mention(_) => continue,
                Token::Word(word) => word,
                other => {
                    return Parsed::NotACommand {
                        word: other.to_text(),
                    }
                }
            };
            if let Some((command, len)) = self.exact_command(tokens, i, &mut buf) {
                return Parsed::Command(self.constraints(command, &tokens[i + len..]));
            }
            if self.is_filler(word) || is_punctuation(word) {
                continue;
            }
            if let Some((command, len)) = self.fuzzy_command(tokens, i, &mut buf) {
                let typed = buf.clone();
                let mut corrected = config
                    .commands
                    .get(command)
                    .map_or_else(|| typed.clone(), |c| normalise(&c.name));
                for token in &tokens[i + len..] {
                    match token {
                        Token::Mention(_) => {}
                        Token::Word(w) if is_punctuation(w) => {}
                        other => {
                            corrected.push(' ');
                            corrected.push_str(&other.to_text());
                        }
                    }
                }
                return Parsed::Misspelt {
                    typed,
                    command,
                    corrected,
                };
            }
            return Parsed::NotACommand { word: word.clone() };
        }
        Parsed::Empty
    }

    /// Instances matching all `selectors` (all instances when there are none).
    pub fn candidates(&self, config: &Config, selectors: &[Selector]) -> Candidates {
        // Narrowest selector first: once few instances are left, each further selector
        // is a membership test per instance instead of a walk over all it names
        // (`blue` names hundreds of instances on a large platform).
        let mut order: Vec<&Selector> = selectors.iter().collect();
        order.sort_by_key(|s| s.matches.len());
        let mut current = vec![(0, self.total())];
        for selector in order {
            let left: u32 = current.iter().map(|(start, end)| end - start).sum();
            current = if left <= FEW && selector.matches.is_sorted() {
                self.keep(&current, &selector.matches)
            } else {
                intersect(&current, &self.spans(&selector.matches))
            };
            if current.is_empty() {
                return Candidates::Conflict(self.conflict(config, selectors));
            }
        }
        let mut instances = Vec::new();
        for &(start, end) in &current {
            for n in start..end {
                if let Some(r) = self.address(config, n) {
                    instances.push(r);
                }
            }
        }
        Candidates::Instances(instances)
    }

    /// Whether `word` is a filler word.
    pub fn is_filler(&self, word: &str) -> bool {
        self.filler.contains(word)
    }

    /// The longest command phrase starting at `tokens[at]`, as (command, tokens used).
    fn exact_command(
        &self,
        tokens: &[Token],
        at: usize,
        buf: &mut String,
    ) -> Option<(usize, usize)> {
        let avail = words_from(tokens, at, self.max_command_words);
        (1..=avail).rev().find_map(|n| {
            join(tokens, at, n, buf);
            let id = *self.commands.get(buf.as_str())?;
            Some((self.phrases.get(id as usize)?.command, n))
        })
    }

    /// The command phrase nearest to the words at `tokens[at]` (longest reading first);
    /// leaves the typed words in `buf`.
    fn fuzzy_command(
        &self,
        tokens: &[Token],
        at: usize,
        buf: &mut String,
    ) -> Option<(usize, usize)> {
        let avail = words_from(tokens, at, self.max_command_words);
        for n in (1..=avail).rev() {
            join(tokens, at, n, buf);
            let best = self
                .command_fuzzy
                .near(buf, |id| {
                    self.phrases.get(id as usize).map(|p| p.phrase.as_str())
                })
                .into_iter()
                .filter(|&(id, _)| {
                    n == 1 || self.phrases.get(id as usize).is_some_and(|p| p.words > 1)
                })
                .min_by_key(|&(id, distance)| (distance, id));
            if let Some((id, _)) = best {
                return Some((self.phrases.get(id as usize)?.command, n));
            }
        }
        None
    }

    /// Everything after the command phrase: selectors, qualifier, rest, params.
    fn constraints(&self, command: usize, tokens: &[Token]) -> CommandMatch {
        let mut found = CommandMatch {
            command,
            selectors: Vec::new(),
            qualifier: None,
            rest: Vec::new(),
            params: Vec::new(),
        };
        let mut buf = String::new();
        let mut at = 0;
        while at < tokens.len() {
            match &tokens[at] {
                Token::Mention(_) => at += 1,
                Token::Quoted(text) => {
                    found.rest.push(text.clone());
                    at += 1;
                }
                Token::KeyValue(key, value) => {
                    // Names Crossroads sets itself (a freeze window overridden, a
                    // schedule's time) are never taken from what someone typed.
                    let reserved = [
                        crate::reply::OVERRIDE_WINDOW,
                        crate::reply::SCHEDULED_AT,
                        crate::reply::SCHEDULED_ZONE,
                    ]
                    .iter()
                    .any(|r| key.eq_ignore_ascii_case(r));
                    if !reserved {
                        found.params.push((key.clone(), value.clone()));
                    }
                    at += 1;
                }
                Token::Emoji(code) => {
                    match self.emoji.get(code.as_str()) {
                        Some(matches) => found.selectors.push(Selector {
                            words: format!(":{code}:"),
                            corrected: None,
                            matches: matches.clone(),
                        }),
                        None => found.rest.push(format!(":{code}:")),
                    }
                    at += 1;
                }
                Token::Word(word) => match self.read(tokens, at, word, &mut buf) {
                    Some(reading) => {
                        at += reading.len;
                        match reading.meaning {
                            Meaning::Names(matches) => found.selectors.push(Selector {
                                words: reading.typed,
                                corrected: reading.corrected,
                                matches,
                            }),
                            Meaning::Qualifier(q) => match found.qualifier {
                                Some(existing) if existing != q => found.rest.push(reading.typed),
                                _ => found.qualifier = Some(q),
                            },
                        }
                    }
                    None => {
                        if !self.is_filler(word) && !is_punctuation(word) {
                            found.rest.push(word.clone());
                        }
                        at += 1;
                    }
                },
            }
        }
        found
    }

    /// The best reading of the words starting at `tokens[at]` (which is `word`).
    fn read(&self, tokens: &[Token], at: usize, word: &str, buf: &mut String) -> Option<Reading> {
        let avail = words_from(tokens, at, self.max_words);
        let mut exact = None;
        for n in (1..=avail).rev() {
            join(tokens, at, n, buf);
            if let Some(&id) = self.exact.get(buf.as_str()) {
                exact = Some((n, id));
                break;
            }
        }
        let exact_len = exact.map_or(0, |(n, _)| n);
        if exact.is_none() {
            if let Some(&q) = self.qualifiers.get(word) {
                return Some(Reading {
                    len: 1,
                    typed: word.to_string(),
                    corrected: None,
                    meaning: Meaning::Qualifier(q),
                });
            }
            if self.is_filler(word) || is_punctuation(word) {
                return None;
            }
        }
        // A fuzzy multi-word alias covering more words beats a shorter exact one
        // (`roih hunter`, `rh blu`), unless the words after the exact match are
        // understood exactly on their own (`stg blue` is `stg` + `blue`).
        if self.multi_word && !(exact_len > 0 && self.understood(tokens, at + exact_len)) {
            for n in (exact_len.max(1) + 1..=avail).rev() {
                join(tokens, at, n, buf);
                if let Some(reading) = self.fuzzy_alias(buf, n, true) {
                    return Some(reading);
                }
            }
        }
        if let Some((n, id)) = exact {
            join(tokens, at, n, buf);
            let alias = self.aliases.get(id as usize)?;
            return Some(Reading {
                len: n,
                typed: buf.clone(),
                corrected: None,
                meaning: alias.meaning.clone(),
            });
        }
        self.fuzzy_alias(word, 1, false)
    }

    /// Whether the word at `tokens[at]` is an alias or a qualifier as typed.
    fn understood(&self, tokens: &[Token], at: usize) -> bool {
        match tokens.get(at) {
            Some(Token::Word(word)) => {
                self.exact.contains_key(word.as_str())
                    || self.qualifiers.contains_key(word.as_str())
            }
            _ => false,
        }
    }

    /// The alias nearest to `typed` (`len` tokens); with `multi`, only multi-word
    /// aliases. Ties at the same distance merge what the aliases name.
    fn fuzzy_alias(&self, typed: &str, len: usize, multi: bool) -> Option<Reading> {
        let mut near: Vec<(u32, usize)> = self
            .alias_fuzzy
            .near(typed, |id| {
                self.aliases.get(id as usize).map(|a| a.phrase.as_str())
            })
            .into_iter()
            .filter(|&(id, _)| !multi || self.aliases.get(id as usize).is_some_and(|a| a.words > 1))
            .collect();
        let best = near.iter().map(|&(_, d)| d).min()?;
        near.retain(|&(_, d)| d == best);
        near.sort_unstable();
        // A typo as close to `active` as to `inactive` says nothing: never guess which.
        let qualifiers: std::collections::BTreeSet<bool> = near
            .iter()
            .filter_map(
                |&(id, _)| match self.aliases.get(id as usize).map(|a| &a.meaning) {
                    Some(Meaning::Qualifier(q)) => Some(*q == Qualifier::Active),
                    _ => None,
                },
            )
            .collect();
        if qualifiers.len() > 1 {
            return None;
        }
        let first = self.aliases.get(near.first()?.0 as usize)?;
        let meaning = match &first.meaning {
            Meaning::Qualifier(q) => Meaning::Qualifier(*q),
            Meaning::Names(_) => {
                let mut all = Vec::new();
                for &(id, _) in &near {
                    if let Some(Alias {
                        meaning: Meaning::Names(names),
                        ..
                    }) = self.aliases.get(id as usize)
                    {
                        all.extend_from_slice(names);
                    }
                }
                all.sort_unstable();
                all.dedup();
                Meaning::Names(all)
            }
        };
        Some(Reading {
            len,
            typed: typed.to_string(),
            corrected: Some(first.phrase.clone()),
            meaning,
        })
    }

    fn total(&self) -> u32 {
        self.env_start.last().copied().unwrap_or(0)
    }

    /// Where site `r` of environment `e` ends.
    fn site_end(&self, e: usize, r: usize) -> Option<u32> {
        match self.site_start.get(e)?.get(r + 1) {
            Some(&next) => Some(next),
            None => self.env_start.get(e + 1).copied(),
        }
    }

    /// The instance numbers a selector's referents cover, sorted and merged.
    fn spans(&self, referents: &[Referent]) -> Vec<Span> {
        let mut spans: Vec<Span> = Vec::new();
        for &r in referents {
            match r {
                Referent::Env(e) => {
                    if let (Some(&s), Some(&t)) = (self.env_start.get(e), self.env_start.get(e + 1))
                    {
                        spans.push((s, t));
                    }
                }
                Referent::Region(e, r) => {
                    if let (Some(&s), Some(t)) = (
                        self.site_start.get(e).and_then(|v| v.get(r)),
                        self.site_end(e, r),
                    ) {
                        spans.push((s, t));
                    }
                }
                Referent::Pool(e, p) => {
                    for (r, starts) in self.pool_start.get(e).into_iter().flatten().enumerate() {
                        let Some(&start) = starts.get(p) else {
                            continue;
                        };
                        let end = match starts.get(p + 1) {
                            Some(&next) => Some(next),
                            None => self.site_end(e, r),
                        };
                        if let Some(end) = end {
                            spans.push((start, end));
                        }
                    }
                }
                Referent::Instance(e, p, m) => {
                    for starts in self.pool_start.get(e).into_iter().flatten() {
                        let Some(&start) = starts.get(p) else {
                            continue;
                        };
                        let Some(n) = u32::try_from(m).ok().and_then(|m| start.checked_add(m))
                        else {
                            continue;
                        };
                        let Some(&(ae, _, ap, am)) = self.addresses.get(n as usize) else {
                            continue;
                        };
                        if (ae as usize, ap as usize, am as usize) == (e, p, m) {
                            spans.push((n, n + 1));
                        }
                    }
                }
            }
        }
        if !spans.is_sorted() {
            spans.sort_unstable();
        }
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    fn address(&self, config: &Config, n: u32) -> Option<InstanceRef> {
        let &(e, r, p, m) = self.addresses.get(n as usize)?;
        let env = config.environments.get(e as usize)?;
        let sites = env.sites();
        let site = sites.get(r as usize)?;
        let pool = site.pools.get(p as usize)?;
        let member = pool.members.get(m as usize)?;
        Some(InstanceRef {
            env: env.name.clone(),
            pool: pool.name.clone(),
            member: member.name.clone(),
            region: site.region_name().map(str::to_owned),
        })
    }

    /// The instances of `spans` that `referents` (sorted) name.
    fn keep(&self, spans: &[Span], referents: &[Referent]) -> Vec<Span> {
        let mut kept: Vec<Span> = Vec::new();
        for n in spans.iter().flat_map(|&(start, end)| start..end) {
            let Some(&(e, r, p, m)) = self.addresses.get(n as usize) else {
                continue;
            };
            let (e, r, p, m) = (e as usize, r as usize, p as usize, m as usize);
            let named = [
                Referent::Env(e),
                Referent::Pool(e, p),
                Referent::Instance(e, p, m),
                Referent::Region(e, r),
            ]
            .iter()
            .any(|r| referents.binary_search(r).is_ok());
            if !named {
                continue;
            }
            match kept.last_mut() {
                Some(last) if last.1 == n => last.1 = n + 1,
                _ => kept.push((n, n + 1)),
            }
        }
        kept
    }

    /// Explains why `selectors`, taken in the order typed, leave nothing: names the
    /// first selector that empties the set and an earlier one it clashes with.
    fn conflict(&self, config: &Config, selectors: &[Selector]) -> String {
        let mut current = vec![(0, self.total())];
        let mut upto = selectors.len();
        for (k, selector) in selectors.iter().enumerate() {
            current = intersect(&current, &self.spans(&selector.matches));
            if current.is_empty() {
                upto = k + 1;
                break;
            }
        }
        let selectors = &selectors[..upto];
        let Some((last, earlier)) = selectors.split_last() else {
            return "Those words don't name any instance.".to_string();
        };
        let last_spans = self.spans(&last.matches);
        let clash = earlier
            .iter()
            .find(|s| intersect(&self.spans(&s.matches), &last_spans).is_empty());
        let involved: Vec<&Selector> = match clash {
            Some(other) => vec![other, last],
            None => selectors.iter().collect(),
        };
        let quoted: Vec<String> = involved.iter().map(|s| label(s)).collect();
        let together = if clash.is_some() { "" } else { " together" };
        let described: Vec<String> = involved
            .iter()
            .map(|s| format!("{} {}", label(s), describe(config, &s.matches)))
            .collect();
        format!(
            "{} don't name a common instance{together}: {}.",
            join_and(&quoted),
            described.join("; ")
        )
    }
}

/// `` `words` `` or `` `mastr` (master) `` for a corrected selector.
fn label(selector: &Selector) -> String {
    match &selector.corrected {
        Some(alias) => format!("`{}` (read as `{alias}`)", selector.words),
        None => format!("`{}`", selector.words),
    }
}

/// "is master api blue", "names the master cron pool (purple, yellow) and …".
fn describe(config: &Config, referents: &[Referent]) -> String {
    const SHOWN: usize = 4;
    let mut parts: Vec<String> = referents
        .iter()
        .take(SHOWN)
        .filter_map(|&r| {
            let text = match r {
                Referent::Env(e) => {
                    let env = config.environments.get(e)?;
                    let pools: Vec<&str> = env.pools.iter().map(|p| p.name.as_str()).collect();
                    format!("the {} environment (pools {})", env.name, join_and(&pools))
                }
                Referent::Pool(e, p) => {
                    let env = config.environments.get(e)?;
                    let pool = env.pools.get(p)?;
                    let members: Vec<&str> = pool.members.iter().map(|m| m.name.as_str()).collect();
                    format!(
                        "the {} {} pool ({})",
                        env.name,
                        pool.name,
                        members.join(", ")
                    )
                }
                Referent::Instance(e, p, m) => {
                    let env = config.environments.get(e)?;
                    let pool = env.pools.get(p)?;
                    format!("{} {} {}", env.name, pool.name, pool.members.get(m)?.name)
                }
                Referent::Region(e, r) => {
                    let env = config.environments.get(e)?;
                    format!("the {} region of {}", env.regions.get(r)?.name, env.name)
                }
            };
            Some(text)
        })
        .collect();
    if referents.len() > SHOWN {
        parts.push(format!("{} more", referents.len() - SHOWN));
    }
    match parts.len() {
        0 => "names nothing that exists".to_string(),
        1 => format!("is {}", parts[0]),
        _ => format!("names {}", join_and(&parts)),
    }
}

/// "a", "a and b", "a, b and c".
fn join_and<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

/// Intersection of two sorted lists of disjoint spans.
fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let start = a[i].0.max(b[j].0);
        let end = a[i].1.min(b[j].1);
        if start < end {
            out.push((start, end));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// How many `Word` tokens follow from `at` (at most `max`).
fn words_from(tokens: &[Token], at: usize, max: usize) -> usize {
    tokens
        .iter()
        .skip(at)
        .take(max)
        .take_while(|t| matches!(t, Token::Word(_)))
        .count()
}

/// Writes the `n` words from `tokens[at]` into `buf`, single-spaced.
fn join(tokens: &[Token], at: usize, n: usize, buf: &mut String) {
    buf.clear();
    for token in tokens.iter().skip(at).take(n) {
        if let Token::Word(word) = token {
            if !buf.is_empty() {
                buf.push(' ');
            }
            buf.push_str(word);
        }
    }
}

/// Lower-case, single-spaced.
fn normalise(phrase: &str) -> String {
    let mut out = String::with_capacity(phrase.len());
    for word in phrase.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_lowercase());
    }
    out
}

/// A word with no letter or digit (`!`, `--`, `>`): ignored as a selector.
fn is_punctuation(word: &str) -> bool {
    !word.chars().any(char::is_alphanumeric)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
