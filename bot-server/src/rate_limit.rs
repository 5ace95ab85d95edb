//! Per-token rate limits of the `/api/v1` writes (`POST /api/v1/chart`,
//! `POST /api/v1/notify`): `CROSSROADS_API_RATE_LIMIT` requests per period per token
//! and endpoint, as a burst that refills evenly (GCRA, the `governor` crate); beyond
//! it `429` with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Default in chat: 30 messages, commands and clicks a minute per Slack user.
pub const DEFAULT_CHAT_RATE: Rate = Rate {
    requests: 30,
    per: Duration::from_secs(60),
};

/// Default for `GET /api/v1/status`: 60 requests a minute per client address.
pub const DEFAULT_STATUS_RATE: Rate = Rate {
    requests: 60,
    per: Duration::from_secs(60),
};

/// Default: 60 requests a minute per token and endpoint.
pub const DEFAULT_RATE: Rate = Rate {
    requests: 60,
    per: Duration::from_secs(60),
};

/// `requests` per `per`, e.g. `60/min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in a burst, refilled evenly over `per`.
    pub requests: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/min`, `N/h` (also `N/sec`, `N/second`, `N/minute`, `N/hour`);
    /// `None` for anything else, or `N` = 0.
    pub fn parse(text: &str) -> Option<Rate> {
        let (n, unit) = text.trim().split_once('/')?;
        let requests: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
        let per = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate { requests, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}

/// `rate` as a GCRA quota: a burst of `requests`, refilled evenly over `per`.
fn quota(rate: Rate) -> Quota {
    let burst = NonZeroU32::new(rate.requests).unwrap_or(NonZeroU32::MIN);
    let every = (rate.per / burst.get()).max(Duration::from_nanos(1));
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

/// The limiter: one bucket per (endpoint, token). Only tokens that passed the
/// bearer check get a bucket, so the map stays as small as the set of valid tokens.
pub struct ApiRateLimit {
    rate: Rate,
    limiter: DefaultKeyedRateLimiter<(&'static str, String)>,
    clock: DefaultClock,
}

impl std::fmt::Debug for ApiRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiRateLimit")
            .field("rate", &self.rate)
            .finish()
    }
}

impl ApiRateLimit {
    /// A limiter allowing `rate` per token and endpoint.
    pub fn new(rate: Rate) -> Self {
        let quota = quota(rate);
        Self {
            rate,
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// The rate allowed.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes one request of `token` on `endpoint`; `Err(wait)` when over the limit,
    /// with how long until the next one is allowed.
    pub fn check(&self, endpoint: &'static str, token: &str) -> Result<(), Duration> {
        // Keys by client address come and go: forget the idle ones now and then.
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&(endpoint, token.to_owned()))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The chat limit: one bucket per Slack user; over it, the user is told once per
/// window (the first refusal) and the rest are dropped quietly.
pub struct ChatRateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    told: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for ChatRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatRateLimit")
    }
}

/// What the chat limit says about one more message from a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTurn {
    /// Within the limit.
    Go,
    /// Over it, for the first time this window: tell them to slow down.
    SlowDown,
    /// Over it again: drop it quietly.
    Quiet,
}

impl ChatRateLimit {
    /// A limiter allowing `rate` per user.
    pub fn new(rate: Rate) -> Self {
        let quota = quota(rate);
        Self {
            limiter: RateLimiter::keyed(quota),
            told: std::sync::Mutex::default(),
        }
    }

    /// Takes one message of `user`.
    pub fn take(&self, user: &str) -> ChatTurn {
        let mut told = match self.told.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if self.limiter.check_key(&user.to_owned()).is_ok() {
            told.remove(user);
            return ChatTurn::Go;
        }
        if told.insert(user.to_owned()) {
            ChatTurn::SlowDown
        } else {
            ChatTurn::Quiet
        }
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_written() {
        assert_eq!(
            Rate::parse("60/min"),
            Some(Rate {
                requests: 60,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(
            Rate::parse(" 5 / s").map(|r| r.per),
            Some(Duration::from_secs(1))
        );
        assert_eq!(Rate::parse("100/hour").map(|r| r.requests), Some(100));
        for bad in ["0/min", "ten/min", "5/day", "5", ""] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
        assert_eq!(DEFAULT_RATE.to_string(), "60/min");
    }

    #[test]
    fn a_burst_passes_then_each_token_and_endpoint_waits_alone() {
        let limit = ApiRateLimit::new(Rate {
            requests: 2,
            per: Duration::from_secs(60),
        });
        assert!(limit.check("chart", "a").is_ok());
        assert!(limit.check("chart", "a").is_ok());
        let wait = limit.check("chart", "a").expect_err("third is over");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limit.check("chart", "b").is_ok());
        assert!(limit.check("notify", "a").is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(100)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(29_001)), 30);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
