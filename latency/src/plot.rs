//! SVG plots of the perf report, drawn with plotters' SVG backend and embedded inline in
//! `perf.html`.
//!
//! Two kinds: a distribution chart (one row per subject: a whisker from the 1st to the 99th
//! percentile, a box from the 25th to the 75th, the median as a bar, round medians as dots;
//! logarithmic axis, since runtimes differ by orders of magnitude) and a bar chart.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::stats::quantile;

/// One row of a distribution chart.
pub struct Row {
    /// Label left of the row.
    pub label: String,
    /// The values (all samples, or rounds).
    pub values: Vec<f64>,
    /// A few values to show as dots (round medians).
    pub dots: Vec<f64>,
    /// Colour index (0: now, 1: baseline, others cycle).
    pub color: usize,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(150, 150, 150),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

fn label_width(labels: impl Iterator<Item = usize>) -> u32 {
    (labels.max().unwrap_or(8) as u32 * 7 + 16).clamp(80, 360)
}

/// A distribution chart of `rows` on a logarithmic axis named `axis`.
pub fn distributions(title: &str, axis: &str, rows: &[Row]) -> Result<String> {
    let rows: Vec<&Row> = rows.iter().filter(|r| !r.values.is_empty()).collect();
    if rows.is_empty() {
        return Ok(String::new());
    }
    let sorted: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let mut v: Vec<f64> = r.values.iter().copied().filter(|x| *x > 0.0).collect();
            v.sort_by(f64::total_cmp);
            v
        })
        .collect();
    let (lo, hi) = log_axis_range(&sorted);
    let n = rows.len();
    let height = 70 + 28 * n as u32;
    let width = 860;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(label_width(labels.iter().map(|l| l.len())))
            .build_cartesian_2d((lo..hi).log_scale(), -0.6..n as f64 - 0.4)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(axis)
            .y_labels(0)
            .draw()
            .map_err(err)?;
        for (i, (row, v)) in rows.iter().zip(&sorted).enumerate() {
            if v.is_empty() {
                continue;
            }
            let y = (n - 1 - i) as f64;
            draw_distribution(
                &mut chart,
                y,
                v,
                &row.dots,
                PALETTE[row.color % PALETTE.len()],
            )?;
        }
        draw_row_labels(&root, &chart, &labels)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The axis range of a distribution chart: from the smallest to the largest positive value
/// of all rows (`sorted` ascending, each), widened by 20% each way so no mark sits on the
/// frame. Without positive values, or when all are equal, a log axis has no span of its own,
/// so the range is 0.5 to 2.
fn log_axis_range(sorted: &[Vec<f64>]) -> (f64, f64) {
    let lo = sorted
        .iter()
        .filter_map(|v| v.first())
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = sorted
        .iter()
        .filter_map(|v| v.last())
        .copied()
        .fold(0.0, f64::max);
    if lo.is_finite() && hi > lo {
        (lo / 1.2, hi * 1.2)
    } else {
        (0.5, 2.0)
    }
}

/// A distribution chart's drawing area: logarithmic x (the values), linear y (the rows).
type LogChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, RangedCoordf64>>;

/// One row of a distribution chart at height `y`, from its values `v` (ascending): a
/// whisker from the 1st to the 99th percentile, a box from the 25th to the 75th, the median
/// as a thick bar, and `dots` (round floors) as dots just above the box.
fn draw_distribution(
    chart: &mut LogChart,
    y: f64,
    v: &[f64],
    dots: &[f64],
    color: RGBColor,
) -> Result<()> {
    let q = |p| quantile(v, p);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(q(0.01), y), (q(0.99), y)],
            color.stroke_width(1),
        )))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(q(0.25), y - 0.3), (q(0.75), y + 0.3)],
            color.mix(0.35).filled(),
        )))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(q(0.5), y - 0.38), (q(0.5), y + 0.38)],
            color.stroke_width(3),
        )))
        .map_err(err)?;
    chart
        .draw_series(
            dots.iter()
                .filter(|d| **d > 0.0)
                .map(|&d| Circle::new((d, y + 0.3), 1, color.filled())),
        )
        .map_err(err)?;
    Ok(())
}

/// Draws each label left of its row (the first label on the top row), by hand: plotters'
/// own labels cannot be pinned to rows.
fn draw_row_labels<X: Ranged<ValueType = f64>>(
    root: &DrawingArea<SVGBackend, Shift>,
    chart: &ChartContext<SVGBackend, Cartesian2d<X, RangedCoordf64>>,
    labels: &[String],
) -> Result<()> {
    let n = labels.len();
    let x0 = chart.x_range().start;
    for (i, label) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(x0, (n - 1 - i) as f64));
        let style = TextStyle::from(("sans-serif", 12).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(label.clone(), (px - 6, py), style))
            .map_err(err)?;
    }
    Ok(())
}

/// A horizontal bar chart of `(label, value)` on a linear axis named `axis`.
pub fn bars(title: &str, axis: &str, rows: &[(String, f64, usize)]) -> Result<String> {
    let rows: Vec<_> = rows
        .iter()
        .filter(|r| r.1.is_finite() && r.1 >= 0.0)
        .collect();
    if rows.is_empty() {
        return Ok(String::new());
    }
    let n = rows.len();
    let hi = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (860, 70 + 24 * n as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(label_width(labels.iter().map(|l| l.len())))
            .build_cartesian_2d(0.0..hi, -0.6..n as f64 - 0.4)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(axis)
            .y_labels(0)
            .draw()
            .map_err(err)?;
        for (i, (_, value, color)) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let color = PALETTE[*color % PALETTE.len()];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.35), (*value, y + 0.35)],
                    color.filled(),
                )))
                .map_err(err)?;
        }
        draw_row_labels(&root, &chart, &labels)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_chart_is_an_svg_with_its_labels() {
        let rows = vec![
            Row {
                label: "identity / tract".into(),
                values: (1..200).map(|i| 10.0 + i as f64 * 0.01).collect(),
                dots: vec![10.5, 11.0],
                color: 0,
            },
            Row {
                label: "lower1d / tract".into(),
                values: (1..200).map(|i| 14.0 + i as f64 * 0.01).collect(),
                dots: vec![],
                color: 2,
            },
        ];
        let svg = distributions("cnn1d", "µs", &rows).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.contains("identity / tract") && svg.contains("lower1d / tract"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn empty_charts_draw_nothing() {
        assert_eq!(distributions("x", "µs", &[]).unwrap(), "");
        assert_eq!(bars("x", "GFLOP/s", &[]).unwrap(), "");
        let svg = bars("g", "GFLOP/s", &[("label-a".into(), 1.5, 0)]).unwrap();
        assert!(svg.contains("<svg") && svg.contains("label-a"));
    }
}
