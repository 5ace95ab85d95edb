//! `whoami`: your Slack id, your groups and what you may run where — one registry row
//! and one action file, resolved through the shipped vocabulary like any command.

use crate::common;

use bot_core::Outcome;
use common::{recording_bot, say};

#[tokio::test]
async fn a_deployer_sees_their_groups_and_what_they_may_change_where() {
    let (bot, _, _) = recording_bot();
    let reply = say(&bot, "U0DEPLOYER", "whoami").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Info, "{text}");
    assert!(
        text.contains("You are <@U0DEPLOYER> (`U0DEPLOYER`), in `deployers`."),
        "{text}"
    );
    let master = text
        .lines()
        .find(|l| l.starts_with("*master* (protected):"))
        .unwrap_or_else(|| panic!("a line for master: {text}"));
    for cmd in ["`deploy`", "`rollback`", "`force restart`", "`clear cache`"] {
        assert!(master.contains(cmd), "{cmd} on master: {master}");
    }
    assert!(!text.contains("Not for you"), "{text}");
}

#[tokio::test]
async fn someone_outside_every_group_sees_what_is_closed_to_them() {
    let (bot, _, _) = recording_bot();
    let reply = say(&bot, "U0GUEST", "who am i").await;
    let text = reply.to_plain_text();
    assert!(text.contains("in no group"), "{text}");
    assert!(text.contains("*master* (protected): no changes"), "{text}");
    let staging = text
        .lines()
        .find(|l| l.starts_with("*staging*:"))
        .unwrap_or_else(|| panic!("a line for staging: {text}"));
    assert!(
        staging.contains("`restart`"),
        "anyone may restart on staging: {staging}"
    );
    assert!(!staging.contains("`deploy`"), "{staging}");
    assert!(
        text.contains("Not for you: `deploy` (`deployers`)"),
        "{text}"
    );
    let anywhere = text
        .lines()
        .find(|l| l.starts_with("*Anywhere*:"))
        .unwrap_or_else(|| panic!("a line for read-only commands: {text}"));
    assert!(
        anywhere.contains("`status`") && anywhere.contains("`whoami`"),
        "{anywhere}"
    );
}

#[tokio::test]
async fn whoami_is_in_help_and_tolerates_a_typo() {
    let (bot, _, _) = recording_bot();
    let help = say(&bot, "U0GUEST", "help").await.to_plain_text();
    assert!(help.contains("`whoami`"), "{help}");
    let typo = say(&bot, "U0GUEST", "whoamii").await;
    assert_eq!(
        typo.outcome,
        Outcome::Suggestion,
        "{}",
        typo.to_plain_text()
    );
    assert!(typo.to_plain_text().contains("Did you mean `whoami`?"));
}
