//! Formatting shared by every reply: durations, code spans, dates, word lists.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a duration for people: `850ms`, `12.3s`, `4m 05s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10 {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A span of time in the largest two units that matter: `45s`, `30m`, `2h 5m`,
/// `1d 4h` (for lead times, restores, "in 1h 30m").
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Text from outside (typed by a person, or sent by Jenkins, a compare endpoint, a
/// switch) made safe to place in Slack mrkdwn: `&`, `<` and `>` become entities, so
/// it can never become a mention (`<!channel>`), a link or a date. Only mentions and
/// links the bot itself builds stay live.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Slack mrkdwn as plain text, for places that show text as it is (a GitHub status,
/// a Grafana annotation): links keep their label (`<url|#12>` → `#12`), emoji
/// codes, bold and code marks go, and entities are decoded.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('>') {
            Some(close) => {
                let inner = &after[..close];
                let shown = inner.rsplit_once('|').map_or(inner, |(_, label)| label);
                out.push_str(shown);
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let mut words: Vec<&str> = Vec::new();
    for word in out.split(' ') {
        let emoji = word.len() > 2
            && word.starts_with(':')
            && word.ends_with(':')
            && word[1..word.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '+');
        if !emoji {
            words.push(word);
        }
    }
    words
        .join(" ")
        .replace(['*', '`'], "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

/// `text` as inline code, escaped; backticks inside become quotes so the span cannot
/// break.
pub fn code(text: &str) -> String {
    format!("`{}`", escape(&text.replace('`', "'")))
}

/// A date Slack renders in each reader's time zone (`<!date^…>`); elsewhere the UTC
/// time shows.
pub fn when(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let utc = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs));
    format!("<!date^{secs}^{{date_short_pretty}} {{time}}|{utc}>")
}

/// Who did something, as a mention when it is a Slack user (`<@U012ABC>`), else
/// as text (`cli:alice@build-01`, someone acting from a shell).
pub fn who(user: &str) -> String {
    let slack = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if slack {
        format!("<@{user}>")
    } else {
        code(user)
    }
}

/// Group names as `` `a` or `b` ``.
pub fn either(groups: &[String]) -> String {
    groups
        .iter()
        .map(|g| format!("`{g}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_reads_as_plain_text() {
        assert_eq!(
            plain(":x: *staging api*: build <http://j/1|#1> failed &lt;main&gt;"),
            "staging api: build #1 failed <main>"
        );
        assert_eq!(plain("see <http://j/2>"), "see http://j/2");
        assert_eq!(plain("a:b: `x` 10:30"), "a:b: x 10:30");
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (Duration::from_micros(2500), "2.5ms"),
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(12_345), "12.3s"),
            (Duration::from_secs(245), "4m 05s"),
        ];
        for (d, text) in cases {
            assert_eq!(human(d), text);
        }
    }

    #[test]
    fn code_spans_cannot_be_broken() {
        assert_eq!(code("a`b"), "`a'b`");
    }

    #[test]
    fn outside_text_never_becomes_markup() {
        assert_eq!(
            escape("<!channel> & <https://evil|Approve>"),
            "&lt;!channel&gt; &amp; &lt;https://evil|Approve&gt;"
        );
        assert_eq!(code("lock <!here>"), "`lock &lt;!here&gt;`");
    }
}
