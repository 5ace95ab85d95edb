//! Socket Mode: the same Slack transport as the HTTP routes, fed by slack-morphism's
//! websocket listener (`SLACK_APP_TOKEN`), for teams without a public URL.

use std::sync::Arc;

use bot_core::slack::payload::{
    click_from_interaction, command_from_event, message_from_push_event, InteractionPayload,
};
use bot_core::Bot;
use slack_morphism::prelude::*;

use crate::intake::Accepted;
use crate::server::ServeError;
use crate::slack::ack::{command_ack, command_refusal};
use crate::slack::Slack;
use crate::{AppState, ServeConfig, Server};

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
    /// The HTTP side (health, metrics) could not start or stopped with an error.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs Socket Mode with `SLACK_APP_TOKEN` until Ctrl-C or SIGTERM, and serves
/// `/healthz`, `/readyz` and `/metrics` (plus the Slack HTTP routes) on
/// `config.listen`. On shutdown: not ready at once, Socket Mode closed, then the
/// work in flight drained (up to `config.drain_timeout`).
pub async fn serve_socket_mode(config: ServeConfig, bot: Bot) -> Result<(), SocketModeError> {
    crate::server::install_crypto_provider();
    let app_token = config
        .app_token
        .clone()
        .ok_or(SocketModeError::NoAppToken)?;
    let state = AppState::new(&config, bot).map_err(ServeError::from)?;
    let d = state.slack.clone();
    d.learn_bot_user().await;

    let server = Server::bind(config.listen, state)
        .await
        .map_err(ServeError::Bind)?;
    tracing::info!(addr = %server.local_addr().map_err(ServeError::Bind)?, "serving health and metrics");
    let ready = server.state().ready.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The HTTP side marks not ready, drains the work in flight, then stops.
    let http = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));

    let connector = match SlackClientHyperConnector::new() {
        Ok(c) => c.with_slack_api_url(config.api_base()),
        Err(e) => {
            http.abort();
            return Err(SocketModeError::Tls(e));
        }
    };
    let client = Arc::new(SlackClient::new(connector));
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_push_events(on_push)
        .with_interaction_events(on_interaction)
        .with_command_events(on_command);
    let env =
        Arc::new(SlackClientEventsListenerEnvironment::new(client).with_user_state(d.clone()));
    let listener =
        SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), env, callbacks);
    let token = SlackApiToken::new(app_token.expose().to_owned().into());
    if let Err(e) = listener.listen_for(&token).await {
        http.abort();
        return Err(SocketModeError::Connect(e.to_string()));
    }
    listener.start().await;
    tracing::info!("Socket Mode connected");
    crate::server::shutdown_signal().await;
    tracing::info!("shutting down: closing Socket Mode, then draining the work in flight");
    ready.store(false, std::sync::atomic::Ordering::Relaxed);
    d.intake().stop_accepting();
    listener.shutdown().await;
    let _ = stop.send(());
    match http.await {
        Ok(served) => served.map_err(|e| ServeError::Serve(e).into()),
        Err(e) => Err(ServeError::Serve(std::io::Error::other(e)).into()),
    }
}
