//! The people port: what the chat platform knows of a person that the bot needs (their
//! time zone, so that "at 18:00" means their 18:00). Slack's adapter asks `users.info`
//! and keeps the answer a while.

use async_trait::async_trait;

/// What the chat platform knows of people.
#[async_trait]
pub trait People: Send + Sync {
    /// `user`'s IANA time zone (`Europe/Prague`), when known.
    async fn time_zone(&self, user: &str) -> Option<String>;
}

/// Knows no one: every time without a zone is UTC.
pub struct NoPeople;

#[async_trait]
impl People for NoPeople {
    async fn time_zone(&self, _user: &str) -> Option<String> {
        None
    }
}
