//! Horizontal bar charts of counts (outcomes, faults), each bar labelled with its count.

use super::theme::{self, AXIS, ChartResult, GRID, left_centered};
use crate::numbers::thousands;
use plotters::prelude::*;

/// One bar: its name, count, colour and the label written after it.
#[derive(Debug, Clone)]
pub struct Bar {
    pub name: String,
    pub count: u64,
    pub color: RGBColor,
    pub label: String,
}

/// Bars top to bottom in the order given, counts on the axis.
pub fn bars(items: &[Bar], size: (u32, u32)) -> ChartResult {
    bars_in(items, size, &|x| thousands(x))
}

/// Bars top to bottom in the order given, the axis's ticks written by `tick`.
pub fn bars_in(items: &[Bar], size: (u32, u32), tick: &dyn Fn(u64) -> String) -> ChartResult {
    let n = items.len().max(1);
    let largest = items.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    // Room to the right of the longest bar for its label; whole numbers, so ticks are too.
    let x_end = (largest as f64 * 1.38).ceil() as u64 + 1;
    // Rows are ten units high (integer coordinates label best); row 0 is at the top.
    let rows = i32::try_from(n).unwrap_or(i32::MAX / 10);
    let centres: Vec<i32> = (0..rows).map(|i| i * 10 + 5).collect();
    let name_of = |y: i32| -> String {
        let row = usize::try_from(rows - 1 - y / 10).unwrap_or(usize::MAX);
        items.get(row).map(|b| b.name.clone()).unwrap_or_default()
    };
    theme::svg(size, |root| {
        let label_px = items.iter().map(|b| b.name.len()).max().unwrap_or(4) as u32 * 8 + 16;
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(label_px)
            .build_cartesian_2d(0u64..x_end, (0..rows * 10).with_key_points(centres.clone()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| name_of(*y))
            .bold_line_style(GRID)
            .light_line_style(WHITE.mix(0.0))
            .axis_style(AXIS)
            .label_style(theme::text(14))
            .draw()?;
        for (i, bar) in (0..rows).rev().zip(items) {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0, i * 10 + 2), (bar.count, i * 10 + 8)],
                bar.color.filled(),
            )))?;
            // The label sits a few pixels past the bar's end, whatever the scale.
            chart.draw_series(std::iter::once(
                EmptyElement::at((bar.count, i * 10 + 5))
                    + Text::new(bar.label.clone(), (6, 0), left_centered(theme::text(13))),
            ))?;
        }
        Ok(())
    })
}
