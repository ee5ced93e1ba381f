//! Time: an integer UTC [`Instant`] and [`Duration`] in milliseconds, and the [`Clock`] every core is handed.
//!
//! Domain code never reads the system clock: it is given `now`. Binaries use [`WallClock`]; the twin and tests use
//! [`SimClock`], which moves only when told. In JSON an instant is RFC 3339 UTC with milliseconds and a duration
//! is a number of milliseconds; in the binary wire format both are integers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

/// A point in time: milliseconds since 1970-01-01T00:00:00Z (UTC, leap seconds not counted).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(i64);

/// A span of time in milliseconds (may be negative, as the difference of two instants).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize)]
pub struct Duration(i64);

impl<'de> Deserialize<'de> for Duration {
    /// Milliseconds as an integer, or as a number with no fraction (`60000.0`: JSON does not tell them apart).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct Millis;
        impl serde::de::Visitor<'_> for Millis {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of milliseconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Ok(Duration(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                i64::try_from(v)
                    .map(Duration)
                    .map_err(|_| E::custom("milliseconds out of range"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
                if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
                    Ok(Duration(v as i64))
                } else {
                    Err(E::custom("expected a whole number of milliseconds"))
                }
            }
        }
        d.deserialize_any(Millis)
    }
}

impl Instant {
    /// The Unix epoch.
    pub const EPOCH: Instant = Instant(0);

    /// The instant this many milliseconds after the Unix epoch.
    pub const fn from_unix_ms(ms: i64) -> Self {
        Instant(ms)
    }
    /// Milliseconds since the Unix epoch.
    pub const fn unix_ms(self) -> i64 {
        self.0
    }
    /// Seconds since the Unix epoch, as the ephemeris counts them.
    pub fn unix_seconds(self) -> f64 {
        self.0 as f64 / 1e3
    }
    /// The instant nearest to this many seconds since the Unix epoch.
    pub fn from_unix_seconds(s: f64) -> Self {
        Instant((s * 1e3).round() as i64)
    }
    /// Time from `earlier` to `self` (negative if `earlier` is later).
    pub fn since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
    /// RFC 3339 UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an RFC 3339 timestamp (like 2026-06-20T07:51:16.924Z): {reason}")]
pub struct TimeError {
    /// The text given.
    pub text: String,
    /// What the parser said.
    pub reason: String,
}

impl FromStr for Instant {
    type Err = TimeError;
    fn from_str(text: &str) -> Result<Self, TimeError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Instant(t.timestamp_millis()))
            .map_err(|e| TimeError {
                text: text.to_owned(),
                reason: e.to_string(),
            })
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Instant)
        }
    }
}

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(0);

    /// This many milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Duration(ms)
    }
    /// This many seconds.
    pub const fn from_secs(s: i64) -> Self {
        Duration(s * 1000)
    }
    /// This many minutes.
    pub const fn from_mins(m: i64) -> Self {
        Duration(m * 60_000)
    }
    /// This many hours.
    pub const fn from_hours(h: i64) -> Self {
        Duration(h * 3_600_000)
    }
    /// The nearest whole number of milliseconds to this many seconds.
    pub fn from_secs_f64(s: f64) -> Self {
        Duration((s * 1e3).round() as i64)
    }
    /// Milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }
    /// Seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e3
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, other: Instant) -> Duration {
        self.since(other)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

/// Where cores get `now` from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The system's real-time clock, for binaries only.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Instant {
        Instant(Utc::now().timestamp_millis())
    }
}

/// Accelerated time shared by separate processes: `start` at the wall-clock moment `anchor_unix_ms`, then
/// `speed` simulated seconds per wall second. Every process given the same three numbers reads the same time,
/// which is how a live constellation on one machine runs a day in minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledClock {
    /// Simulated time at the anchor.
    pub start: Instant,
    /// Wall-clock Unix milliseconds of the anchor.
    pub anchor_unix_ms: i64,
    /// Simulated seconds per wall second (1 is real time).
    pub speed: f64,
}

impl ScaledClock {
    /// Simulated time at wall-clock Unix milliseconds `wall_ms`.
    pub fn at_wall(&self, wall_ms: i64) -> Instant {
        let elapsed = (wall_ms - self.anchor_unix_ms) as f64 * self.speed;
        Instant(self.start.0 + elapsed.round() as i64)
    }

    /// Wall-clock time until simulated time `t` (zero if it has passed).
    pub fn wall_until(&self, t: Instant) -> std::time::Duration {
        let now = self.now();
        let sim_ms = (t.0 - now.0).max(0) as f64;
        std::time::Duration::from_secs_f64(sim_ms / 1000.0 / self.speed.max(1e-9))
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        self.at_wall(Utc::now().timestamp_millis())
    }
}

/// A clock that stands still until told to move: the twin's and the tests'. It never moves backwards.
#[derive(Debug, Default)]
pub struct SimClock(AtomicI64);

impl SimClock {
    /// A clock showing `start`.
    pub fn new(start: Instant) -> Self {
        SimClock(AtomicI64::new(start.0))
    }
    /// Moves the clock forward by `d` (a negative `d` is ignored) and returns the new time.
    pub fn advance(&self, d: Duration) -> Instant {
        let step = d.0.max(0);
        Instant(self.0.fetch_add(step, Ordering::SeqCst) + step)
    }
    /// Moves the clock to `t` if `t` is later, and returns the time shown.
    pub fn advance_to(&self, t: Instant) -> Instant {
        Instant(self.0.fetch_max(t.0, Ordering::SeqCst).max(t.0))
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        Instant(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_with_milliseconds() {
        let t: Instant = "2026-06-20T07:51:16.924Z".parse().expect("valid");
        assert_eq!(t.to_string(), "2026-06-20T07:51:16.924Z");
        assert_eq!(
            serde_json::to_string(&t).expect("json"),
            "\"2026-06-20T07:51:16.924Z\""
        );
        let offset: Instant = "2026-06-20T09:51:16.924+02:00".parse().expect("valid");
        assert_eq!(offset, t);
        assert!("yesterday".parse::<Instant>().is_err());
    }

    #[test]
    fn scaled_clocks_with_the_same_anchor_agree_and_run_fast() {
        let c = ScaledClock {
            start: Instant::from_unix_ms(1_000_000),
            anchor_unix_ms: 5_000,
            speed: 600.0,
        };
        assert_eq!(c.at_wall(5_000), Instant::from_unix_ms(1_000_000));
        // One wall second is ten simulated minutes.
        assert_eq!(c.at_wall(6_000), Instant::from_unix_ms(1_600_000));
        assert_eq!(c.at_wall(4_000), Instant::from_unix_ms(400_000));
        let copy = c;
        assert_eq!(copy.at_wall(123_456), c.at_wall(123_456));
        assert_eq!(
            c.wall_until(Instant::from_unix_ms(0)),
            std::time::Duration::ZERO
        );
    }

    #[test]
    fn sim_clock_moves_only_forward_and_only_when_told() {
        let c = SimClock::new(Instant::from_unix_ms(1000));
        assert_eq!(c.now(), Instant::from_unix_ms(1000));
        assert_eq!(
            c.advance(Duration::from_secs(2)),
            Instant::from_unix_ms(3000)
        );
        assert_eq!(
            c.advance(Duration::from_millis(-500)),
            Instant::from_unix_ms(3000)
        );
        assert_eq!(
            c.advance_to(Instant::from_unix_ms(2000)),
            Instant::from_unix_ms(3000)
        );
        assert_eq!(
            c.advance_to(Instant::from_unix_ms(9000)),
            Instant::from_unix_ms(9000)
        );
        assert_eq!(c.now(), Instant::from_unix_ms(9000));
    }

    #[test]
    fn arithmetic() {
        let t = Instant::from_unix_ms(10_000);
        assert_eq!((t + Duration::from_secs(5)) - t, Duration::from_secs(5));
        assert_eq!(Duration::from_mins(2).as_secs_f64(), 120.0);
    }
}
