//! Time to sign-in as a distribution: consoles per time bucket from arrival to sign-in, with
//! the median, p90 and p99 marked.

use super::theme::{self, AXIS, BLUE, ChartResult, GRID, INK, nice_step};
use crate::numbers::thousands;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// About this many bars across the chart.
const BARS: f64 = 60.0;

/// The unit an axis of durations reads best in.
#[derive(Debug, Clone, Copy)]
struct Unit {
    name: &'static str,
    seconds: f64,
}

impl Unit {
    fn for_longest(seconds: f64) -> Unit {
        if seconds > 3.0 * 3600.0 {
            Unit {
                name: "h",
                seconds: 3600.0,
            }
        } else if seconds > 180.0 {
            Unit {
                name: "min",
                seconds: 60.0,
            }
        } else {
            Unit {
                name: "s",
                seconds: 1.0,
            }
        }
    }
}

/// Bars of consoles per bucket of `width` (in `unit`), from zero to the largest value.
fn buckets(h: &Histogram<u64>, unit: Unit) -> (f64, Vec<u64>) {
    let longest = h.max() as f64 / 1e6 / unit.seconds;
    let width = nice_step(longest / BARS);
    let n = ((longest / width).floor() as usize + 1).min(10 * BARS as usize);
    let mut counts = vec![0u64; n];
    for v in h.iter_recorded() {
        let x = h.median_equivalent(v.value_iterated_to()) as f64 / 1e6 / unit.seconds;
        let i = ((x / width).floor() as usize).min(n - 1);
        counts[i] += v.count_at_value();
    }
    (width, counts)
}

/// The distribution chart of a whole-flow histogram in microseconds.
pub fn time_to_signed_in(h: &Histogram<u64>, size: (u32, u32)) -> ChartResult {
    let unit = Unit::for_longest(h.max() as f64 / 1e6);
    let (width, counts) = buckets(h, unit);
    let x_end = width * counts.len() as f64;
    let y_end = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.18;
    theme::svg(size, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(68)
            .build_cartesian_2d(0f64..x_end, 0f64..y_end)?;
        let x_desc = format!("time from arrival to signed in ({})", unit.name);
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("consoles")
            .x_labels(14)
            .y_labels(6)
            .x_label_formatter(&|x| trim_number(*x))
            .y_label_formatter(&|y| thousands(y.round() as u64))
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(WHITE.mix(0.0))
            .axis_style(AXIS)
            .label_style(theme::text(14))
            .axis_desc_style(theme::muted(14))
            .draw()?;
        chart.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| {
                    let x0 = i as f64 * width;
                    Rectangle::new(
                        [(x0 + width * 0.06, 0.0), (x0 + width * 0.94, *c as f64)],
                        BLUE.mix(0.85).filled(),
                    )
                }),
        )?;
        // Labels right of their lines at staggered heights, so close percentiles stay legible.
        for (label, q, height) in [("p50", 0.5, 0.96), ("p90", 0.9, 0.88), ("p99", 0.99, 0.80)] {
            let x = h.value_at_quantile(q) as f64 / 1e6 / unit.seconds;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, y_end * height)],
                INK.mix(0.7).stroke_width(1),
            )))?;
            let text = format!("{label} {} {}", trim_number(x), unit.name);
            // Right of the line, or left of it near the right edge, so it is never cut off.
            let (h_pos, dx) = if x > x_end * 0.8 {
                (HPos::Right, -5)
            } else {
                (HPos::Left, 5)
            };
            let style = theme::text(13).pos(Pos::new(h_pos, VPos::Center));
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, y_end * height)) + Text::new(text, (dx, 0), style),
            ))?;
        }
        Ok(())
    })
}

/// `2.5`, `3`, `0.25`: as few decimals as the number needs (up to three).
fn trim_number(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_every_console_once() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("h");
        for ms in 1..=500u64 {
            h.record(ms * 7_000).expect("record");
        }
        let (width, counts) = buckets(&h, Unit::for_longest(3.5));
        assert_eq!(counts.iter().sum::<u64>(), 500);
        assert!(
            width > 0.0 && counts.len() <= 80,
            "{width} {}",
            counts.len()
        );
        assert_eq!(trim_number(2.500), "2.5");
        assert_eq!(trim_number(3.0), "3");
    }
}
