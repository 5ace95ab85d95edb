//! Fuzzes the Jenkins client's readers: queue items, builds and the URLs Jenkins names.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use bot_core::adapters::jenkins::{on_origin, read_build, read_queue_item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = read_queue_item(text);
        }
        1 => {
            let now = UNIX_EPOCH + Duration::from_millis(1_700_000_060_000);
            if let Ok(build) = read_build(text, now) {
                assert!(build.percent.is_none_or(|p| p <= 99));
            }
        }
        _ => {
            let (url, _) = on_origin("http://user:token@127.0.0.1:18090/jenkins", text);
            // Credentials only ever go to the configured origin.
            assert!(url.starts_with("http://user:token@127.0.0.1:18090/"), "{url}");
        }
    }
});
