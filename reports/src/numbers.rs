//! Numbers as people read them: thousands separators, shares, changes.

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` of `of` as a percentage with one decimal, or `-` when `of` is zero.
pub fn share(n: u64, of: u64) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{:.1}%", n as f64 * 100.0 / of as f64)
}

/// The relative change from `base` to `new` in percent, when `base` is above zero.
pub fn change_pct(base: f64, new: f64) -> Option<f64> {
    (base > 0.0).then(|| (new - base) / base * 100.0)
}

/// The duration `s` of a set of `count` values, or `-` when the set is empty (a p50 of nothing
/// is not 0 ms).
pub fn seconds_of(count: u64, s: f64) -> String {
    if count == 0 { "-".into() } else { seconds(s) }
}

/// A duration in seconds as people say it: `250 ms`, `2.74 s`, `10 min 5 s`, `2 h 30 min`,
/// `19 d 2 h` (whole units from two minutes on).
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        return format!("{:.0} ms", s * 1000.0);
    }
    if s < 120.0 {
        return format!("{s:.2} s");
    }
    let whole = s.round() as u64;
    let (d, h, m, sec) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    let pair = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a} {ua}")
        } else {
            format!("{a} {ua} {b} {ub}")
        }
    };
    if whole < 7200 {
        pair(whole / 60, "min", sec, "s")
    } else if whole < 2 * 86_400 {
        pair(whole / 3600, "h", m, "min")
    } else {
        pair(d, "d", h, "h")
    }
}

/// Microseconds as people read them: `57 µs`, `1.2 ms`, `3.6 s`, then as `seconds`.
pub fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 10_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        seconds(us as f64 / 1e6)
    }
}

/// A share from 0 to 1 as a percentage, with the decimals a small rate needs.
pub fn rate_pct(rate: f64) -> String {
    let pct = rate * 100.0;
    if pct == 0.0 {
        "0%".into()
    } else if pct < 0.1 {
        format!("{pct:.3}%")
    } else {
        format!("{pct:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(share(1, 3), "33.3%");
        assert_eq!(share(1, 0), "-");
        assert_eq!(change_pct(100.0, 110.0), Some(10.0));
        assert_eq!(change_pct(0.0, 5.0), None);
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(2.742), "2.74 s");
        assert_eq!(seconds(600.0), "10 min");
        assert_eq!(seconds(605.0), "10 min 5 s");
        assert_eq!(seconds(9000.0), "2 h 30 min");
        assert_eq!(seconds(1_650_758.2), "19 d 2 h");
        assert_eq!(micros(57), "57 µs");
        assert_eq!(micros(1_234), "1.23 ms");
        assert_eq!(micros(58_217_000_000), "16 h 10 min");
        assert_eq!(rate_pct(0.0005), "0.050%");
        assert_eq!(rate_pct(0.25), "25.0%");
    }
}
