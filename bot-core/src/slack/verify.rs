//! Slack request signature verification (v0 HMAC-SHA256), independent of any HTTP stack.
//!
//! Slack signs `v0:{timestamp}:{raw body}` with the app's signing secret and sends
//! `X-Slack-Request-Timestamp` and `X-Slack-Signature: v0=<hex>`. A transport buffers
//! the raw body, passes both header values here and rejects the request on any error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the header carrying the request's unix timestamp.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Name of the header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Largest accepted distance between the request's timestamp and now.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a request's signature was refused. Messages never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `X-Slack-Request-Timestamp` or `X-Slack-Signature` is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp is not a unix time in seconds.
    #[error("the request timestamp is not a unix time")]
    BadTimestamp,
    /// The timestamp is more than five minutes from now (replay or skewed clock).
    #[error("the request timestamp is {skew_secs}s away from now (limit 300s)")]
    Stale {
        /// Distance from now, in seconds.
        skew_secs: u64,
    },
    /// The signature does not match the body.
    #[error("the request signature does not match")]
    BadSignature,
}

/// Checks a request against the signing `secret` using the system clock.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), VerifyError> {
    verify_at(secret, timestamp, signature, body, SystemTime::now())
}

/// Checks a request against the signing `secret` as of `now`.
///
/// `timestamp` and `signature` are the raw values of the two headers (`None` when
/// absent); `body` is the body exactly as received.
pub fn verify_at(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(VerifyError::MissingHeader("X-Slack-Signature"))?;
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew_secs = now_secs.abs_diff(ts);
    if skew_secs > MAX_SKEW.as_secs() {
        return Err(VerifyError::Stale { skew_secs });
    }
    let expected = signature
        .trim()
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::BadSignature)?;
    let computed = sign_raw(secret, timestamp.trim(), body);
    if computed.ct_eq(&expected).into() {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`
/// (for tests, load generators and local stand-ins).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(sign_raw(secret, timestamp, body)))
}

fn sign_raw(secret: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails; an empty MAC would
    // simply never match.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Vec::new();
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIG);
        assert_eq!(
            verify_at(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), at(1531420618)),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_or_secret_is_refused() {
        let mut body = BODY.to_owned();
        body.push('x');
        assert_eq!(
            verify_at(SECRET, Some(TS), Some(SIG), body.as_bytes(), at(1531420618)),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_at(
                "other",
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                at(1531420618)
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_at(
                SECRET,
                Some(TS),
                Some("v0=zz"),
                BODY.as_bytes(),
                at(1531420618)
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_at(
                SECRET,
                Some(TS),
                Some(&SIG[3..]),
                BODY.as_bytes(),
                at(1531420618)
            ),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn timestamps_more_than_five_minutes_away_are_stale() {
        let b = BODY.as_bytes();
        assert_eq!(
            verify_at(SECRET, Some(TS), Some(SIG), b, at(1531420618 + 300)),
            Ok(())
        );
        assert_eq!(
            verify_at(SECRET, Some(TS), Some(SIG), b, at(1531420618 - 300)),
            Ok(())
        );
        assert_eq!(
            verify_at(SECRET, Some(TS), Some(SIG), b, at(1531420618 + 301)),
            Err(VerifyError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            verify_at(SECRET, Some(TS), Some(SIG), b, at(1531420618 - 301)),
            Err(VerifyError::Stale { skew_secs: 301 })
        );
    }

    #[test]
    fn missing_or_garbled_headers_are_named() {
        let b = BODY.as_bytes();
        let now = at(1531420618);
        assert_eq!(
            verify_at(SECRET, None, Some(SIG), b, now),
            Err(VerifyError::MissingHeader("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            verify_at(SECRET, Some(TS), None, b, now),
            Err(VerifyError::MissingHeader("X-Slack-Signature"))
        );
        assert_eq!(
            verify_at(SECRET, Some("yesterday"), Some(SIG), b, now),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn errors_never_show_the_secret() {
        let e = verify_at(
            SECRET,
            Some(TS),
            Some("v0=00"),
            BODY.as_bytes(),
            at(1531420618),
        )
        .expect_err("bad signature");
        assert!(!e.to_string().contains(SECRET));
        assert!(!format!("{e:?}").contains(SECRET));
    }
}
