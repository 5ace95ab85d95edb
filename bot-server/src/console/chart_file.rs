//! Charts in a terminal: each chart of a reply is rendered to a PNG file (in
//! `CROSSROADS_CHART_DIR`, else `<temp dir>/crossroads-charts`) and the reply says
//! where it went.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bot_core::chart::{render, ChartSpec};
use bot_core::{Part, Reply};

/// Where charts are saved: `CROSSROADS_CHART_DIR`, else `<temp dir>/crossroads-charts`.
pub fn chart_dir() -> PathBuf {
    bot_core::config::process_env("CROSSROADS_CHART_DIR")
        .filter(|d| !d.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("crossroads-charts"))
}

/// Renders `chart` into a new file in `dir`; its path.
pub fn save(chart: &ChartSpec, dir: &Path) -> Result<PathBuf, String> {
    let png = render(chart).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stem = chart.file_name();
    let stem = stem.trim_end_matches(".png");
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let path = dir.join(format!("{stem}-{millis}.png"));
    std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// `reply` with each chart saved to a file in `dir` and replaced by a line saying
/// where (or why it could not be saved).
pub fn saved(reply: &Reply, dir: &Path) -> Reply {
    let mut out = reply.clone();
    for part in &mut out.parts {
        if let Part::Chart(chart) = part {
            let line = match save(chart, dir) {
                Ok(path) => format!("Chart “{}” saved to {}", chart.title, path.display()),
                Err(why) => format!("The chart “{}” could not be saved: {why}", chart.title),
            };
            *part = Part::Context(line);
        }
    }
    out
}
