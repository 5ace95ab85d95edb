//! Socket Mode: the same Slack transport as the HTTP routes, fed by slack-morphism's
//! websocket listener (`SLACK_APP_TOKEN`), for teams without a public URL.

use std::sync::Arc;

use bot_core::config::Secret;
use bot_core::slack::payload::{
    click_from_interaction, command_from_event, message_from_push_event, InteractionPayload,
};
use slack_morphism::prelude::*;

use crate::intake::Accepted;
use crate::slack::ack::{command_ack, command_refusal};
use crate::slack::Slack;

/// A Socket Mode event delivery: deduplicate and answer in the background. Socket
/// Mode cannot ask Slack to deliver again later, so refused work is answered with a
/// short "try again" (in the DM, or ephemerally in a channel) instead of silence.
pub async fn dispatch_push(d: &Slack, event: &SlackPushEventCallback) -> Accepted {
    let Some(message) = message_from_push_event(event, d.bot_user()) else {
        return Accepted::Ignored;
    };
    let accepted = d
        .accept_message(&event.event_id.0, Some(message.clone()))
        .await;
    if accepted.refused() {
        tracing::warn!(event_id = %event.event_id.0, ?accepted, "event refused; asking the sender to retry");
        d.refuse_message(message, accepted);
    }
    accepted
}

/// A Socket Mode interaction: run a click in the background; a refused click is
/// told ephemerally to try again (the message and its buttons stay).
pub async fn dispatch_interaction(d: &Slack, event: &SlackInteractionEvent) -> Accepted {
    match click_from_interaction(event) {
        InteractionPayload::Click(click) => {
            let accepted = d.accept_click(click.clone()).await;
            if accepted.refused() {
                tracing::warn!(?accepted, "click refused; asking the user to retry");
                d.refuse_click(click, accepted);
            }
            accepted
        }
        InteractionPayload::Other(_) => Accepted::Ignored,
    }
}

/// A Socket Mode slash command: run it in the background, return the immediate
/// ack (a short "try again" when refused).
pub async fn dispatch_command(d: &Slack, event: &SlackCommandEvent) -> SlackCommandEventResponse {
    let command = command_from_event(event);
    let ack = command_ack(&command.text);
    let accepted = d.accept_command(command).await;
    if accepted.refused() {
        tracing::warn!(?accepted, "slash command refused; asking the user to retry");
        return command_refusal(accepted);
    }
    ack
}

async fn transport(states: &SlackClientEventsUserState) -> Option<Slack> {
    states.read().await.get_user_state::<Slack>().cloned()
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(d) = transport(&states).await {
        dispatch_push(&d, &event).await;
    }
    Ok(())
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(d) = transport(&states).await {
        dispatch_interaction(&d, &event).await;
    }
    Ok(())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    match transport(&states).await {
        Some(d) => Ok(dispatch_command(&d, &event).await),
        None => Ok(SlackCommandEventResponse::new(
            SlackMessageContent::new().with_text("Crossroads is starting; try again.".into()),
        )),
    }
}

/// Why Socket Mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum SocketModeError {
    /// `SLACK_APP_TOKEN` is missing.
    #[error("SLACK_APP_TOKEN is not set (Socket Mode needs an app-level token, xapp-…)")]
    NoAppToken,
    /// The TLS connector could not be built (no system root certificates).
    #[error("cannot build the TLS connector: {0}")]
    Tls(std::io::Error),
    /// Slack refused to open a connection.
    #[error("cannot open a Socket Mode connection: {0}")]
    Connect(String),
}

/// An open Socket Mode connection feeding `slack`.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
}

impl SocketMode {
    /// Opens Socket Mode with the app-level token against the Web API at `api_base`;
    /// events, clicks and slash commands go to `slack`.
    pub async fn connect(
        slack: Slack,
        app_token: &Secret,
        api_base: &str,
    ) -> Result<Self, SocketModeError> {
        let connector = SlackClientHyperConnector::new()
            .map_err(SocketModeError::Tls)?
            .with_slack_api_url(api_base);
        let client = Arc::new(SlackClient::new(connector));
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_push_events(on_push)
            .with_interaction_events(on_interaction)
            .with_command_events(on_command);
        let env =
            Arc::new(SlackClientEventsListenerEnvironment::new(client).with_user_state(slack));
        let listener =
            SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), env, callbacks);
        let token = SlackApiToken::new(app_token.expose().to_owned().into());
        listener
            .listen_for(&token)
            .await
            .map_err(|e| SocketModeError::Connect(e.to_string()))?;
        listener.start().await;
        tracing::info!("Socket Mode connected");
        Ok(Self { listener })
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.listener.shutdown().await;
    }
}
