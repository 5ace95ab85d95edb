//! A [`Reply`] as plain text: the notification fallback Slack shows, and the
//! console's text with Slack markup made readable.

use crate::reply::{Part, Reply};

/// Slack markup → readable text: `<url|label>` → `label (url)`, `<@U1>` → `@U1`,
/// `<#C1|general>` → `#general`, `<!date^…|fallback>` → `fallback`, `<!here>` → `@here`.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        let inner = &rest[open + 1..close];
        // A `<` followed by a space, or one with another `<` before its `>`, is just a character.
        if inner.is_empty() || inner.starts_with(char::is_whitespace) || inner.contains('<') {
            out.push('<');
            rest = &rest[open + 1..];
            continue;
        }
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        match (target.chars().next(), label) {
            (Some('@'), Some(l)) => out.push_str(&format!("@{l}")),
            (Some('@'), None) => out.push_str(target),
            (Some('#'), Some(l)) => out.push_str(&format!("#{l}")),
            (Some('!'), Some(l)) => out.push_str(l),
            (Some('!'), None) => out.push_str(&format!("@{}", &target[1..])),
            (_, Some(l)) => out.push_str(&format!("{l} ({target})")),
            (_, None) => out.push_str(target),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

impl Reply {
    /// Plain text with Slack markup kept (`<@U1>`, `<url|label>`): the `text` fallback
    /// Slack shows in notifications. Buttons are listed as numbered choices `[1] label`,
    /// in [`Reply::all_buttons`] order.
    pub fn to_plain_text(&self) -> String {
        self.text_with(|t| t.to_owned())
    }

    /// Plain text for a terminal: like [`Reply::to_plain_text`], with Slack markup made
    /// readable (`@U1`, `label (url)`, dates in UTC).
    pub fn to_console_text(&self) -> String {
        self.text_with(plain)
    }

    fn text_with(&self, convert: impl Fn(&str) -> String) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut n = 0;
        for part in &self.parts {
            match part {
                Part::Header(t) => lines.push(format!("== {} ==", convert(t))),
                Part::Text(t) | Part::Context(t) => lines.push(convert(t)),
                Part::Divider => lines.push("--".into()),
                // Shown by the transport: an uploaded image, a saved file.
                Part::Chart(_) => {}
                Part::Buttons(buttons) => {
                    for b in buttons {
                        n += 1;
                        lines.push(format!("  [{n}] {}", b.label));
                    }
                }
            }
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_reads_slack_markup() {
        let cases = [
            ("build <http://j/1/|#1> ok", "build #1 (http://j/1/) ok"),
            ("by <@U1> in <#C1|ops>", "by @U1 in #ops"),
            (
                "<!date^1700000000^{date_short_pretty}|2023-11-14T22:13:20Z> · <!here>",
                "2023-11-14T22:13:20Z · @here",
            ),
            ("a < b and <http://x>", "a < b and http://x"),
            ("unbalanced <tail", "unbalanced <tail"),
        ];
        for (markup, text) in cases {
            assert_eq!(plain(markup), text, "{markup}");
        }
    }
}
