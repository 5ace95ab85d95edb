//! Charts as PNG images: a Chart.js-shaped [`ChartSpec`], checked with a reason for
//! anything wrong, drawn in Rust with plotters and a bundled font ([`render`]).

mod render;
mod spec;

pub use render::{encode_png, render};
pub use spec::{
    parse_color, Axis, ChartError, ChartSpec, Dataset, Kind, DEFAULT_HEIGHT, DEFAULT_WIDTH,
    HEIGHTS, MAX_DATASETS, MAX_LABELS, WIDTHS,
};
