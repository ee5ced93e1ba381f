//! Tenants, their quotas and fair-share weights, and what each job consumed.

use crate::id::{JobId, NodeId, TenantId};
use crate::time::{Duration, Instant};
use serde::{Deserialize, Serialize};

/// How much a tenant may consume per period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Accelerator time, seconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0))]
    pub accelerator_s: f64,
    /// Accelerator energy, Wh.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0))]
    pub energy_wh: f64,
    /// Bytes sent up.
    #[serde(deserialize_with = "whole_u64")]
    pub uplink_bytes: u64,
    /// Bytes sent down.
    #[serde(deserialize_with = "whole_u64")]
    pub downlink_bytes: u64,
    /// Length of the accounting period (milliseconds on the wire).
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1))]
    pub period: Duration,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Its quota.
    pub quota: Quota,
    /// Fair-share weight: under contention tenants get capacity in proportion to their weights.
    pub share_weight: u32,
}

/// Resources consumed (or reserved).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Accelerator time, seconds.
    pub accelerator_s: f64,
    /// Accelerator energy, Wh.
    pub energy_wh: f64,
    /// Bytes sent up.
    pub uplink_bytes: u64,
    /// Bytes sent down.
    pub downlink_bytes: u64,
}

impl Usage {
    /// The sum of two usages.
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            accelerator_s: self.accelerator_s + other.accelerator_s,
            energy_wh: self.energy_wh + other.energy_wh,
            uplink_bytes: self.uplink_bytes.saturating_add(other.uplink_bytes),
            downlink_bytes: self.downlink_bytes.saturating_add(other.downlink_bytes),
        }
    }

    /// The first resource of which this usage exceeds the quota, by the name tenants see.
    pub fn exceeds(&self, quota: &Quota) -> Option<&'static str> {
        if self.accelerator_s > quota.accelerator_s {
            Some("accelerator_s")
        } else if self.energy_wh > quota.energy_wh {
            Some("energy_wh")
        } else if self.uplink_bytes > quota.uplink_bytes {
            Some("uplink_bytes")
        } else if self.downlink_bytes > quota.downlink_bytes {
            Some("downlink_bytes")
        } else {
            None
        }
    }
}

/// What one job consumed: the unit of billing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The job.
    pub job: JobId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The node that ran it, if it ran.
    pub node: Option<NodeId>,
    /// When the record was closed.
    pub at: Instant,
    /// What it used.
    pub usage: Usage,
}

/// A count of bytes from JSON: an integer, or a number with no fraction (`1024.0`), as JSON does not tell the two
/// apart; anything else is refused. (APIs that document a signed 64-bit range check it themselves: records
/// stored with larger counts must still read back.)
pub fn whole_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = serde_json_number(d)?;
    v.ok_or_else(|| serde::de::Error::custom("expected a whole number of at least 0"))
}

/// [`whole_u64`] for an optional field.
pub fn whole_u64_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number of at least 0, or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            whole_u64(d).map(Some)
        }
    }
    d.deserialize_option(Visit)
}

fn serde_json_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Visit;
    impl serde::de::Visitor<'_> for Visit {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number of at least 0")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Option<u64>, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Option<u64>, E> {
            // Exactly representable whole numbers only (below 2^53).
            Ok(
                (v.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&v))
                    .then_some(v as u64),
            )
        }
    }
    d.deserialize_any(Visit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_checks_name_the_resource() {
        let quota = Quota {
            accelerator_s: 100.0,
            energy_wh: 10.0,
            uplink_bytes: 1000,
            downlink_bytes: 1000,
            period: Duration::from_hours(24),
        };
        let used = Usage {
            accelerator_s: 50.0,
            energy_wh: 5.0,
            uplink_bytes: 900,
            downlink_bytes: 0,
        };
        assert_eq!(used.exceeds(&quota), None);
        let more = used.plus(&Usage {
            uplink_bytes: 200,
            ..Usage::default()
        });
        assert_eq!(more.exceeds(&quota), Some("uplink_bytes"));
    }
}
