//! Fuzzes every Slack payload parser: Events API bodies, interactions (form and JSON), slash commands (form and JSON) and Socket Mode frames.
#![no_main]

use bot_core::slack::{payload, socket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            let _ = payload::parse_events(body, Some("UBOT"));
        }
        1 => {
            let _ = payload::parse_interaction(body);
        }
        2 => {
            let _ = payload::parse_interaction_json(body);
        }
        3 => {
            let _ = payload::parse_command(body);
        }
        4 => {
            let _ = payload::parse_command_json(body);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = socket::parse_frame(text, Some("UBOT"));
            }
        }
    }
});
