//! Tokenizer (nom): Slack message text → tokens. No lookups happen here.
//!
//! Understands Slack markup (`<@U…>` mentions, `:emoji:`, `<url|label>`, `<#C…|name>`,
//! HTML entities), quoted strings, `key=value` and case folding.
//!
//! Slack escapes `&`, `<` and `>` typed by users as `&amp;`, `&lt;` and `&gt;`, so a raw
//! `<` in the text always opens markup; entities are decoded only after markup has been
//! recognised, never before. Whatever the input, [`tokenize`] returns tokens and never
//! panics; markup it cannot make sense of is read as plain text or dropped.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_while1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{opt, recognize};
use nom::sequence::{delimited, terminated};
use nom::{IResult, Parser};

/// One token of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A lower-cased word (a bare link `<http://x>` keeps its case).
    Word(String),
    /// `:emoji:` shortcode, without colons, lower-cased (skin tone dropped).
    Emoji(String),
    /// A quoted string, case kept, quotes removed.
    Quoted(String),
    /// `key=value` (key lower-cased, value as typed).
    KeyValue(String, String),
    /// `<@U123>` user mention (id as typed).
    Mention(String),
}

impl Token {
    /// The token written back as message text, so that tokenizing the result gives
    /// the same token again (used to echo a corrected command).
    pub fn to_text(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Emoji(e) => format!(":{e}:"),
            Token::Quoted(q) => format!("\"{q}\""),
            Token::KeyValue(k, v) if v.chars().any(char::is_whitespace) => {
                format!("{k}=\"{v}\"")
            }
            Token::KeyValue(k, v) => format!("{k}={v}"),
            Token::Mention(id) => format!("<@{id}>"),
        }
    }
}

/// Splits `text` into tokens. Never panics, whatever the input.
///
/// ```
/// use bot_core::lexer::{tokenize, Token};
/// let tokens = tokenize("<@U0BOT> Deploy :rocket: staging ref=Feature/X \"Big fix\"!");
/// assert_eq!(
///     tokens,
///     vec![
///         Token::Mention("U0BOT".into()),
///         Token::Word("deploy".into()),
///         Token::Emoji("rocket".into()),
///         Token::Word("staging".into()),
///         Token::KeyValue("ref".into(), "Feature/X".into()),
///         Token::Quoted("Big fix".into()),
///     ]
/// );
/// ```
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut lexer = Lexer::default();
    lexer.run(text);
    lexer.out
}

/// Opening quote characters and the characters that close them.
const QUOTES: [(char, &[char]); 4] = [
    ('"', &['"', '”']),
    ('“', &['”', '"', '“']),
    ('\'', &['\'']),
    ('‘', &['’', '\'']),
];

/// Tokenizer state: the output plus a memo of quote kinds known to have no closer
/// further on (keeps pathological input such as 100 KB of `“a ` linear).
#[derive(Default)]
struct Lexer {
    out: Vec<Token>,
    no_closer: [bool; QUOTES.len()],
}

impl Lexer {
    fn run(&mut self, text: &str) {
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches(is_separator);
            let Some(first) = rest.chars().next() else {
                return;
            };
            if first == '<' {
                match angle(rest) {
                    Ok((after, inner)) => {
                        self.markup(inner);
                        rest = after;
                    }
                    // Unbalanced `<`: nothing to understand, skip it.
                    Err(_) => rest = &rest[first.len_utf8()..],
                }
                continue;
            }
            if first == ':' {
                if let Ok((after, name)) = emoji(rest) {
                    self.out.push(Token::Emoji(name.to_lowercase()));
                    rest = after;
                    continue;
                }
            }
            if let Some((after, quoted)) = self.quoted(rest) {
                self.out.push(Token::Quoted(quoted));
                rest = after;
                continue;
            }
            if let Ok((after, key)) = key_eq(rest) {
                let (after, value) = self.value(after);
                self.out
                    .push(Token::KeyValue(key.to_ascii_lowercase(), value));
                rest = after;
                continue;
            }
            let (after, raw) = word_run(rest);
            if let Some(word) = clean_word(raw) {
                self.out.push(Token::Word(word));
            }
            rest = after;
        }
    }

    /// The inside of `<…>`: mention, channel, special command or link.
    fn markup(&mut self, inner: &str) {
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if let Some(id) = target.strip_prefix('@') {
            if !id.is_empty() {
                self.out.push(Token::Mention(id.to_string()));
            }
        } else if let Some(id) = target.strip_prefix('#') {
            let name = label.filter(|l| !l.is_empty()).unwrap_or(id);
            self.plain(name);
        } else if target.starts_with('!') {
            // `<!here>`, `<!channel>`, `<!subteam^…>`: addressed to people, not to us.
        } else if let Some(label) = label.filter(|l| !l.trim().is_empty()) {
            self.plain(label);
        } else if !target.trim().is_empty() {
            self.out
                .push(Token::Word(decode_entities(target.trim()).into_owned()));
        }
    }

    /// Tokenizes a label (which cannot contain `<` or `>`) with the usual rules.
    fn plain(&mut self, text: &str) {
        let mut inner = Lexer::default();
        inner.run(text);
        self.out.append(&mut inner.out);
    }

    /// A quoted string starting `rest`, if it is closed.
    fn quoted<'a>(&mut self, rest: &'a str) -> Option<(&'a str, String)> {
        let first = rest.chars().next()?;
        let kind = QUOTES.iter().position(|(open, _)| *open == first)?;
        if self.no_closer[kind] {
            return None;
        }
        let closers = QUOTES[kind].1;
        let body = &rest[first.len_utf8()..];
        let single = first == '\'';
        let mut found = None;
        for (i, c) in body.char_indices() {
            if !closers.contains(&c) {
                continue;
            }
            let after = &body[i + c.len_utf8()..];
            // An apostrophe closes only at a word boundary: `'it's on'` stays whole.
            if single && after.chars().next().is_some_and(|n| n.is_alphanumeric()) {
                continue;
            }
            found = Some((after, &body[..i]));
            break;
        }
        match found {
            // Punctuation glued to the closing quote (`"big fix"!`) is not a word.
            Some((after, inner)) => Some((
                after.trim_start_matches(is_trailing_punct),
                unwrap_markup(inner),
            )),
            None => {
                // No closer from here on means none from any later position either.
                self.no_closer[kind] = true;
                None
            }
        }
    }

    /// The value of `key=value`: quoted, a link, or the rest of the word up to
    /// whitespace (case kept; `,` and `;` belong to it: `tags=a,b`).
    fn value<'a>(&mut self, rest: &'a str) -> (&'a str, String) {
        if let Some((after, quoted)) = self.quoted(rest) {
            return (after, quoted);
        }
        if rest.starts_with('<') {
            if let Ok((after, inner)) = angle(rest) {
                return (after, unwrap_markup(&format!("<{inner}>")));
            }
        }
        let end = rest
            .char_indices()
            .find(|&(_, c)| c.is_whitespace() || c.is_control() || c == '<')
            .map_or(rest.len(), |(i, _)| i);
        let raw = decode_entities(&rest[..end]);
        let value = raw.trim_end_matches(is_trailing_punct);
        let value = if value.is_empty() { &raw[..] } else { value };
        (&rest[end..], value.to_string())
    }
}

/// Whitespace, control and zero-width characters, `,` and `;` separate tokens.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            ',' | ';' | '\u{200b}' | '\u{200c}' | '\u{2060}' | '\u{feff}'
        )
}

fn is_trailing_punct(c: char) -> bool {
    matches!(
        c,
        '?' | '!'
            | '.'
            | ':'
            | ')'
            | ']'
            | '}'
            | '"'
            | '\''
            | '”'
            | '’'
            | '…'
            | '»'
            | '*'
            | '`'
            | '~'
    )
}

fn is_leading_punct(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | '{' | '"' | '\'' | '“' | '‘' | '«' | '*' | '`' | '~' | '¿' | '¡'
    )
}

fn is_emoji_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '\'')
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `<…>` with no `<` or `>` inside.
fn angle(input: &str) -> IResult<&str, &str> {
    delimited(char('<'), take_till(|c| c == '<' || c == '>'), char('>')).parse_complete(input)
}

/// `:name:` optionally followed by `:skin-tone-N:`; yields the name.
fn emoji(input: &str) -> IResult<&str, &str> {
    let (rest, name) = delimited(char(':'), take_while_m_n(1, 100, is_emoji_char), char(':'))
        .parse_complete(input)?;
    let (rest, _) = opt(recognize((
        alt((tag(":skin-tone-"), tag(":skin_tone_"))),
        take_while1(|c: char| c.is_ascii_digit()),
        char(':'),
    )))
    .parse_complete(rest)?;
    Ok((rest, name))
}

/// `key=` at the start of a token; yields the key.
fn key_eq(input: &str) -> IResult<&str, &str> {
    terminated(take_while1(is_key_char), char('=')).parse_complete(input)
}

/// A plain word's raw text: up to a separator or `<`; stops before an emoji glued to
/// it (`deploy:rocket:`), but not inside times like `10:30:00`.
fn word_run(input: &str) -> (&str, &str) {
    let mut iter = input.char_indices();
    while let Some((i, c)) = iter.next() {
        if i > 0 && (is_separator(c) || c == '<') {
            return (&input[i..], &input[..i]);
        }
        if i > 0 && c == ':' {
            if let Ok((_, name)) = emoji(&input[i..]) {
                if name.chars().any(|n| n.is_ascii_alphabetic()) {
                    return (&input[i..], &input[..i]);
                }
            }
        }
        if c == '&' {
            // Keep `&amp;` whole even though `;` separates words.
            for entity in ENTITIES {
                if input[i..].starts_with(entity.0) {
                    for _ in 1..entity.0.len() {
                        iter.next();
                    }
                    break;
                }
            }
        }
    }
    ("", input)
}

/// Entities Slack uses to escape user text, and what they stand for.
const ENTITIES: [(&str, &str); 3] = [("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")];

/// Decodes `&amp;`, `&lt;` and `&gt;`.
fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((entity, decoded)) => {
                out.push_str(decoded);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Decodes entities, trims surrounding punctuation and folds case. A word made only
/// of punctuation (`?`, `!!`) is kept as it is: `?` is a command phrase.
fn clean_word(raw: &str) -> Option<String> {
    let decoded = decode_entities(raw);
    let trimmed = decoded
        .trim_start_matches(is_leading_punct)
        .trim_end_matches(is_trailing_punct);
    let word = if trimmed.is_empty() {
        decoded.trim()
    } else {
        trimmed
    };
    (!word.is_empty()).then(|| word.to_lowercase())
}

/// Text inside quotes: entities decoded, links and channels replaced by their labels,
/// mentions kept as Slack wrote them.
fn unwrap_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..pos]));
        rest = &rest[pos..];
        match angle(rest) {
            Ok((after, inner)) => {
                let (target, label) = match inner.split_once('|') {
                    Some((t, l)) => (t, Some(l)),
                    None => (inner, None),
                };
                if target.starts_with('@') {
                    out.push('<');
                    out.push_str(inner);
                    out.push('>');
                } else if let Some(id) = target.strip_prefix('#') {
                    out.push('#');
                    out.push_str(label.unwrap_or(id));
                } else if !target.starts_with('!') {
                    out.push_str(&decode_entities(label.unwrap_or(target)));
                }
                rest = after;
            }
            Err(_) => {
                out.push('<');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(&decode_entities(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(s: &str) -> Token {
        Token::Word(s.into())
    }
    fn e(s: &str) -> Token {
        Token::Emoji(s.into())
    }
    fn q(s: &str) -> Token {
        Token::Quoted(s.into())
    }
    fn kv(k: &str, v: &str) -> Token {
        Token::KeyValue(k.into(), v.into())
    }
    fn m(s: &str) -> Token {
        Token::Mention(s.into())
    }

    /// `(message as Slack delivers it, tokens)`.
    fn table() -> Vec<(&'static str, Vec<Token>)> {
        vec![
            // Words and case folding.
            ("health rh blue", vec![w("health"), w("rh"), w("blue")]),
            (
                "HEALTH  Master   BLUE please",
                vec![w("health"), w("master"), w("blue"), w("please")],
            ),
            ("", vec![]),
            ("   \t\n ", vec![]),
            // Punctuation is not glued to words, but refs and versions stay whole.
            ("deploy staging?", vec![w("deploy"), w("staging")]),
            (
                "restart master, blue!",
                vec![w("restart"), w("master"), w("blue")],
            ),
            (
                "health master,blue.",
                vec![w("health"), w("master"), w("blue")],
            ),
            ("status (staging)", vec![w("status"), w("staging")]),
            (
                "deploy staging feature/login",
                vec![w("deploy"), w("staging"), w("feature/login")],
            ),
            (
                "deploy staging v1.2.3.",
                vec![w("deploy"), w("staging"), w("v1.2.3")],
            ),
            (
                "deploy staging release-2024",
                vec![w("deploy"), w("staging"), w("release-2024")],
            ),
            ("it's 10:30:00", vec![w("it's"), w("10:30:00")]),
            ("?", vec![w("?")]),
            ("help?", vec![w("help")]),
            (
                "deploy *staging* `feature/x`",
                vec![w("deploy"), w("staging"), w("feature/x")],
            ),
            // Mentions.
            ("<@U0BOT> status", vec![m("U0BOT"), w("status")]),
            ("<@U0BOT|crossroads> status", vec![m("U0BOT"), w("status")]),
            ("hey<@U0BOT>status", vec![w("hey"), m("U0BOT"), w("status")]),
            // Emoji, with skin tones and glued together.
            (
                "health :large_blue_circle: prod",
                vec![w("health"), e("large_blue_circle"), w("prod")],
            ),
            (":+1::skin-tone-2: thanks", vec![e("+1"), w("thanks")]),
            (":fire::fire:", vec![e("fire"), e("fire")]),
            ("deploy:rocket:", vec![w("deploy"), e("rocket")]),
            (":Large_Blue_Circle:", vec![e("large_blue_circle")]),
            // Links: labels become words; a bare link is one word that keeps its case.
            (
                "deploy staging <https://github.com/o/r/tree/Feature|feature/Login>",
                vec![w("deploy"), w("staging"), w("feature/login")],
            ),
            (
                "status <http://127.0.0.1:18081/Health>",
                vec![w("status"), w("http://127.0.0.1:18081/Health")],
            ),
            (
                "status <http://127.0.0.1|Staging Box>",
                vec![w("status"), w("staging"), w("box")],
            ),
            (
                "<mailto:ops@example.test|ops@example.test>",
                vec![w("ops@example.test")],
            ),
            // Channels become their names; special mentions are dropped.
            ("history <#C123|general>", vec![w("history"), w("general")]),
            ("history <#C123>", vec![w("history"), w("c123")]),
            ("<!here> deploy master", vec![w("deploy"), w("master")]),
            ("<!subteam^S1|@ops> status", vec![w("status")]),
            // HTML entities, decoded after markup has been read.
            (
                "lock master r&amp;d freeze",
                vec![w("lock"), w("master"), w("r&d"), w("freeze")],
            ),
            (
                "lock master &lt;b&gt;",
                vec![w("lock"), w("master"), w("<b>")],
            ),
            ("a &amp; b", vec![w("a"), w("&"), w("b")]),
            // Quotes, straight and smart, keep their case.
            (
                "lock master \"Release Freeze\"",
                vec![w("lock"), w("master"), q("Release Freeze")],
            ),
            (
                "lock master 'Big Fix' now",
                vec![w("lock"), w("master"), q("Big Fix"), w("now")],
            ),
            (
                "lock master “It's Friday”",
                vec![w("lock"), w("master"), q("It's Friday")],
            ),
            (
                "lock master ‘Quiet’",
                vec![w("lock"), w("master"), q("Quiet")],
            ),
            (
                "lock master \"see <https://x.test/a|the doc> &amp; wait\"",
                vec![w("lock"), w("master"), q("see the doc & wait")],
            ),
            ("say \"\"", vec![w("say"), q("")]),
            (
                "lock master \"Big fix\"!, now",
                vec![w("lock"), w("master"), q("Big fix"), w("now")],
            ),
            ("don't 'quote", vec![w("don't"), w("quote")]),
            ("lock \"unclosed", vec![w("lock"), w("unclosed")]),
            // key=value.
            (
                "deploy staging ref=Feature/X",
                vec![w("deploy"), w("staging"), kv("ref", "Feature/X")],
            ),
            (
                "deploy staging REF=\"Big Branch\"",
                vec![w("deploy"), w("staging"), kv("ref", "Big Branch")],
            ),
            (
                "deploy staging ref=<https://g.test/t/Main|Main>",
                vec![w("deploy"), w("staging"), kv("ref", "Main")],
            ),
            ("x a=b&amp;c=d", vec![w("x"), kv("a", "b&c=d")]),
            ("x ref=", vec![w("x"), kv("ref", "")]),
            ("x =y", vec![w("x"), w("=y")]),
            // Broken markup and odd characters.
            ("deploy <staging", vec![w("deploy"), w("staging")]),
            ("deploy <<>> master", vec![w("deploy"), w(">"), w("master")]),
            ("deploy > master", vec![w("deploy"), w(">"), w("master")]),
            ("status : staging", vec![w("status"), w(":"), w("staging")]),
            (
                "status\u{0}staging\u{7}\u{200b}blue",
                vec![w("status"), w("staging"), w("blue")],
            ),
            ("Ünïcödé STAGING", vec![w("ünïcödé"), w("staging")]),
        ]
    }

    #[test]
    fn tokenizes_slack_messages() {
        for (input, expected) in table() {
            assert_eq!(tokenize(input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn to_text_round_trips() {
        for token in [
            w("feature/login"),
            e("large_blue_circle"),
            q("Release Freeze"),
            kv("reason", "Big fix"),
            kv("ref", "main"),
            m("U0BOT"),
        ] {
            assert_eq!(tokenize(&token.to_text()), vec![token.clone()]);
        }
    }

    #[test]
    fn huge_and_pathological_inputs_are_fine() {
        let big = "deploy staging ".repeat(7_000);
        assert_eq!(tokenize(&big).len(), 14_000);
        for unit in [
            "<", ":", "“a ", "'a ", "\"", "&", "<@", ":a", "&amp", "a=\"",
        ] {
            let text = unit.repeat(100_000 / unit.len());
            let _ = tokenize(&text);
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_is_deterministic(
            text in "(\\PC|[<>:&\"'“”‘’=|@#!\\\\\u{0}-\u{1f}\u{200b} ]|<@U1>|:fire:|&amp;|<http://x|y>){0,60}"
        ) {
            let first = tokenize(&text);
            prop_assert_eq!(first, tokenize(&text));
        }

        #[test]
        fn never_panics_on_any_string(text in any::<String>()) {
            let _ = tokenize(&text);
        }
    }
}
