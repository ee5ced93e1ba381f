//! Typed identifiers. Two kinds:
//!
//! - **Generated ids** (`TenantId`, `JobId`, `BatchId`, `PlanId`, `ContactId`): 128 bits, a 48-bit millisecond
//!   timestamp above 80 random bits, so they sort by creation time. Text form: a kind prefix and 26 Crockford
//!   base-32 characters (`job_01JD8X3K9Q…`). An [`IdGenerator`] makes them from an injected time and a seeded
//!   generator, so the twin's ids are the same on every run.
//! - **Named ids** (`NodeId`, `StationId`, `ModelId`): short operator-chosen names (`sat-007`, `svalbard`,
//!   `minilm-l6`), lower-case ASCII letters, digits, `-`, `_` and `.`, 1 to 64 characters.
//!
//! In JSON every id is its text form; in the binary wire format generated ids are 16 bytes.

use crate::time::Instant;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The prefix is not the one of this kind of id.
    #[error("{kind} id {text:?} must start with {prefix:?}")]
    Prefix {
        /// Kind of id expected.
        kind: &'static str,
        /// Prefix expected.
        prefix: &'static str,
        /// The text given.
        text: String,
    },
    /// The body is not 26 Crockford base-32 characters.
    #[error("{kind} id {text:?}: expected 26 base-32 characters after the prefix")]
    Body {
        /// Kind of id expected.
        kind: &'static str,
        /// The text given.
        text: String,
    },
    /// A name has a character or a length that names may not have.
    #[error("{kind} name {text:?}: use 1-64 lower-case letters, digits, '-', '_' or '.'")]
    Name {
        /// Kind of id expected.
        kind: &'static str,
        /// The text given.
        text: String,
    },
    /// A node's or station's name is not a DNS label, which its link certificate must carry.
    #[error(
        "{kind} name {text:?}: use 1-63 lower-case letters, digits or '-', not starting or ending with '-' \
         (it names the {kind}'s link certificate)"
    )]
    Label {
        /// Kind of id expected.
        kind: &'static str,
        /// The text given.
        text: String,
    },
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn encode_base32(value: u128) -> String {
    // 26 characters × 5 bits = 130 bits: the first character carries the top 3 bits.
    (0..26)
        .map(|i| CROCKFORD[((value >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

fn decode_base32(text: &str) -> Option<u128> {
    if text.len() != 26 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, c) in text.bytes().enumerate() {
        let digit = match c.to_ascii_uppercase() {
            b'O' => 0,
            b'I' | b'L' => 1,
            c => CROCKFORD.iter().position(|&d| d == c)? as u128,
        };
        if i == 0 && digit > 7 {
            return None;
        }
        value = (value << 5) | digit;
    }
    Some(value)
}

macro_rules! generated_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            /// The id with these 128 bits.
            pub const fn from_u128(bits: u128) -> Self {
                Self(bits)
            }
            /// The 128 bits.
            pub const fn as_u128(self) -> u128 {
                self.0
            }
            /// Milliseconds since the Unix epoch at which the id was made.
            pub fn created_at(self) -> Instant {
                Instant::from_unix_ms((self.0 >> 80) as i64)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, encode_base32(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                let body = text.strip_prefix($prefix).ok_or_else(|| IdError::Prefix {
                    kind: $kind,
                    prefix: $prefix,
                    text: text.to_owned(),
                })?;
                decode_base32(body).map(Self).ok_or_else(|| IdError::Body { kind: $kind, text: text.to_owned() })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_bytes(&self.0.to_be_bytes())
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    let bytes: crate::fixed_bytes::FixedBytes<16> = Deserialize::deserialize(d)?;
                    Ok(Self(u128::from_be_bytes(bytes.0)))
                }
            }
        }
    };
}

generated_id!(
    /// A tenant: a customer buying compute.
    TenantId, "ten_", "tenant"
);
generated_id!(
    /// A job: one tenant's inference request.
    JobId, "job_", "job"
);
generated_id!(
    /// A batch: jobs of one model and one tenant run together on one node in one slot.
    BatchId, "bat_", "batch"
);
generated_id!(
    /// A plan: one immutable, numbered schedule.
    PlanId, "pln_", "plan"
);
generated_id!(
    /// A contact reservation: one station antenna booked for one pass of one satellite.
    ContactId, "con_", "contact"
);

/// Whether a name is a DNS label as link certificates carry it: 1–63 lower-case letters, digits or hyphens, not
/// starting or ending with a hyphen.
fn is_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

macro_rules! named_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates a name.
            pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
                let name = name.into();
                if $label {
                    // Nodes and stations name their link certificates: one grammar for both.
                    return if is_label(&name) { Ok(Self(name)) } else { Err(IdError::Label { kind: $kind, text: name }) };
                }
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c));
                if ok { Ok(Self(name)) } else { Err(IdError::Name { kind: $kind, text: name }) }
            }
            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", $kind, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::new(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

named_id!(
    /// A flight node: one satellite's computer.
    NodeId, "node", true
);
named_id!(
    /// A ground station.
    StationId, "station", true
);
named_id!(
    /// An inference model a node can run.
    ModelId, "model", false
);

/// A small, fast, seedable generator (SplitMix64): deterministic ids for the twin and tests; wall-clock services
/// seed it from the operating system once at start-up.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Where the random part of generated ids comes from.
#[derive(Clone)]
enum Entropy {
    /// Reproducible: the twin and tests.
    Seeded(SplitMix64),
    /// Unpredictable: services give a cryptographically secure source, so no caller can work out another's ids
    /// from its own.
    Secure(std::sync::Arc<dyn Fn() -> u128 + Send + Sync>),
}

impl Entropy {
    fn next(&mut self) -> u128 {
        match self {
            Entropy::Seeded(rng) => {
                (rng.next_u64() as u128) << 16 | (rng.next_u64() as u128 & 0xFFFF)
            }
            Entropy::Secure(source) => source(),
        }
    }
}

/// Makes generated ids that sort by creation time, even several in one millisecond: within a millisecond an id
/// follows the previous one by a random step, so order is creation order and the next id cannot be guessed from
/// the last one.
#[derive(Clone)]
pub struct IdGenerator {
    rng: Entropy,
    last: u128,
}

impl std::fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.rng {
            Entropy::Seeded(_) => "seeded",
            Entropy::Secure(_) => "secure",
        };
        f.debug_struct("IdGenerator")
            .field("entropy", &kind)
            .finish()
    }
}

impl IdGenerator {
    /// A generator seeded for reproducible ids (the twin and tests: a seeded generator can be inverted from one
    /// of its ids, so services use [`IdGenerator::secure`]).
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Entropy::Seeded(SplitMix64::new(seed)),
            last: 0,
        }
    }

    /// A generator whose random parts come from `source` (a cryptographically secure generator in services).
    pub fn secure(source: std::sync::Arc<dyn Fn() -> u128 + Send + Sync>) -> Self {
        Self {
            rng: Entropy::Secure(source),
            last: 0,
        }
    }

    fn next_bits(&mut self, now: Instant) -> u128 {
        const RANDOM: u128 = (1 << 80) - 1;
        let ms = (now.unix_ms().max(0) as u128) & ((1 << 48) - 1);
        let random = self.rng.next();
        let mut bits = (ms << 80) | (random & RANDOM);
        if bits <= self.last {
            // Same millisecond (or a clock that stepped back): after the previous id, so ids keep their order.
            // A secure generator steps by a random amount of up to 2^40, so the next id cannot be counted to;
            // a seeded one counts up by one (its ids are reproducible, not secret).
            let step = match self.rng {
                Entropy::Seeded(_) => 0,
                Entropy::Secure(_) => random & 0xFF_FFFF_FFFF,
            };
            bits = self.last + 1 + step;
        }
        self.last = bits;
        bits
    }

    /// A new job id.
    pub fn job(&mut self, now: Instant) -> JobId {
        JobId(self.next_bits(now))
    }
    /// A new tenant id.
    pub fn tenant(&mut self, now: Instant) -> TenantId {
        TenantId(self.next_bits(now))
    }
    /// A new batch id.
    pub fn batch(&mut self, now: Instant) -> BatchId {
        BatchId(self.next_bits(now))
    }
    /// A new plan id.
    pub fn plan(&mut self, now: Instant) -> PlanId {
        PlanId(self.next_bits(now))
    }
    /// A new contact id.
    pub fn contact(&mut self, now: Instant) -> ContactId {
        ContactId(self.next_bits(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_ids_sort_by_time_and_do_not_count_up() {
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
        let c = counter.clone();
        // Any source will do for the ordering; this one is deliberately weak so steps are visible.
        let mut g = IdGenerator::secure(std::sync::Arc::new(move || {
            let n = c.fetch_add(0x9E37_79B9, std::sync::atomic::Ordering::Relaxed);
            u128::from(n) << 64 | u128::from(n.rotate_left(17))
        }));
        let t = Instant::from_unix_ms(1_781_913_600_000);
        let ids: Vec<JobId> = (0..100).map(|_| g.job(t)).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids keep creation order"
        );
        assert!(ids.iter().all(|id| id.created_at() == t));
        let steps: Vec<u128> = ids.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            steps.iter().filter(|&&s| s == 1).count() < 3,
            "ids in one millisecond must not count up by one: {steps:?}"
        );
    }

    #[test]
    fn generated_ids_round_trip_and_sort_by_time() {
        let mut g = IdGenerator::seeded(7);
        let t = Instant::from_unix_ms(1_781_913_600_000);
        let a = g.job(t);
        let b = g.job(t);
        let c = g.job(Instant::from_unix_ms(1_781_913_600_001));
        assert!(a < b && b < c);
        assert_eq!(a.created_at(), t);
        let text = a.to_string();
        assert!(text.starts_with("job_") && text.len() == 30, "{text}");
        assert_eq!(text.parse::<JobId>(), Ok(a));
        assert_eq!(text.to_lowercase().parse::<JobId>(), Ok(a));
        assert!(matches!(
            "ten_0000".parse::<JobId>(),
            Err(IdError::Prefix { .. })
        ));
        assert!(matches!(
            "job_0000".parse::<JobId>(),
            Err(IdError::Body { .. })
        ));
        assert!(matches!(
            "job_8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<JobId>(),
            Err(IdError::Body { .. })
        ));
    }

    #[test]
    fn seeded_generators_repeat() {
        let t = Instant::from_unix_ms(1_000);
        let a: Vec<JobId> = (0..5)
            .map({
                let mut g = IdGenerator::seeded(42);
                move |_| g.job(t)
            })
            .collect();
        let b: Vec<JobId> = (0..5)
            .map({
                let mut g = IdGenerator::seeded(42);
                move |_| g.job(t)
            })
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn names_are_validated() {
        assert!(NodeId::new("sat-007").is_ok());
        assert!(NodeId::new("Sat 7").is_err());
        assert!(NodeId::new("").is_err());
        assert!(StationId::new("x".repeat(65)).is_err());
        assert_eq!(
            "minilm-l6".parse::<ModelId>().map(|m| m.to_string()),
            Ok("minilm-l6".into())
        );
    }
}
