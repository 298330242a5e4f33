//! A sweep's report.html: its table and two charts, when the last room signed in and the admin
//! hours of every combination, the marked ones in another colour.

use super::bars::{Bar, bars_in};
use super::theme;
use super::{CSS, esc, write_chart};
use crate::numbers::thousands;
use crate::sweep::SweepReport;
use std::io;

/// Writes a sweep's report.html.
pub fn write_sweep_html(s: &SweepReport, out: &mut impl io::Write) -> io::Result<()> {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>otpfleet sweep: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>What-if sweep: {}</h1>\n<p class=\"meta\">{} combinations · seed {} · {} · \
         otpfleet {}</p></header>\n",
        esc(&s.plan),
        esc(&s.plan),
        s.rows.len(),
        s.seed,
        esc(&s.varied.join(", ")),
        esc(&s.otpfleet_version)
    )?;
    write_table(s, out)?;
    write_charts(s, out)?;
    writeln!(
        out,
        "<footer><p>Written by otpfleet {} from <code>sweep.json</code>; each row \
         is the plan rehearsed alone with its combination and the same seed.</p></footer>\n\
         </main>\n</body>\n</html>",
        esc(&s.otpfleet_version)
    )
}

/// When each combination's last room signed in, and its admin hours.
fn write_charts(s: &SweepReport, out: &mut impl io::Write) -> io::Result<()> {
    let height = (s.rows.len() as u32 * 26 + 60).max(120);
    let marked = |on: bool| if on { theme::GREEN } else { theme::BLUE };
    let finish: Vec<Bar> = s
        .rows
        .iter()
        .map(|r| Bar {
            name: r.label(),
            // Hours from the plan's start.
            count: r
                .last_signed_in_days
                .map_or(0, |d| (d * 24.0).round() as u64),
            color: marked(r.soonest),
            label: format!(
                "{} ({} of {} rooms)",
                r.last_signed_in(),
                thousands(r.signed_in),
                thousands(r.rooms)
            ),
        })
        .collect();
    writeln!(
        out,
        "<section>\n<h2>When the last room signed in</h2>\n<p class=\"note\">Days from the \
         plan's start; green: soonest (of the combinations that signed in the most rooms).</p>"
    )?;
    write_chart(
        bars_in(&finish, (1160, height), &|h| format!("{} d", h / 24)),
        out,
    )?;
    let admin: Vec<Bar> = s
        .rows
        .iter()
        .map(|r| Bar {
            name: r.label(),
            // Tenths of an hour.
            count: (r.admin_hours * 10.0).round() as u64,
            color: marked(r.least_admin_time),
            label: format!(
                "{:.1} h, {} second visits",
                r.admin_hours,
                thousands(r.second_visits)
            ),
        })
        .collect();
    writeln!(
        out,
        "</section>\n<section>\n<h2>Admin hours</h2>\n<p class=\"note\">Approvals, rejections \
         and regenerations at the plan's times per action; green: the least.</p>"
    )?;
    write_chart(
        bars_in(&admin, (1160, height), &|t| format!("{} h", t / 10)),
        out,
    )?;
    writeln!(out, "</section>")
}

fn write_table(s: &SweepReport, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "<section>\n<h2>Combinations</h2>\n<table>\n<tr><th>combination</th>\
         <th>last room signed in</th><th>95% signed in</th><th class=\"n\">second visits</th>\
         <th class=\"n\">OTPs generated</th><th class=\"n\">admin hours</th>\
         <th class=\"n\">rooms signed in</th><th></th></tr>"
    )?;
    for r in &s.rows {
        writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{} of {}</td>\
             <td><strong>{}</strong></td></tr>",
            esc(&r.label()),
            esc(&r.last_signed_in()),
            esc(&r.signed_in_95()),
            thousands(r.second_visits),
            thousands(r.otps_generated),
            r.admin_hours,
            thousands(r.signed_in),
            thousands(r.rooms),
            esc(&r.marks())
        )?;
    }
    writeln!(out, "</table>\n</section>")
}
