//! Test support, public behind the `testing` feature: configurations built in code
//! for tests and benchmarks, and the [`conformance`] suites that every port
//! implementation — ours or an embedder's — must pass.

pub mod conformance;

use crate::config::{
    Config, Environment, HealthRecipe, Instance, OnFailure, Pool, Pos, Region, Rollout, SwitchSpec,
};

/// The repository's vocabulary, built in.
const COMMANDS_YAML: &str = include_str!("../../../commands.yaml");
/// The groups `commands.yaml` refers to, as the shipped `instances.yaml` defines them.
const GROUPS_YAML: &str =
    "groups:\n  deployers: [U0DEPLOYER, U0ADMIN, U0DEMO]\n  admins: [U0ADMIN, U0DEMO]\n";

/// A configuration mirroring the shipped `commands.yaml` and `instances.yaml`: the
/// shipped vocabulary itself, and the same environments, pools, members, aliases and
/// emoji with URLs on loopback and switches kept in memory (`api` starts on `blue`,
/// `cron` on `purple`).
pub fn shipped_like_config() -> Config {
    let mut config = crate::config::from_strs(
        "commands.yaml",
        COMMANDS_YAML,
        "instances.yaml",
        GROUPS_YAML,
        &|_| None,
        &crate::actions::names(),
    )
    .unwrap_or_else(|e| panic!("the shipped commands.yaml must load: {e}"));
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
        regions: Vec::new(),
        rollout: Default::default(),
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
        regions: Vec::new(),
        rollout: Default::default(),
        pos: Pos::default(),
    };
    config.environments = vec![master, staging];
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
            regions: Vec::new(),
            rollout: Default::default(),
            pos: Pos::default(),
        });
        e += 1;
    }
    config
}

/// `instances.yaml` of [`two_regions_config`]: `master` in regions `eu` (aliases
/// `europe`, `frankfurt`) and `us` (`us-east`, `virginia`), rolled out eu then us,
/// switches in memory; `staging` in one place.
pub const TWO_REGIONS_YAML: &str = r#"
groups:
  deployers: [U0DEPLOYER, U0ADMIN, U0DEMO]
  admins: [U0ADMIN, U0DEMO]
environments:
  master:
    aliases: [production, prod, rh, roih, roi hunter, live]
    emoji: [":red_circle:"]
    pools:
      api:
        aliases: [web, app]
        members:
          blue: { aliases: [rh blue, master blue], emoji: [":large_blue_circle:"] }
          green: { aliases: [rh green, master green], emoji: [":large_green_circle:"] }
      cron:
        aliases: [crons, jobs, worker]
        members:
          purple: { aliases: [rh purple] }
          yellow: { aliases: [rh yellow] }
    regions:
      eu:
        aliases: [europe, frankfurt]
        emoji: [":flag-eu:"]
        parameters: { REGION: eu-central-1 }
        pools:
          api:
            switch: { type: memory, initial: blue }
            members:
              blue: { url: "http://127.0.0.1:28081" }
              green: { url: "http://127.0.0.1:28082" }
          cron:
            switch: { type: memory, initial: purple }
            members:
              purple: { url: "http://127.0.0.1:28083" }
              yellow: { url: "http://127.0.0.1:28084" }
      us:
        aliases: [us-east, virginia]
        emoji: [":us:"]
        parameters: { REGION: us-east-1 }
        pools:
          api:
            switch: { type: memory, initial: blue }
            members:
              blue: { url: "http://127.0.0.1:28091" }
              green: { url: "http://127.0.0.1:28092" }
          cron:
            switch: { type: memory, initial: purple }
            members:
              purple: { url: "http://127.0.0.1:28093" }
              yellow: { url: "http://127.0.0.1:28094" }
    rollout:
      order: [eu, us]
      on_failure: halt
  staging:
    aliases: [stage, stg, preprod]
    pools:
      api:
        aliases: [web, app]
        switch: { type: memory, initial: blue }
        members:
          blue: { aliases: [staging blue, stage blue], url: "http://127.0.0.1:28085" }
          green: { aliases: [staging green, stage green], url: "http://127.0.0.1:28086" }
"#;

/// The shipped vocabulary with [`TWO_REGIONS_YAML`] as the platform.
pub fn two_regions_config() -> Config {
    crate::config::from_strs(
        "commands.yaml",
        COMMANDS_YAML,
        "instances.yaml",
        TWO_REGIONS_YAML,
        &|_| None,
        &crate::actions::names(),
    )
    .unwrap_or_else(|e| panic!("TWO_REGIONS_YAML must load: {e}"))
}

/// One environment, `platform`, in `regions` regions (`r0`, `r1`, …, rolled out in
/// that order) of `per_region` instances each (pools `p0`, `p1`, … of `blue` and
/// `green`, switches in memory); `url(region, n)` gives the n-th instance's base URL
/// in a region. For benchmarks of fan-out over regions.
pub fn generated_regions_config(
    regions: usize,
    per_region: usize,
    url: impl Fn(usize, usize) -> String,
) -> Config {
    let mut config = shipped_like_config();
    config.environments.clear();
    let mut template = Vec::new();
    for p in 0..per_region.div_ceil(2) {
        template.push(pool(
            &format!("p{p}"),
            &[],
            "blue",
            vec![instance("blue", &[], 1), instance("green", &[], 2)],
        ));
    }
    let regions: Vec<Region> = (0..regions)
        .map(|r| {
            let mut n = 0;
            let pools = template
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    p.region = Some(format!("r{r}"));
                    for m in &mut p.members {
                        m.url = url(r, n);
                        n += 1;
                    }
                    p
                })
                .collect();
            Region {
                name: format!("r{r}"),
                aliases: vec![format!("r{r}"), format!("region {r}")],
                emoji: Vec::new(),
                parameters: Vec::new(),
                pools,
                pos: Pos::default(),
            }
        })
        .collect();
    config.environments.push(Environment {
        name: "platform".into(),
        aliases: vec!["platform".into()],
        emoji: Vec::new(),
        protected: false,
        allowed: Vec::new(),
        pools: regions.first().map(|r| r.pools.clone()).unwrap_or_default(),
        rollout: Rollout {
            stages: regions.iter().map(|r| vec![r.name.clone()]).collect(),
            on_failure: OnFailure::Halt,
        },
        regions,
        pos: Pos::default(),
    });
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
        region: None,
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
