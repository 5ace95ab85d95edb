//! Fuzzes the reader of HAProxy's `show servers state` answer.
#![no_main]

use bot_core::adapters::haproxy::parse_servers_state;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The client reads answers as lossy UTF-8.
    let answer = String::from_utf8_lossy(data);
    if let Ok(servers) = parse_servers_state(&answer) {
        for s in servers {
            let _ = (s.describe(), s.taking_traffic(), s.ready());
        }
    }
});
