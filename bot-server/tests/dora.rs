//! DORA's four keys through `crossroads serve`: after a deploy DMed over signed Slack
//! events, `dora staging` answers in chat and `GET /api/v1/dora?env=staging` gives the
//! same figures as JSON behind the API token (401 without it, 400 for a bad `since`
//! or an unknown environment).

use crate::common;

use std::time::{Duration, Instant};

use common::serve::{config_dir, message_text, Serve};
use common::staging::{Staging, DEPLOYER};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};

const API_TOKEN: &str = "api-token-for-dora";

#[tokio::test]
async fn dora_answers_in_chat_and_as_json_behind_the_token() {
    let staging = Staging::start("SUCCESS").await;
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(30)))
        .await
        .expect("slack");
    let dir = config_dir(&staging.instances("", ""));
    let state = tempfile::tempdir().expect("state");
    let mut serve = Serve::on_sqlite(dir.path(), state.path(), slack.api_url());
    serve.extra_env = vec![("CROSSROADS_API_TOKEN".into(), API_TOKEN.into())];
    let served = serve.start(state.path()).await;

    let said = |channel: &'static str, end: &'static str| {
        let slack = &slack;
        let served = &served;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(t) = slack
                    .messages()
                    .into_iter()
                    .filter(|m| m.channel == channel)
                    .map(|m| message_text(&m.message))
                    .find(|t| t.contains(end))
                {
                    return t;
                }
                assert!(
                    Instant::now() < deadline,
                    "never said {end:?}\n{}",
                    served.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let deploy = slack.message_event("D0DORA", DEPLOYER, "deploy staging api");
    assert_eq!(served.event(&deploy).await, 200);
    said("D0DORA", "Deployed").await;

    let ask = slack.message_event("D0KEYS", DEPLOYER, "dora staging");
    assert_eq!(served.event(&ask).await, 200);
    let keys = said("D0KEYS", "DORA's four keys").await;
    assert!(
        keys.contains("1 deploy in the last 30 days") && keys.contains("0 of 1 deploy"),
        "{keys}"
    );

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{}/api/v1/dora", served.addr);
    let ok = http
        .get(format!("{url}?env=staging"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(body["env"], "staging");
    assert_eq!(body["deploys"], 1);
    assert_eq!(body["failures"], 0);
    assert_eq!(body["failure_rate"], 0.0);
    assert_eq!(body["failure_band"], "elite");
    assert!(
        body["since"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{body}"
    );

    let no_token = http.get(&url).send().await.expect("answer");
    assert_eq!(no_token.status(), 401);
    for bad in [
        "?since=yesterday",
        "?since=2020-01-01T00:00:00Z",
        "?since=2999-01-01T00:00:00Z",
        "?env=nowhere",
    ] {
        let r = http
            .get(format!("{url}{bad}"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 400, "{bad}");
        let reason: serde_json::Value = r.json().await.expect("a JSON reason");
        assert!(
            reason["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reason}"
        );
    }
}
