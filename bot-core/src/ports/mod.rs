//! Ports: the traits an embedder swaps, one file per concern. The real
//! implementations live in [`crate::adapters`].
//!
//! | port | real implementations |
//! |---|---|
//! | [`Probe`] | [`HttpProbe`](crate::adapters::probe::HttpProbe) (reqwest) |
//! | [`HttpAction`] | [`ReqwestAction`](crate::adapters::probe::ReqwestAction) |
//! | [`TrafficSwitch`] | [`HaproxySwitch`](crate::adapters::haproxy::HaproxySwitch), [`HttpSwitch`](crate::adapters::http_switch::HttpSwitch), [`JenkinsSwitch`](crate::adapters::http_switch::JenkinsSwitch), [`MemorySwitch`](crate::adapters::memory_switch::MemorySwitch) |
//! | [`Ci`] | [`JenkinsClient`](crate::adapters::jenkins::JenkinsClient) |
//! | [`People`] | Slack's `users.info` (in the server) |
//! | [`Store`] ([`Deliveries`], [`Buttons`], [`Locks`], [`AuditLog`]) | [`MemoryStore`](crate::adapters::store::memory::MemoryStore) |

pub mod approvals;
pub mod ci;
pub mod compare;
pub mod people;
pub mod probe;
pub mod progress;
pub mod runs;
pub mod store;
mod store_error;
pub mod switch;
pub mod watch;

pub use approvals::{Approval, ApprovalStatus, Approvals, Decision, Vote};
pub use ci::{BuildOutcome, BuildProgress, BuildRef, BuildResult, Ci, CiError, Commit};
pub use compare::{Compare, CompareError};
pub use people::{NoPeople, People};
pub use probe::{HttpAction, HttpSnapshot, Probe, ProbeError};
pub use progress::{NoProgress, Progress};
pub use store::{
    AuditLog, AuditRecord, Buttons, Claim, Inbox, Lock, LockOutcome, Locks, Outbox, Run, RunOrder,
    RunStatus, Runs, Store, StoreError, Unlocked,
};
pub use store::{DeployQueue, Queued};
pub use switch::{refuse_non_member, shares_from_weights, Split, SwitchError, TrafficSwitch};
pub use watch::{Health, ProbeLog, ProbeRecord, Watch, Watches};
