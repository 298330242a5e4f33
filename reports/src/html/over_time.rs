//! Figures over time (fleet and load runs): requests per second per step, and p50/p99 per step
//! in the response (solid) and service (dashed) views, interval by interval; a fleet's arrivals,
//! intended by the schedule against started.

use super::theme::{self, AXIS, BLUE, ChartResult, GREY, GRID, RED, step_color, step_marker};
use crate::ArrivalPoint;
use crate::intervals::{IntervalPoint, IntervalStep};
use crate::numbers::thousands;
use plotters::prelude::*;
use std::collections::BTreeSet;

/// The steps that appear in any interval, in the order of a console's walk.
fn steps(points: &[IntervalPoint]) -> Vec<String> {
    let set: BTreeSet<&String> = points.iter().flat_map(|p| p.steps.keys()).collect();
    let mut steps: Vec<String> = set.into_iter().cloned().collect();
    steps.sort_by_key(|s| (crate::run_histograms::flow_rank(s), s.clone()));
    steps
}

fn x_end(points: &[IntervalPoint]) -> f64 {
    points
        .iter()
        .map(|p| p.start_s + p.length_s)
        .fold(1.0, f64::max)
}

/// Requests per second of each step, at the middle of each interval.
pub fn rates(points: &[IntervalPoint], size: (u32, u32)) -> ChartResult {
    let names = steps(points);
    let y_top = points
        .iter()
        .flat_map(|p| p.steps.values().map(|s| s.rps))
        .fold(1.0, f64::max);
    per_second(
        size,
        (x_end(points), y_top),
        "requests per second",
        |chart| {
            for name in &names {
                let series = series(points, name, |s| s.rps);
                let color = step_color(name);
                chart.draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?;
                theme::draw_markers(chart, &series, step_marker(name), color)?;
            }
            Ok(theme::step_entries(&names))
        },
    )
}

/// The chart a rate over the run's seconds is drawn on (up to `top` per second, 10% headroom),
/// with the legend of what `draw` drew beside it.
fn per_second(
    size: (u32, u32),
    (x_end, top): (f64, f64),
    y_desc: &str,
    draw: impl FnOnce(&mut PerSecond<'_, '_>) -> Result<Vec<theme::Entry>, Box<dyn std::error::Error>>,
) -> ChartResult {
    theme::svg(size, |root| {
        let (plot, key) = root.split_horizontally(size.0.saturating_sub(170));
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(68)
            .build_cartesian_2d(0f64..x_end, 0f64..top * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc(y_desc)
            .y_labels(6)
            .y_label_formatter(&|y| thousands(y.round() as u64))
            .bold_line_style(GRID)
            .light_line_style(WHITE.mix(0.0))
            .axis_style(AXIS)
            .label_style(theme::text(14))
            .axis_desc_style(theme::muted(14))
            .draw()?;
        let entries = draw(&mut chart)?;
        theme::legend_marked(&key, &entries)
    })
}

/// A chart over seconds, in its SVG.
type PerSecond<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// p99 of each step per interval: response view solid, service view dashed; log scale.
pub fn percentiles(points: &[IntervalPoint], size: (u32, u32)) -> ChartResult {
    let names = steps(points);
    let values = points.iter().flat_map(|p| {
        p.steps
            .values()
            .flat_map(|s| [s.response_p99_us, s.service_p99_us, s.service_p50_us])
    });
    let (lo, hi) = values.fold((u64::MAX, 1u64), |(lo, hi), v| {
        (lo.min(v.max(1)), hi.max(v))
    });
    let lo = if lo == u64::MAX { 1.0 } else { lo as f64 / 1.5 };
    let hi = (hi as f64 * 1.5).max(lo * 10.0);
    theme::svg(size, |root| {
        let (plot, key) = root.split_horizontally(size.0.saturating_sub(170));
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(76)
            .build_cartesian_2d(
                0f64..x_end(points),
                (lo.max(1.0)..hi)
                    .log_scale()
                    .with_key_points(theme::log_ticks(lo.max(1.0), hi, 8)),
            )?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc("p99 (µs)")
            .y_label_formatter(&|y| thousands(y.round() as u64))
            .bold_line_style(GRID)
            .light_line_style(WHITE.mix(0.0))
            .axis_style(AXIS)
            .label_style(theme::text(14))
            .axis_desc_style(theme::muted(14))
            .draw()?;
        for name in &names {
            let color = step_color(name);
            let response = series(points, name, |s| s.response_p99_us.max(1) as f64);
            chart.draw_series(LineSeries::new(response.clone(), color.stroke_width(2)))?;
            theme::draw_markers(&mut chart, &response, step_marker(name), color)?;
            let service = series(points, name, |s| s.service_p99_us.max(1) as f64);
            chart.draw_series(DashedLineSeries::new(service, 5, 4, color.stroke_width(1)))?;
        }
        theme::step_legend(&key, &names)
    })
}

/// A fleet's arrivals per second, interval by interval: intended by the schedule (dashed) and
/// started (solid), and dropped past `--max-in-flight` (when any were). A solid line under the
/// dashed one is a generator that fell behind its schedule. The x axis runs at least as far as
/// the charts of the run's `intervals`, so the charts of one page line up.
pub fn arrivals(
    points: &[ArrivalPoint],
    intervals: &[IntervalPoint],
    size: (u32, u32),
) -> ChartResult {
    let per_s = |pick: fn(&ArrivalPoint) -> u64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| {
                let rate = pick(p) as f64 / p.length_s.max(1e-9);
                (p.start_s + p.length_s / 2.0, rate)
            })
            .collect()
    };
    let (intended, started, dropped) = (
        per_s(|p| p.intended),
        per_s(|p| p.started),
        per_s(|p| p.dropped),
    );
    let any_dropped = points.iter().any(|p| p.dropped > 0);
    let top = intended
        .iter()
        .chain(&started)
        .map(|(_, y)| *y)
        .fold(1.0, f64::max);
    let x_end = points
        .iter()
        .map(|p| p.start_s + p.length_s)
        .fold(x_end(intervals), f64::max);
    per_second(size, (x_end, top), "consoles per second", |chart| {
        // The schedule on top: where the launcher kept up, the dashes lie on the solid line.
        chart.draw_series(LineSeries::new(started, BLUE.stroke_width(2)))?;
        chart.draw_series(DashedLineSeries::new(intended, 6, 4, GREY.stroke_width(2)))?;
        let mut entries = vec![
            ("intended".to_owned(), GREY, None),
            ("started".to_owned(), BLUE, None),
        ];
        if any_dropped {
            chart.draw_series(LineSeries::new(dropped, RED.stroke_width(2)))?;
            entries.push(("dropped".to_owned(), RED, None));
        }
        Ok(entries)
    })
}

fn series(
    points: &[IntervalPoint],
    step: &str,
    pick: impl Fn(&IntervalStep) -> f64,
) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter_map(|p| Some((p.start_s + p.length_s / 2.0, pick(p.steps.get(step)?))))
        .collect()
}
