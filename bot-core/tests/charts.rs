//! Charts: a Chart.js-shaped description becomes a PNG that decodes, has the size it
//! states and shows its data; a bad description is refused with its reason.

use std::collections::HashSet;

use bot_core::chart::{render, ChartSpec, Dataset, Kind};

/// Decodes `png`: its size and its RGB pixels.
fn decode(png: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

fn deploys() -> ChartSpec {
    let labels: Vec<String> = (1..=30).map(|d| format!("11-{d:02}")).collect();
    let ok: Vec<Option<f64>> = (0..30).map(|i| Some(f64::from(i % 5))).collect();
    let failed: Vec<Option<f64>> = (0..30).map(|i| Some(f64::from(i % 3 == 0))).collect();
    let median: Vec<Option<f64>> = (0..30)
        .map(|i| (i % 4 != 0).then_some(3.0 + f64::from(i % 7)))
        .collect();
    let mut spec = ChartSpec::new(Kind::Bar, "Deploys on staging, last 30 days", labels)
        .dataset(
            Dataset::new("succeeded", ok)
                .stack("outcome")
                .color("#2eb67d"),
        )
        .dataset(
            Dataset::new("failed", failed)
                .stack("outcome")
                .color("#e01e5a"),
        )
        .dataset(
            Dataset::new("median minutes", median)
                .kind(Kind::Line)
                .on_right_axis()
                .color("#1d9bd1"),
        );
    spec.options = Some(
        serde_json::json!({"scales": {"y": {"title": {"text": "deploys"}}, "y1": {"title": {"text": "minutes"}}}}),
    );
    spec
}

#[test]
fn a_chart_is_a_png_of_the_stated_size_showing_its_data() {
    let spec = deploys();
    let png = render(&spec).expect("renders");
    let (w, h, pixels) = decode(&png);
    assert_eq!((w, h), (800, 400));
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(colours.len() > 20, "only {} colours: blank?", colours.len());
    // Each dataset's own colour is on the image.
    for c in [[0x2e, 0xb6, 0x7d], [0xe0, 0x1e, 0x5a], [0x1d, 0x9b, 0xd1]] {
        let count = pixels.iter().filter(|p| **p == c).count();
        assert!(count > 50, "colour {c:?} drawn on {count} pixels only");
    }
    // Mostly background, but far from all of it.
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(
        white < pixels.len() * 95 / 100,
        "{white} of {} white",
        pixels.len()
    );
    if let Ok(dir) = std::env::var("CHART_ARTEFACTS") {
        std::fs::write(format!("{dir}/deploys.png"), &png).expect("artefact");
    }
}

#[test]
fn a_line_chart_with_gaps_and_a_chosen_size_renders() {
    let labels: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
    let data = (0..24)
        .map(|h| (h != 5 && h != 6).then_some(20.0 + f64::from(h % 6) * 7.5))
        .collect();
    let mut spec = ChartSpec::new(Kind::Line, "Latency of staging blue (ms)", labels)
        .dataset(Dataset::new("p50", data));
    spec.width = Some(640);
    spec.height = Some(320);
    let png = render(&spec).expect("renders");
    let (w, h, pixels) = decode(&png);
    assert_eq!((w, h), (640, 320));
    let colours: HashSet<[u8; 3]> = pixels.into_iter().collect();
    assert!(colours.len() > 10, "{} colours", colours.len());
    if let Ok(dir) = std::env::var("CHART_ARTEFACTS") {
        std::fs::write(format!("{dir}/latency.png"), &png).expect("artefact");
    }
}

#[test]
fn a_chart_without_any_value_still_renders_its_frame() {
    let spec = ChartSpec::new(Kind::Bar, "Nothing yet", vec!["a".into(), "b".into()])
        .dataset(Dataset::new("none", vec![None, None]));
    let (w, h, _) = decode(&render(&spec).expect("renders"));
    assert_eq!((w, h), (800, 400));
}

#[test]
fn a_bad_description_is_refused_with_its_reason() {
    let spec = ChartSpec::new(Kind::Bar, "x", vec!["a".into(), "b".into()])
        .dataset(Dataset::new("short", vec![Some(1.0)]));
    let err = render(&spec).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "dataset 1 (`short`) has 1 values for 2 labels"
    );
    let err = ChartSpec::from_json(
        br#"{"type":"doughnut","labels":["a"],"datasets":[{"label":"x","data":[1]}]}"#,
    )
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "`type` must be `line` or `bar`, got `doughnut`"
    );
}

// ------------------------------------------------------------ chat commands

mod commands {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use bot_core::adapters::store::memory::MemoryStore;
    use bot_core::chart::render;
    use bot_core::ports::{AuditRecord, Store};
    use bot_core::testing::shipped_like_config;
    use bot_core::{Bot, Outcome, Part, Reply, Request};

    const DAY: u64 = 86_400;
    /// 2026-11-30T12:00:00Z.
    const NOW: u64 = 1_796_040_000;

    fn at(days_ago: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW - days_ago * DAY)
    }

    async fn bot_with_history() -> Bot {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let rows = [
            (1, "staging", "ok", 240),
            (1, "staging", "ok", 300),
            (1, "staging", "failed: the health gate timed out", 120),
            (3, "staging", "ok", 360),
            (3, "master", "ok", 600),
            (5, "staging", "refused: staging is locked", 0),
            (40, "staging", "ok", 100),
        ];
        // Appended as they happened: oldest first.
        for (days_ago, env, outcome, secs) in rows.into_iter().rev() {
            store
                .append(AuditRecord {
                    at: at(days_ago),
                    user: "U0DEPLOYER".into(),
                    command: "deploy".into(),
                    target: env.into(),
                    env: Some(env.into()),
                    args: String::new(),
                    outcome: outcome.into(),
                    duration: Some(Duration::from_secs(secs)),
                    links: Vec::new(),
                })
                .await
                .expect("append");
        }
        Bot::builder(shipped_like_config())
            .store(store)
            .clock(Arc::new(|| at(0)))
            .build()
    }

    async fn say(bot: &Bot, text: &str) -> Reply {
        bot.handle(Request::text("U0DEMO", text)).await
    }

    #[tokio::test]
    async fn chart_deploys_answers_a_summary_and_a_chart_of_the_window() {
        let bot = bot_with_history().await;
        let reply = say(&bot, "chart deploys staging 7d").await;
        assert_eq!(reply.outcome, Outcome::Info, "{}", reply.to_plain_text());
        let text = reply.to_plain_text();
        assert!(
            text.contains("Deploys on staging, last 7 days*: 5 (3 succeeded, 1 failed, 1 refused); median successful deploy 5m 00s."),
            "{text}"
        );
        let charts: Vec<_> = reply.charts().collect();
        assert_eq!(charts.len(), 1);
        let chart = charts[0];
        assert_eq!(chart.labels.len(), 7);
        assert_eq!(chart.labels.last().map(String::as_str), Some("11-30"));
        let labels: Vec<&str> = chart.datasets.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "succeeded",
                "failed",
                "refused",
                "median minutes (succeeded)"
            ]
        );
        // Yesterday: two successes and a failure, a median of 4.5 minutes.
        assert_eq!(chart.datasets[0].data[5], Some(2.0));
        assert_eq!(chart.datasets[1].data[5], Some(1.0));
        assert_eq!(chart.datasets[3].data[5], Some(4.5));
        render(chart).expect("the chart renders");
        // The Slack message text carries the summary, not the chart.
        assert!(reply.blocks().len() == 1, "{:?}", reply.blocks());
    }

    #[tokio::test]
    async fn chart_deploys_defaults_to_thirty_days_of_every_environment() {
        let bot = bot_with_history().await;
        let reply = say(&bot, "chart deploys").await;
        let text = reply.to_plain_text();
        assert!(
            text.contains("Deploys on every environment, last 30 days*: 6 ("),
            "{text}"
        );
        assert_eq!(reply.charts().next().map(|c| c.labels.len()), Some(30));
    }

    #[tokio::test]
    async fn chart_deploys_without_deploys_says_so_without_a_chart() {
        let bot = bot_with_history().await;
        let reply = say(&bot, "chart deploys master 2d").await;
        assert_eq!(
            reply.to_plain_text(),
            "No deploys on master in the last 2 days."
        );
        assert!(reply.parts.iter().all(|p| !matches!(p, Part::Chart(_))));
    }

    #[tokio::test]
    async fn a_bad_window_is_refused_with_the_usage() {
        let bot = bot_with_history().await;
        let reply = say(&bot, "chart deploys staging 900d").await;
        assert_eq!(reply.outcome, Outcome::Rejected);
        assert!(
            reply
                .to_plain_text()
                .contains("`900d` is not a time window")
                && reply.to_plain_text().contains("chart deploys [env] [30d]"),
            "{}",
            reply.to_plain_text()
        );
    }

    #[tokio::test]
    async fn a_misspelt_chart_command_is_suggested_and_help_lists_it() {
        let bot = bot_with_history().await;
        let reply = say(&bot, "chrat deploys staging").await;
        assert_eq!(
            reply.outcome,
            Outcome::Suggestion,
            "{}",
            reply.to_plain_text()
        );
        assert!(
            reply.to_plain_text().contains("chart deploys staging"),
            "{}",
            reply.to_plain_text()
        );
        let help = say(&bot, "help").await.to_plain_text();
        assert!(help.contains("chart deploys"), "{help}");
        let help = say(&bot, "help chart deploys").await.to_plain_text();
        assert!(help.contains("median duration"), "{help}");
    }

    // -------------------------------------------------------- from probes

    use bot_core::config::InstanceRef;
    use bot_core::ports::watch::{instance_target, Health, ProbeLog, ProbeRecord};

    fn staging(member: &str) -> String {
        instance_target(&InstanceRef {
            env: "staging".into(),
            pool: "api".into(),
            member: member.into(),
            region: None,
        })
    }

    /// Probes every 10 minutes over the last day: blue answers in 20–49 ms, and is
    /// down for the last two hours; green always answers in 100 ms.
    async fn bot_with_probes() -> Bot {
        let store = Arc::new(MemoryStore::new());
        let mut records = Vec::new();
        for i in 0..144u64 {
            let when = at(0) - Duration::from_secs((144 - i) * 600);
            let down = i >= 132;
            records.push(ProbeRecord {
                target: staging("blue"),
                at: when,
                health: if down { Health::NotOk } else { Health::Ok },
                latency: Some(Duration::from_millis(if down { 2000 } else { 20 + i % 30 })),
                status: (!down).then_some(200),
                version: None,
                reason: down.then(|| "connection refused".to_owned()),
                count: 1,
            });
            records.push(ProbeRecord {
                target: staging("green"),
                at: when,
                health: Health::Ok,
                latency: Some(Duration::from_millis(100)),
                status: Some(200),
                version: None,
                reason: None,
                count: 1,
            });
        }
        store.record_probes(&records).await.expect("record");
        Bot::builder(shipped_like_config())
            .store(store)
            .clock(Arc::new(|| at(0)))
            .build()
    }

    #[tokio::test]
    async fn chart_latency_shows_p50_and_p95_of_answered_probes() {
        let bot = bot_with_probes().await;
        let reply = say(&bot, "chart latency staging blue").await;
        assert_eq!(reply.outcome, Outcome::Info, "{}", reply.to_plain_text());
        let text = reply.to_plain_text();
        assert!(
            text.contains("Latency of staging api blue, last day*: 144 probes, median 33ms, p95 48ms; 12 failed (not in the latency)."),
            "{text}"
        );
        let chart = reply.charts().next().expect("a chart");
        assert_eq!(chart.labels.len(), 48);
        assert_eq!(chart.datasets.len(), 2);
        // The last buckets hold only failed probes: no latency there.
        assert_eq!(chart.datasets[0].data.last(), Some(&None));
        let (w, h, _) = super::decode(&render(chart).expect("renders"));
        assert_eq!((w, h), (800, 400));
    }

    #[tokio::test]
    async fn chart_uptime_shows_each_instance_share_of_ok_probes() {
        let bot = bot_with_probes().await;
        let reply = say(&bot, "chart uptime staging 1d").await;
        let text = reply.to_plain_text();
        assert!(
            text.contains("Uptime of staging, last day*: lowest staging api blue 91.7%."),
            "{text}"
        );
        let chart = reply.charts().next().expect("a chart");
        assert_eq!(
            chart.labels,
            [
                "staging api blue",
                "staging api green",
                "staging cron purple",
                "staging cron yellow"
            ]
        );
        assert_eq!(
            chart.datasets[0].data,
            vec![Some(91.7), Some(100.0), None, None]
        );
        render(chart).expect("renders");
    }

    #[tokio::test]
    async fn charts_of_probes_say_when_nothing_was_probed() {
        let bot = bot_with_history().await;
        let reply = say(&bot, "chart latency staging blue").await;
        assert_eq!(
            reply.to_plain_text(),
            "No probes of staging api blue stored for the last day. The monitor is off (no `monitor:` in instances.yaml), so nothing is probed in the background."
        );
        let reply = say(&bot, "chart uptime").await;
        assert!(
            reply
                .to_plain_text()
                .starts_with("No probes of every instance and check stored for the last 7 days."),
            "{}",
            reply.to_plain_text()
        );
        let reply = say(&bot, "chart latency staging blue 90d").await;
        assert_eq!(reply.outcome, Outcome::Rejected);
        assert!(
            reply.to_plain_text().contains("up to 30d"),
            "{}",
            reply.to_plain_text()
        );
    }
}
