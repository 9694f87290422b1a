//! Durations (`"500ms"`, `"1m30s"`, bare seconds) and byte sizes (`"25MiB"`, `"1MB"`, bare bytes): parsing
//! and the canonical text the rendered configuration uses.
//!
//! Numbers may carry a decimal fraction (`"1.5s"`, `"0.5MiB"`) as long as the result is a whole number of
//! nanoseconds or bytes. Units: `ns us ms s m h d` for durations; `B`, `KB MB GB TB` (powers of 1000) and
//! `KiB MiB GiB TiB` (powers of 1024) for sizes, matched case-insensitively.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("d", 86_400 * NANOS_PER_SECOND),
];

const SIZE_UNITS: &[(&str, u128)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Parses a duration: one or more `<number><unit>` terms (`"1m30s"`), or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let invalid =
        || format!("invalid duration {text:?}; expected e.g. \"500ms\", \"5s\", \"1m30s\" or seconds");
    if trimmed.is_empty() {
        return Err(invalid());
    }
    if let Some(nanos) = parse_decimal_times(trimmed, NANOS_PER_SECOND) {
        let nanos = nanos.map_err(|_| format!("duration {text:?} is not a whole number of nanoseconds"))?;
        return nanos_to_duration(nanos, text);
    }
    let mut rest = trimmed;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let (number, after) = rest.split_at(number_len);
        let unit_len =
            after.find(|c: char| c.is_ascii_digit() || c == '.' || c == ' ').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let factor = DURATION_UNITS
            .iter()
            .find(|(name, _)| *name == unit.to_ascii_lowercase())
            .map(|(_, factor)| *factor)
            .ok_or_else(invalid)?;
        let nanos = parse_decimal_times(number, factor)
            .ok_or_else(invalid)?
            .map_err(|_| format!("duration {text:?} is not a whole number of nanoseconds"))?;
        total = total.checked_add(nanos).ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = after.trim_start();
    }
    nanos_to_duration(total, text)
}

/// Parses a byte size: a bare number of bytes or `<number><unit>` (`"25MiB"`, `"1MB"`).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let invalid = || format!("invalid size {text:?}; expected e.g. \"1MiB\", \"25MB\" or a number of bytes");
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let factor = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS.iter().find(|(name, _)| *name == unit).map(|(_, factor)| *factor).ok_or_else(invalid)?
    };
    let bytes = parse_decimal_times(number, factor)
        .ok_or_else(invalid)?
        .map_err(|_| format!("size {text:?} is not a whole number of bytes"))?;
    u64::try_from(bytes).map_err(|_| format!("size {text:?} is too large"))
}

/// `number × factor` for a decimal `number` (digits with at most one `.`), exactly.
/// `None`: not a number. `Some(Err)`: the product is not a whole number (or overflows).
fn parse_decimal_times(number: &str, factor: u128) -> Option<Result<u128, ()>> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let digits = format!("{whole}{fraction}");
    let Ok(mantissa) = digits.parse::<u128>() else {
        return Some(Err(()));
    };
    let Some(product) = mantissa.checked_mul(factor) else {
        return Some(Err(()));
    };
    Some(if product.is_multiple_of(scale) { Ok(product / scale) } else { Err(()) })
}

fn nanos_to_duration(nanos: u128, text: &str) -> Result<Duration, String> {
    let seconds =
        u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| format!("duration {text:?} is too long"))?;
    // The remainder is below 10^9 and so fits in u32.
    let subsec = (nanos % NANOS_PER_SECOND) as u32;
    Ok(Duration::new(seconds, subsec))
}

/// The canonical text of a duration: the largest unit that divides it exactly (`"5m"`, `"1500ms"`, `"0s"`).
pub(crate) fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let (unit, factor) = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        .into_iter()
        .map(|(unit, seconds)| (unit, seconds * NANOS_PER_SECOND))
        .chain([("ms", 1_000_000), ("us", 1_000), ("ns", 1)])
        .find(|(_, factor)| nanos.is_multiple_of(*factor))
        .unwrap_or(("ns", 1));
    format!("{}{unit}", nanos / factor)
}

/// The canonical text of a size: the largest binary unit that divides it exactly, else the largest decimal
/// one, else bytes (`"25MiB"`, `"1MB"`, `"1000"` → `"1KB"`, `"7"` → `"7B"`).
pub(crate) fn format_size(bytes: u64) -> String {
    let bytes = u128::from(bytes);
    if bytes == 0 {
        return "0B".to_owned();
    }
    let binary = [("TiB", 1u128 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    let decimal = [("TB", 1_000_000_000_000u128), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)];
    let (unit, factor) = binary
        .into_iter()
        .chain(decimal)
        .find(|(_, factor)| bytes.is_multiple_of(*factor))
        .unwrap_or(("B", 1));
    format!("{}{unit}", bytes / factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_accepted_notation() {
        let cases = [
            ("5", Duration::from_secs(5)),
            ("0", Duration::ZERO),
            ("1.5", Duration::from_millis(1_500)),
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("5m", Duration::from_secs(300)),
            ("1m30s", Duration::from_secs(90)),
            ("1h 30m", Duration::from_secs(5_400)),
            ("4d", Duration::from_secs(4 * 86_400)),
            ("1.5s", Duration::from_millis(1_500)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            (" 2S ", Duration::from_secs(2)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in ["", "s", "5 parsecs", "5x", "1..5s", "-5s", "1.5ns", "five"] {
            assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        let cases = [
            ("0", 0),
            ("1024", 1024),
            ("12B", 12),
            ("1KB", 1_000),
            ("1MB", 1_000_000),
            ("1KiB", 1_024),
            ("25MiB", 25 << 20),
            ("1GiB", 1 << 30),
            ("0.5MiB", 512 << 10),
            ("1 mib", 1 << 20),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn malformed_sizes_are_rejected() {
        for text in ["", "MiB", "1.5B", "1 parsec", "-1", "1e6", "99999999999TiB"] {
            assert!(parse_size(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn canonical_text_uses_the_largest_exact_unit_and_parses_back() {
        let durations = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(4 * 86_400), "4d"),
            (Duration::from_millis(1_500), "1500ms"),
            (Duration::from_nanos(3), "3ns"),
        ];
        for (duration, text) in durations {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
        let sizes = [(0, "0B"), (7, "7B"), (1 << 20, "1MiB"), (25 << 20, "25MiB"), (1_000_000, "1MB")];
        for (bytes, text) in sizes {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes));
        }
    }
}
