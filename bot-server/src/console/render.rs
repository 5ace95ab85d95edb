//! Replies rendered for a terminal: Slack mrkdwn as ANSI bold, italics and strike-through (or plain text when piped or `NO_COLOR`), emoji shortcodes as Unicode, links as `label (url)`, buttons as numbered choices.

use std::io::IsTerminal;

use bot_core::render::plain;
use bot_core::{Outcome, Part, Reply};

const BOLD: &str = "\x1b[1m";
const ITALIC: &str = "\x1b[3m";
const STRIKE: &str = "\x1b[9m";
const DIM: &str = "\x1b[2m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// How text is shown: with ANSI styles, or plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI bold, italics, dim and colour.
    pub ansi: bool,
}

impl Style {
    /// Plain text, for pipes, files and `NO_COLOR`.
    pub const PLAIN: Style = Style { ansi: false };
    /// ANSI styles.
    pub const ANSI: Style = Style { ansi: true };

    /// ANSI when stdout is a terminal and neither `NO_COLOR` (any value, see
    /// no-color.org) nor `TERM=dumb` says otherwise.
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Style {
            ansi: std::io::stdout().is_terminal() && !no_color && !dumb,
        }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.ansi {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }
}

/// The buttons of a reply as the console offers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    /// Button values, in order: typing `n` clicks `values[n - 1]`.
    pub values: Vec<String>,
    /// Their labels, in the same order.
    pub labels: Vec<String>,
    /// `(yes, no)` values when the reply asks a yes/no question (a confirmation, a
    /// "did you mean").
    pub question: Option<(String, String)>,
}

impl Choices {
    /// The choices a reply offers (empty when it has no buttons).
    pub fn of(reply: &Reply) -> Self {
        let values: Vec<String> = reply.all_buttons().map(|b| b.value.clone()).collect();
        let labels: Vec<String> = reply.all_buttons().map(|b| b.label.clone()).collect();
        let question = match (reply.outcome, values.first(), values.last()) {
            (Outcome::Confirm | Outcome::Suggestion, Some(yes), Some(no)) if values.len() == 2 => {
                Some((yes.clone(), no.clone()))
            }
            _ => None,
        };
        Self {
            values,
            labels,
            question,
        }
    }
}

/// A progress update for the terminal: like [`reply`], with links shown by their
/// labels only (the final reply shows where they lead).
pub fn progress(reply: &Reply, style: Style) -> String {
    let mut short = reply.clone();
    for part in &mut short.parts {
        if let Part::Text(t) | Part::Context(t) = part {
            *t = labels_only(t);
        }
    }
    self::reply(&short, style)
}

/// `<url|label>` → `label`; other markup untouched.
fn labels_only(mrkdwn: &str) -> String {
    let mut out = String::with_capacity(mrkdwn.len());
    let mut rest = mrkdwn;
    while let Some(open) = rest.find("<http") {
        out.push_str(&rest[..open]);
        let link = &rest[open..];
        match link.find('>') {
            Some(close) if link[..close].contains('|') && !link[1..close].contains('<') => {
                let label = link[..close].split_once('|').map_or("", |(_, l)| l);
                out.push_str(label);
                rest = &link[close + 1..];
            }
            _ => {
                out.push('<');
                rest = &link[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A whole reply for the terminal; buttons become `[1] … [2] …` with a line saying
/// what to type.
pub fn reply(reply: &Reply, style: Style) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut n = 0;
    for part in &reply.parts {
        match part {
            Part::Header(t) if style.ansi => lines.push(style.wrap(BOLD, &inline(t, Style::PLAIN))),
            Part::Header(t) => lines.push(format!("== {} ==", inline(t, Style::PLAIN))),
            Part::Text(t) => lines.extend(inline(t, style).lines().map(str::to_owned)),
            Part::Context(t) => {
                lines.extend(inline(t, Style::PLAIN).lines().map(|l| style.wrap(DIM, l)))
            }
            Part::Divider => lines.push(style.wrap(DIM, "────────")),
            Part::Chart(c) => lines.push(style.wrap(DIM, &format!("(chart: {})", c.title))),
            Part::Buttons(buttons) => {
                let row: Vec<String> = buttons
                    .iter()
                    .map(|b| {
                        n += 1;
                        format!(
                            "{} {}",
                            style.wrap(BOLD, &format!("[{n}]")),
                            inline(&b.label, style)
                        )
                    })
                    .collect();
                lines.push(row.join("   "));
            }
        }
    }
    if n > 0 {
        let range = if n == 1 {
            "type 1".to_owned()
        } else {
            format!("type 1–{n}")
        };
        let hint = match Choices::of(reply).question {
            Some(_) => format!("({range}, or yes / no)"),
            None => format!("({range} to choose)"),
        };
        lines.push(style.wrap(DIM, &hint));
    }
    lines.join("\n")
}

/// One piece of mrkdwn for the terminal: Slack's `<…>` markup read (links become
/// `label (url)`), `&amp;` `&lt;` `&gt;` decoded, `:emoji:` as Unicode, and
/// `*bold*`, `_italics_`, `~strike~` and `` `code` `` styled (or their markers dropped
/// when plain; code keeps its backticks there).
pub fn inline(mrkdwn: &str, style: Style) -> String {
    let text = plain(mrkdwn)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    emphasis(&emoji(&text), style)
}

/// `:shortcode:` → the emoji (Slack's names, gemoji's, and skin tones); unknown
/// shortcodes stay as typed.
pub fn emoji(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(':') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let closed = after[name_len..].starts_with(':');
        match (closed && !name.is_empty())
            .then(|| shortcode(name))
            .flatten()
        {
            Some(e) => {
                out.push_str(e);
                rest = &after[name_len + 1..];
            }
            None => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn shortcode(name: &str) -> Option<&'static str> {
    if let Some(e) = emojis::get_by_shortcode(name) {
        return Some(e.as_str());
    }
    // Slack and gemoji disagree on `large_`: gemoji has `large_blue_circle` but
    // `green_circle`; Slack knows both spellings of each.
    let other = match name.strip_prefix("large_") {
        Some(short) => short.to_owned(),
        None => format!("large_{name}"),
    };
    if let Some(e) = emojis::get_by_shortcode(&other) {
        return Some(e.as_str());
    }
    match name {
        "skin-tone-2" => Some("\u{1F3FB}"),
        "skin-tone-3" => Some("\u{1F3FC}"),
        "skin-tone-4" => Some("\u{1F3FD}"),
        "skin-tone-5" => Some("\u{1F3FE}"),
        "skin-tone-6" => Some("\u{1F3FF}"),
        _ => None,
    }
}

/// Whether `c` may stand right outside an emphasis marker (Slack: start or end of
/// text, whitespace, punctuation).
fn boundary(c: Option<char>) -> bool {
    c.is_none_or(|c| {
        c.is_whitespace() || (c.is_ascii_punctuation() && !matches!(c, '*' | '_' | '~' | '`'))
    })
}

/// Styles Slack's emphasis markers; a marker counts when it opens after a boundary
/// before a non-space and closes, on the same line, after a non-space before a boundary.
fn emphasis(text: &str, style: Style) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let marker = matches!(c, '*' | '_' | '~' | '`');
        let opens = marker
            && boundary(i.checked_sub(1).map(|p| chars[p]))
            && chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != c);
        if opens {
            let close = (i + 2..chars.len())
                .take_while(|&j| chars[j] != '\n')
                .find(|&j| {
                    chars[j] == c
                        && !chars[j - 1].is_whitespace()
                        && boundary(chars.get(j + 1).copied())
                });
            if let Some(close) = close {
                let inner: String = chars[i + 1..close].iter().collect();
                let styled = match c {
                    '`' if style.ansi => style.wrap(CYAN, &inner),
                    '`' => format!("`{inner}`"),
                    '*' => style.wrap(BOLD, &emphasis(&inner, style)),
                    '_' => style.wrap(ITALIC, &emphasis(&inner, style)),
                    _ => style.wrap(STRIKE, &emphasis(&inner, style)),
                };
                // Nested styles end with a reset: restore the outer one afterwards is
                // not needed for Slack's short spans.
                out.push_str(&styled);
                i = close + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bot_core::{Button, ButtonStyle};

    #[test]
    fn mrkdwn_reads_as_plain_text_when_piped() {
        let cases = [
            ("*master* is _live_", "master is live"),
            (
                "deploy `feature/my_branch` to *staging*",
                "deploy `feature/my_branch` to staging",
            ),
            (
                "snake_case_words and 2*3*4 stay",
                "snake_case_words and 2*3*4 stay",
            ),
            ("~old~ new", "old new"),
            ("see <http://j/1/|build #1>", "see build #1 (http://j/1/)"),
            ("a &lt;b&gt; &amp; c", "a <b> & c"),
            ("*unclosed bold", "*unclosed bold"),
            ("* not bold *", "* not bold *"),
        ];
        for (mrkdwn, text) in cases {
            assert_eq!(inline(mrkdwn, Style::PLAIN), text, "{mrkdwn}");
        }
    }

    #[test]
    fn mrkdwn_becomes_ansi_on_a_terminal() {
        assert_eq!(
            inline("*master* is _live_", Style::ANSI),
            "\x1b[1mmaster\x1b[0m is \x1b[3mlive\x1b[0m"
        );
        assert_eq!(
            inline("run `unlock staging`", Style::ANSI),
            "run \x1b[36munlock staging\x1b[0m"
        );
    }

    #[test]
    fn every_emoji_the_bot_uses_becomes_unicode() {
        for name in [
            "white_check_mark",
            "x",
            "warning",
            "red_circle",
            "large_blue_circle",
            "large_green_circle",
            "large_purple_circle",
            "large_yellow_circle",
            "blue_circle",
            "lock",
            "unlock",
            "rocket",
            "rewind",
            "twisted_rightwards_arrows",
            "hourglass_flowing_sand",
            "arrows_counterclockwise",
            "no_entry",
            "construction",
            "fire",
            "tada",
            "hammer_and_wrench",
            "small_blue_diamond",
        ] {
            let shown = emoji(&format!(":{name}:"));
            assert!(!shown.contains(':'), "{name} -> {shown}");
        }
        assert_eq!(emoji(":+1::skin-tone-2:"), "👍\u{1F3FB}");
        assert_eq!(
            emoji("at 12:30: :nope_not_one:"),
            "at 12:30: :nope_not_one:"
        );
        assert_eq!(emoji("🟢 :large_green_circle: up"), "🟢 🟢 up");
    }

    #[test]
    fn progress_shows_links_by_their_labels() {
        let update = Reply::message(
            Outcome::Progress,
            "• api — building <http://j/job/a/12/|#12> — 40% &lt;not a link&gt;",
        );
        assert_eq!(
            progress(&update, Style::PLAIN),
            "• api — building #12 — 40% <not a link>"
        );
    }

    #[test]
    fn buttons_are_numbered_with_what_to_type() {
        let button = |label: &str, value: &str| Button {
            label: label.into(),
            value: value.into(),
            style: ButtonStyle::Default,
            confirm: None,
        };
        let ask = Reply::message(Outcome::Confirm, "Really `deploy master`?").buttons(vec![
            button("Yes, deploy master", "y"),
            button("Cancel", "n"),
        ]);
        assert_eq!(
            reply(&ask, Style::PLAIN),
            "Really `deploy master`?\n[1] Yes, deploy master   [2] Cancel\n(type 1–2, or yes / no)"
        );
        assert_eq!(
            Choices::of(&ask).question,
            Some(("y".to_owned(), "n".to_owned()))
        );
        let pick = Reply::message(Outcome::Choices, "Which one?").buttons(vec![
            button("a", "1"),
            button("b", "2"),
            button("c", "3"),
        ]);
        assert!(reply(&pick, Style::PLAIN).ends_with("(type 1–3 to choose)"));
        assert_eq!(Choices::of(&pick).question, None);
        assert_eq!(Choices::of(&pick).values, ["1", "2", "3"]);
    }
}
