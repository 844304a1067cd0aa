//! Durations and clock times in scenario files: `"24h"`, `"90 s"`, `"15min"`, `"500ms"`, `"1h30min"`,
//! `"2d"`, or a clock time `"07:30"` / `"07:30:15"` (from midnight).

/// Parses a duration or clock time into milliseconds.
pub fn duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a duration: write e.g. \"24h\", \"15min\", \"90s\", \"500ms\" or \"07:30\"");
    if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        let mut ms = 0u64;
        for (i, p) in parts.iter().enumerate() {
            let v: u64 = p.parse().map_err(|_| bad())?;
            let (unit, limit) = [(3_600_000, u64::MAX), (60_000, 59), (1000, 59)][i];
            if v > limit {
                return Err(bad());
            }
            ms = ms.checked_add(v.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
        }
        return Ok(ms);
    }
    let mut rest = t;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" | "sec" => 1000.0,
            "min" | "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return Err(bad()),
        };
        rest = rest[unit_len..].trim_start();
        let ms = value * unit;
        if !(0.0..1e15).contains(&ms) || ms.fract() != 0.0 {
            return Err(bad());
        }
        total = total.checked_add(ms as u64).ok_or_else(bad)?;
    }
    Ok(total)
}

/// `hh:mm:ss` for a time in ms (hours may exceed 24).
pub fn format_duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(duration_ms("24h"), Ok(86_400_000));
        assert_eq!(duration_ms("1h30min"), Ok(5_400_000));
        assert_eq!(duration_ms("90 s"), Ok(90_000));
        assert_eq!(duration_ms("0.5s"), Ok(500));
        assert_eq!(duration_ms("07:30"), Ok(27_000_000));
        assert!(duration_ms("7 parsecs").is_err());
        assert!(duration_ms("").is_err());
        assert!(duration_ms("07:75").is_err());
        assert!(duration_ms("0.0001ms").is_err());
        assert_eq!(format_duration(3_723_000), "01:02:03");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,24}") {
            let _ = duration_ms(&s);
        }
    }
}
