//! Table tests: how messages resolve against the shipped-like config.

use super::*;
use crate::lexer::tokenize;
use crate::testing::{generated_config, shipped_like_config};
use proptest::prelude::*;

/// One line per outcome, readable next to the input:
/// `command [qualifier] → instances | rest: … | params: …`.
fn outcome(index: &Index, config: &Config, input: &str) -> String {
    match index.parse(config, &tokenize(input)) {
        Parsed::Empty => "empty".into(),
        Parsed::NotACommand { word } => format!("not a command: {word}"),
        Parsed::Misspelt {
            typed, corrected, ..
        } => format!("misspelt {typed}: did you mean `{corrected}`?"),
        Parsed::Command(m) => {
            let mut line = config.commands[m.command].name.clone();
            match m.qualifier {
                Some(Qualifier::Active) => line.push_str(" [active]"),
                Some(Qualifier::Inactive) => line.push_str(" [inactive]"),
                None => {}
            }
            line.push_str(" → ");
            match index.candidates(config, &m.selectors) {
                Candidates::Instances(list) if list.len() == config.instances().count() => {
                    line.push_str("everything")
                }
                Candidates::Instances(list) => {
                    let names: Vec<String> = list.iter().map(ToString::to_string).collect();
                    line.push_str(&names.join(", "));
                }
                Candidates::Conflict(msg) => line.push_str(&format!("conflict: {msg}")),
            }
            if !m.rest.is_empty() {
                line.push_str(&format!(" | rest: {}", m.rest.join(", ")));
            }
            if !m.params.is_empty() {
                let params: Vec<String> =
                    m.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                line.push_str(&format!(" | params: {}", params.join(", ")));
            }
            line
        }
    }
}

const MASTER: &str = "master api blue, master api green, master cron purple, master cron yellow";
const STAGING: &str =
    "staging api blue, staging api green, staging cron purple, staging cron yellow";

fn check(table: &[(&str, &str)]) {
    let config = shipped_like_config();
    let index = Index::build(&config);
    let mut failures = Vec::new();
    for (input, expected) in table {
        let expected = expected
            .replace("{MASTER}", MASTER)
            .replace("{STAGING}", STAGING);
        let got = outcome(&index, &config, input);
        if got != expected {
            failures.push(format!(
                "{input:?}\n   expected: {expected}\n        got: {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_phrasing_of_master_api_blue() {
    check(&[
        ("health rh blue", "health → master api blue"),
        ("health blue rh", "health → master api blue"),
        ("health roi hunter blue", "health → master api blue"),
        ("health blue master roih hunter", "health → master api blue"),
        (
            "health :large_blue_circle: prod",
            "health → master api blue",
        ),
        ("HEALTH  Master   BLUE please", "health → master api blue"),
        ("health mastr blue", "health → master api blue"),
        ("health master blue", "health → master api blue"),
        ("health live blue", "health → master api blue"),
        ("health production api blue", "health → master api blue"),
        ("health roihunter blue", "health → master api blue"),
        ("health prdo blue", "health → master api blue"),
        ("health master bleu", "health → master api blue"),
        ("health rh blu", "health → master api blue"),
        ("health :blue_heart: :fire:", "health → master api blue"),
        ("<@U0BOT> health rh blue", "health → master api blue"),
        ("health <@U0BOT> rh blue", "health → master api blue"),
        ("hey please health rh blue", "health → master api blue"),
        (
            "can you check the master blue instance?",
            "health → master api blue",
        ),
        ("health check rh blue", "health → master api blue"),
        ("healthcheck rh blue!", "health → master api blue"),
        ("health master blue !", "health → master api blue"),
        (
            "health <http://127.0.0.1|RH> <#C1|blue>",
            "health → master api blue",
        ),
    ]);
}

#[test]
fn targets_narrow_by_every_word() {
    check(&[
        ("health", "health → everything"),
        ("health master", "health → {MASTER}"),
        ("health master active", "health [active] → {MASTER}"),
        ("health master current", "health [active] → {MASTER}"),
        ("health master idle", "health [inactive] → {MASTER}"),
        ("health staging standby", "health [inactive] → {STAGING}"),
        ("restart rh inactive", "restart [inactive] → {MASTER}"),
        ("restart rh inactve", "restart [inactive] → {MASTER}"),
        // As close to `active` as to `inactive`: not understood, never a guess.
        (
            "force restart rh iactive",
            "force restart → {MASTER} | rest: iactive",
        ),
        (
            "health staging cron",
            "health → staging cron purple, staging cron yellow",
        ),
        (
            "health web",
            "health → master api blue, master api green, staging api blue, staging api green",
        ),
        ("health blue", "health → master api blue, staging api blue"),
        ("health :construction: green", "health → staging api green"),
        ("health :fire: purple", "health → master cron purple"),
        ("health stg yellow", "health → staging cron yellow"),
        ("health stage blue", "health → staging api blue"),
        ("health stagign green", "health → staging api green"),
        (
            "health staging worker active",
            "health [active] → staging cron purple, staging cron yellow",
        ),
        (
            "health active inactive master",
            "health [active] → {MASTER} | rest: inactive",
        ),
        ("status", "status → everything"),
        ("status staging", "status → {STAGING}"),
        ("history master", "history → {MASTER}"),
    ]);
}

#[test]
fn the_longest_command_phrase_wins() {
    check(&[
        (
            "force restart master active",
            "force restart [active] → {MASTER}",
        ),
        (
            "restart force master blue",
            "force restart → master api blue",
        ),
        ("force reboot rh green", "force restart → master api green"),
        ("restart master blue", "restart → master api blue"),
        (
            "show tasks master purple",
            "show tasks → master cron purple",
        ),
        (
            "tasks staging cron active",
            "show tasks [active] → staging cron purple, staging cron yellow",
        ),
        ("list tasks rh yellow", "show tasks → master cron yellow"),
        ("roll back staging", "rollback → {STAGING}"),
        (
            "switch traffic staging api green",
            "switch → staging api green",
        ),
        ("clear cache staging", "clear cache → {STAGING}"),
        ("toy db", "toy → everything"),
        ("?", "help → everything"),
        ("help?", "help → everything"),
        ("help deploy", "help → everything | rest: deploy"),
        (
            "help force restart",
            "help → everything | rest: force, restart",
        ),
    ]);
}

#[test]
fn leftover_words_and_arguments() {
    check(&[
        (
            "deploy staging feature/login",
            "deploy → {STAGING} | rest: feature/login",
        ),
        (
            "deploy staging api feature/login",
            "deploy → staging api blue, staging api green | rest: feature/login",
        ),
        (
            "deploy staging <https://github.com/o/r/tree/Feature|feature/Login>",
            "deploy → {STAGING} | rest: feature/login",
        ),
        ("deploy staging v1.2.3", "deploy → {STAGING} | rest: v1.2.3"),
        (
            "deploy staging ref=Feature/X",
            "deploy → {STAGING} | params: ref=Feature/X",
        ),
        (
            "lock master \"Release Freeze\"",
            "lock → {MASTER} | rest: Release Freeze",
        ),
        (
            "lock master release freeze",
            "lock → {MASTER} | rest: release, freeze",
        ),
        (
            "health master blue banana",
            "health → master api blue | rest: banana",
        ),
        (
            "health master blue :tada:",
            "health → master api blue | rest: :tada:",
        ),
        (
            "please deploy the staging env now thanks",
            "deploy → {STAGING}",
        ),
    ]);
}

#[test]
fn misspelt_commands_are_suggested_never_run() {
    check(&[
        (
            "helth rh blue",
            "misspelt helth: did you mean `health rh blue`?",
        ),
        (
            "deplyo staging",
            "misspelt deplyo: did you mean `deploy staging`?",
        ),
        (
            "restrat master blue",
            "misspelt restrat: did you mean `restart master blue`?",
        ),
        (
            "Restrat Master Blue!",
            "misspelt restrat: did you mean `restart master blue`?",
        ),
        (
            "shwo tasks master purple",
            "misspelt shwo tasks: did you mean `show tasks master purple`?",
        ),
        (
            "forse restart master active",
            "misspelt forse restart: did you mean `force restart master active`?",
        ),
        ("stauts", "misspelt stauts: did you mean `status`?"),
        ("hlep", "misspelt hlep: did you mean `help`?"),
        (
            "please restrat master blue",
            "misspelt restrat: did you mean `restart master blue`?",
        ),
        (
            "reboto master",
            "misspelt reboto: did you mean `restart master`?",
        ),
        (
            "deplyo staging \"Big Fix\" ref=x :fire:",
            "misspelt deplyo: did you mean `deploy staging \"Big Fix\" ref=x :fire:`?",
        ),
    ]);
}

#[test]
fn not_commands_and_nothing_at_all() {
    check(&[
        ("banana split", "not a command: banana"),
        ("master blue", "not a command: master"),
        ("dep staging", "not a command: dep"),
        (":rocket: deploy", "not a command: :rocket:"),
        ("hey", "empty"),
        ("", "empty"),
        ("<@U0BOT>", "empty"),
        ("please thanks !", "empty"),
        ("<!here>", "empty"),
    ]);
}

#[test]
fn conflicts_say_which_words_clash_and_what_exists() {
    check(&[
        (
            "health staging rh blue",
            "health → conflict: `staging` and `rh blue` don't name a common instance: \
             `staging` is the staging environment (pools api and cron); \
             `rh blue` is master api blue.",
        ),
        (
            "health staging cron blue",
            "health → conflict: `cron` and `blue` don't name a common instance: \
             `cron` names the master cron pool (purple, yellow) and the staging cron pool \
             (purple, yellow); `blue` names master api blue and staging api blue.",
        ),
        (
            "health :construction: :fire:",
            "health → conflict: `:construction:` and `:fire:` don't name a common instance: \
             `:construction:` is the staging environment (pools api and cron); \
             `:fire:` is the master environment (pools api and cron).",
        ),
        (
            "health stagign rh purple",
            "health → conflict: `stagign` (read as `staging`) and `rh purple` don't name a \
             common instance: `stagign` (read as `staging`) is the staging environment \
             (pools api and cron); `rh purple` is master cron purple.",
        ),
    ]);
}

#[test]
fn selectors_record_what_was_typed_and_what_it_was_read_as() {
    let config = shipped_like_config();
    let index = Index::build(&config);
    let selectors = |input: &str| -> Vec<(String, Option<String>)> {
        match index.parse(&config, &tokenize(input)) {
            Parsed::Command(m) => m
                .selectors
                .into_iter()
                .map(|s| (s.words, s.corrected))
                .collect(),
            other => panic!("{input:?} parsed as {other:?}"),
        }
    };
    let typed = |w: &str| (w.to_string(), None);
    let read = |w: &str, alias: &str| (w.to_string(), Some(alias.to_string()));
    assert_eq!(
        selectors("health blue master roih hunter"),
        vec![
            typed("blue"),
            typed("master"),
            read("roih hunter", "roi hunter")
        ]
    );
    assert_eq!(
        selectors("health mastr blue"),
        vec![read("mastr blue", "master blue")]
    );
    assert_eq!(selectors("health roih"), vec![typed("roih")]);
    assert_eq!(
        selectors("health stg blue"),
        vec![typed("stg"), typed("blue")]
    );
    assert_eq!(selectors("health rh blu"), vec![read("rh blu", "rh blue")]);
    assert_eq!(
        selectors("health :large_blue_circle: prod"),
        vec![typed(":large_blue_circle:"), typed("prod")]
    );
}

#[test]
fn instance_aliases_name_exactly_one_instance() {
    let config = shipped_like_config();
    let index = Index::build(&config);
    let Parsed::Command(m) = index.parse(&config, &tokenize("health rh blue")) else {
        panic!("not a command");
    };
    assert_eq!(m.selectors.len(), 1);
    assert_eq!(m.selectors[0].matches, vec![Referent::Instance(0, 0, 0)]);
}

#[test]
fn a_large_platform_resolves_the_same_way() {
    let config = generated_config(5_000);
    assert_eq!(config.instances().count(), 5_000);
    let index = Index::build(&config);
    let one = |input: &str| match index.parse(&config, &tokenize(input)) {
        Parsed::Command(m) => match index.candidates(&config, &m.selectors) {
            Candidates::Instances(list) => list.iter().map(ToString::to_string).collect::<Vec<_>>(),
            Candidates::Conflict(msg) => vec![msg],
        },
        other => vec![format!("{other:?}")],
    };
    assert_eq!(one("health e17 blue"), vec!["env17 api blue"]);
    assert_eq!(one("health evn123 purple"), vec!["env123 cron purple"]);
    assert_eq!(
        one("health cluster 42 search white"),
        vec!["env42 search white"]
    );
    assert_eq!(
        one("health clustre 42 etl"),
        vec!["env42 batch cyan", "env42 batch magenta"]
    );
    assert_eq!(one("health blue").len(), 500);
}

#[test]
fn stale_referents_are_ignored_not_trusted() {
    let config = shipped_like_config();
    let index = Index::build(&config);
    let bogus = Selector {
        words: "ghost".into(),
        corrected: None,
        matches: vec![
            Referent::Instance(9, 9, 9),
            Referent::Pool(0, 7),
            Referent::Env(5),
        ],
    };
    assert!(matches!(
        index.candidates(&config, &[bogus]),
        Candidates::Conflict(_)
    ));
}

/// What `candidates` must equal: every instance each selector names, in config order.
fn brute_force(config: &Config, selectors: &[Selector]) -> Vec<InstanceRef> {
    let mut out = Vec::new();
    for (e, env) in config.environments.iter().enumerate() {
        for (p, pool) in env.pools.iter().enumerate() {
            for (m, member) in pool.members.iter().enumerate() {
                let named = |s: &Selector| {
                    s.matches.contains(&Referent::Env(e))
                        || s.matches.contains(&Referent::Pool(e, p))
                        || s.matches.contains(&Referent::Instance(e, p, m))
                };
                if selectors.iter().all(named) {
                    out.push(InstanceRef {
                        env: env.name.clone(),
                        pool: pool.name.clone(),
                        member: member.name.clone(),
                        region: None,
                    });
                }
            }
        }
    }
    out
}

#[test]
fn candidates_agree_with_a_brute_force_filter() {
    // 300 instances: `blue` names 30, `api` names 30 pools (60 instances), so both the
    // span intersection and the per-instance membership test are exercised.
    let config = generated_config(300);
    let index = Index::build(&config);
    let words = [
        "e3",
        "env7",
        "cluster 12",
        "api",
        "jobs",
        "search",
        "blue",
        "white",
        "e3 blue",
        "env7 purple",
        ":large_blue_circle:",
        "e29 black",
    ];
    let selector = |w: &str| -> Selector {
        match index.parse(&config, &tokenize(&format!("health {w}"))) {
            Parsed::Command(m) if m.selectors.len() == 1 => m.selectors[0].clone(),
            other => panic!("{w:?} parsed as {other:?}"),
        }
    };
    let selectors: Vec<Selector> = words.iter().map(|w| selector(w)).collect();
    let mut checked = 0;
    for a in 0..selectors.len() {
        for b in 0..selectors.len() {
            for c in [None, Some(0), Some(3), Some(6)] {
                let mut chosen = vec![selectors[a].clone(), selectors[b].clone()];
                chosen.extend(c.map(|c| selectors[c].clone()));
                let expected = brute_force(&config, &chosen);
                match index.candidates(&config, &chosen) {
                    Candidates::Instances(got) => assert_eq!(got, expected, "{chosen:?}"),
                    Candidates::Conflict(msg) => {
                        assert!(expected.is_empty(), "conflict {msg} but {expected:?}")
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 12 * 12 * 4);
}

proptest! {
    #[test]
    fn parse_and_candidates_never_panic(
        text in "(\\PC|[<>:&\"'“”=|@#!\u{0}-\u{1f} ]|health |rh |blue |roi hunter |force restart |:fire:|<@U1>|mastr |active ){0,40}"
    ) {
        let config = shipped_like_config();
        let index = Index::build(&config);
        let tokens = tokenize(&text);
        if let Parsed::Command(m) = index.parse(&config, &tokens) {
            let _ = index.candidates(&config, &m.selectors);
        }
    }
}

/// Like [`check`], on a platform where master runs in two regions.
fn check_regions(table: &[(&str, &str)]) {
    let config = crate::testing::two_regions_config();
    let index = Index::build(&config);
    let mut failures = Vec::new();
    for (input, expected) in table {
        let got = outcome(&index, &config, input);
        if got != *expected {
            failures.push(format!(
                "{input:?}\n   expected: {expected}\n        got: {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn region_aliases_are_selectors_in_any_order_with_typos() {
    check_regions(&[
        ("health prod eu blue", "health → master eu api blue"),
        ("health blue virginia master", "health → master us api blue"),
        ("health europe rh blue", "health → master eu api blue"),
        ("health rh blue frankfurt", "health → master eu api blue"),
        ("health us-east master green", "health → master us api green"),
        // Typos: 4+ characters, one edit; 8+ characters, two.
        ("health blue virgina master", "health → master us api blue"),
        ("health frankfrut blue", "health → master eu api blue"),
        ("health europa blue", "health → master eu api blue"),
        (
            "status us",
            "status → master us api blue, master us api green, master us cron purple, master us cron yellow",
        ),
        (
            "deploy master us",
            "deploy → master us api blue, master us api green, master us cron purple, master us cron yellow",
        ),
        ("deploy us master api", "deploy → master us api blue, master us api green"),
        // No region named: every region's.
        ("health master blue", "health → master eu api blue, master us api blue"),
        ("restart purple", "restart → master eu cron purple, master us cron purple"),
        // Environments without regions are as before.
        ("health staging blue", "health → staging api blue"),
        (
            "health staging eu blue",
            "health → conflict: `staging` and `eu` don't name a common instance: `staging` is the staging environment (pools api); `eu` is the eu region of master.",
        ),
    ]);
}

#[test]
fn region_targets_project_onto_commands() {
    use crate::resolve::targets::project;
    let config = crate::testing::two_regions_config();
    let index = Index::build(&config);
    let target = |input: &str| -> Vec<String> {
        let Parsed::Command(m) = index.parse(&config, &tokenize(input)) else {
            panic!("{input}: not a command");
        };
        let Candidates::Instances(list) = index.candidates(&config, &m.selectors) else {
            panic!("{input}: conflict");
        };
        let named = !m.selectors.is_empty();
        project(&config.commands[m.command], &list, named, &m)
            .iter()
            .map(|t| format!("{t:?}"))
            .collect()
    };
    assert_eq!(
        target("deploy master us"),
        [r#"Region { env: "master", region: "us", pools: [] }"#]
    );
    assert_eq!(
        target("deploy virginia prod api"),
        [r#"Region { env: "master", region: "us", pools: ["api"] }"#]
    );
    assert_eq!(
        target("deploy master"),
        [r#"Env { env: "master", pools: [] }"#]
    );
    // One instance needed, no region named: one choice per region.
    assert_eq!(target("health master blue").len(), 2);
    assert_eq!(target("status"), ["None"]);
}
