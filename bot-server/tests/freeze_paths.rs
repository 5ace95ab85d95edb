//! A freeze holds on every way into the bot, not just DMs: a signed `/crossroads
//! deploy staging` during a freeze is answered at its `response_url` with the
//! refusal naming the window, and nothing is built; a click on a confirmation
//! issued before the freeze began is refused the same way.

use crate::common;

use std::sync::Arc;

use bot_core::config::{parse_window, FreezeWindow, Pos, Secret};
use bot_core::{Bot, Outcome, Request};
use bot_server::{AppState, ServeConfig, Server};
use common::{now_ts, signed, slash_command, FakeCi, FakeProbe, StandIn, SECRET, TOKEN};
use tokio::sync::oneshot;

fn repo() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The shipped config with every environment frozen for this century.
fn frozen_config() -> bot_core::Config {
    let mut config = bot_core::load_dir(repo()).expect("the shipped config loads");
    let text = "2000-01-01 .. 2099-12-31 UTC";
    let (when, tz) = parse_window(text).expect("a window");
    config.freeze.push(FreezeWindow {
        text: text.into(),
        env: None,
        when,
        tz,
        overriders: vec!["admins".into()],
        pos: Pos::default(),
    });
    config
}

#[tokio::test]
async fn a_slash_command_and_a_stale_confirmation_are_refused_during_a_freeze() {
    let slack = StandIn::start().await;
    let ci = Arc::new(FakeCi::new(5));
    let config = frozen_config();
    let bot = Bot::builder(config.clone())
        .probe(Arc::new(FakeProbe))
        .ci(ci.clone())
        .build();
    let mut serve = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(SECRET),
        Secret::new(TOKEN),
    );
    serve.api_url = slack.api_url();
    serve.bot_user_id = Some(common::BOT_USER.into());
    let state = AppState::new(&serve, bot.clone()).expect("state");
    let server = Server::bind(serve.listen, state).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));

    let body = slash_command(&[
        ("user_id", "U0DEPLOYER"),
        ("text", "deploy staging"),
        ("response_url", &slack.response_url("frozen")),
        ("trigger_id", "9.9.9"),
    ]);
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .headers(
            signed(&now_ts(), &body)
                .into_iter()
                .map(|(k, v)| (k.parse().expect("header"), v.parse().expect("value")))
                .collect(),
        )
        .body(body)
        .send()
        .await
        .expect("server answers");
    assert_eq!(res.status(), 200);
    let answers = slack.wait_for("response/frozen", 1).await;
    let text = answers[0].body["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains("*staging* is frozen"), "{text}");
    assert!(text.contains("2000-01-01 .. 2099-12-31 UTC"), "{text}");
    assert_eq!(ci.started_count(), 0, "nothing was built");

    // A confirmation asked before the freeze began: its click is refused now.
    let mut unfrozen = config.clone();
    unfrozen.freeze.clear();
    let before = Bot::builder(unfrozen)
        .probe(Arc::new(FakeProbe))
        .ci(ci.clone())
        .store(bot.store())
        .build();
    let asked = before
        .handle(Request::text("U0DEPLOYER", "rollback master"))
        .await;
    assert_eq!(asked.outcome, Outcome::Confirm, "{}", asked.to_plain_text());
    let yes = asked.all_buttons().next().expect("yes").value.clone();
    let clicked = bot.handle(Request::button("U0DEPLOYER", yes)).await;
    assert_eq!(
        clicked.outcome,
        Outcome::Rejected,
        "{}",
        clicked.to_plain_text()
    );
    assert!(
        clicked.to_plain_text().contains("*master* is frozen"),
        "{}",
        clicked.to_plain_text()
    );
}
