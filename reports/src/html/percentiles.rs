//! Latency by percentile: the usual HdrHistogram plot. x is the percentile on a `1/(1-p)` scale
//! (so 90%, 99%, 99.9% are evenly spaced and the tail gets the room it deserves), y the latency
//! in microseconds, both logarithmic.

use super::theme::{self, AXIS, ChartResult, GRID, MUTED, step_color, step_marker};
use crate::numbers::thousands;
use hdrhistogram::Histogram;
use plotters::prelude::*;

/// The right end of the x axis at most: 99.999%.
const X_MAX: f64 = 1e5;
/// Points drawn per decade of `1/(1-p)`.
const POINTS_PER_DECADE: f64 = 40.0;

/// One step's curve.
#[derive(Debug, Clone)]
pub struct Curve {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    /// Values in the histogram.
    pub count: u64,
}

impl Curve {
    pub fn of(name: &str, h: &Histogram<u64>) -> Curve {
        Curve {
            name: name.to_owned(),
            color: step_color(name),
            points: percentile_points(h),
            count: h.len(),
        }
    }
}

/// `(1/(1-p), latency)` pairs from the median... to the largest value: up to the percentile the
/// histogram's count can tell apart (1 in `count`), ending at its maximum.
pub fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let x_end = (h.len() as f64).clamp(1.0, X_MAX);
    let steps = (x_end.log10() * POINTS_PER_DECADE).ceil().max(1.0) as usize;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let x = 10f64.powf(x_end.log10() * i as f64 / steps as f64);
            let q = 1.0 - 1.0 / x;
            (x, h.value_at_quantile(q).max(1) as f64)
        })
        .collect();
    if let Some(last) = points.last_mut() {
        last.1 = h.max().max(1) as f64;
    }
    points
}

/// The percentile of a point on the x axis, as a label: 2 is 50%, 1000 is 99.9%.
pub fn percentile_label(x: f64) -> String {
    if x <= 1.000_001 {
        return "0%".into();
    }
    let decimals = (x.log10().round() - 2.0).max(0.0) as usize;
    format!("{:.*}%", decimals, 100.0 * (1.0 - 1.0 / x))
}

fn x_axis_end(curves: &[&Curve]) -> f64 {
    let last = curves
        .iter()
        .filter_map(|c| c.points.last().map(|p| p.0))
        .fold(1.0, f64::max);
    10f64.powf(last.log10().ceil()).clamp(100.0, X_MAX)
}

/// Ticks at 0%, 50%, 90%, 99%, ...; small charts leave out 0%, too close to 50% to read.
fn key_points(x_end: f64, small: bool) -> Vec<f64> {
    [1.0, 2.0, 10.0, 100.0, 1e3, 1e4, 1e5]
        .into_iter()
        .filter(|x| *x <= x_end * 1.000_001 && !(small && *x < 1.5))
        .collect()
}

fn y_range(curves: &[&Curve]) -> (f64, f64) {
    let ys = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let lo = if lo == f64::MAX { 1.0 } else { lo };
    // At least a factor of 4 top to bottom, so a flat curve does not fill the chart.
    let mid = (lo * hi).sqrt();
    let half = (hi / lo).sqrt().max(2.0) * 1.15;
    ((mid / half).max(1.0), mid * half)
}

/// The width of the legend beside the overview chart.
const LEGEND_PX: u32 = 170;

/// Every step on one chart, with a legend beside it.
pub fn overview(curves: &[Curve], size: (u32, u32)) -> ChartResult {
    let all: Vec<&Curve> = curves.iter().collect();
    theme::svg(size, |root| {
        let (plot, key) = root.split_horizontally(size.0.saturating_sub(LEGEND_PX));
        let mut chart = frame(&plot, &all, 58, 76, 14)?;
        for c in &all {
            draw_curve(&mut chart, c, c.color.stroke_width(2))?;
            theme::draw_markers(&mut chart, &c.points, step_marker(&c.name), c.color)?;
        }
        let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
        theme::step_legend(&key, &names)
    })
}

/// A curve as a line, or as a dot when it has a single value.
fn draw_curve(
    chart: &mut LogChart<'_, '_>,
    c: &Curve,
    style: ShapeStyle,
) -> Result<(), Box<dyn std::error::Error>> {
    if let [only] = c.points.as_slice() {
        chart.draw_series(std::iter::once(Circle::new(*only, 4, style.color.filled())))?;
    } else {
        chart.draw_series(LineSeries::new(c.points.iter().copied(), style))?;
    }
    Ok(())
}

/// One small chart per step: the response view (solid) over the service view (dashed), so the
/// generator's own lateness shows as the gap between them.
pub fn per_step(steps: &[(Curve, Option<Curve>)], columns: usize, size: (u32, u32)) -> ChartResult {
    let rows = steps.len().div_ceil(columns.max(1)).max(1);
    theme::svg(size, |root| {
        let cells = root.split_evenly((rows, columns.max(1)));
        for ((response, service), cell) in steps.iter().zip(cells) {
            let mut all = vec![response];
            all.extend(service.iter());
            let cell = cell.margin(4, 8, 4, 8);
            let cell = cell.titled(
                &format!("{}  (n = {})", response.name, thousands(response.count)),
                theme::text(15),
            )?;
            let mut chart = frame(&cell, &all, 32, 58, 11)?;
            draw_curve(&mut chart, response, response.color.stroke_width(2))?;
            if let Some(service) = service {
                chart.draw_series(DashedLineSeries::new(
                    service.points.iter().copied(),
                    5,
                    4,
                    MUTED.stroke_width(1),
                ))?;
            }
        }
        Ok(())
    })
}

type LogChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>>,
        plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>>,
    >,
>;

/// Axes, grid and labels of a percentile chart.
fn frame<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    curves: &[&Curve],
    x_label_px: u32,
    y_label_px: u32,
    font_px: u32,
) -> Result<LogChart<'a, 'b>, Box<dyn std::error::Error>> {
    let small = font_px < 13;
    let x_end = x_axis_end(curves);
    let (y_lo, y_hi) = y_range(curves);
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .margin_right(26)
        .x_label_area_size(x_label_px)
        .y_label_area_size(y_label_px)
        .build_cartesian_2d(
            (1f64..x_end)
                .log_scale()
                .with_key_points(key_points(x_end, small)),
            (y_lo..y_hi).log_scale().with_key_points(theme::log_ticks(
                y_lo,
                y_hi,
                if small { 5 } else { 10 },
            )),
        )?;
    chart
        .configure_mesh()
        .x_desc(if small { "" } else { "percentile" })
        .y_desc(if small { "" } else { "latency (µs)" })
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| thousands(y.round() as u64))
        .bold_line_style(GRID)
        .light_line_style(WHITE.mix(0.0))
        .axis_style(AXIS)
        .label_style(theme::text(font_px))
        .axis_desc_style(theme::muted(font_px))
        .draw()?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x_axis_reads_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
    }

    #[test]
    fn a_curve_runs_from_the_minimum_to_the_maximum_within_what_the_count_tells() {
        let mut h = crate::histograms::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).expect("record");
        }
        let points = percentile_points(&h);
        assert_eq!(points.first().map(|p| p.0), Some(1.0));
        let last = points.last().copied().expect("points");
        assert!((last.0 - 1000.0).abs() < 1e-6, "{last:?}");
        assert_eq!(last.1, h.max() as f64);
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1), "rising");
    }
}
