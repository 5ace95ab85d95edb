//! Actions: [`REGISTRY`] is the one table of every built-in action — its name in
//! `commands.yaml`, its safety rules, its argument check and what runs it — read by
//! the config loader, the policy and the engine. Each family lives in its own file.

use crate::context::{ActionDef, Rules};

pub(crate) mod approval;
mod canary;
mod charts;
pub(crate) mod deploy;
pub mod dora;
mod health;
mod help;
mod history;
mod jobs;
mod locks;
mod probe_charts;
pub(crate) mod queue;
mod restart;
mod schedule;
pub mod status;
mod tasks;
mod toy;
mod traffic;
mod whoami;

/// Moves traffic, takes the environment lock itself, confirms on protected environments.
const MOVES_TRAFFIC: Rules = Rules {
    mutating: true,
    respects_locks: false,
    takes_lock: true,
    confirm_on_protected: true,
    frozen: true,
};

/// Restarts an instance: refused while its environment is locked, and holds the
/// lock itself while it runs (no switch moves traffic onto it meanwhile).
const RESTARTS: Rules = Rules {
    mutating: true,
    respects_locks: true,
    takes_lock: true,
    confirm_on_protected: false,
    frozen: false,
};

/// Restarts an instance whatever its role: as a restart, and stopped by a freeze.
const FORCE_RESTARTS: Rules = Rules {
    frozen: true,
    ..RESTARTS
};

/// Runs a job or request defined in YAML: refused while locked, confirmed on
/// protected environments, stopped by a freeze unless the command says
/// `freeze: exempt`.
const RUNS_JOBS: Rules = Rules {
    mutating: true,
    respects_locks: true,
    takes_lock: false,
    confirm_on_protected: true,
    frozen: true,
};

/// Changes something of its own (a toy database, a lock): audited and permitted by
/// the environment's groups, nothing more.
const CHANGES: Rules = Rules {
    mutating: true,
    respects_locks: false,
    takes_lock: false,
    confirm_on_protected: false,
    frozen: false,
};

/// Steers a canary under way (pause, abort): audited and permitted like a deploy,
/// never stopped by a freeze (it only ever holds traffic or moves it back).
const STEERS: Rules = Rules {
    mutating: true,
    respects_locks: false,
    takes_lock: false,
    confirm_on_protected: false,
    frozen: false,
};

/// Moves a canary's traffic onward (continue): stopped by a freeze, like a deploy.
const STEERS_ON: Rules = Rules {
    frozen: true,
    ..STEERS
};

/// Moves all of a canary's traffic now (promote): stopped by a freeze and confirmed
/// on protected environments, like a deploy.
const PROMOTES: Rules = Rules {
    frozen: true,
    confirm_on_protected: true,
    ..STEERS
};

/// Every built-in action. Adding one is a row here and a file of its own.
pub static REGISTRY: &[ActionDef] = &[
    ActionDef {
        name: "help",
        rules: Rules::READ,
        action: &help::Help,
    },
    ActionDef {
        name: "status",
        rules: Rules::READ,
        action: &status::Status,
    },
    ActionDef {
        name: "health",
        rules: Rules::READ,
        action: &health::Health,
    },
    ActionDef {
        name: "tasks",
        rules: Rules::READ,
        action: &tasks::Tasks,
    },
    ActionDef {
        name: "deploy",
        rules: MOVES_TRAFFIC,
        action: &deploy::Deploy,
    },
    ActionDef {
        name: "rollback",
        rules: MOVES_TRAFFIC,
        action: &traffic::Rollback,
    },
    ActionDef {
        name: "switch",
        rules: MOVES_TRAFFIC,
        action: &traffic::Switch,
    },
    ActionDef {
        name: "pause",
        rules: STEERS,
        action: &canary::Steer(deploy::state::Order::Pause),
    },
    ActionDef {
        name: "continue",
        rules: STEERS_ON,
        action: &canary::Steer(deploy::state::Order::Continue),
    },
    ActionDef {
        name: "promote",
        rules: PROMOTES,
        action: &canary::Steer(deploy::state::Order::Promote),
    },
    ActionDef {
        name: "abort",
        rules: STEERS,
        action: &canary::Steer(deploy::state::Order::Abort),
    },
    ActionDef {
        name: "restart",
        rules: RESTARTS,
        action: &restart::Restart { force: false },
    },
    ActionDef {
        name: "force_restart",
        rules: FORCE_RESTARTS,
        action: &restart::Restart { force: true },
    },
    ActionDef {
        name: "toy",
        rules: CHANGES,
        action: &toy::Toy,
    },
    ActionDef {
        name: "lock",
        rules: CHANGES,
        action: &locks::TakeLock,
    },
    ActionDef {
        name: "unlock",
        rules: CHANGES,
        action: &locks::ReleaseLock,
    },
    ActionDef {
        name: "history",
        rules: Rules::READ,
        action: &history::History,
    },
    ActionDef {
        name: "whoami",
        rules: Rules::READ,
        action: &whoami::Whoami,
    },
    ActionDef {
        name: "approve",
        rules: Rules::READ,
        action: &approval::Approve,
    },
    ActionDef {
        name: "decline",
        rules: Rules::READ,
        action: &approval::Decline,
    },
    ActionDef {
        name: "queue",
        rules: Rules::READ,
        action: &queue::ShowQueue,
    },
    ActionDef {
        name: "unqueue",
        rules: CHANGES,
        action: &queue::LeaveQueue,
    },
    ActionDef {
        name: "dora",
        rules: Rules::READ,
        action: &dora::ShowDora,
    },
    ActionDef {
        name: "chart_dora",
        rules: Rules::READ,
        action: &dora::ChartDora,
    },
    ActionDef {
        name: "scheduled",
        rules: Rules::READ,
        action: &schedule::ShowScheduled,
    },
    ActionDef {
        name: "unschedule",
        rules: CHANGES,
        action: &schedule::Unschedule,
    },
    ActionDef {
        name: "chart_deploys",
        rules: Rules::READ,
        action: &charts::ChartDeploys,
    },
    ActionDef {
        name: "chart_latency",
        rules: Rules::READ,
        action: &probe_charts::ChartLatency,
    },
    ActionDef {
        name: "chart_uptime",
        rules: Rules::READ,
        action: &probe_charts::ChartUptime,
    },
    ActionDef {
        name: "job",
        rules: RUNS_JOBS,
        action: &jobs::Custom,
    },
    ActionDef {
        name: "http",
        rules: RUNS_JOBS,
        action: &jobs::Custom,
    },
];

/// The registry row named `name`.
pub fn find(name: &str) -> Option<&'static ActionDef> {
    REGISTRY.iter().find(|a| a.name == name)
}

/// Every action name, for the config loader.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|a| a.name).collect()
}
