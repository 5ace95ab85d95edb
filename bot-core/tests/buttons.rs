//! Clicking the bot's buttons: a refused click leaves them to those allowed; progress says who chose the action.

use crate::common;

use bot_core::{Outcome, Request};
use common::{click, say, Platform, Recorder, TOKEN, USER};

#[tokio::test]
async fn a_click_by_someone_not_allowed_leaves_the_buttons_to_those_who_are() {
    let p = Platform::start(TOKEN).await;
    let ask = say(&p.bot, USER, "deploy prod").await;
    assert_eq!(ask.outcome, Outcome::Confirm);
    let stranger = click(&p.bot, "U0STRANGER", &ask, "Yes").await;
    assert_eq!(stranger.outcome, Outcome::Rejected);
    assert!(stranger.ephemeral, "the refusal is for the stranger only");
    let done = click(&p.bot, USER, &ask, "Yes").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
}

#[tokio::test]
async fn progress_of_a_clicked_deploy_keeps_saying_who_chose_it() {
    let p = Platform::start(TOKEN).await;
    let ask = say(&p.bot, USER, "deploy prod api").await;
    let yes = ask
        .all_buttons()
        .find(|b| b.label.starts_with("Yes"))
        .expect("confirmation button")
        .value
        .clone();
    let progress = Recorder::default();
    let done = p
        .bot
        .handle_with(Request::button(USER, yes), &progress)
        .await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
    let updates = progress.0.lock().expect("updates").clone();
    assert!(!updates.is_empty());
    for update in &updates {
        assert!(
            update.starts_with(&format!("<@{USER}> chose `deploy master api`")),
            "{update}"
        );
    }
}
