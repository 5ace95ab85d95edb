//! The compare port: the commits between the live version and the ref to deploy, as a
//! source-code host lists them (GitHub, GitLab, or whatever an embedder has).

use async_trait::async_trait;

use crate::ports::Commit;

/// Why the compare endpoint gave no list, in our own words (never the token, never a
/// library's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// No answer.
    #[error("the compare endpoint did not answer at {0}")]
    Unreachable(String),
    /// 401/403.
    #[error("the compare endpoint refused the token (HTTP {0})")]
    Refused(u16),
    /// 404.
    #[error("the compare endpoint does not know `{base}...{head}` in `{repo}`")]
    Unknown {
        /// Repository or project.
        repo: String,
        /// Base ref.
        base: String,
        /// Head ref.
        head: String,
    },
    /// Anything else.
    #[error("the compare endpoint answered HTTP {0}")]
    Status(u16),
    /// An answer we cannot read.
    #[error("the compare endpoint answered something I could not read")]
    Unreadable,
}

/// Lists the commits between two refs.
#[async_trait]
pub trait Compare: Send + Sync {
    /// The commits between `base` (live) and `head` (to deploy), oldest first.
    async fn compare(&self, base: &str, head: &str) -> Result<Vec<Commit>, CompareError>;
    /// Where the list comes from, for people (`GitHub compare`).
    fn source(&self) -> String;
}
