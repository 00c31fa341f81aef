//! PNG charts with plotters and an embedded DejaVu Sans font (no system fonts needed).

use std::path::Path;
use std::sync::Once;

use leadflow_metrics::Confusion;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::error::{Error, Result};

const FONT: &str = "sans-serif";
/// Colour-blind-safe palette (Okabe-Ito, then Tol's muted for classes 9 and 10): blue and
/// vermillion first, so two models keep their colours.
pub const COLORS: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
    RGBColor(136, 34, 85),
    RGBColor(68, 170, 153),
];

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn perr<E: std::error::Error + Send + Sync + 'static>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Plot { path: path.into(), source: e.into() }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn canvas(path: &Path, size: (u32, u32)) -> Result<Area<'_>> {
    fonts();
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(perr(path))?;
    Ok(root)
}

/// Line curves on the unit square (ROC or precision-recall), one series per model (or per class).
pub fn curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
    legend_pos: SeriesLabelPosition,
) -> Result<()> {
    // The PNG is written when the drawing area is dropped: the permit is held until then.
    let _permit = leadflow_core::artifacts::write_permit();
    let err = perr(path);
    let root = canvas(path, (900, 700))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 30).into_font().style(FontStyle::Bold))
        .margin(25)
        .x_label_area_size(60)
        .y_label_area_size(75)
        .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style((FONT, 22))
        .label_style((FONT, 18))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(&err)?;
    if diagonal {
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.35).stroke_width(1)))
            .map_err(&err)?
            .label("chance")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.mix(0.35).stroke_width(1)));
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(3)))
            .map_err(&err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(legend_pos)
        .margin(15)
        .label_font((FONT, 20))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)
}

/// A K×K confusion-matrix heat map with counts (and row percentages while the cells are large
/// enough to hold them). `labels`: display names of the classes, in class order.
pub fn confusion(path: &Path, title: &str, c: &Confusion, labels: &[String]) -> Result<()> {
    // The PNG is written when the drawing area is dropped: the permit is held until then.
    let _permit = leadflow_core::artifacts::write_permit();
    let err = perr(path);
    let k = c.len().max(1) as i32;
    // Two classes: 230 px cells; ten: 56 px, still room for a three-digit count.
    let cell = (460 / k).max(52);
    let (left, top) = (230i32, 110i32);
    let size = ((left + k * cell + 40).max(760) as u32, (top + k * cell + 90).max(680) as u32);
    let root = canvas(path, size)?;
    let caption = (FONT, 28).into_font().style(FontStyle::Bold);
    root.draw(&Text::new(title.to_string(), (30, 20), caption)).map_err(&err)?;
    let max = c.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let labels: Vec<String> =
        labels.iter().enumerate().map(|(i, l)| if *l == i.to_string() { l.clone() } else { format!("{i}: {l}") }).collect();
    let (count_font, show_pct) = if cell >= 120 { (40, true) } else { ((cell * 2 / 5).clamp(14, 30), false) };
    for (t, row) in c.iter().enumerate() {
        let row_total: usize = row.iter().sum();
        for (p, &n) in row.iter().enumerate() {
            let x0 = left + p as i32 * cell;
            let y0 = top + t as i32 * cell;
            let v = n as f64 / max;
            let fill = RGBColor((247.0 - v * (247.0 - 8.0)) as u8, (251.0 - v * (251.0 - 69.0)) as u8, (255.0 - v * (255.0 - 148.0)) as u8);
            root.draw(&Rectangle::new([(x0, y0), (x0 + cell, y0 + cell)], fill.filled())).map_err(&err)?;
            root.draw(&Rectangle::new([(x0, y0), (x0 + cell, y0 + cell)], BLACK.mix(0.3).stroke_width(1))).map_err(&err)?;
            let ink = if v > 0.55 { WHITE } else { BLACK };
            let big = (FONT, count_font).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
            if show_pct {
                let pct = if row_total > 0 { 100.0 * n as f64 / row_total as f64 } else { 0.0 };
                let small = (FONT, 20).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(n.to_string(), (x0 + cell / 2, y0 + cell / 2 - 14), big)).map_err(&err)?;
                root.draw(&Text::new(format!("{pct:.1}% of row"), (x0 + cell / 2, y0 + cell / 2 + 26), small)).map_err(&err)?;
            } else if n > 0 {
                root.draw(&Text::new(n.to_string(), (x0 + cell / 2, y0 + cell / 2), big)).map_err(&err)?;
            }
        }
    }
    let label_font = if cell >= 120 { 20 } else { 16 };
    let center = |hp| (FONT, label_font).into_font().color(&BLACK).pos(Pos::new(hp, VPos::Center));
    for (i, l) in labels.iter().enumerate() {
        // Column labels are the class indices when cells are narrow; rows carry the names.
        let col = if cell >= 120 { l.clone() } else { i.to_string() };
        root.draw(&Text::new(col, (left + i as i32 * cell + cell / 2, top + k * cell + 22), center(HPos::Center))).map_err(&err)?;
        root.draw(&Text::new(l.clone(), (left - 12, top + i as i32 * cell + cell / 2), center(HPos::Right))).map_err(&err)?;
    }
    let axis = (FONT, 22).into_font().style(FontStyle::Bold).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new("Predicted", (left + k * cell / 2, top + k * cell + 58), axis.clone())).map_err(&err)?;
    root.draw(&Text::new("Actual", (left - 12 - 90, top - 30), axis)).map_err(&err)?;
    root.present().map_err(&err)
}

/// Horizontal bar panels (one per model), bars sorted by absolute value.
/// One importance panel: title, x-axis label, (feature, value) bars.
pub type ImportancePanel = (String, String, Vec<(String, f64)>);

/// Most bars drawn in one importance panel.
pub const MAX_BARS: usize = 20;

pub fn importance(path: &Path, panels: &[ImportancePanel]) -> Result<()> {
    // The PNG is written when the drawing area is dropped: the permit is held until then.
    let _permit = leadflow_core::artifacts::write_permit();
    let err = perr(path);
    let n_panels = panels.len().max(1);
    let root = canvas(path, (1000, 520 * n_panels as u32))?;
    let areas = root.split_evenly((n_panels, 1));
    for (area, (title, x_label, bars)) in areas.iter().zip(panels) {
        let mut bars = bars.clone();
        bars.sort_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
        // At most the 20 largest: more bars than that are unreadable in one panel.
        let title = if bars.len() > MAX_BARS { format!("{title} (top {MAX_BARS} of {})", bars.len()) } else { title.clone() };
        bars.drain(..bars.len().saturating_sub(MAX_BARS));
        let n = bars.len();
        let lo = bars.iter().map(|b| b.1).fold(0.0f64, f64::min);
        let hi = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
        let pad = ((hi - lo) * 0.08).max(1e-9);
        let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
        let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(title.as_str(), (FONT, 26).into_font().style(FontStyle::Bold))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(190)
            .build_cartesian_2d(lo..hi, (0..n).into_segmented())
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc(x_label.as_str())
            .axis_desc_style((FONT, 20))
            .label_style((FONT, 17))
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => names.get(*i).cloned().unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .x_label_formatter(&|v| format!("{v:.2}"))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let c = if *v >= 0.0 { COLORS[0] } else { COLORS[1] };
                let mut r =
                    Rectangle::new([(0.0f64.min(*v), SegmentValue::Exact(i)), (0.0f64.max(*v), SegmentValue::Exact(i + 1))], c.filled());
                r.set_margin(4, 4, 0, 0);
                r
            }))
            .map_err(&err)?;
    }
    root.present().map_err(&err)
}

/// Inputs drawn in the beeswarm picture (the largest effects).
pub const MAX_SWARM_ROWS: usize = 12;

/// A beeswarm-style picture: one row per input (the first given at the top), each value a dot
/// at its contribution, spread vertically by a fixed pattern so dots do not hide each other;
/// red raises the score, blue lowers it.
pub fn beeswarm(path: &Path, title: &str, x_label: &str, columns: &[(String, Vec<f64>)]) -> Result<()> {
    let _permit = leadflow_core::artifacts::write_permit();
    let err = perr(path);
    let columns = &columns[..columns.len().min(MAX_SWARM_ROWS)];
    let n = columns.len().max(1);
    let root = canvas(path, (1000, 140 + 60 * n as u32))?;
    let lo = columns.iter().flat_map(|c| c.1.iter().copied()).fold(0.0f64, f64::min);
    let hi = columns.iter().flat_map(|c| c.1.iter().copied()).fold(0.0f64, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 26).into_font().style(FontStyle::Bold))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(190)
        .build_cartesian_2d((lo - pad)..(hi + pad), -0.5f64..(n as f64 - 0.5))
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(format!("{x_label}; blue raises the score, orange lowers it"))
        .axis_desc_style((FONT, 20))
        .label_style((FONT, 17))
        .y_labels(n)
        .y_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(n - 1 - i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|v| format!("{v:.2}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(&err)?;
    for (row, (_, values)) in columns.iter().enumerate() {
        let y0 = (n - 1 - row) as f64;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                // A fixed low-discrepancy spread in [-0.35, 0.35]: the same picture every run.
                let jitter = ((i as f64 * 0.618_033_988_7).fract() - 0.5) * 0.7;
                let c = if v >= 0.0 { COLORS[0] } else { COLORS[1] };
                Circle::new((v, y0 + jitter), 2, c.mix(0.6).filled())
            }))
            .map_err(&err)?;
    }
    root.present().map_err(&err)
}
