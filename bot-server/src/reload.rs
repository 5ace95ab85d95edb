//! Configuration reload: re-read `commands.yaml` and `instances.yaml` on SIGHUP.
//! A bad file never replaces a good configuration: the old one keeps running and the
//! errors are logged with `file:line:column`.

use std::path::{Path, PathBuf};

use bot_core::config::{ConfigErrors, Summary};
use bot_core::Bot;

/// Loads the configuration in `dir` and, only if it is valid, makes `bot` use it.
pub fn reload_config(bot: &Bot, dir: &Path) -> Result<Summary, ConfigErrors> {
    let config = bot_core::load_dir(dir)?;
    let summary = config.summary();
    bot.reload(config);
    Ok(summary)
}

/// Reloads from `dir` each time the process receives SIGHUP (unix), logging the outcome.
pub fn spawn_reload_on_sighup(bot: Bot, dir: PathBuf) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; configuration reload is off");
            return;
        };
        while hangups.recv().await.is_some() {
            match reload_config(&bot, &dir) {
                Ok(s) => tracing::info!(
                    commands = s.commands,
                    environments = s.environments,
                    instances = s.instances,
                    "configuration reloaded from {}",
                    dir.display()
                ),
                Err(errors) => tracing::error!(
                    "configuration reload failed, keeping the previous configuration:\n{errors}"
                ),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (bot, dir);
}
