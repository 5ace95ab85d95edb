//! Fuzzes the config loader: YAML parsing, `${VAR}` interpolation and validation of both files.
#![no_main]

use libfuzzer_sys::fuzz_target;

const COMMANDS: &str = include_str!("../../commands.yaml");
const INSTANCES: &str = include_str!("../../instances.yaml");

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let env = |name: &str| (name == "SET").then(|| "value".to_owned());
    let (commands, instances) = match which % 3 {
        0 => (text, INSTANCES),
        1 => (COMMANDS, text),
        _ => text.split_once('\0').unwrap_or((text, "")),
    };
    if let Err(errors) = bot_core::load_strs_with_env(commands, instances, &env) {
        // Every error renders (file:line:column, what, hint).
        let _ = errors.to_string();
    }
});
