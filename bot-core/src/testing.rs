//! Test support: configurations built in code, for tests and benchmarks here and in embedders.

use crate::config::{
    ActionKind, CommandSpec, Config, Environment, HealthRecipe, Instance, JobSpec, Pool, Pos,
    SwitchSpec, TargetKind,
};

/// A configuration mirroring the shipped `commands.yaml` and `instances.yaml`: the same
/// commands, phrases, filler words, environments, pools, members, aliases and emoji.
/// URLs point at loopback and switches are kept in memory (`api` starts on `blue`,
/// `cron` on `purple`).
pub fn shipped_like_config() -> Config {
    let docs: [(&str, &str, &[&str]); 14] = [
        ("help", "List the commands, or explain one.", &["help", "help deploy"]),
        ("status", "Probe every instance (or one environment's) and show them by pool, active member marked.", &["status", "status staging"]),
        ("health", "Run an instance's health recipe and show each check's verdict.", &["health rh blue", "health staging active", "health :large_green_circle: prod"]),
        ("show tasks", "Show what an instance is working on (its tasks endpoint).", &["show tasks master purple", "tasks staging cron active"]),
        ("deploy", "Build the inactive member of each pool, health-gate it, then move traffic to it.", &["deploy staging", "deploy staging api feature/login", "deploy master"]),
        ("rollback", "Move traffic back to the previous member after health-checking it.", &["rollback staging", "rollback master api"]),
        ("switch", "Move a pool's traffic to the named (or the other) member after health-checking it.", &["switch staging api green", "switch staging cron"]),
        ("restart", "Restart an instance that takes no traffic. The live one needs `force restart`.", &["restart staging green", "restart rh inactive"]),
        ("force restart", "Restart an instance even though it takes traffic (asks for confirmation).", &["force restart master active"]),
        ("toy", "Refresh your own toy database from master.", &["toy"]),
        ("lock", "Stop deploys to an environment until it is unlocked.", &["lock master release freeze"]),
        ("unlock", "Release an environment's lock.", &["unlock master"]),
        ("history", "Show the latest actions (who, what, when, outcome).", &["history", "history master"]),
        ("clear cache", "Clear the CDN and application caches of an environment.", &["clear cache staging"]),
    ];
    let mut commands: Vec<CommandSpec> = vec![
        command(
            "help",
            &["help", "commands", "?", "usage"],
            ActionKind::Help,
            TargetKind::Nothing,
        )
        .args(),
        command(
            "status",
            &["status", "overview", "st"],
            ActionKind::Status,
            TargetKind::Environment,
        )
        .optional(),
        command(
            "health",
            &["health", "healthcheck", "health check", "check"],
            ActionKind::Health,
            TargetKind::Instance,
        ),
        command(
            "show tasks",
            &["show tasks", "tasks", "list tasks"],
            ActionKind::Tasks,
            TargetKind::Instance,
        ),
        command(
            "deploy",
            &["deploy", "ship", "release"],
            ActionKind::Deploy,
            TargetKind::Environment,
        )
        .args()
        .allowed(),
        command(
            "rollback",
            &["rollback", "roll back", "revert"],
            ActionKind::Rollback,
            TargetKind::Environment,
        )
        .allowed(),
        command(
            "switch",
            &["switch", "flip", "switch traffic"],
            ActionKind::Switch,
            TargetKind::Pool,
        )
        .allowed(),
        command(
            "restart",
            &["restart", "reboot", "bounce"],
            ActionKind::Restart,
            TargetKind::Instance,
        ),
        command(
            "force restart",
            &["force restart", "force reboot", "restart force"],
            ActionKind::ForceRestart,
            TargetKind::Instance,
        )
        .confirm()
        .allowed(),
        command(
            "toy",
            &["toy", "toy db", "refresh toy", "toy refresh"],
            ActionKind::Toy,
            TargetKind::Nothing,
        ),
        command("lock", &["lock"], ActionKind::Lock, TargetKind::Environment)
            .args()
            .allowed(),
        command(
            "unlock",
            &["unlock"],
            ActionKind::Unlock,
            TargetKind::Environment,
        )
        .allowed(),
        command(
            "history",
            &["history", "log", "audit"],
            ActionKind::History,
            TargetKind::Environment,
        )
        .optional(),
        command(
            "clear cache",
            &["clear cache", "flush cache"],
            ActionKind::Job(JobSpec {
                job: "platform/clear-cache".into(),
                parameters: vec![
                    ("ENVIRONMENT".into(), "{env}".into()),
                    ("REQUESTED_BY".into(), "{user}".into()),
                ],
            }),
            TargetKind::Environment,
        )
        .allowed(),
    ]
    .into_iter()
    .map(CommandSpec::from)
    .collect();
    for (name, help, examples) in docs {
        if let Some(cmd) = commands.iter_mut().find(|c| c.name == name) {
            cmd.help = help.into();
            cmd.examples = strings(examples);
        }
    }
    let filler = [
        "please",
        "pls",
        "plz",
        "the",
        "on",
        "in",
        "of",
        "for",
        "to",
        "a",
        "an",
        "instance",
        "server",
        "env",
        "environment",
        "can",
        "you",
        "could",
        "would",
        "me",
        "now",
        "hey",
        "hi",
        "kindly",
        "thanks",
        "thx",
    ];
    let mut port = 18080;
    let mut member = |name: &str, aliases: &[&str]| {
        port += 1;
        instance(name, aliases, port)
    };
    let master = Environment {
        name: "master".into(),
        aliases: strings(&[
            "master",
            "production",
            "prod",
            "rh",
            "roih",
            "roi hunter",
            "live",
        ]),
        emoji: strings(&["red_circle", "fire"]),
        protected: true,
        allowed: strings(&["deployers"]),
        pools: vec![
            pool(
                "api",
                &["web", "app"],
                "blue",
                vec![
                    member("blue", &["rh blue", "master blue"]),
                    member("green", &["rh green", "master green"]),
                ],
            ),
            pool(
                "cron",
                &["crons", "jobs", "worker"],
                "purple",
                vec![
                    member("purple", &["rh purple"]),
                    member("yellow", &["rh yellow"]),
                ],
            ),
        ],
        pos: Pos::default(),
    };
    let staging = Environment {
        name: "staging".into(),
        aliases: strings(&["staging", "stage", "stg", "preprod"]),
        emoji: strings(&["construction"]),
        protected: false,
        allowed: Vec::new(),
        pools: vec![
            pool(
                "api",
                &["web", "app"],
                "blue",
                vec![
                    member("blue", &["staging blue", "stage blue"]),
                    member("green", &["staging green", "stage green"]),
                ],
            ),
            pool(
                "cron",
                &["crons", "jobs", "worker"],
                "purple",
                vec![
                    member("purple", &["staging purple"]),
                    member("yellow", &["staging yellow"]),
                ],
            ),
        ],
        pos: Pos::default(),
    };
    let mut config = Config {
        commands,
        environments: vec![master, staging],
        filler: strings(&filler),
        ..Config::default()
    };
    config.groups.insert(
        "deployers".into(),
        strings(&["U0DEPLOYER", "U0ADMIN", "U0DEMO"]),
    );
    config
        .groups
        .insert("admins".into(), strings(&["U0ADMIN", "U0DEMO"]));
    config
}

/// A large configuration with `instances` instances: environments `env0`, `env1`, …
/// (aliases `e<N>` and `cluster <N>`), each with up to five pools (`api`, `cron`,
/// `web`, `batch`, `search`) of two members whose colours are unique within the
/// environment; each instance has the aliases `env<N> <colour>` and `e<N> <colour>`.
/// The vocabulary and filler words are the shipped ones.
pub fn generated_config(instances: usize) -> Config {
    const POOLS: [(&str, &str, &str, &str); 5] = [
        ("api", "app", "blue", "green"),
        ("cron", "jobs", "purple", "yellow"),
        ("web", "frontend", "red", "orange"),
        ("batch", "etl", "cyan", "magenta"),
        ("search", "solr", "black", "white"),
    ];
    let mut config = shipped_like_config();
    config.environments.clear();
    let mut made = 0;
    let mut e = 0;
    while made < instances {
        let env = format!("env{e}");
        let short = format!("e{e}");
        let mut pools = Vec::new();
        for (name, alias, first, second) in POOLS {
            if made >= instances {
                break;
            }
            let mut members = Vec::new();
            for colour in [first, second] {
                if made >= instances {
                    break;
                }
                let aliases = [format!("{env} {colour}"), format!("{short} {colour}")];
                let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
                members.push(instance(colour, &aliases, 20_000 + made % 40_000));
                made += 1;
            }
            pools.push(pool(name, &[alias], first, members));
        }
        config.environments.push(Environment {
            name: env.clone(),
            aliases: vec![env, short, format!("cluster {e}")],
            emoji: Vec::new(),
            protected: e % 10 == 0,
            allowed: Vec::new(),
            pools,
            pos: Pos::default(),
        });
        e += 1;
    }
    config
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn pool(name: &str, aliases: &[&str], initial: &str, members: Vec<Instance>) -> Pool {
    let mut all = vec![name.to_string()];
    all.extend(strings(aliases));
    Pool {
        name: name.into(),
        aliases: all,
        switch: SwitchSpec::Memory {
            initial: initial.into(),
        },
        deploy: None,
        members,
        pos: Pos::default(),
    }
}

fn instance(colour: &str, aliases: &[&str], port: usize) -> Instance {
    Instance {
        name: colour.into(),
        aliases: strings(aliases),
        emoji: vec![
            format!("large_{colour}_circle"),
            format!("{colour}_circle"),
            format!("{colour}_heart"),
        ],
        url: format!("http://127.0.0.1:{port}"),
        health: HealthRecipe::default(),
        tasks: Some("/tasks".into()),
        restart: None,
        pos: Pos::default(),
    }
}

/// Builder sugar for the command table above.
struct Cmd(CommandSpec);

impl Cmd {
    fn args(mut self) -> Self {
        self.0.takes_args = true;
        self
    }
    fn optional(mut self) -> Self {
        self.0.target_optional = true;
        self
    }
    fn confirm(mut self) -> Self {
        self.0.confirm = true;
        self
    }
    fn allowed(mut self) -> Self {
        self.0.allowed = strings(&["deployers"]);
        self
    }
}

impl From<Cmd> for CommandSpec {
    fn from(cmd: Cmd) -> Self {
        cmd.0
    }
}

fn command(name: &str, phrases: &[&str], action: ActionKind, target: TargetKind) -> Cmd {
    Cmd(CommandSpec {
        name: name.into(),
        phrases: strings(phrases),
        action,
        target,
        target_optional: false,
        takes_args: false,
        confirm: false,
        allowed: Vec::new(),
        help: format!("The `{name}` command."),
        examples: vec![name.to_string()],
        pos: Pos::default(),
    })
}
