//! The Chart.js-shaped chart description ([`ChartSpec`]) and its validation, which
//! names what is wrong in one sentence ([`ChartError`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default image width in pixels.
pub const DEFAULT_WIDTH: u32 = 800;
/// Default image height in pixels.
pub const DEFAULT_HEIGHT: u32 = 400;
/// Narrowest and widest image accepted.
pub const WIDTHS: std::ops::RangeInclusive<u32> = 200..=2000;
/// Lowest and highest image accepted.
pub const HEIGHTS: std::ops::RangeInclusive<u32> = 150..=1500;
/// Most labels (points along the x axis).
pub const MAX_LABELS: usize = 1000;
/// Most datasets (series).
pub const MAX_DATASETS: usize = 12;
/// Longest title, label or axis title, in characters.
pub const MAX_TEXT: usize = 200;
/// Largest magnitude of a value.
pub const MAX_VALUE: f64 = 1e15;

/// How a chart (or one of its datasets) is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Points joined by lines.
    Line,
    /// Bars, side by side or stacked.
    Bar,
}

/// Which value axis a dataset is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// The left axis (`yAxisID: "y"`, the default).
    Left,
    /// The right axis (`yAxisID: "y1"`).
    Right,
}

/// One series of a chart, as Chart.js writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// Its name in the legend.
    pub label: String,
    /// One value per label; `null` for none (a gap in a line, no bar).
    pub data: Vec<Option<f64>>,
    /// Drawn as this instead of the chart's type (a line over bars).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Bars with the same `stack` are stacked on one another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// `y` (left, default) or `y1` (right).
    #[serde(default, rename = "yAxisID", skip_serializing_if = "Option::is_none")]
    pub y_axis_id: Option<String>,
    /// Fill colour, `#rgb` or `#rrggbb` (default: from the palette).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    /// Line colour, `#rgb` or `#rrggbb` (default: the fill colour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border_color: Option<String>,
}

impl Dataset {
    /// A dataset named `label` with `data`.
    pub fn new(label: impl Into<String>, data: Vec<Option<f64>>) -> Self {
        Self {
            label: label.into(),
            data,
            kind: None,
            stack: None,
            y_axis_id: None,
            background_color: None,
            border_color: None,
        }
    }

    /// Drawn as `kind` whatever the chart's type.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Stacked with the other bars of group `stack`.
    pub fn stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// Measured on the right axis.
    pub fn on_right_axis(mut self) -> Self {
        self.y_axis_id = Some("y1".into());
        self
    }

    /// Filled (and drawn) in `hex` (`#rrggbb`).
    pub fn color(mut self, hex: impl Into<String>) -> Self {
        self.background_color = Some(hex.into());
        self
    }

    /// The axis it is measured on; `None` for an id other than `y` and `y1`.
    pub fn axis(&self) -> Option<Axis> {
        match self.y_axis_id.as_deref() {
            None | Some("y") => Some(Axis::Left),
            Some("y1") => Some(Axis::Right),
            Some(_) => None,
        }
    }
}

/// A chart as Chart.js describes one, flattened: `type`, `title`, `labels`,
/// `datasets[{label, data, …}]`, plus the image size. Unknown fields are ignored
/// (as Chart.js does), so `options` may come along; `options.scales.{x,y}.stacked`
/// and `options.scales.{y,y1}.title.text` are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartSpec {
    /// `line` or `bar`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Shown above the chart; also the file's title in Slack.
    #[serde(default)]
    pub title: String,
    /// The x axis: one label per point.
    pub labels: Vec<String>,
    /// The series.
    pub datasets: Vec<Dataset>,
    /// Image width in pixels (default 800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height in pixels (default 400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Stack every bar (Chart.js: `options.scales.x.stacked`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stacked: bool,
    /// Chart.js options; only the scales' `stacked` and `title.text` are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// What is wrong with a chart description: one sentence for the person who sent it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChartError {
    /// The body is not a chart description at all.
    #[error("not a chart description: {0}")]
    Shape(String),
    /// `type` is not `line` or `bar`.
    #[error("`type` must be `line` or `bar`, got `{0}`")]
    Kind(String),
    /// No labels, or too many.
    #[error("`labels` must have 1 to {MAX_LABELS} entries, got {0}")]
    Labels(usize),
    /// No datasets, or too many.
    #[error("`datasets` must have 1 to {MAX_DATASETS} entries, got {0}")]
    Datasets(usize),
    /// A dataset's values do not match the labels one to one.
    #[error("dataset {index} (`{label}`) has {values} values for {labels} labels")]
    Length {
        /// Position from 1.
        index: usize,
        /// Its label.
        label: String,
        /// Its number of values.
        values: usize,
        /// The number of labels.
        labels: usize,
    },
    /// A value is too large to draw.
    #[error("dataset {index} (`{label}`) has a value beyond ±{MAX_VALUE:e}")]
    Value {
        /// Position from 1.
        index: usize,
        /// Its label.
        label: String,
    },
    /// A `yAxisID` other than `y` and `y1`.
    #[error("dataset {index} (`{label}`): `yAxisID` must be `y` or `y1`, got `{given}`")]
    AxisId {
        /// Position from 1.
        index: usize,
        /// Its label.
        label: String,
        /// What was given.
        given: String,
    },
    /// A colour that is not `#rgb` or `#rrggbb`.
    #[error("dataset {index} (`{label}`): colour `{given}` is not `#rgb` or `#rrggbb`")]
    Color {
        /// Position from 1.
        index: usize,
        /// Its label.
        label: String,
        /// What was given.
        given: String,
    },
    /// The image size is out of range.
    #[error("`{what}` must be from {min} to {max} pixels, got {given}")]
    Size {
        /// `width` or `height`.
        what: &'static str,
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
        /// What was given.
        given: u32,
    },
    /// A title or label is too long.
    #[error("{what} is longer than {MAX_TEXT} characters")]
    TooLong {
        /// Which text.
        what: String,
    },
    /// Drawing failed (a bug, not the sender's fault).
    #[error("the chart could not be drawn")]
    Draw(String),
}

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// `#rgb` or `#rrggbb` as a colour.
pub fn parse_color(text: &str) -> Option<Rgb> {
    let hex = text.trim().strip_prefix('#')?;
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |s: &str| u8::from_str_radix(s, 16).ok();
    match hex.len() {
        3 => {
            let mut d = hex.chars().map(|c| {
                let s = c.to_string();
                byte(&format!("{s}{s}"))
            });
            Some((d.next()??, d.next()??, d.next()??))
        }
        6 => Some((byte(&hex[0..2])?, byte(&hex[2..4])?, byte(&hex[4..6])?)),
        _ => None,
    }
}

impl ChartSpec {
    /// A chart of `kind` titled `title` over `labels`, without datasets yet.
    pub fn new(kind: Kind, title: impl Into<String>, labels: Vec<String>) -> Self {
        Self {
            kind: match kind {
                Kind::Line => "line".into(),
                Kind::Bar => "bar".into(),
            },
            title: title.into(),
            labels,
            datasets: Vec::new(),
            width: None,
            height: None,
            stacked: false,
            options: None,
        }
    }

    /// Adds a dataset.
    pub fn dataset(mut self, dataset: Dataset) -> Self {
        self.datasets.push(dataset);
        self
    }

    /// Reads a chart description from JSON, checked.
    pub fn from_json(json: &[u8]) -> Result<Self, ChartError> {
        let spec: ChartSpec =
            serde_json::from_slice(json).map_err(|e| ChartError::Shape(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The chart's type.
    pub fn chart_kind(&self) -> Result<Kind, ChartError> {
        match self.kind.as_str() {
            "line" => Ok(Kind::Line),
            "bar" => Ok(Kind::Bar),
            other => Err(ChartError::Kind(other.chars().take(40).collect())),
        }
    }

    /// The image size in pixels, `(width, height)`.
    pub fn size(&self) -> (u32, u32) {
        (
            self.width.unwrap_or(DEFAULT_WIDTH),
            self.height.unwrap_or(DEFAULT_HEIGHT),
        )
    }

    /// Whether every bar is stacked: `stacked`, or Chart.js'
    /// `options.scales.x.stacked` / `options.scales.y.stacked`.
    pub fn all_stacked(&self) -> bool {
        self.stacked
            || ["x", "y"].iter().any(|axis| {
                self.option(&["scales", axis, "stacked"])
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
    }

    /// Chart.js' `options.scales.<axis>.title.text`.
    pub fn axis_title(&self, axis: &str) -> Option<&str> {
        self.option(&["scales", axis, "title", "text"])
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
    }

    fn option(&self, path: &[&str]) -> Option<&Value> {
        path.iter()
            .try_fold(self.options.as_ref()?, |v, key| v.get(key))
    }

    /// A short file name for the image: the title in lower case, words joined by `-`.
    pub fn file_name(&self) -> String {
        let slug: String = self
            .title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let slug: Vec<&str> = slug.split('-').filter(|w| !w.is_empty()).collect();
        let slug = slug.join("-");
        let slug: String = slug.chars().take(60).collect();
        if slug.is_empty() {
            "chart.png".into()
        } else {
            format!("{}.png", slug.trim_end_matches('-'))
        }
    }

    /// Checks everything the renderer relies on; the error names the first problem.
    pub fn validate(&self) -> Result<(), ChartError> {
        self.chart_kind()?;
        let too_long = |what: String, text: &str| {
            if text.chars().count() > MAX_TEXT {
                Err(ChartError::TooLong { what })
            } else {
                Ok(())
            }
        };
        too_long("`title`".into(), &self.title)?;
        for axis in ["y", "y1"] {
            if let Some(t) = self.axis_title(axis) {
                too_long(format!("the title of axis `{axis}`"), t)?;
            }
        }
        if self.labels.is_empty() || self.labels.len() > MAX_LABELS {
            return Err(ChartError::Labels(self.labels.len()));
        }
        for (i, l) in self.labels.iter().enumerate() {
            too_long(format!("label {}", i + 1), l)?;
        }
        if self.datasets.is_empty() || self.datasets.len() > MAX_DATASETS {
            return Err(ChartError::Datasets(self.datasets.len()));
        }
        for (i, d) in self.datasets.iter().enumerate() {
            let index = i + 1;
            let label = || d.label.chars().take(40).collect::<String>();
            too_long(format!("the label of dataset {index}"), &d.label)?;
            if d.data.len() != self.labels.len() {
                return Err(ChartError::Length {
                    index,
                    label: label(),
                    values: d.data.len(),
                    labels: self.labels.len(),
                });
            }
            if d.data
                .iter()
                .flatten()
                .any(|v| !v.is_finite() || v.abs() > MAX_VALUE)
            {
                return Err(ChartError::Value {
                    index,
                    label: label(),
                });
            }
            if d.axis().is_none() {
                return Err(ChartError::AxisId {
                    index,
                    label: label(),
                    given: d.y_axis_id.clone().unwrap_or_default(),
                });
            }
            for c in [&d.background_color, &d.border_color].into_iter().flatten() {
                if parse_color(c).is_none() {
                    return Err(ChartError::Color {
                        index,
                        label: label(),
                        given: c.chars().take(20).collect(),
                    });
                }
            }
        }
        let (w, h) = self.size();
        for (what, given, range) in [("width", w, WIDTHS), ("height", h, HEIGHTS)] {
            if !range.contains(&given) {
                return Err(ChartError::Size {
                    what,
                    min: *range.start(),
                    max: *range.end(),
                    given,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<ChartSpec, String> {
        ChartSpec::from_json(json.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_chart_js_shaped_body_is_read() {
        let s = spec(
            r##"{"type":"bar","title":"Deploys","labels":["mon","tue"],
                "datasets":[{"label":"ok","data":[1,null],"stack":"s","backgroundColor":"#2eb67d"},
                            {"label":"median","data":[2.5,3],"type":"line","yAxisID":"y1"}],
                "options":{"scales":{"x":{"stacked":true},"y1":{"title":{"text":"minutes"}}}},
                "channel":"C1"}"##,
        )
        .expect("valid");
        assert_eq!(s.chart_kind(), Ok(Kind::Bar));
        assert_eq!(s.datasets[0].data, vec![Some(1.0), None]);
        assert_eq!(s.datasets[1].kind, Some(Kind::Line));
        assert_eq!(s.datasets[1].axis(), Some(Axis::Right));
        assert!(s.all_stacked());
        assert_eq!(s.axis_title("y1"), Some("minutes"));
        assert_eq!(s.size(), (DEFAULT_WIDTH, DEFAULT_HEIGHT));
        assert_eq!(s.file_name(), "deploys.png");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let cases = [
            (
                r#"{"type":"pie","labels":["a"],"datasets":[{"label":"x","data":[1]}]}"#,
                "`type` must be `line` or `bar`, got `pie`",
            ),
            (
                r#"{"type":"line","labels":[],"datasets":[{"label":"x","data":[]}]}"#,
                "`labels` must have 1 to 1000 entries, got 0",
            ),
            (
                r#"{"type":"line","labels":["a"],"datasets":[]}"#,
                "`datasets` must have 1 to 12 entries, got 0",
            ),
            (
                r#"{"type":"line","labels":["a","b"],"datasets":[{"label":"x","data":[1]}]}"#,
                "dataset 1 (`x`) has 1 values for 2 labels",
            ),
            (
                r#"{"type":"line","labels":["a"],"datasets":[{"label":"x","data":[1e300]}]}"#,
                "dataset 1 (`x`) has a value beyond",
            ),
            (
                r#"{"type":"line","labels":["a"],"datasets":[{"label":"x","data":[1],"yAxisID":"z"}]}"#,
                "`yAxisID` must be `y` or `y1`, got `z`",
            ),
            (
                r#"{"type":"line","labels":["a"],"datasets":[{"label":"x","data":[1],"borderColor":"red"}]}"#,
                "colour `red` is not `#rgb` or `#rrggbb`",
            ),
            (
                r#"{"type":"line","labels":["a"],"datasets":[{"label":"x","data":[1]}],"width":5000}"#,
                "`width` must be from 200 to 2000 pixels, got 5000",
            ),
            (
                r#"{"type":"line","labels":["a"],"datasets":[{"label":"x","data":["one"]}]}"#,
                "not a chart description: invalid type: string \"one\"",
            ),
            (
                r#"{"labels":["a"],"datasets":[]}"#,
                "not a chart description: missing field `type`",
            ),
            ("[1,2]", "not a chart description"),
        ];
        for (json, reason) in cases {
            let got = spec(json).expect_err(json);
            assert!(got.contains(reason), "{json}: {got}");
        }
    }

    #[test]
    fn colours_are_hex() {
        assert_eq!(parse_color("#2eb67d"), Some((0x2e, 0xb6, 0x7d)));
        assert_eq!(parse_color("#fff"), Some((255, 255, 255)));
        assert_eq!(parse_color("#ggg"), None);
        assert_eq!(parse_color("2eb67d"), None);
        assert_eq!(parse_color("#12345"), None);
    }

    #[test]
    fn file_names_are_slugs_of_the_title() {
        let s = ChartSpec::new(Kind::Line, "Latency: rh blue (24h)", vec!["a".into()]);
        assert_eq!(s.file_name(), "latency-rh-blue-24h.png");
        let s = ChartSpec::new(Kind::Line, "", vec!["a".into()]);
        assert_eq!(s.file_name(), "chart.png");
    }
}
