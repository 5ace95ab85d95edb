//! Crossroads understands what people type: loose phrasing, aliases in any order,
//! emoji, typos in aliases, qualifiers; ambiguity becomes buttons; a misspelt command
//! is suggested, never run; unknown words are named.

use crate::common;

use bot_core::ports::TrafficSwitch;
use bot_core::{Outcome, Request};
use common::{click, labels, recording_bot, say};

const MASTER_API_BLUE: &str = "http://127.0.0.1:18081/health";

#[tokio::test]
async fn every_phrasing_of_master_api_blue_runs_its_health_check() {
    let phrasings = [
        "health rh blue",
        "health blue rh",
        "health roi hunter blue",
        "health blue master roih hunter",
        "health :large_blue_circle: prod",
        "HEALTH  Master   BLUE please",
        "health mastr blue",
        "health master active",
        "<@U0BOT> health rh blue",
        "please health the rh blue instance",
    ];
    for text in phrasings {
        let (bot, probe, _) = recording_bot();
        let reply = say(&bot, "U0DEMO", text).await;
        assert_eq!(
            reply.outcome,
            Outcome::Info,
            "{text:?} → {}",
            reply.to_plain_text()
        );
        assert!(
            reply.to_plain_text().contains("master api blue is healthy")
                || reply
                    .to_plain_text()
                    .contains("*master api blue* is healthy"),
            "{text:?} → {}",
            reply.to_plain_text()
        );
        assert_eq!(
            probe.urls(),
            vec![MASTER_API_BLUE.to_owned()],
            "{text:?} probed the wrong instance"
        );
    }
}

#[tokio::test]
async fn active_follows_the_live_switch_state() {
    let (bot, probe, switch) = recording_bot();
    let cfg = bot.config();
    let master = cfg.env("master").expect("master");
    switch
        .switch_to(master, &master.pools[0], "green")
        .await
        .expect("switch");
    let reply = say(&bot, "U0DEMO", "health master active").await;
    assert!(
        reply.to_plain_text().contains("master api green"),
        "{}",
        reply.to_plain_text()
    );
    assert_eq!(
        probe.urls(),
        vec!["http://127.0.0.1:18082/health".to_owned()]
    );
}

#[tokio::test]
async fn an_environment_alone_offers_its_instances_not_a_guess() {
    let (bot, probe, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "health master").await;
    assert_eq!(reply.outcome, Outcome::Choices);
    assert_eq!(
        labels(&reply),
        vec![
            "master api blue (active)",
            "master api green",
            "master cron purple (active)",
            "master cron yellow"
        ]
    );
    assert!(
        probe.urls().is_empty(),
        "nothing may be probed before the choice"
    );
}

#[tokio::test]
async fn a_choice_runs_the_command_on_the_chosen_target_once() {
    let (bot, probe, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "health").await;
    assert_eq!(reply.outcome, Outcome::Choices);
    assert_eq!(labels(&reply).len(), 8, "one button per instance");

    let chosen = click(&bot, "U0OTHER", &reply, "staging cron yellow").await;
    let text = chosen.to_plain_text();
    assert_eq!(chosen.outcome, Outcome::Info, "{text}");
    assert!(
        text.contains("<@U0OTHER> chose `health staging cron yellow`"),
        "{text}"
    );
    assert!(text.contains("staging cron yellow* is healthy"), "{text}");
    assert_eq!(
        probe.urls(),
        vec!["http://127.0.0.1:18088/health".to_owned()]
    );

    let again = click(&bot, "U0DEMO", &reply, "master api blue").await;
    assert_eq!(again.outcome, Outcome::Stale);
    assert!(again.ephemeral);
    assert!(
        again
            .to_plain_text()
            .contains("Already handled by <@U0OTHER>"),
        "{}",
        again.to_plain_text()
    );
    assert_eq!(probe.urls().len(), 1, "a used button runs nothing");
}

#[tokio::test]
async fn a_misspelt_command_is_suggested_and_never_run() {
    for (typed, corrected) in [
        ("helth master blue", "health master blue"),
        ("restrat master blue", "restart master blue"),
        ("deplyo staging", "deploy staging"),
        ("shwo tasks rh purple", "show tasks rh purple"),
    ] {
        let (bot, probe, _) = recording_bot();
        let reply = say(&bot, "U0DEMO", typed).await;
        assert_eq!(
            reply.outcome,
            Outcome::Suggestion,
            "{typed} → {}",
            reply.to_plain_text()
        );
        assert!(
            reply
                .to_plain_text()
                .contains(&format!("Did you mean `{corrected}`?")),
            "{typed} → {}",
            reply.to_plain_text()
        );
        assert!(probe.urls().is_empty(), "{typed}: nothing may run");
    }
    // The suggestion's button runs the corrected command.
    let (bot, probe, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "helth master blue").await;
    let ran = click(&bot, "U0DEMO", &reply, "health master blue").await;
    assert_eq!(ran.outcome, Outcome::Info, "{}", ran.to_plain_text());
    assert_eq!(probe.urls(), vec![MASTER_API_BLUE.to_owned()]);
}

#[tokio::test]
async fn unknown_words_are_named() {
    let (bot, probe, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "health master blue banana").await;
    assert_eq!(reply.outcome, Outcome::Rejected);
    assert!(
        reply.to_plain_text().contains("`banana`"),
        "{}",
        reply.to_plain_text()
    );
    assert!(probe.urls().is_empty());

    let reply = say(&bot, "U0DEMO", "make coffee").await;
    assert_eq!(reply.outcome, Outcome::Rejected);
    assert!(
        reply.to_plain_text().contains("`make`"),
        "{}",
        reply.to_plain_text()
    );
}

#[tokio::test]
async fn conflicting_words_say_what_exists() {
    let (bot, _, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "health staging rh blue").await;
    assert_eq!(
        reply.outcome,
        Outcome::Rejected,
        "{}",
        reply.to_plain_text()
    );
    assert!(
        reply.to_plain_text().contains("staging"),
        "{}",
        reply.to_plain_text()
    );
}

#[tokio::test]
async fn arguments_are_kept_for_commands_that_take_them() {
    let (bot, _, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "help deploy").await;
    assert_eq!(reply.outcome, Outcome::Info);
    assert!(
        reply
            .to_plain_text()
            .contains("`deploy staging api feature/login`"),
        "{}",
        reply.to_plain_text()
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_reply_and_never_a_panic() {
    let (bot, probe, _) = recording_bot();
    let huge = "status ".repeat(100 * 1024 / 7);
    let inputs = [
        String::new(),
        "   ".into(),
        huge,
        "health <@U1 rh blue".into(),
        "health : rh blue".into(),
        "health \u{0}\u{7}\u{1b}[31m rh blue".into(),
        "<<<<>>>> ::: &amp;&lt;".into(),
        "\"unterminated quote".into(),
    ];
    for text in inputs {
        let reply = say(&bot, "U0DEMO", &text).await;
        assert!(
            !reply.to_plain_text().is_empty(),
            "empty reply for {:?}",
            text.chars().take(40).collect::<String>()
        );
    }
    let _ = probe;
    // A button value the bot never produced is refused, not run.
    let reply = bot
        .handle(Request::button("U0DEMO", "{\"set\":\"x\",\"run\":{}}"))
        .await;
    assert!(
        matches!(reply.outcome, Outcome::Rejected | Outcome::Stale),
        "{reply:?}"
    );
    let reply = bot.handle(Request::button("U0DEMO", "not json")).await;
    assert_eq!(reply.outcome, Outcome::Rejected);
}

#[tokio::test]
async fn a_suggestion_keeps_the_case_of_the_arguments() {
    let (bot, _, _) = recording_bot();
    let reply = say(&bot, "U0DEMO", "deplyo staging Feature/Login").await;
    assert_eq!(reply.outcome, Outcome::Suggestion);
    assert!(
        reply
            .to_plain_text()
            .contains("Did you mean `deploy staging Feature/Login`?"),
        "{}",
        reply.to_plain_text()
    );
}

#[tokio::test]
async fn an_overlong_message_is_refused_with_a_reason() {
    let (bot, probe, _) = recording_bot();
    let reply = say(
        &bot,
        "U0DEMO",
        &format!("health rh blue {}", "x".repeat(2000)),
    )
    .await;
    assert_eq!(reply.outcome, Outcome::Rejected);
    assert!(
        reply.to_plain_text().contains("too long to be a command"),
        "{}",
        reply.to_plain_text()
    );
    assert!(probe.urls().is_empty());
}
