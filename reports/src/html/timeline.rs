//! The rollout over time (rehearsals), at the end of every simulated hour, in two panels on one
//! time axis of calendar dates (UTC): consoles signed in, OTPs expired and consoles verifying on
//! top; the approval queue below, on its own axis, since a queue of tens would be a flat line on
//! an axis of thousands. Hours with approvers at work are shaded in both.

use super::theme::{self, AXIS, ChartResult, GREEN, GREY, GRID, ORANGE, RED};
use crate::numbers::thousands;
use crate::report::TimelinePoint;
use plotters::prelude::*;

/// The shade of the hours when approvers work.
const AT_WORK: RGBColor = RGBColor(0xe8, 0xf1, 0xe4);

type Pick = fn(&TimelinePoint) -> u64;

pub fn timeline(points: &[TimelinePoint], size: (u32, u32)) -> ChartResult {
    let x_end = points.iter().map(|p| p.hour).max().unwrap_or(0).max(1) as f64;
    let consoles: [(&str, RGBColor, Pick); 3] = [
        ("signed in", GREEN, |p| p.signed_in),
        ("expired", RED, |p| p.expired),
        ("in verification", GREY, |p| p.in_verification),
    ];
    let queue: [(&str, RGBColor, Pick); 1] =
        [("awaiting approval", ORANGE, |p| p.awaiting_approval)];
    let ticks = day_ticks(points);
    theme::svg(size, |root| {
        let (plot, key) = root.split_horizontally(size.0.saturating_sub(190));
        let (top, bottom) = plot.split_vertically(size.1 * 62 / 100);
        panel(&top, points, &consoles, x_end, &ticks, "consoles", false)?;
        panel(
            &bottom,
            points,
            &queue,
            x_end,
            &ticks,
            "approval queue",
            true,
        )?;
        let mut entries: Vec<(String, RGBColor)> = consoles
            .iter()
            .chain(queue.iter())
            .map(|(name, color, _)| ((*name).to_owned(), *color))
            .collect();
        if points.iter().any(|p| p.approvers_at_work > 0) {
            entries.push(("approvers at work".to_owned(), AT_WORK));
        }
        theme::legend(&key, &entries)
    })
}

/// One panel: its lines over the shaded working hours; the time axis labelled on the bottom
/// panel only.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    points: &[TimelinePoint],
    lines: &[(&str, RGBColor, Pick)],
    x_end: f64,
    ticks: &[f64],
    y_desc: &str,
    with_time_axis: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let y_top = points
        .iter()
        .flat_map(|p| lines.iter().map(move |(_, _, pick)| pick(p)))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(if with_time_axis { 44 } else { 8 })
        .y_label_area_size(68)
        .build_cartesian_2d(
            Hours {
                end: x_end,
                ticks: ticks.to_vec(),
            },
            0f64..y_top,
        )?;
    chart.draw_series(points.iter().filter(|p| p.approvers_at_work > 0).map(|p| {
        let hour = f64::from(p.hour);
        Rectangle::new([(hour - 1.0, 0.0), (hour, y_top)], AT_WORK.filled())
    }))?;
    let dates: std::collections::BTreeMap<u32, String> =
        points.iter().map(|p| (p.hour, date_label(&p.at))).collect();
    let label = move |x: &f64| {
        let hour = x.round() as u32;
        dates.get(&hour).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_desc(if with_time_axis { "date (UTC)" } else { "" })
        .y_desc(y_desc)
        .x_label_formatter(&|x| {
            if with_time_axis {
                label(x)
            } else {
                String::new()
            }
        })
        .y_labels(5)
        .y_label_formatter(&|y| thousands(y.round() as u64))
        .bold_line_style(GRID)
        .light_line_style(WHITE.mix(0.0))
        .axis_style(AXIS)
        .label_style(theme::text(13))
        .axis_desc_style(theme::muted(13))
        .draw()?;
    draw_lines(&mut chart, points, lines)
}

/// The panel's lines, with a dot per hour so that a short rehearsal still shows.
fn draw_lines(
    chart: &mut ChartContext<
        '_,
        SVGBackend<'_>,
        Cartesian2d<Hours, plotters::coord::types::RangedCoordf64>,
    >,
    points: &[TimelinePoint],
    lines: &[(&str, RGBColor, Pick)],
) -> Result<(), Box<dyn std::error::Error>> {
    for (_, color, pick) in lines {
        let series: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (f64::from(p.hour), pick(p) as f64))
            .collect();
        chart.draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?;
        chart.draw_series(
            series
                .into_iter()
                .map(|p| Circle::new(p, 2, color.filled())),
        )?;
    }
    Ok(())
}

/// The time axis, in hours since the start, labelled where `ticks` says (plotters' own linear
/// axis labels round numbers, and takes no key points of ours).
struct Hours {
    end: f64,
    ticks: Vec<f64>,
}

impl Ranged for Hours {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = value / self.end.max(f64::MIN_POSITIVE);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.end
    }
}

/// `Mon 12-07 00:00` from an RFC 3339 time (`2026-12-07T00:00:00Z`); the weekday is left out
/// (the report crate keeps no calendar), so it reads `12-07 00:00`.
fn date_label(at: &str) -> String {
    match (at.get(5..10), at.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => at.to_owned(),
    }
}

/// Where the time axis is labelled: at midnight UTC, every day or every few days so that at most
/// ten labels show; for a rehearsal shorter than two days, every few hours.
fn day_ticks(points: &[TimelinePoint]) -> Vec<f64> {
    let midnights: Vec<u32> = points
        .iter()
        .filter(|p| p.at.get(11..13) == Some("00"))
        .map(|p| p.hour)
        .collect();
    let hours: Vec<u32> = if midnights.len() >= 2 {
        let every = midnights.len().div_ceil(10);
        midnights.into_iter().step_by(every).collect()
    } else {
        let every = points.len().div_ceil(8).max(1);
        points.iter().map(|p| p.hour).step_by(every).collect()
    };
    hours.into_iter().map(f64::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(hour: u32, at: &str) -> TimelinePoint {
        TimelinePoint {
            hour,
            at: at.to_owned(),
            signed_in: 0,
            awaiting_approval: 0,
            expired: 0,
            in_verification: 0,
            approvers_at_work: 0,
        }
    }

    #[test]
    fn the_time_axis_reads_as_dates_at_midnight() {
        let points: Vec<TimelinePoint> = (1..=72)
            .map(|h| {
                point(
                    h,
                    &format!("2026-12-{:02}T{:02}:00:00Z", 7 + h / 24, h % 24),
                )
            })
            .collect();
        assert_eq!(day_ticks(&points), [24.0, 48.0, 72.0]);
        assert_eq!(date_label(&points[23].at), "12-08 00:00");
    }
}
