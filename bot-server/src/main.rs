//! `crossroads`: serve | check | run | console | demo | migrate | audit verify.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use bot_core::adapters::redact::redact_url;
use bot_core::ports::Store;
use bot_core::{config, Bot, Request};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "crossroads", version, about = "ChatOps deploy bot for Slack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server for Slack (Events API, interactivity, slash command).
    Serve {
        /// Directory holding commands.yaml and instances.yaml.
        #[arg(long, default_value = ".")]
        config_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        /// Use Slack's Socket Mode (needs SLACK_APP_TOKEN) instead of public HTTP endpoints.
        #[arg(long)]
        socket_mode: bool,
    },
    /// Validate the configuration and print a summary; exit 1 on any error.
    Check {
        /// Directory holding commands.yaml and instances.yaml.
        #[arg(long, default_value = ".")]
        config_dir: PathBuf,
    },
    /// Run one command through the engine and print the reply. Exit status: 0 done,
    /// 1 refused or failed, 2 needs a click (choices, suggestion, confirmation).
    Run {
        /// Slack user id to act as; honoured only where CROSSROADS_CLI_ACT_AS=1 is set
        /// (else you act as `cli:<OS user>@<host>`).
        #[arg(long = "as", value_name = "USER_ID")]
        user: Option<String>,
        /// Print the Block Kit JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Directory holding commands.yaml and instances.yaml.
        #[arg(long, default_value = ".")]
        config_dir: PathBuf,
        /// The message, e.g. "health rh blue".
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Chat with the bot in the terminal; buttons become numbered choices.
    Console {
        /// Slack user id to act as; honoured only where CROSSROADS_CLI_ACT_AS=1 is set
        /// (else you act as `cli:<OS user>@<host>`).
        #[arg(long = "as", value_name = "USER_ID")]
        user: Option<String>,
        /// Directory holding commands.yaml and instances.yaml.
        #[arg(long, default_value = ".")]
        config_dir: PathBuf,
    },
    /// Run the state store's migrations (CROSSROADS_DATABASE_URL) and exit.
    Migrate,
    /// The audit log (CROSSROADS_DATABASE_URL).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Zero-setup demo: simulated instances, Jenkins and switch on loopback, then the console.
    Demo {
        /// Slack user id to act as.
        #[arg(long = "as", value_name = "USER_ID", default_value = "U0DEMO")]
        user: String,
        /// Directory holding commands.yaml and instances.yaml (the repository's by default).
        #[arg(long)]
        config_dir: Option<PathBuf>,
        /// Where to serve the status board (and Slack's endpoints when SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN are set).
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit hash chain from its first record (signed with
    /// CROSSROADS_AUDIT_KEY when it is set); exit 1 naming the first broken record,
    /// or a head the chain no longer holds.
    Verify {
        /// A head printed earlier by `audit head` (SEQ:HASH): the chain must still hold
        /// it, so a cut-off tail, a rewritten chain or an emptied log fails.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
    },
    /// Print the newest record's position and hash as SEQ:HASH, to keep elsewhere.
    Head,
}

/// `CROSSROADS_AUDIT_KEY`, when set: the key the audit chain is signed with.
fn audit_key() -> Option<Vec<u8>> {
    config::process_env("CROSSROADS_AUDIT_KEY")
        .filter(|k| !k.is_empty())
        .map(String::into_bytes)
}

/// `audit verify [--head SEQ:HASH]`: 0 when the chain holds (and holds the head), 1
/// naming what does not.
async fn audit_verify(head: Option<String>) -> anyhow::Result<ExitCode> {
    let wanted = match head.as_deref().map(parse_head) {
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        None => None,
    };
    let url = database_url();
    let store = bot_core::adapters::store::connect(&url, false)
        .await
        .with_context(|| format!("state store {}", redact_url(&url)))?;
    let key = audit_key();
    let checked = match bot_core::audit::verify(&*store, key.as_deref()).await {
        Ok(v) => v,
        Err(bot_core::audit::VerifyError::Broken(broken)) => {
            println!(
                "audit chain BROKEN at record {}: {}",
                broken.seq, broken.why
            );
            eprintln!("error: {broken}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(anyhow::anyhow!("state store {}: {e}", redact_url(&url))),
    };
    if let Some((seq, hash)) = &wanted {
        match bot_core::audit::holds_head(&*store, *seq, hash).await {
            Ok(()) => {}
            Err(bot_core::audit::VerifyError::HeadMissing(why)) => {
                println!("audit chain does NOT hold {seq}:{hash}: {why}");
                eprintln!("error: {why}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(anyhow::anyhow!("state store {}: {e}", redact_url(&url))),
        }
    }
    println!(
        "audit chain intact: {} records, last hash {}{}{}",
        checked.records,
        checked.head,
        if checked.signed {
            ", signed with the audit key"
        } else {
            ""
        },
        match wanted {
            Some((seq, _)) => format!(", holds record {seq} as kept"),
            None => String::new(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `SEQ:HASH`.
fn parse_head(text: &str) -> Result<(u64, String), String> {
    let (seq, hash) = text
        .split_once(':')
        .ok_or_else(|| format!("--head {text}: expected SEQ:HASH, as `audit head` prints it"))?;
    let seq = seq
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("--head {text}: `{seq}` is not a record number"))?;
    let hash = hash.trim();
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("--head {text}: `{hash}` is not a record hash"));
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

/// `audit head`: the newest record as SEQ:HASH.
async fn audit_head() -> anyhow::Result<ExitCode> {
    let url = database_url();
    let store = bot_core::adapters::store::connect(&url, false)
        .await
        .with_context(|| format!("state store {}", redact_url(&url)))?;
    match store.head().await {
        Ok(Some((seq, hash))) => {
            println!("{seq}:{hash}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            eprintln!("the audit log is empty");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(anyhow::anyhow!("state store {}: {e}", redact_url(&url))),
    }
}

/// Who `run` and `console` act as: `cli:<OS user>@<host>`, or the Slack user
/// `--as` names where CROSSROADS_CLI_ACT_AS=1 allows it. The second value is the
/// shell identity the audit records either way.
fn acting(asked: Option<String>) -> anyhow::Result<(String, String)> {
    let shell = bot_server::console::shell_identity();
    match asked {
        None => Ok((format!("cli:{shell}"), shell)),
        Some(user) if config::process_env("CROSSROADS_CLI_ACT_AS").as_deref() == Some("1") => {
            Ok((user, shell))
        }
        Some(user) => Err(anyhow::anyhow!(
            "--as {user} acts as a Slack user, which this host does not allow (set CROSSROADS_CLI_ACT_AS=1 on it to allow it); nothing was run. Without --as you act as cli:{shell}"
        )),
    }
}

fn load(dir: &Path) -> anyhow::Result<bot_core::Config> {
    bot_core::load_dir(dir).map_err(|errors| anyhow::anyhow!("{errors}"))
}

/// `run`'s exit status, for scripts: 0 done or shown, 1 refused or failed,
/// 2 the bot needs a click (choices, suggestion, confirmation) that a script cannot give.
fn exit_code(outcome: bot_core::Outcome) -> ExitCode {
    use bot_core::Outcome::*;
    match outcome {
        Info | Done | Progress => ExitCode::SUCCESS,
        Rejected | Failed | Stale | HandedOver => ExitCode::from(1),
        Choices | Suggestion | Confirm => ExitCode::from(2),
    }
}

/// Logs to stderr; `RUST_LOG` wins, else `default` (servers say more than one-shot commands).
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `CROSSROADS_DATABASE_URL`, or the default SQLite file.
fn database_url() -> String {
    config::process_env("CROSSROADS_DATABASE_URL")
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| bot_core::adapters::store::DEFAULT_URL.to_owned())
}

/// Opens the configured store, bringing its schema up to date; the audit chain is
/// signed with CROSSROADS_AUDIT_KEY when it is set.
async fn open_store() -> anyhow::Result<Arc<dyn Store>> {
    let url = database_url();
    bot_core::adapters::store::connect_keyed(&url, true, audit_key().as_deref())
        .await
        .with_context(|| format!("state store {}", redact_url(&url)))
}

async fn check(dir: &Path) -> ExitCode {
    let config_ok = match bot_core::load_dir(dir) {
        Ok(cfg) => {
            let s = cfg.summary();
            println!(
                "ok: {} commands, {} environments, {} pools, {} instances, {} aliases",
                s.commands, s.environments, s.pools, s.instances, s.aliases
            );
            true
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in {}", errors.0.len(), dir.display());
            false
        }
    };
    let url = database_url();
    let shown = redact_url(&url);
    let store_ok = match url
        .strip_prefix("sqlite://")
        .filter(|p| !Path::new(p).exists())
    {
        Some(_) => {
            println!("store: {shown} does not exist yet; `serve` or `migrate` creates it");
            true
        }
        None => match bot_core::adapters::store::connect(&url, false).await {
            Ok(store) => match store.ping().await {
                Ok(()) => {
                    println!("store: {shown} answers");
                    true
                }
                Err(e) => {
                    eprintln!("store: {shown}: {e}");
                    false
                }
            },
            Err(e) => {
                eprintln!("store: {shown}: {e}");
                false
            }
        },
    };
    if config_ok && store_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    });
    let result: anyhow::Result<ExitCode> = async {
        match cli.command {
            Command::Check { config_dir } => Ok(check(&config_dir).await),
            Command::Audit {
                command: AuditCommand::Verify { head },
            } => audit_verify(head).await,
            Command::Audit {
                command: AuditCommand::Head,
            } => audit_head().await,
            Command::Migrate => {
                open_store().await?;
                println!("migrated {}", redact_url(&database_url()));
                Ok(ExitCode::SUCCESS)
            }
            Command::Run {
                user,
                json,
                config_dir,
                text,
            } => {
                let (user, shell) = acting(user)?;
                let bot = Bot::builder(load(&config_dir)?)
                    .store(open_store().await?)
                    .build();
                let request = Request::text(user, text.join(" ")).from_shell(shell);
                if json {
                    let reply = bot.handle(request).await;
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&reply.to_block_kit_json())?
                    );
                    return Ok(exit_code(reply.outcome));
                }
                let intake = bot_server::console::intake(bot);
                match bot_server::console::ask(&intake, request).await {
                    Some(reply) => Ok(exit_code(reply.outcome)),
                    None => Ok(ExitCode::FAILURE),
                }
            }
            Command::Console { user, config_dir } => {
                let (user, _) = acting(user)?;
                let bot = Bot::builder(load(&config_dir)?)
                    .store(open_store().await?)
                    .build();
                bot_server::console::run(bot, user)
                    .await
                    .context("console")?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Demo {
                user,
                config_dir,
                listen,
            } => {
                let config = bot_server::demo::load_config(config_dir.as_deref())?;
                let demo = bot_server::demo::Demo::start(config.clone()).await?;
                // A fresh SQLite file in a temporary directory: the demo's state is its own.
                let state_dir = tempfile::tempdir().context("a temporary directory for the demo's state")?;
                let url = format!("sqlite://{}", state_dir.path().join("demo.db").display());
                let store = bot_core::adapters::store::connect(&url, true).await?;
                let bot = Bot::builder(config).store(store).build();
                let mut banner = demo.banner();
                // The demo always serves HTTP (the status board); with Slack credentials the
                // demo platform is also reachable from Slack, else the monitor's
                // announcements are printed on the console.
                let (stop_serving, serving) = tokio::sync::oneshot::channel::<()>();
                let mut server = None;
                let addr: std::net::SocketAddr = listen
                    .parse()
                    .with_context(|| format!("--listen {listen} is not an address"))?;
                let slack = config::process_env("SLACK_SIGNING_SECRET").is_some();
                let serve_config = if slack {
                    bot_server::ServeConfig::from_env(addr, &config::process_env)?
                } else {
                    // No Slack: its routes answer 503 and nothing is sent to it.
                    let mut c = bot_server::ServeConfig::new(addr, config::Secret::default(), config::Secret::default());
                    c.signing_secret = None;
                    c
                };
                let mut state = bot_server::AppState::new(&serve_config, bot.clone())?;
                if slack {
                    let learner = state.slack.clone();
                    tokio::spawn(async move { learner.learn_bot_user().await });
                } else {
                    state.announce_via = bot_server::console::ANNOUNCEMENTS.to_owned();
                }
                match bot_server::Server::bind(addr, state).await {
                    Ok(bound) => {
                        let bound = bound.limits(serve_config.http);
                        let shown = bound.local_addr().unwrap_or(addr);
                        banner.push(format!(
                            "Status board (live; `break staging green` and watch it turn red): http://{shown}/board"
                        ));
                        if slack {
                            banner.push(format!("Serving Slack on http://{shown}/slack/events (POST) as well."));
                        }
                        // Stopped with the console, not by Ctrl-C (which only clears the line).
                        server = Some(tokio::spawn(bound.run_until(async move {
                            let _ = serving.await;
                        })));
                    }
                    Err(e) => banner.push(format!(
                        "No status board: cannot listen on {addr} ({e}); pass --listen 127.0.0.1:PORT."
                    )),
                }
                banner.push("`crossroads run` and `crossroads console` in another terminal talk to this demo while it runs.".to_owned());
                let result =
                    bot_server::console::run_with(bot, user, Some(demo.controls()), banner).await;
                let _ = stop_serving.send(());
                if let Some(server) = server {
                    let _ = server.await;
                }
                demo.shutdown().await;
                result.context("console")?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Serve {
                config_dir,
                listen,
                socket_mode,
            } => {
                let listen: std::net::SocketAddr = listen
                    .parse()
                    .with_context(|| format!("--listen {listen} is not an address"))?;
                let mut serve_config = bot_server::ServeConfig::from_env(listen, &config::process_env)?;
                let loaded = load(&config_dir)?;
                let metrics = bot_server::Metrics::new();
                serve_config.metrics = Some(metrics.clone());
                let mut builder = Bot::builder(loaded.clone()).store(open_store().await?);
                if let Some(jenkins) = &loaded.jenkins {
                    // Jenkins errors by kind, for `GET /api/v1/stats`.
                    let ci = bot_core::adapters::jenkins::JenkinsClient::new(jenkins.clone());
                    builder = builder.ci(Arc::new(bot_server::metrics::CountingCi::new(Arc::new(ci), metrics.clone())));
                }
                if !serve_config.bot_token.expose().trim().is_empty() {
                    // People's time zones from users.info. The server's own Web API client
                    // is built with its state, after the bot: a second one from the same
                    // settings (SLACK_API_URL, the bot token, the timeout).
                    let web = bot_server::slack::webapi::WebApi::new(
                        serve_config.api_base(),
                        serve_config.bot_token.clone(),
                        metrics.clone(),
                        serve_config.api_timeout,
                        1,
                    )?;
                    builder = builder.people(Arc::new(bot_server::slack::people::SlackPeople::new(&web)));
                }
                let bot = builder.build();
                bot_server::reload::spawn_reload_on_sighup(bot.clone(), config_dir.clone());
                if socket_mode {
                    bot_server::serve_socket_mode(serve_config, bot).await?;
                } else {
                    bot_server::serve(serve_config, bot).await?;
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
