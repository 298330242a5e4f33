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

/// A duration in seconds, in the unit that reads best (ms below a second, min and h above).
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.2} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
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
        assert_eq!(seconds(600.0), "10.0 min");
        assert_eq!(seconds(9000.0), "2.5 h");
    }
}
