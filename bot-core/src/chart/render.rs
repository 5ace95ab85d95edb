//! Drawing a [`ChartSpec`] with plotters on an RGB bitmap and encoding it as PNG, with
//! the bundled DejaVu Sans font (no system fonts, no browser).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Once;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::spec::{parse_color, Axis, ChartError, ChartSpec, Dataset, Kind, Rgb};

/// The bundled font (DejaVu Sans; licence in `assets/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family every text of a chart is drawn in (plotters' default for axis labels).
const FAMILY: &str = "sans-serif";

/// Chart.js' default palette, in its order.
const PALETTE: [Rgb; 7] = [
    (54, 162, 235),
    (255, 99, 132),
    (75, 192, 192),
    (255, 159, 64),
    (153, 102, 255),
    (255, 205, 86),
    (201, 203, 207),
];

/// Widest share of a label's slot the bars take.
const BAR_SLOT: f64 = 0.8;
/// Longest axis label shown, in characters (longer ones end in `…`).
const LABEL_CHARS: usize = 16;

fn font() -> Result<(), ChartError> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        if register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            result = Err(ChartError::Draw("the bundled font is unreadable".into()));
        }
    });
    result
}

/// Renders `spec` (checked first) as PNG bytes of [`ChartSpec::size`].
pub fn render(spec: &ChartSpec) -> Result<Vec<u8>, ChartError> {
    spec.validate()?;
    font()?;
    let (w, h) = spec.size();
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    draw(spec, &mut rgb, (w, h)).map_err(|e| ChartError::Draw(e.to_string()))?;
    encode_png(&rgb, w, h)
}

/// Encodes an RGB bitmap (`w × h × 3` bytes) as PNG.
pub fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, ChartError> {
    let fail = |e: png::EncodingError| ChartError::Draw(format!("PNG encoding: {e}"));
    let mut out = Vec::with_capacity(rgb.len() / 8);
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(rgb).map_err(fail)?;
        writer.finish().map_err(fail)?;
    }
    Ok(out)
}

/// A dataset ready to draw: its colour, how and where.
struct Series<'a> {
    data: &'a Dataset,
    kind: Kind,
    axis: Axis,
    fill: RGBColor,
    line: RGBColor,
    /// For bars: the group it stacks in, and that group's place among the groups.
    group: usize,
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

fn series(spec: &ChartSpec) -> Result<(Vec<Series<'_>>, usize), ChartError> {
    let chart_kind = spec.chart_kind()?;
    let stacked = spec.all_stacked();
    let mut groups: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, d) in spec.datasets.iter().enumerate() {
        let fill = d
            .background_color
            .as_deref()
            .and_then(parse_color)
            .unwrap_or(PALETTE[i % PALETTE.len()]);
        let line = d
            .border_color
            .as_deref()
            .and_then(parse_color)
            .unwrap_or(fill);
        let kind = d.kind.unwrap_or(chart_kind);
        let key = match (&d.stack, stacked) {
            (Some(s), _) => format!("stack:{s}"),
            (None, true) => "stack:".to_owned(),
            (None, false) => format!("own:{i}"),
        };
        let group = if kind == Kind::Bar {
            match groups.iter().position(|g| *g == key) {
                Some(g) => g,
                None => {
                    groups.push(key);
                    groups.len() - 1
                }
            }
        } else {
            0
        };
        out.push(Series {
            data: d,
            kind,
            axis: d.axis().unwrap_or(Axis::Left),
            fill: rgb(fill),
            line: rgb(line),
            group,
        });
    }
    Ok((out, groups.len()))
}

/// One series' bars: bottom and top per label.
type Extents = Vec<Option<(f64, f64)>>;

/// Each bar's bottom and top, per series and label, stacking within groups
/// (positive values upwards, negative downwards).
fn bar_extents(series: &[Series<'_>], n: usize) -> Vec<Extents> {
    let mut up: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut down: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    series
        .iter()
        .map(|s| {
            (0..n)
                .map(|i| {
                    let v = s.data.data.get(i).copied().flatten()?;
                    if s.kind != Kind::Bar {
                        return None;
                    }
                    let base = if v >= 0.0 { &mut up } else { &mut down };
                    let from = base.entry((s.group, i)).or_insert(0.0);
                    let start = *from;
                    *from += v;
                    Some((start, *from))
                })
                .collect()
        })
        .collect()
}

/// The value range of one axis: every point and bar end on it, zero included for
/// bars, with a little room above.
fn value_range(series: &[Series<'_>], bars: &[Extents], axis: Axis) -> Option<Range<f64>> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (s, extents) in series.iter().zip(bars) {
        if s.axis != axis {
            continue;
        }
        if s.kind == Kind::Bar {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
            for (a, b) in extents.iter().flatten() {
                lo = lo.min(a.min(*b));
                hi = hi.max(a.max(*b));
            }
        } else {
            for v in s.data.data.iter().flatten() {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
        }
    }
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    if lo >= 0.0
        && series
            .iter()
            .any(|s| s.axis == axis && s.kind == Kind::Line)
    {
        lo = 0.0;
    }
    if (hi - lo).abs() < f64::EPSILON {
        hi = lo + 1.0;
    }
    let room = (hi - lo) * 0.08;
    Some(if lo < 0.0 { lo - room } else { lo }..hi + room)
}

fn short(label: &str) -> String {
    if label.chars().count() > LABEL_CHARS {
        let mut s: String = label.chars().take(LABEL_CHARS - 1).collect();
        s.push('…');
        s
    } else {
        label.to_owned()
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The x axis: one slot per label, centred on whole positions `0..n`, with a tick
/// and a label on every `step`-th.
#[derive(Clone)]
struct Slots {
    n: usize,
    step: usize,
}

impl Ranged for Slots {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value + 0.5) / self.n as f64;
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.n).step_by(self.step).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        -0.5..(self.n as f64 - 0.5)
    }
}

impl ValueFormatter<f64> for Slots {
    fn format(value: &f64) -> String {
        format!("{value}")
    }
}

fn draw(spec: &ChartSpec, buf: &mut [u8], (w, h): (u32, u32)) -> DrawResult {
    let (series, groups) = series(spec)?;
    let n = spec.labels.len();
    let bars = bar_extents(&series, n);
    let left = value_range(&series, &bars, Axis::Left).unwrap_or(0.0..1.0);
    let right = value_range(&series, &bars, Axis::Right);

    // Labels on whole positions only, as many as fit side by side.
    let fit = ((w as usize).saturating_sub(120) / 80).max(2);
    let step = n.div_ceil(fit).max(1);
    let x = Slots { n, step };

    let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(64);
    if right.is_some() {
        builder.right_y_label_area_size(64);
    }
    if !spec.title.trim().is_empty() {
        builder.caption(spec.title.trim(), (FAMILY, 22).into_font().color(&BLACK));
    }
    // Always two value axes (the right one unused without right-hand series): one
    // drawing path, and the left mesh labels only the left side.
    let mut chart = builder
        .build_cartesian_2d(x.clone(), left)?
        .set_secondary_coord(x, right.clone().unwrap_or(0.0..1.0));
    let labels = &spec.labels;
    let label_of = |v: &f64| {
        let i = v.round();
        if i < 0.0 {
            return String::new();
        }
        labels.get(i as usize).map(|l| short(l)).unwrap_or_default()
    };
    let grid = RGBColor(230, 230, 230);
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .light_line_style(WHITE)
        .bold_line_style(grid)
        .x_label_formatter(&label_of)
        .y_label_formatter(&number)
        .y_labels(8)
        .label_style((FAMILY, 13));
    if let Some(t) = spec.axis_title("y") {
        mesh.y_desc(t);
    }
    mesh.draw()?;
    if right.is_some() {
        let mut axes = chart.configure_secondary_axes();
        axes.label_style((FAMILY, 13))
            .y_labels(8)
            .y_label_formatter(&number);
        if let Some(t) = spec.axis_title("y1") {
            axes.y_desc(t);
        }
        axes.draw()?;
    }

    let slot = BAR_SLOT / groups.max(1) as f64;
    let dots = n <= 60;
    // Bars first, lines over them.
    let mut order: Vec<(&Series<'_>, &Extents)> = series.iter().zip(&bars).collect();
    order.sort_by_key(|(s, _)| s.kind == Kind::Line);
    for (s, extents) in &order {
        let left_edge = -BAR_SLOT / 2.0 + s.group as f64 * slot;
        let fill = s.fill.filled();
        let rects = extents
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i, e)))
            .map(|(i, (a, b))| {
                let x0 = i as f64 + left_edge + slot * 0.05;
                let x1 = i as f64 + left_edge + slot * 0.95;
                Rectangle::new([(x0, a), (x1, b)], fill)
            });
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in s.data.data.iter().enumerate() {
            match (v, segments.last_mut()) {
                (Some(v), Some(seg)) => seg.push((i as f64, *v)),
                _ => segments.push(Vec::new()),
            }
        }
        segments.retain(|seg| !seg.is_empty());
        let line = s.line.stroke_width(2);
        let on_right = s.axis == Axis::Right;
        match s.kind {
            Kind::Bar if on_right => {
                chart.draw_secondary_series(rects)?;
            }
            Kind::Bar => {
                chart.draw_series(rects)?;
            }
            Kind::Line => {
                for seg in segments {
                    let points = seg
                        .clone()
                        .into_iter()
                        .map(|p| Circle::new(p, 3, s.line.filled()));
                    let points: Vec<_> = if dots { points.collect() } else { Vec::new() };
                    if on_right {
                        chart.draw_secondary_series(LineSeries::new(seg, line))?;
                        chart.draw_secondary_series(points)?;
                    } else {
                        chart.draw_series(LineSeries::new(seg, line))?;
                        chart.draw_series(points)?;
                    }
                }
            }
        }
    }
    // The legend in the datasets' own order.
    for s in &series {
        let legend = s.fill;
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(s.data.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], legend.filled()));
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// An axis value: whole numbers without decimals, others with up to two.
fn number(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FAMILY, 13))
        .draw()?;
    Ok(())
}
