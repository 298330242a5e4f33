//! Working hours in a time zone, for admins of a rehearsal.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};
use tokio::time::Instant;

/// When someone works: from `start` to `end` local time on `days` but `holidays`, in `tz`.
#[derive(Debug, Clone)]
pub struct WorkSchedule {
    pub tz: TimeZone,
    pub start: Time,
    pub end: Time,
    pub days: Vec<Weekday>,
    /// Dates (in `tz`) off work.
    pub holidays: Vec<jiff::civil::Date>,
    /// The wall time (ms) at `origin`: maps tokio's clock to dates.
    pub origin_ms: i64,
    pub origin: Instant,
}

impl WorkSchedule {
    fn now(&self, at: Instant) -> Timestamp {
        let elapsed = i64::try_from(at.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(i64::MAX);
        Timestamp::from_millisecond(self.origin_ms.saturating_add(elapsed))
            .unwrap_or(Timestamp::MAX)
    }

    /// Milliseconds until this person is at work (0 when working now).
    pub fn ms_until_working(&self, at: Instant) -> u64 {
        let now = self.now(at).to_zoned(self.tz.clone());
        // Five weeks ahead: past a long holiday too.
        for day in 0..36i64 {
            let Ok(date) = now.date().checked_add(day.days()) else {
                break;
            };
            if !self.days.contains(&date.weekday()) || self.holidays.contains(&date) {
                continue;
            }
            let (Ok(open), Ok(close)) = (
                date.to_datetime(self.start).to_zoned(self.tz.clone()),
                date.to_datetime(self.end).to_zoned(self.tz.clone()),
            ) else {
                continue;
            };
            if now < close {
                let wait = open.timestamp().as_millisecond() - now.timestamp().as_millisecond();
                return u64::try_from(wait.max(0)).unwrap_or(0);
            }
        }
        // No working day in the coming five weeks: check again in a day.
        86_400_000
    }
}

/// Parses `HH:MM-HH:MM`.
pub fn parse_hours(text: &str) -> Result<(Time, Time), String> {
    let bad = || format!("{text:?} is not working hours: write HH:MM-HH:MM, e.g. 09:00-17:00");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let start: Time = a.trim().parse().map_err(|_| bad())?;
    let end: Time = b.trim().parse().map_err(|_| bad())?;
    if end <= start {
        return Err(format!(
            "{text:?}: the end must be after the start (overnight shifts are not supported)"
        ));
    }
    Ok((start, end))
}

/// Parses a weekday name (`mon`, `tuesday`, ...).
pub fn parse_weekday(text: &str) -> Result<Weekday, String> {
    let t = text.trim().to_ascii_lowercase();
    let day = match t.get(..3).unwrap_or("") {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => {
            return Err(format!(
                "{text:?} is not a weekday: use mon, tue, wed, thu, fri, sat, sun"
            ));
        }
    };
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// New York office hours, Monday to Friday but `holidays`, seen from Friday 2026-11-20 18:00.
    fn from_friday_evening(holidays: Vec<jiff::civil::Date>) -> WorkSchedule {
        let (start, end) = parse_hours("09:00-17:00").expect("hours");
        let friday_evening: Timestamp = "2026-11-20T18:00:00-05:00".parse().expect("ts");
        WorkSchedule {
            tz: TimeZone::get("America/New_York").expect("tz"),
            start,
            end,
            days: ["mon", "tue", "wed", "thu", "fri"]
                .iter()
                .map(|d| parse_weekday(d).expect("day"))
                .collect(),
            holidays,
            origin_ms: friday_evening.as_millisecond(),
            origin: Instant::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_next_working_morning() {
        // Next work is Monday 09:00, 63 hours later.
        let s = from_friday_evening(Vec::new());
        assert_eq!(s.ms_until_working(Instant::now()), 63 * 3_600_000);
        tokio::time::advance(std::time::Duration::from_secs(63 * 3600 + 60)).await;
        assert_eq!(s.ms_until_working(Instant::now()), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_holiday_is_skipped_like_a_weekend() {
        // Monday the 23rd off: next work is Tuesday 09:00.
        let s = from_friday_evening(vec!["2026-11-23".parse().expect("date")]);
        assert_eq!(s.ms_until_working(Instant::now()), (63 + 24) * 3_600_000);
    }

    #[test]
    fn refuses_bad_hours() {
        assert!(parse_hours("17:00-09:00").is_err());
        assert!(parse_hours("9-5").is_err());
        assert!(parse_weekday("funday").is_err());
    }
}
