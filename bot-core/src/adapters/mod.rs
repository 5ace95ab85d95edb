//! Adapters: the real implementations of the [ports](crate::ports) — Jenkins, HAProxy,
//! HTTP and Jenkins-driven switches, the in-memory switch, HTTP probes, stores — and
//! the helpers they share (templates, URL redaction).

use std::sync::Arc;

use crate::config::SwitchSpec;
use crate::ports::{Ci, HttpAction, Probe, TrafficSwitch};

pub mod compare;
pub mod haproxy;
pub mod http_switch;
pub mod jenkins;
pub mod memory_switch;
pub mod outbox_progress;
pub mod probe;
pub mod redact;
pub mod store;
pub mod template;

/// What a pool's switch may be built from: the bot's own probe, HTTP sender and CI
/// (so a switch reads back through the same probe the bot was given), and the one
/// in-memory switch shared by every `type: memory` pool.
#[derive(Clone)]
pub struct SwitchParts {
    /// Reads the active member of HTTP and Jenkins switches.
    pub probe: Arc<dyn Probe>,
    /// Sends the switch request of HTTP switches.
    pub http: Arc<dyn HttpAction>,
    /// Runs the switch job of Jenkins switches.
    pub ci: Arc<dyn Ci>,
    /// Holds the state of `type: memory` pools.
    pub memory: Arc<dyn TrafficSwitch>,
}

/// Builds the traffic switch a pool's config describes.
pub fn switch_for(spec: &SwitchSpec, parts: &SwitchParts) -> Arc<dyn TrafficSwitch> {
    match spec {
        SwitchSpec::Haproxy {
            address,
            backend,
            servers,
            off_state,
        } => Arc::new(haproxy::HaproxySwitch::new(
            address.clone(),
            backend.clone(),
            servers.clone(),
            off_state.clone(),
        )),
        SwitchSpec::Http {
            set,
            get_url,
            pointer,
            weights,
        } => Arc::new(
            http_switch::HttpSwitch::new(
                set.clone(),
                get_url.clone(),
                pointer.clone(),
                parts.probe.clone(),
                parts.http.clone(),
            )
            .with_weights(weights.clone()),
        ),
        SwitchSpec::Jenkins {
            job,
            get_url,
            pointer,
        } => Arc::new(http_switch::JenkinsSwitch::new(
            job.clone(),
            parts.ci.clone(),
            get_url.clone(),
            pointer.clone(),
            parts.probe.clone(),
        )),
        SwitchSpec::Memory { .. } => parts.memory.clone(),
    }
}
