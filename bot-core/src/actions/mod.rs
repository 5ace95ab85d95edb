//! Actions: [`REGISTRY`] is the one table of every built-in action — its name in
//! `commands.yaml`, its safety rules, its argument check and what runs it — read by
//! the config loader, the policy and the engine. Each family lives in its own file.

use crate::context::{no_check, ActionDef, Rules};

mod deploy;
pub mod health;
mod help;
mod history;
mod jobs;
mod locks;
mod restart;
pub mod status;
mod tasks;
mod toy;
mod traffic;
mod whoami;

/// Moves traffic, takes the environment lock itself, confirms on protected environments.
const MOVES_TRAFFIC: Rules = Rules {
    mutating: true,
    respects_locks: false,
    confirm_on_protected: true,
};

/// Every built-in action. Adding one is a row here and a file of its own.
pub static REGISTRY: &[ActionDef] = &[
    ActionDef {
        name: "help",
        rules: Rules::READ,
        check: no_check,
        question: None,
        run: help::run,
    },
    ActionDef {
        name: "status",
        rules: Rules::READ,
        check: no_check,
        question: None,
        run: status::run,
    },
    ActionDef {
        name: "health",
        rules: Rules::READ,
        check: no_check,
        question: None,
        run: health::run,
    },
    ActionDef {
        name: "tasks",
        rules: Rules::READ,
        check: no_check,
        question: None,
        run: tasks::run,
    },
    ActionDef {
        name: "deploy",
        rules: MOVES_TRAFFIC,
        check: deploy::check,
        question: Some(deploy::question),
        run: deploy::run,
    },
    ActionDef {
        name: "rollback",
        rules: MOVES_TRAFFIC,
        check: no_check,
        question: None,
        run: traffic::rollback,
    },
    ActionDef {
        name: "switch",
        rules: MOVES_TRAFFIC,
        check: no_check,
        question: None,
        run: traffic::switch,
    },
    ActionDef {
        name: "restart",
        rules: Rules {
            mutating: true,
            respects_locks: true,
            confirm_on_protected: false,
        },
        check: no_check,
        question: None,
        run: restart::restart,
    },
    ActionDef {
        name: "force_restart",
        rules: Rules {
            mutating: true,
            respects_locks: true,
            confirm_on_protected: false,
        },
        check: no_check,
        question: None,
        run: restart::force_restart,
    },
    ActionDef {
        name: "toy",
        rules: Rules {
            mutating: true,
            respects_locks: false,
            confirm_on_protected: false,
        },
        check: no_check,
        question: None,
        run: toy::run,
    },
    ActionDef {
        name: "lock",
        rules: Rules {
            mutating: true,
            respects_locks: false,
            confirm_on_protected: false,
        },
        check: no_check,
        question: None,
        run: locks::lock,
    },
    ActionDef {
        name: "unlock",
        rules: Rules {
            mutating: true,
            respects_locks: false,
            confirm_on_protected: false,
        },
        check: no_check,
        question: None,
        run: locks::unlock,
    },
    ActionDef {
        name: "history",
        rules: Rules::READ,
        check: no_check,
        question: None,
        run: history::run,
    },
    ActionDef {
        name: "whoami",
        rules: Rules::READ,
        check: no_check,
        question: None,
        run: whoami::run,
    },
    ActionDef {
        name: "job",
        rules: Rules {
            mutating: true,
            respects_locks: true,
            confirm_on_protected: true,
        },
        check: no_check,
        question: None,
        run: jobs::custom,
    },
    ActionDef {
        name: "http",
        rules: Rules {
            mutating: true,
            respects_locks: true,
            confirm_on_protected: true,
        },
        check: no_check,
        question: None,
        run: jobs::custom,
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
