//! Waits asked for from outside (`Retry-After`), clamped to an hour and added to a
//! time without overflow: no answer from Slack, PagerDuty or a webhook can panic a
//! sender or park it for ever.

use std::time::{Duration, SystemTime};

/// The longest wait anyone outside may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds, at most [`MAX_WAIT`]; `None` when absent or unreadable
/// (an HTTP date counts as unreadable: the caller's backoff applies).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_WAIT))
}

/// `now + wait`, with `wait` at most [`MAX_WAIT`]; never overflows.
pub fn after(now: SystemTime, wait: Duration) -> SystemTime {
    let wait = wait.min(MAX_WAIT);
    now.checked_add(wait).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn a_huge_retry_after_is_an_hour() {
        assert_eq!(retry_after(&with("18446744073709551615")), Some(MAX_WAIT));
        assert_eq!(retry_after(&with(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&with("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn adding_never_overflows() {
        let now = SystemTime::now();
        assert_eq!(after(now, Duration::MAX), now + MAX_WAIT);
        assert_eq!(
            after(now, Duration::from_secs(2)),
            now + Duration::from_secs(2)
        );
    }
}
