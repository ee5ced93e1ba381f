//! Which idempotency keys may be in the store: a fixed-size Bloom filter over (tenant, key), filled at start from
//! the store and as jobs are accepted. A key it has never seen is new for certain and costs no store read; a key
//! it may have seen (a retry, or a false positive at about 1% with ten million keys) is looked up. Memory stays
//! the same however many jobs the ground has kept.

use odc_model::id::TenantId;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits in the filter: 2^27 (16 MiB).
const BITS: u64 = 1 << 27;
/// Bits set per key.
const PROBES: u64 = 7;

/// The filter.
pub(crate) struct SeenKeys {
    words: Vec<AtomicU64>,
}

impl SeenKeys {
    pub(crate) fn new() -> SeenKeys {
        SeenKeys {
            words: (0..BITS / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn probes(tenant: TenantId, key: &str) -> impl Iterator<Item = u64> {
        let mut h = blake3::Hasher::new();
        h.update(&tenant.as_u128().to_le_bytes());
        h.update(key.as_bytes());
        let d = h.finalize();
        let b = d.as_bytes();
        let a = u64::from_le_bytes(b[0..8].try_into().unwrap_or_default());
        let c = u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()) | 1;
        (0..PROBES).map(move |i| a.wrapping_add(i.wrapping_mul(c)) % BITS)
    }

    /// Notes a key.
    pub(crate) fn insert(&self, tenant: TenantId, key: &str) {
        for bit in Self::probes(tenant, key) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// Whether a key may have been noted (false: certainly not).
    pub(crate) fn may_contain(&self, tenant: TenantId, key: &str) -> bool {
        Self::probes(tenant, key).all(|bit| {
            self.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0
        })
    }
}
