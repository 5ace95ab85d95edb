//! Conformance suites: one public function per port, run on every implementation
//! (ours in this crate's tests, an embedder's in theirs). Each panics with a message
//! naming the broken promise.

mod store;
mod switch;
mod watch;

pub use store::{approval_replicas, audit_replicas, store};
pub use switch::{switch, weights};
pub use watch::watch;
