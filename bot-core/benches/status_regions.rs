//! `status` over regions: one environment in 5 regions × 200 instances, probed over
//! loopback HTTP, with and without one region that hangs (accepts connections, never
//! answers). The hung region costs the probe timeout and no more: the other regions'
//! probes run beside it, not after it. Both runs side by side, same config, same
//! machine; the target is "hung ≤ probe timeout + 100 ms".
//!
//! `cargo bench -p bot-core --bench status_regions`

use std::time::{Duration, Instant};

use bot_core::testing::generated_regions_config;
use bot_core::{Bot, Outcome, Request};
use crossroads_sim::instance::{Behaviour, SimInstance};

const REGIONS: usize = 5;
const PER_REGION: usize = 200;
const TIMEOUT: Duration = Duration::from_millis(500);
const RUNS: usize = 7;
/// The region that hangs in the second run.
const HUNG: usize = 2;

async fn measure(hung: bool) -> Vec<Duration> {
    // One simulated server per region; every instance of the region answers from it.
    let mut servers = Vec::new();
    for r in 0..REGIONS {
        let sim = SimInstance::start(&format!("r{r}"), "1.0.0")
            .await
            .expect("instance");
        if hung && r == HUNG {
            sim.control().set_behaviour(Behaviour::Hang);
        }
        servers.push(sim);
    }
    let urls: Vec<String> = servers.iter().map(SimInstance::url).collect();
    let mut config = generated_regions_config(REGIONS, PER_REGION, |r, _| urls[r].clone());
    config.settings.probe_timeout = TIMEOUT;
    let bot = Bot::builder(config).build();
    let mut times = Vec::with_capacity(RUNS);
    // One unmeasured run to open connections.
    let _ = bot.handle(Request::text("U0DEMO", "status")).await;
    for _ in 0..RUNS {
        let started = Instant::now();
        let reply = bot.handle(Request::text("U0DEMO", "status")).await;
        times.push(started.elapsed());
        assert_eq!(reply.outcome, Outcome::Info);
        let text = reply.to_plain_text();
        let expected = if hung {
            format!("{}/{REGIONS} regions healthy", REGIONS - 1)
        } else {
            format!("{REGIONS}/{REGIONS} regions healthy")
        };
        assert!(text.contains(&expected), "{}", &text[..text.len().min(400)]);
    }
    for s in servers {
        s.shutdown().await;
    }
    times.sort();
    times
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    println!(
        "status of {REGIONS} regions × {PER_REGION} instances, probe timeout {}, {RUNS} runs each",
        ms(TIMEOUT)
    );
    println!("{:<28} {:>8} {:>8} {:>8}", "", "min", "median", "max");
    let base = measure(false).await;
    let hung = measure(true).await;
    for (name, t) in [
        ("all regions answer (baseline)", &base),
        ("one region hangs", &hung),
    ] {
        println!(
            "{:<28} {:>8} {:>8} {:>8}",
            name,
            ms(t[0]),
            ms(t[t.len() / 2]),
            ms(t[t.len() - 1])
        );
    }
    let median = hung[hung.len() / 2];
    println!(
        "one region hanging: median {} = probe timeout {} + {} (target: + ≤ 100 ms): {}",
        ms(median),
        ms(TIMEOUT),
        ms(median.saturating_sub(TIMEOUT)),
        if median <= TIMEOUT + Duration::from_millis(100) {
            "met"
        } else {
            "MISSED"
        }
    );
}
