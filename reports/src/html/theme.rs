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

/// Tableau 10: distinct and readable for most colour vision.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

pub const BLUE: RGBColor = PALETTE[0];
pub const ORANGE: RGBColor = PALETTE[1];
pub const RED: RGBColor = PALETTE[2];
pub const TEAL: RGBColor = PALETTE[3];
pub const GREEN: RGBColor = PALETTE[4];
pub const PURPLE: RGBColor = PALETTE[6];
pub const GREY: RGBColor = PALETTE[9];

/// The colour of a step, the same in every chart: by its place in a console's walk.
pub fn step_color(step: &str) -> RGBColor {
    const STEPS: [&str; 8] = [
        "verify",
        "redeem",
        "poll",
        "approve",
        "sign_in",
        "issue",
        "reject",
        "manual_sign_in",
    ];
    let i = STEPS.iter().position(|s| *s == step).unwrap_or_else(|| {
        // Other names (load scenarios) get a stable colour from their bytes.
        step.bytes().map(usize::from).sum::<usize>() % PALETTE.len()
    });
    PALETTE[i % PALETTE.len()]
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
    for (i, (name, color)) in entries.iter().enumerate() {
        let y = 30 + 24 * i32::try_from(i).unwrap_or(0);
        area.draw(&PathElement::new(
            vec![(8, y), (32, y)],
            color.stroke_width(3),
        ))?;
        area.draw(&Text::new(name.clone(), (40, y), left_centered(text(14))))?;
    }
    Ok(())
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
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(100.0), 100.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
