//! UTC time helpers: the ephemeris works in `f64` seconds since the Unix epoch (UTC, no leap seconds), which keeps
//! sub-microsecond resolution for centuries around now and makes the search loops plain arithmetic.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Seconds since 1970-01-01T00:00:00Z (UTC, leap seconds not counted), the ephemeris' time scale.
pub type UnixSeconds = f64;

/// Unix time of J2000.0 taken as 2000-01-01T12:00:00 UTC (as the `sgp4` crate's sidereal-time formula expects).
const J2000_UNIX_S: f64 = 946_728_000.0;

/// Seconds in a Julian year.
const JULIAN_YEAR_S: f64 = 365.25 * 86_400.0;

/// Converts a UTC date-time to Unix seconds.
pub fn to_unix(t: &DateTime<Utc>) -> UnixSeconds {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9
}

/// Converts Unix seconds to a UTC date-time, rounded to the nearest microsecond.
pub fn from_unix(s: UnixSeconds) -> DateTime<Utc> {
    let micros = (s * 1e6).round() as i64;
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Formats Unix seconds as RFC 3339 UTC with milliseconds (`2026-06-20T07:51:16.924Z`), rounded to the nearest ms.
pub fn format_ms(s: UnixSeconds) -> String {
    let millis = (s * 1e3).round() as i64;
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp (any offset) into UTC.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text.trim()).map(|t| t.with_timezone(&Utc))
}

/// Julian years since J2000 (UTC), the argument of the IAU-82 sidereal-time formula.
pub(crate) fn julian_years_since_j2000(s: UnixSeconds) -> f64 {
    (s - J2000_UNIX_S) / JULIAN_YEAR_S
}

/// Julian centuries of terrestrial time since J2000.0 TT, for the analytic Sun. TT−UTC is taken as 69.184 s
/// (37 leap seconds + 32.184 s); an error of a few seconds here moves the Sun by far less than its model error.
pub(crate) fn julian_centuries_tt(s: UnixSeconds) -> f64 {
    (s + 69.184 - J2000_UNIX_S) / (JULIAN_YEAR_S * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_rounds_to_nearest_millisecond() {
        let t = to_unix(&parse_rfc3339("2026-06-20T07:51:16.9236Z").expect("valid"));
        assert_eq!(format_ms(t), "2026-06-20T07:51:16.924Z");
    }

    #[test]
    fn unix_round_trip() {
        let t = parse_rfc3339("2026-06-20T00:00:00.125Z").expect("valid");
        assert_eq!(from_unix(to_unix(&t)), t);
    }
}
