//! Server settings: listen address, Slack secrets (typed so they never print), Web API base URL.

use std::net::SocketAddr;
use std::time::Duration;

use bot_core::config::Secret;

use crate::conn::HttpLimits;

/// Default Slack Web API base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";

/// Default shortest gap between two progress edits of one message (Slack's
/// `chat.update` is Tier 3, about 50 calls a minute per workspace).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Default for [`ServeConfig::drain_timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Largest Slack request body accepted (larger bodies get 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Most Socket Mode connections Slack allows one app.
pub const MAX_SOCKET_CONNECTIONS: usize = 10;

/// A setting is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeConfigError {
    /// A required environment variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// The Web API URL is not an http(s) URL.
    #[error("SLACK_API_URL must be an http:// or https:// URL, got `{0}`")]
    BadApiUrl(String),
    /// The drain timeout is not a number of seconds.
    #[error("CROSSROADS_DRAIN_TIMEOUT must be a number of seconds, got `{0}`")]
    BadDrainTimeout(String),
    /// A numeric setting is not a number in its range.
    #[error("{name} must be {range}, got `{value}`")]
    OutOfRange {
        /// The variable.
        name: &'static str,
        /// What it must be, e.g. `a whole number from 1 to 10`.
        range: &'static str,
        /// What it was.
        value: String,
    },
}

/// Everything the Slack server needs besides the [`bot_core::Bot`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// `SLACK_SIGNING_SECRET`; Slack routes answer 503 without it.
    pub signing_secret: Option<Secret>,
    /// `SLACK_BOT_TOKEN` (`xoxb-…`) for the Web API.
    pub bot_token: Secret,
    /// `SLACK_APP_TOKEN` (`xapp-…`) for Socket Mode.
    pub app_token: Option<Secret>,
    /// Web API base URL, e.g. `https://slack.com/api/` (`SLACK_API_URL`).
    pub api_url: String,
    /// The bot's own user id; learnt with `auth.test` at start when `None`.
    pub bot_user_id: Option<String>,
    /// Most requests worked on at once; more wait in the inbox. A request keeps its
    /// room until its answer has gone out (at most 2 s more).
    pub max_in_flight: usize,
    /// How long a delivery that finds no room waits for some before it is
    /// acknowledged and left in the inbox (default 500 ms; zero: at once). Under more
    /// load than can be answered, acknowledgements slow to the pace of answers.
    pub admit_wait: Duration,
    /// Attempts to deliver one message (a reply, a progress edit) before the outbox
    /// gives it up: 429 waits out `Retry-After`, 5xx and transport errors back off
    /// 1 s, 2 s, 4 s … 60 s. Direct calls (`/api/v1/notify`) retry a 429 at most 4 times.
    pub max_attempts: u32,
    /// Timeout of one Web API call.
    pub api_timeout: Duration,
    /// On shutdown, how long to wait for work in flight (a deploy must be able to
    /// finish); `CROSSROADS_DRAIN_TIMEOUT` in seconds, default 15 minutes. Give the
    /// process manager a longer stop timeout than this.
    pub drain_timeout: Duration,
    /// `CROSSROADS_API_TOKEN`: bearer token for `POST /api/v1/notify`, which
    /// answers 503 without it.
    pub api_token: Option<Secret>,
    /// `SLACK_TEAM_ID`: the workspaces served (one id or a list); deliveries naming
    /// any other (Slack Connect users of another organisation included) are
    /// acknowledged and ignored. Empty: every workspace the app is installed in.
    pub teams: Vec<String>,
    /// `CROSSROADS_CHAT_RATE_LIMIT`: messages, commands and clicks per Slack user
    /// (`30/min` by default; `off`: none); beyond it one ephemeral "slow down" and
    /// nothing runs until the window refills.
    pub chat_rate: Option<crate::rate_limit::Rate>,
    /// `CROSSROADS_API_RATE_LIMIT`: requests per token and endpoint of
    /// `POST /api/v1/chart` and `POST /api/v1/notify` (`60/min` by default; `off`:
    /// none); beyond it `429` with `Retry-After`.
    pub api_rate: Option<crate::rate_limit::Rate>,
    /// `CROSSROADS_STATUS_RATE_LIMIT`: `GET /api/v1/status` requests per client
    /// address (default `60/min`; `None`: no limit).
    pub status_rate: Option<crate::rate_limit::Rate>,
    /// `CROSSROADS_MAX_STREAMS`: event streams (`GET /api/v1/events`) open at once,
    /// default 64; beyond it `503` with `Retry-After`.
    pub max_streams: usize,
    /// Shortest gap between two progress edits of one message (Slack's
    /// `chat.update` allows about 50 calls a minute).
    pub progress_interval: Duration,
    /// Socket Mode connections kept open at once (`CROSSROADS_SOCKET_CONNECTIONS`,
    /// 1 to 10, default 1): Slack spreads envelopes over them, so a second one
    /// keeps events flowing while the first is being replaced or is lost.
    pub socket_connections: usize,
    /// HTTP timeouts and the connection cap (`CROSSROADS_HEADER_TIMEOUT`,
    /// `CROSSROADS_BODY_TIMEOUT`, `CROSSROADS_IDLE_TIMEOUT`,
    /// `CROSSROADS_MAX_CONNECTIONS`).
    pub http: HttpLimits,
    /// The counters to serve (`/metrics`, `/api/v1/stats`); fresh ones when `None`.
    /// Give the same ones to a [`crate::metrics::CountingCi`] to count Jenkins errors.
    pub metrics: Option<crate::metrics::Metrics>,
}

/// A rate variable (`N/s`, `N/min`, `N/h`, or `off`): `None` when unset, `Some(None)`
/// for `off`, else the rate; an error names the variable and what it takes.
fn rate_var(
    non_empty: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    range: &'static str,
) -> Result<Option<Option<crate::rate_limit::Rate>>, ServeConfigError> {
    let Some(rate) = non_empty(name) else {
        return Ok(None);
    };
    if rate.trim().eq_ignore_ascii_case("off") {
        return Ok(Some(None));
    }
    crate::rate_limit::Rate::parse(&rate)
        .map(|r| Some(Some(r)))
        .ok_or(ServeConfigError::OutOfRange {
            name,
            range,
            value: rate,
        })
}

impl ServeConfig {
    /// Settings with the given secret and token, everything else default.
    pub fn new(listen: SocketAddr, signing_secret: Secret, bot_token: Secret) -> Self {
        Self {
            listen,
            signing_secret: Some(signing_secret),
            bot_token,
            app_token: None,
            api_url: DEFAULT_API_URL.to_owned(),
            bot_user_id: None,
            max_in_flight: 512,
            admit_wait: crate::intake::DEFAULT_ADMIT_WAIT,
            max_attempts: 9,
            api_timeout: Duration::from_secs(10),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            api_token: None,
            api_rate: Some(crate::rate_limit::DEFAULT_RATE),
            status_rate: Some(crate::rate_limit::DEFAULT_STATUS_RATE),
            max_streams: 64,
            teams: Vec::new(),
            chat_rate: Some(crate::rate_limit::DEFAULT_CHAT_RATE),
            progress_interval: PROGRESS_INTERVAL,
            socket_connections: 1,
            http: HttpLimits::default(),
            metrics: None,
        }
    }

    /// Reads `SLACK_SIGNING_SECRET`, `SLACK_BOT_TOKEN`, `SLACK_APP_TOKEN`,
    /// `SLACK_API_URL`, `CROSSROADS_DRAIN_TIMEOUT`, `CROSSROADS_API_TOKEN`,
    /// `CROSSROADS_SOCKET_CONNECTIONS` and the HTTP limits (`CROSSROADS_HEADER_TIMEOUT`,
    /// `CROSSROADS_BODY_TIMEOUT`, `CROSSROADS_IDLE_TIMEOUT`, `CROSSROADS_MAX_CONNECTIONS`)
    /// through `env` (pass [`bot_core::config::process_env`]).
    pub fn from_env(
        listen: SocketAddr,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ServeConfigError> {
        let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let bot_token =
            non_empty("SLACK_BOT_TOKEN").ok_or(ServeConfigError::Missing("SLACK_BOT_TOKEN"))?;
        let mut config = Self::new(listen, Secret::default(), Secret::new(bot_token));
        config.signing_secret = non_empty("SLACK_SIGNING_SECRET").map(Secret::new);
        config.app_token = non_empty("SLACK_APP_TOKEN").map(Secret::new);
        config.api_token = non_empty("CROSSROADS_API_TOKEN").map(Secret::new);
        if let Some(rate) = rate_var(
            &non_empty,
            "CROSSROADS_API_RATE_LIMIT",
            "requests per period like `60/min`, `5/s` or `1000/h`, or `off`",
        )? {
            config.api_rate = rate;
        }
        if let Some(rate) = rate_var(
            &non_empty,
            "CROSSROADS_STATUS_RATE_LIMIT",
            "requests per period like `60/min`, `5/s` or `1000/h`, or `off`",
        )? {
            config.status_rate = rate;
        }
        if let Some(teams) = non_empty("SLACK_TEAM_ID") {
            config.teams = teams
                .split([',', ' '])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(rate) = rate_var(
            &non_empty,
            "CROSSROADS_CHAT_RATE_LIMIT",
            "messages per period like `30/min`, `5/s` or `600/h`, or `off`",
        )? {
            config.chat_rate = rate;
        }
        if let Some(url) = non_empty("SLACK_API_URL") {
            config.api_url = url;
        }
        if !(config.api_url.starts_with("http://") || config.api_url.starts_with("https://")) {
            return Err(ServeConfigError::BadApiUrl(config.api_url));
        }
        if let Some(n) = non_empty("CROSSROADS_MAX_IN_FLIGHT") {
            config.max_in_flight = n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ServeConfigError::OutOfRange {
                    name: "CROSSROADS_MAX_IN_FLIGHT",
                    range: "a whole number above 0",
                    value: n.clone(),
                })?;
        }
        if let Some(secs) = non_empty("CROSSROADS_DRAIN_TIMEOUT") {
            let parsed = secs
                .trim()
                .parse::<u64>()
                .map_err(|_| ServeConfigError::BadDrainTimeout(secs.clone()))?;
            config.drain_timeout = Duration::from_secs(parsed);
        }
        let seconds = |name: &'static str, into: &mut Duration| -> Result<(), ServeConfigError> {
            if let Some(v) = non_empty(name) {
                *into = v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or(ServeConfigError::OutOfRange {
                        name,
                        range: "a number of seconds above 0",
                        value: v,
                    })?;
            }
            Ok(())
        };
        seconds("CROSSROADS_HEADER_TIMEOUT", &mut config.http.header_timeout)?;
        seconds("CROSSROADS_BODY_TIMEOUT", &mut config.http.body_timeout)?;
        seconds("CROSSROADS_IDLE_TIMEOUT", &mut config.http.idle_timeout)?;
        if let Some(n) = non_empty("CROSSROADS_MAX_CONNECTIONS") {
            config.http.max_connections = n.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or(
                ServeConfigError::OutOfRange {
                    name: "CROSSROADS_MAX_CONNECTIONS",
                    range: "a whole number above 0",
                    value: n,
                },
            )?;
        }
        if let Some(n) = non_empty("CROSSROADS_MAX_STREAMS") {
            config.max_streams = n.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or(
                ServeConfigError::OutOfRange {
                    name: "CROSSROADS_MAX_STREAMS",
                    range: "a whole number above 0",
                    value: n,
                },
            )?;
        }
        if let Some(n) = non_empty("CROSSROADS_SOCKET_CONNECTIONS") {
            config.socket_connections = n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_SOCKET_CONNECTIONS).contains(n))
                .ok_or(ServeConfigError::OutOfRange {
                    name: "CROSSROADS_SOCKET_CONNECTIONS",
                    range: "a whole number from 1 to 10",
                    value: n,
                })?;
        }
        Ok(config)
    }

    /// The Web API base URL without its trailing slash.
    pub fn api_base(&self) -> &str {
        self.api_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn secrets_come_from_the_environment_and_never_print() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let c = ServeConfig::from_env(
            addr,
            &env(&[
                ("SLACK_BOT_TOKEN", "xoxb-very-secret"),
                ("SLACK_SIGNING_SECRET", "sign-very-secret"),
                ("SLACK_API_URL", "http://127.0.0.1:9/api/"),
                ("CROSSROADS_API_TOKEN", "api-very-secret"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.api_base(), "http://127.0.0.1:9/api");
        assert_eq!(c.bot_token.expose(), "xoxb-very-secret");
        assert_eq!(
            c.api_token.as_ref().map(Secret::expose),
            Some("api-very-secret")
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn a_missing_token_or_odd_url_is_named() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        assert_eq!(
            ServeConfig::from_env(addr, &env(&[])).err(),
            Some(ServeConfigError::Missing("SLACK_BOT_TOKEN"))
        );
        assert!(matches!(
            ServeConfig::from_env(
                addr,
                &env(&[("SLACK_BOT_TOKEN", "x"), ("SLACK_API_URL", "ftp://x")])
            ),
            Err(ServeConfigError::BadApiUrl(_))
        ));
        assert_eq!(
            ServeConfig::from_env(
                addr,
                &env(&[
                    ("SLACK_BOT_TOKEN", "x"),
                    ("CROSSROADS_DRAIN_TIMEOUT", "soon")
                ])
            )
            .err(),
            Some(ServeConfigError::BadDrainTimeout("soon".into()))
        );
    }

    #[test]
    fn socket_mode_keeps_one_connection_unless_told_otherwise() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let c = ServeConfig::from_env(addr, &env(&[("SLACK_BOT_TOKEN", "x")])).expect("valid");
        assert_eq!(c.socket_connections, 1);
        let c = ServeConfig::from_env(
            addr,
            &env(&[
                ("SLACK_BOT_TOKEN", "x"),
                ("CROSSROADS_SOCKET_CONNECTIONS", "3"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.socket_connections, 3);
        for bad in ["0", "11", "two"] {
            let vars: &'static [(&'static str, &'static str)] = match bad {
                "0" => &[
                    ("SLACK_BOT_TOKEN", "x"),
                    ("CROSSROADS_SOCKET_CONNECTIONS", "0"),
                ],
                "11" => &[
                    ("SLACK_BOT_TOKEN", "x"),
                    ("CROSSROADS_SOCKET_CONNECTIONS", "11"),
                ],
                _ => &[
                    ("SLACK_BOT_TOKEN", "x"),
                    ("CROSSROADS_SOCKET_CONNECTIONS", "two"),
                ],
            };
            assert!(
                matches!(
                    ServeConfig::from_env(addr, &env(vars)),
                    Err(ServeConfigError::OutOfRange {
                        name: "CROSSROADS_SOCKET_CONNECTIONS",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn http_limits_have_defaults_and_read_seconds() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let c = ServeConfig::from_env(addr, &env(&[("SLACK_BOT_TOKEN", "x")])).expect("valid");
        assert_eq!(c.http, HttpLimits::default());
        let c = ServeConfig::from_env(
            addr,
            &env(&[
                ("SLACK_BOT_TOKEN", "x"),
                ("CROSSROADS_HEADER_TIMEOUT", "2.5"),
                ("CROSSROADS_BODY_TIMEOUT", "4"),
                ("CROSSROADS_IDLE_TIMEOUT", "30"),
                ("CROSSROADS_MAX_CONNECTIONS", "64"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.http.header_timeout, Duration::from_millis(2500));
        assert_eq!(c.http.body_timeout, Duration::from_secs(4));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.http.max_connections, 64);
        assert!(matches!(
            ServeConfig::from_env(
                addr,
                &env(&[("SLACK_BOT_TOKEN", "x"), ("CROSSROADS_HEADER_TIMEOUT", "0")])
            ),
            Err(ServeConfigError::OutOfRange {
                name: "CROSSROADS_HEADER_TIMEOUT",
                ..
            })
        ));
    }

    #[test]
    fn shutdown_waits_fifteen_minutes_unless_told_otherwise() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let c = ServeConfig::from_env(addr, &env(&[("SLACK_BOT_TOKEN", "x")])).expect("valid");
        assert_eq!(c.drain_timeout, Duration::from_secs(900));
        let c = ServeConfig::from_env(
            addr,
            &env(&[
                ("SLACK_BOT_TOKEN", "x"),
                ("CROSSROADS_DRAIN_TIMEOUT", "1800"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.drain_timeout, Duration::from_secs(1800));
    }
}
