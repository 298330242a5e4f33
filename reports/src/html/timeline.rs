//! The rollout over time (rehearsals): consoles signed in, requests awaiting approval, OTPs
//! expired, and consoles still verifying, at the end of every simulated hour.

use super::theme::{self, AXIS, ChartResult, GREEN, GREY, GRID, ORANGE, RED};
use crate::numbers::thousands;
use crate::report::TimelinePoint;
use plotters::prelude::*;

pub fn timeline(points: &[TimelinePoint], size: (u32, u32)) -> ChartResult {
    let x_end = points.iter().map(|p| p.hour).max().unwrap_or(0).max(1) as f64;
    let y_top = points
        .iter()
        .flat_map(|p| {
            [
                p.signed_in,
                p.awaiting_approval,
                p.expired,
                p.in_verification,
            ]
        })
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.08;
    type Pick = fn(&TimelinePoint) -> u64;
    let lines: [(&str, RGBColor, Pick); 4] = [
        ("signed in", GREEN, |p| p.signed_in),
        ("awaiting approval", ORANGE, |p| p.awaiting_approval),
        ("expired", RED, |p| p.expired),
        ("in verification", GREY, |p| p.in_verification),
    ];
    theme::svg(size, |root| {
        let (plot, key) = root.split_horizontally(size.0.saturating_sub(190));
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(68)
            .build_cartesian_2d(0f64..x_end, 0f64..y_top)?;
        chart
            .configure_mesh()
            .x_desc("hours since the rollout started")
            .y_desc("consoles")
            .x_labels(16)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| thousands(y.round() as u64))
            .bold_line_style(GRID)
            .light_line_style(WHITE.mix(0.0))
            .axis_style(AXIS)
            .label_style(theme::text(14))
            .axis_desc_style(theme::muted(14))
            .draw()?;
        for (_, color, pick) in lines {
            let series: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (f64::from(p.hour), pick(p) as f64))
                .collect();
            chart.draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?;
            // Dots as well, so a short rehearsal (one or two hours) still shows.
            chart.draw_series(
                series
                    .into_iter()
                    .map(|p| Circle::new(p, 2, color.filled())),
            )?;
        }
        let entries: Vec<(String, RGBColor)> = lines
            .iter()
            .map(|(name, color, _)| ((*name).to_owned(), *color))
            .collect();
        theme::legend(&key, &entries)?;
        Ok(())
    })
}
