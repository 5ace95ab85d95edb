//! Rendering replies: to Block Kit (slack-morphism's models) and to plain text.

use slack_morphism::prelude::*;

use crate::reply::{Button, ButtonStyle, Part, Reply};

/// Slack's limits, applied when rendering so a long report never gets a message rejected.
const MAX_BUTTONS_PER_BLOCK: usize = 25;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_BUTTON_LABEL: usize = 75;
const MAX_BLOCKS: usize = 50;

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn button_block(i: usize, b: &Button) -> SlackActionBlockElement {
    let mut el = SlackBlockButtonElement::new(clip(&b.label, MAX_BUTTON_LABEL).as_str().into())
        .with_action_id(SlackActionId(format!("crossroads-{i}")))
        .with_value(b.value.clone());
    match b.style {
        ButtonStyle::Default => {}
        ButtonStyle::Primary => el = el.with_style(SlackBlockButtonStyle::Primary),
        ButtonStyle::Danger => el = el.with_style(SlackBlockButtonStyle::Danger),
    }
    if let Some(c) = &b.confirm {
        let mut confirm = SlackBlockConfirmItem::new(
            clip(&c.title, 100).as_str().into(),
            SlackBlockText::MarkDown(clip(&c.text, 300).into()),
            clip(&c.ok, 30).as_str().into(),
            clip(&c.deny, 30).as_str().into(),
        );
        if b.style == ButtonStyle::Danger {
            confirm = confirm.with_style("danger".to_owned());
        }
        el = el.with_confirm(confirm);
    }
    SlackActionBlockElement::Button(el)
}

/// Splits long text on line boundaries into chunks Slack accepts.
fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.split('\n') {
        if !cur.is_empty() && cur.chars().count() + line.chars().count() + 1 > max {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(&clip(line, max));
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

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
    /// Block Kit blocks for `chat.postMessage` / `chat.update` / `response_url`.
    pub fn blocks(&self) -> Vec<SlackBlock> {
        let mut blocks: Vec<SlackBlock> = Vec::new();
        let mut button_index = 0;
        for part in &self.parts {
            match part {
                Part::Header(t) => blocks
                    .push(SlackHeaderBlock::new(clip(t, MAX_HEADER_TEXT).as_str().into()).into()),
                Part::Text(t) => {
                    for chunk in chunks(t, MAX_SECTION_TEXT) {
                        blocks.push(
                            SlackSectionBlock::new()
                                .with_text(SlackBlockText::MarkDown(chunk.into()))
                                .into(),
                        );
                    }
                }
                Part::Context(t) => blocks.push(
                    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                        clip(t, MAX_SECTION_TEXT).into(),
                    )])
                    .into(),
                ),
                Part::Divider => blocks.push(SlackDividerBlock::new().into()),
                Part::Buttons(buttons) => {
                    for row in buttons.chunks(MAX_BUTTONS_PER_BLOCK) {
                        let elements = row
                            .iter()
                            .map(|b| {
                                button_index += 1;
                                button_block(button_index, b)
                            })
                            .collect();
                        blocks.push(SlackActionsBlock::new(elements).into());
                    }
                }
            }
        }
        blocks.truncate(MAX_BLOCKS);
        blocks
    }

    /// The blocks as JSON (what `crossroads run --json` prints).
    pub fn to_block_kit_json(&self) -> serde_json::Value {
        serde_json::json!({ "blocks": self.blocks() })
    }

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
    use crate::reply::{Confirm, Outcome};

    #[test]
    fn buttons_render_as_actions_with_values_and_confirm() {
        let reply = Reply::message(Outcome::Choices, "Which one?").buttons(vec![
            Button {
                label: "blue".into(),
                value: "v1".into(),
                style: ButtonStyle::Primary,
                confirm: None,
            },
            Button {
                label: "green".into(),
                value: "v2".into(),
                style: ButtonStyle::Danger,
                confirm: Some(Confirm {
                    title: "Sure?".into(),
                    text: "It is live".into(),
                    ok: "Yes".into(),
                    deny: "No".into(),
                }),
            },
        ]);
        let json = reply.to_block_kit_json();
        let blocks = json["blocks"].as_array().expect("blocks array");
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert_eq!(blocks[1]["type"], "actions");
        assert_eq!(blocks[1]["elements"][0]["value"], "v1");
        assert_eq!(blocks[1]["elements"][0]["style"], "primary");
        assert_eq!(blocks[1]["elements"][1]["confirm"]["style"], "danger");
        assert_ne!(
            blocks[1]["elements"][0]["action_id"],
            blocks[1]["elements"][1]["action_id"]
        );
        assert_eq!(reply.to_plain_text(), "Which one?\n  [1] blue\n  [2] green");
    }

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

    #[test]
    fn long_text_is_split_under_slack_limits() {
        let long = (0..400)
            .map(|i| format!("line {i} ........"))
            .collect::<Vec<_>>()
            .join("\n");
        let reply = Reply::message(Outcome::Info, long);
        let blocks = reply.to_block_kit_json();
        let blocks = blocks["blocks"].as_array().expect("blocks");
        assert!(blocks.len() > 1);
        for b in blocks {
            assert!(b["text"]["text"].as_str().expect("text").chars().count() <= MAX_SECTION_TEXT);
        }
    }
}
