//! Colours, fonts and the SVG canvas shared by every chart of `report.html`.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A chart that could not be drawn (the page says so in its place).
pub type ChartResult = Result<String, Box<dyn std::error::Error>>;

pub const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
pub const MUTED: RGBColor = RGBColor(0x77, 0x77, 0x77);
pub const GRID: RGBColor = RGBColor(0xe3, 0xe3, 0xe3);
pub const AXIS: RGBColor = RGBColor(0xaa, 0xaa, 0xaa);
pub const FONT: &str = "sans-serif";

/// Twelve colours for series, after Paul Tol's colour-blind-safe schemes (muted, with blue and
/// orange of his vibrant one): no two steps of a run share one. Series are also told apart by a
/// marker ([`Marker`]), so a reader who cannot tell two colours apart still can.
const PALETTE: [RGBColor; 12] = [
    RGBColor(0x44, 0x77, 0xaa), // blue
    RGBColor(0xee, 0x77, 0x33), // orange
    RGBColor(0xcc, 0x66, 0x77), // rose
    RGBColor(0x44, 0xaa, 0x99), // teal
    RGBColor(0x11, 0x77, 0x33), // green
    RGBColor(0xdd, 0xcc, 0x77), // sand
    RGBColor(0xaa, 0x44, 0x99), // purple
    RGBColor(0x88, 0xcc, 0xee), // cyan
    RGBColor(0x88, 0x22, 0x55), // wine
    RGBColor(0x33, 0x22, 0x88), // indigo
    RGBColor(0x99, 0x99, 0x33), // olive
    RGBColor(0xbb, 0xbb, 0xbb), // grey
];

pub const BLUE: RGBColor = PALETTE[0];
pub const ORANGE: RGBColor = PALETTE[1];
pub const RED: RGBColor = PALETTE[2];
pub const TEAL: RGBColor = PALETTE[3];
pub const GREEN: RGBColor = PALETTE[4];
pub const PURPLE: RGBColor = PALETTE[6];
pub const GREY: RGBColor = PALETTE[11];

/// Every step a run can time, in the order of a console's walk and then the load scenarios'
/// own: each has its own colour and marker.
const STEPS: [&str; 11] = [
    "verify",
    "redeem",
    "poll",
    "approve",
    "sign_in",
    "issue",
    "reject",
    "manual_sign_in",
    "list_requests",
    "review",
    "export",
];

/// A point marker: the second way to tell series apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

fn step_index(step: &str) -> usize {
    STEPS.iter().position(|s| *s == step).unwrap_or_else(|| {
        // Other names get a stable place from their bytes.
        step.bytes().map(usize::from).sum::<usize>() % PALETTE.len()
    })
}

/// The colour of a step, the same in every chart.
pub fn step_color(step: &str) -> RGBColor {
    PALETTE[step_index(step) % PALETTE.len()]
}

/// The marker of a step, the same in every chart (steps next to each other in the walk get
/// different ones).
pub fn step_marker(step: &str) -> Marker {
    MARKERS[step_index(step) % MARKERS.len()]
}

/// Draws `marker` at a few of `points` (about eight per series, so lines stay readable).
pub fn draw_markers<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    points: &[(f64, f64)],
    marker: Marker,
    color: RGBColor,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let every = (points.len() / 8).max(1);
    let picked = points.iter().step_by(every).copied();
    let style = color.filled();
    match marker {
        Marker::Circle => chart.draw_series(picked.map(|p| Circle::new(p, 4, style)))?,
        Marker::Triangle => chart.draw_series(picked.map(|p| TriangleMarker::new(p, 5, style)))?,
        Marker::Square => chart.draw_series(
            picked.map(|p| EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], style)),
        )?,
        Marker::Cross => {
            chart.draw_series(picked.map(|p| Cross::new(p, 4, color.stroke_width(2))))?
        }
    };
    Ok(())
}

/// The colour of an outcome: green for signed in, warm for what went wrong.
pub fn outcome_color(outcome: &str) -> RGBColor {
    match outcome {
        "signed_in_otp" => GREEN,
        "signed_in_manual" => TEAL,
        "rejected" => RED,
        "expired" => ORANGE,
        "verification_failed" => PURPLE,
        _ => GREY,
    }
}

pub fn text(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

pub fn muted(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&MUTED)
}

/// Text anchored by its left end, vertically centred.
pub fn left_centered(style: TextStyle<'static>) -> TextStyle<'static> {
    style.pos(Pos::new(HPos::Left, VPos::Center))
}

/// A legend drawn beside a chart (not over its data): a short line and a name per entry.
pub fn legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    entries: &[(String, RGBColor)],
) -> Result<(), Box<dyn std::error::Error>> {
    let marked: Vec<Entry> = entries.iter().map(|(n, c)| (n.clone(), *c, None)).collect();
    legend_marked(area, &marked)
}

/// A legend of steps: each with its colour and marker.
pub fn step_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    steps: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    legend_marked(area, &step_entries(steps))
}

/// A legend entry: a name, its colour and its marker, if any.
pub type Entry = (String, RGBColor, Option<Marker>);

/// The legend entries of steps: each with its colour and marker.
pub fn step_entries(steps: &[String]) -> Vec<Entry> {
    steps
        .iter()
        .map(|s| (s.clone(), step_color(s), Some(step_marker(s))))
        .collect()
}

/// A legend whose entries may carry a marker.
pub fn legend_marked(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    entries: &[Entry],
) -> Result<(), Box<dyn std::error::Error>> {
    for (i, (name, color, marker)) in entries.iter().enumerate() {
        let y = 30 + 24 * i32::try_from(i).unwrap_or(0);
        area.draw(&PathElement::new(
            vec![(8, y), (32, y)],
            color.stroke_width(3),
        ))?;
        let style = color.filled();
        match marker {
            Some(Marker::Circle) => area.draw(&Circle::new((20, y), 4, style))?,
            Some(Marker::Triangle) => area.draw(&TriangleMarker::new((20, y), 5, style))?,
            Some(Marker::Square) => {
                area.draw(&Rectangle::new([(16, y - 4), (24, y + 4)], style))?
            }
            Some(Marker::Cross) => area.draw(&Cross::new((20, y), 4, color.stroke_width(2)))?,
            None => {}
        }
        area.draw(&Text::new(name.clone(), (40, y), left_centered(text(14))))?;
    }
    Ok(())
}

/// Labels for a log axis from `lo` to `hi`, at most `max` of them, all inside the range: the
/// finest of 1, 1-3, 1-2-5, 1-2-3-5-7 and 1..9 times each power of ten that fits, so an axis
/// whose data sits within one decade is labelled too, not only at the decades.
pub fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let inside = |mults: &[f64]| -> Vec<f64> {
        let mut out = Vec::new();
        let mut power = 10f64.powf(lo.log10().floor());
        while power <= hi {
            for m in mults {
                let v = m * power;
                if v >= lo * 0.999_999 && v <= hi * 1.000_001 {
                    out.push(v);
                }
            }
            power *= 10.0;
        }
        out
    };
    let sets: [&[f64]; 5] = [
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        &[1.0, 2.0, 3.0, 5.0, 7.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 3.0],
        &[1.0],
    ];
    for mults in sets {
        let ticks = inside(mults);
        if ticks.len() <= max.max(2) {
            if ticks.len() >= 2 {
                return ticks;
            }
            break;
        }
    }
    let decades = inside(&[1.0]);
    if decades.len() > max.max(2) {
        // Many decades: every k-th.
        let k = decades.len().div_ceil(max.max(2));
        return decades.into_iter().step_by(k).collect();
    }
    // Less than a step of 1..9 inside: the ends, to two significant digits.
    let round2 = |v: f64| {
        let p = 10f64.powf(v.log10().floor() - 1.0);
        (v / p).round() * p
    };
    vec![round2(lo), round2(hi)]
}

/// Draws onto a white SVG canvas of `size` pixels and answers the SVG text.
pub fn svg(
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>,
) -> ChartResult {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw`: a step people read.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * 0.999_999)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_log_axis_has_labels_inside_its_range() {
        // Within one decade: finer than the decades.
        let t = log_ticks(120.0, 900.0, 8);
        assert!(
            t.len() >= 3 && t.iter().all(|v| (120.0..=900.0).contains(v)),
            "{t:?}"
        );
        // Many decades: at most `max`.
        let t = log_ticks(1.0, 1e9, 6);
        assert!((2..=6).contains(&t.len()), "{t:?}");
        // A sliver of a decade: its two ends.
        assert_eq!(log_ticks(101.0, 104.0, 5).len(), 2);
    }

    #[test]
    fn every_known_step_has_its_own_colour() {
        let colours: std::collections::BTreeSet<(u8, u8, u8)> = STEPS
            .iter()
            .map(|s| {
                let c = step_color(s);
                (c.0, c.1, c.2)
            })
            .collect();
        assert_eq!(colours.len(), STEPS.len());
    }

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(100.0), 100.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
