//! A what-if sweep's report: one rehearsal plan run for every combination of a few settings,
//! with the same seed, a row per combination with its headline answers; the combinations that
//! finish soonest and those that cost the least admin time marked. Written as `sweep.json` (the
//! source), `sweep.md` and `report.html` (`html::write_sweep_html`).

use crate::numbers::thousands;
use serde::{Deserialize, Serialize};
use std::io;

/// The file a sweep's report is written to, in its folder.
pub const SWEEP_JSON: &str = "sweep.json";

/// One setting of a combination: `validity` = `24h`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

/// One combination's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub settings: Vec<Setting>,
    pub rooms: u64,
    pub signed_in: u64,
    /// When the last room signed in, RFC 3339 in its site's local time (none if none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_signed_in_at: Option<String>,
    /// The same moment, days from the plan's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_signed_in_days: Option<f64>,
    /// When 95% of the rooms had signed in (none if fewer ever did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in_95_at: Option<String>,
    pub second_visits: u64,
    pub otps_generated: u64,
    /// Expired OTPs over OTPs generated.
    pub expired_share: f64,
    pub admin_hours: f64,
    /// Among the combinations that signed in the most rooms, the last room signed in soonest.
    pub soonest: bool,
    /// The least admin time of all the combinations.
    pub least_admin_time: bool,
}

impl SweepRow {
    /// The combination as written on the command line: `validity=24h approvers=4`.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .settings
            .iter()
            .map(|s| format!("{}={}", s.name, s.value))
            .collect();
        parts.join(" ")
    }

    /// The last sign-in as a person reads it: `2027-01-04 13:53 -08:00`, or "none".
    pub fn last_signed_in(&self) -> String {
        self.last_signed_in_at
            .as_deref()
            .map_or_else(|| "none".to_owned(), readable)
    }

    /// When 95% had signed in, as a person reads it, or "never".
    pub fn signed_in_95(&self) -> String {
        self.signed_in_95_at
            .as_deref()
            .map_or_else(|| "never".to_owned(), readable)
    }

    /// What the row is marked, in words.
    pub fn marks(&self) -> String {
        let mut marks = Vec::new();
        if self.soonest {
            marks.push("soonest");
        }
        if self.least_admin_time {
            marks.push("least admin time");
        }
        marks.join(", ")
    }
}

/// An RFC 3339 local time (`2027-01-04T13:53:10-08:00`) as `2027-01-04 13:53 -08:00`.
fn readable(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16), rfc3339.get(19..)) {
        (Some(date), Some(time), Some(offset)) => format!("{date} {time} {offset}"),
        _ => rfc3339.to_owned(),
    }
}

/// A sweep: the plan, the seed, what was varied, and a row per combination in the order the
/// combinations were given (the first setting varies slowest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub plan: String,
    pub seed: u64,
    /// The `--vary` arguments, as given.
    pub varied: Vec<String>,
    pub rows: Vec<SweepRow>,
    pub otpfleet_version: String,
}

impl SweepReport {
    /// The table, as the terminal shows it.
    pub fn table(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.label().len())
            .max()
            .unwrap_or(0)
            .max(11);
        let mut s = format!(
            "{:<width$}  {:<22}  {:<22}  {:>13}  {:>7}  {:>11}  {:>9}  marks\n",
            "combination",
            "last room signed in",
            "95% signed in",
            "second visits",
            "OTPs",
            "admin hours",
            "signed in"
        );
        for r in &self.rows {
            s.push_str(&format!(
                "{:<width$}  {:<22}  {:<22}  {:>13}  {:>7}  {:>11.1}  {:>9}  {}\n",
                r.label(),
                r.last_signed_in(),
                r.signed_in_95(),
                thousands(r.second_visits),
                thousands(r.otps_generated),
                r.admin_hours,
                thousands(r.signed_in),
                r.marks()
            ));
        }
        s
    }
}

/// Writes `sweep.md`: the table, for a PR comment or a ticket.
pub fn write_sweep_markdown(s: &SweepReport, out: &mut impl io::Write) -> io::Result<()> {
    writeln!(
        out,
        "# What-if sweep: {}\n\nSeed {}, {} combinations ({}); each row is the plan rehearsed \
         alone with that combination and the same seed.\n",
        s.plan,
        s.seed,
        s.rows.len(),
        s.varied.join(", ")
    )?;
    writeln!(
        out,
        "| combination | last room signed in | 95% signed in | second visits | OTPs generated \
         | admin hours | rooms signed in | OTPs expired | |\n\
         | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    )?;
    for r in &s.rows {
        writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {:.1} | {} of {} | {:.1}% | {} |",
            r.label(),
            r.last_signed_in(),
            r.signed_in_95(),
            thousands(r.second_visits),
            thousands(r.otps_generated),
            r.admin_hours,
            thousands(r.signed_in),
            thousands(r.rooms),
            r.expired_share * 100.0,
            r.marks()
        )?;
    }
    writeln!(
        out,
        "\n**soonest**: of the combinations that signed in the most rooms, the last room signed \
         in soonest. **least admin time**: the fewest admin hours (approvals, rejections, \
         regenerations at the plan's times per action)."
    )
}
