//! A [`Reply`] as Block Kit blocks (slack-morphism's models), within Slack's limits.

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
                // Uploaded as a file beside the message (files.completeUploadExternal).
                Part::Chart(_) => {}
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
