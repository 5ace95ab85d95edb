//! The one failure every store port returns, in our own words.

/// A storage failure, in our own words: never a driver's message (that goes to the
/// log at the adapter, without secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or did not answer in time.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// The store answered something we cannot use (a damaged row, a failed statement).
    #[error("the state store failed: {0}")]
    Failed(String),
}
