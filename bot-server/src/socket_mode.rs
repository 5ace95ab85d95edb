//! Socket Mode: the same dispatch as the HTTP routes, fed by slack-morphism's
//! websocket listener (`SLACK_APP_TOKEN`), for teams without a public URL.

use std::sync::Arc;

use bot_core::slack::payload::{
    click_from_interaction, command_from_event, message_from_push_event, InteractionPayload,
};
use bot_core::Bot;
use slack_morphism::prelude::*;

use crate::dispatch::{command_ack, Accepted, Dispatcher};
use crate::{AppState, ServeConfig, Server};

/// A Socket Mode event delivery: deduplicate and answer in the background.
pub async fn dispatch_push(d: &Dispatcher, event: &SlackPushEventCallback) -> Accepted {
    let message = message_from_push_event(event, d.bot_user());
    d.accept_message(&event.event_id.0, message).await
}

/// A Socket Mode interaction: run a click in the background.
pub fn dispatch_interaction(d: &Dispatcher, event: &SlackInteractionEvent) -> Accepted {
    match click_from_interaction(event) {
        InteractionPayload::Click(click) => d.accept_click(click),
        InteractionPayload::Other(_) => Accepted::Ignored,
    }
}

/// A Socket Mode slash command: run it in the background, return the immediate ack.
pub fn dispatch_command(d: &Dispatcher, event: &SlackCommandEvent) -> SlackCommandEventResponse {
    let command = command_from_event(event);
    let ack = command_ack(&command.text);
    if d.accept_command(command) == Accepted::Overloaded {
        return SlackCommandEventResponse::new(
            SlackMessageContent::new()
                .with_text("I'm overloaded right now; try again in a moment.".into()),
        )
        .with_response_type(SlackMessageResponseType::Ephemeral);
    }
    ack
}

async fn dispatcher(states: &SlackClientEventsUserState) -> Option<Dispatcher> {
    states.read().await.get_user_state::<Dispatcher>().cloned()
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(d) = dispatcher(&states).await {
        if dispatch_push(&d, &event).await == Accepted::Overloaded {
            tracing::warn!(event_id = %event.event_id.0, "event shed: too much work in flight");
        }
    }
    Ok(())
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(d) = dispatcher(&states).await {
        if dispatch_interaction(&d, &event) == Accepted::Overloaded {
            tracing::warn!("click shed: too much work in flight");
        }
    }
    Ok(())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    match dispatcher(&states).await {
        Some(d) => Ok(dispatch_command(&d, &event)),
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

/// Runs Socket Mode with `SLACK_APP_TOKEN` until Ctrl-C, and serves `/healthz`,
/// `/readyz` and `/metrics` (plus the Slack HTTP routes) on `config.listen`.
pub async fn serve_socket_mode(config: ServeConfig, bot: Bot) -> anyhow::Result<()> {
    crate::server::install_crypto_provider();
    let app_token = config
        .app_token
        .clone()
        .ok_or(SocketModeError::NoAppToken)?;
    let state = AppState::new(&config, bot)?;
    let d = state.dispatcher.clone();
    d.learn_bot_user().await;

    let server = Server::bind(config.listen, state).await?;
    tracing::info!(addr = %server.local_addr()?, "serving health and metrics");
    let http = tokio::spawn(server.run());

    let connector = SlackClientHyperConnector::new()
        .map_err(SocketModeError::Tls)?
        .with_slack_api_url(config.api_base());
    let client = Arc::new(SlackClient::new(connector));
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_interaction_events(on_interaction)
        .with_command_events(on_command);
    let env = Arc::new(SlackClientEventsListenerEnvironment::new(client).with_user_state(d));
    let listener =
        SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), env, callbacks);
    let token = SlackApiToken::new(app_token.expose().to_owned().into());
    listener
        .listen_for(&token)
        .await
        .map_err(|e| SocketModeError::Connect(e.to_string()))?;
    tracing::info!("Socket Mode connected");
    listener.serve().await;
    http.abort();
    Ok(())
}
