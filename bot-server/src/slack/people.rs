//! Slack's side of the people port: a person's time zone, asked of `users.info` and kept an hour per person.
//!
//! Only Slack user ids are asked about (`U…`, `W…`: upper-case letters and digits);
//! anyone else (`cli:alice@host`) has no zone, without a call. Slack's answer is kept
//! for [`TTL`], a refusal such as `user_not_found` too (as "no zone"); a failure that
//! may pass (no answer, HTTP 5xx, rate limited, Slack's own `internal_error`) gives
//! "no zone" this time and is asked again next time. Calls make one attempt: a
//! rate-limited lookup is not waited out (the caller falls back to UTC).
//! A failure is logged as one warning naming the user and Slack's error code, never
//! the token or Slack's answer.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bot_core::ports::People;

use super::webapi::{WebApi, WebApiError};

/// How long an answer is kept.
pub const TTL: Duration = Duration::from_secs(60 * 60);

/// People remembered at most; past that, stale answers are dropped (all, if none is).
const MOST_KNOWN: usize = 10_000;

/// Slack error codes that say nothing about the person: asked again next time.
const PASSING: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// [`People`] from Slack's `users.info`, cached per person.
pub struct SlackPeople {
    web: WebApi,
    ttl: Duration,
    known: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl std::fmt::Debug for SlackPeople {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackPeople")
            .field("web", &self.web)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SlackPeople {
    /// Asks through `web` (its base URL and bot token), one attempt per lookup,
    /// keeping answers for [`TTL`].
    pub fn new(web: &WebApi) -> Self {
        Self {
            web: web.single_attempt().unlogged(),
            ttl: TTL,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps answers for `ttl` instead of [`TTL`].
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn known(&self) -> MutexGuard<'_, HashMap<String, (Instant, Option<String>)>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept answer for `user`, if still fresh.
    fn cached(&self, user: &str) -> Option<Option<String>> {
        self.known()
            .get(user)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, tz)| tz.clone())
    }

    fn remember(&self, user: &str, tz: Option<String>) {
        let mut known = self.known();
        if known.len() >= MOST_KNOWN && !known.contains_key(user) {
            let ttl = self.ttl;
            known.retain(|_, (at, _)| at.elapsed() < ttl);
            if known.len() >= MOST_KNOWN {
                known.clear();
            }
        }
        known.insert(user.to_owned(), (Instant::now(), tz));
    }
}

/// Whether `user` looks like a Slack user id (`U0123ABCD`, `W…`): upper-case ASCII
/// letters and digits, starting with a letter.
fn is_slack_id(user: &str) -> bool {
    user.len() >= 2
        && user.len() <= 32
        && user.starts_with(|c: char| c.is_ascii_uppercase())
        && user
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether a failure says something lasting about the person (kept as "no zone").
fn lasting(e: &WebApiError) -> bool {
    matches!(e, WebApiError::Slack { error, .. } if !PASSING.contains(&error.as_str()))
}

#[async_trait]
impl People for SlackPeople {
    async fn time_zone(&self, user: &str) -> Option<String> {
        if !is_slack_id(user) {
            return None;
        }
        if let Some(tz) = self.cached(user) {
            return tz;
        }
        match self.web.users_info(user).await {
            Ok(found) => {
                let tz = found.tz.filter(|tz| !tz.trim().is_empty());
                self.remember(user, tz.clone());
                tz
            }
            Err(e) => {
                let lasting = lasting(&e);
                tracing::warn!(
                    user,
                    error = %e.code(),
                    kept = lasting,
                    "could not learn a user's time zone from Slack users.info; using UTC"
                );
                if lasting {
                    self.remember(user, None);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use bot_core::config::Secret;
    use crossroads_sim::slack::{SlackSetup, SlackStandIn};
    use crossroads_sim::Scripted;

    use super::*;
    use crate::metrics::Metrics;

    const USERS_INFO: &str = "users.info";

    /// The tests that make `time_zone` warn take turns: tracing caches whether anyone
    /// listens at a log line when it is first reached, and a test reaching it on
    /// another thread while the log test sets up its listener can leave it cached as
    /// unheard.
    static WARNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    async fn prague() -> (SlackStandIn, SlackPeople) {
        let slack =
            SlackStandIn::start_with(SlackSetup::new().user_tz("U0PRAGUE", "Europe/Prague"))
                .await
                .expect("start the Slack stand-in");
        let web = WebApi::new(
            &slack.api_url(),
            Secret::new(slack.bot_token()),
            Metrics::new(),
            Duration::from_secs(5),
            4,
        )
        .expect("client");
        let people = SlackPeople::new(&web);
        (slack, people)
    }

    #[test]
    fn slack_ids_only() {
        for id in ["U0PRAGUE", "W012ABC", "UBOT"] {
            assert!(is_slack_id(id), "{id}");
        }
        for id in [
            "cli:alice@host",
            "",
            "U",
            "u0prague",
            "U0 PRAGUE",
            "0U",
            "api:ci",
        ] {
            assert!(!is_slack_id(id), "{id}");
        }
    }

    #[tokio::test]
    async fn zone_comes_back_and_is_kept_an_hour() {
        let (slack, people) = prague().await;
        assert_eq!(
            people.time_zone("U0PRAGUE").await.as_deref(),
            Some("Europe/Prague")
        );
        let calls = slack.calls(USERS_INFO);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arg("user"), Some("U0PRAGUE"));
        assert_eq!(
            calls[0].header("authorization"),
            Some(format!("Bearer {}", slack.bot_token()).as_str())
        );

        // Within the hour: from the cache.
        assert_eq!(
            people.time_zone("U0PRAGUE").await.as_deref(),
            Some("Europe/Prague")
        );
        assert_eq!(slack.calls(USERS_INFO).len(), 1);

        // Someone else is asked about (and the stand-in puts them in UTC).
        assert_eq!(people.time_zone("U0OTHER").await.as_deref(), Some("UTC"));
        assert_eq!(slack.calls(USERS_INFO).len(), 2);
    }

    #[tokio::test]
    async fn a_stale_answer_is_asked_again() {
        let (slack, people) = prague().await;
        let people = people.with_ttl(Duration::from_millis(50));
        assert!(people.time_zone("U0PRAGUE").await.is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(people.time_zone("U0PRAGUE").await.is_some());
        assert_eq!(slack.calls(USERS_INFO).len(), 2);
    }

    #[tokio::test]
    async fn not_a_slack_user_makes_no_call() {
        let (slack, people) = prague().await;
        assert_eq!(people.time_zone("cli:alice@host").await, None);
        assert_eq!(people.time_zone("").await, None);
        assert!(slack.calls(USERS_INFO).is_empty());
    }

    #[tokio::test]
    async fn an_unknown_user_has_no_zone_and_is_kept() {
        let _turn = WARNS.lock().await;
        let (slack, people) = prague().await;
        assert_eq!(people.time_zone("B0NOBODY").await, None);
        assert_eq!(people.time_zone("B0NOBODY").await, None);
        assert_eq!(slack.calls(USERS_INFO).len(), 1);
    }

    #[tokio::test]
    async fn passing_failures_are_not_kept() {
        let _turn = WARNS.lock().await;
        let (slack, people) = prague().await;
        slack.script(
            USERS_INFO,
            [
                Scripted::Status(503),
                Scripted::RateLimited {
                    retry_after_secs: 30,
                },
                Scripted::Error("internal_error"),
                Scripted::Drop,
            ],
        );
        let started = Instant::now();
        for _ in 0..4 {
            assert_eq!(people.time_zone("U0PRAGUE").await, None);
        }
        // The 429 was not waited out.
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            people.time_zone("U0PRAGUE").await.as_deref(),
            Some("Europe/Prague")
        );
        assert_eq!(slack.calls(USERS_INFO).len(), 5);
    }

    /// Log lines, captured.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failure_is_one_warning_with_the_user_and_code_only() {
        let _turn = WARNS.lock().await;
        let (slack, people) = prague().await;
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        slack.script(USERS_INFO, [Scripted::Error("missing_scope")]);
        assert_eq!(people.time_zone("U0PRAGUE").await, None);
        drop(_guard);

        let text = String::from_utf8_lossy(&lines.0.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned();
        let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{text}");
        assert!(warnings[0].contains("U0PRAGUE"), "{text}");
        assert!(warnings[0].contains("missing_scope"), "{text}");
        assert!(!text.contains(slack.bot_token()), "{text}");
        assert!(!text.contains("\"ok\""), "{text}");
    }
}
