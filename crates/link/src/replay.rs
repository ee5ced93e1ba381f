//! The anti-replay window: the highest sequence number accepted and a bitmap of the 128 below it, as IPsec and
//! CCSDS SDLS keep it. A number above the highest is new; one inside the window is new once; one below it is
//! too old to tell and refused.

/// Width of the window, in sequence numbers.
pub const WINDOW: u64 = 128;

/// Why a sequence number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Sequence numbers start at 1.
    #[error("sequence number 0 is never valid")]
    Zero,
    /// Already accepted.
    #[error("sequence number {0} was already accepted (replay)")]
    Replayed(u64),
    /// Older than the window.
    #[error("sequence number {seq} is older than the window (highest accepted {highest})")]
    TooOld {
        /// The number refused.
        seq: u64,
        /// The highest accepted.
        highest: u64,
    },
}

/// The state to persist: small and fixed-size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    /// Highest sequence number accepted (0: none yet).
    pub highest: u64,
    /// Bit k set: `highest − k` was accepted (bit 0 is `highest` itself).
    pub seen: u128,
}

impl ReplayWindow {
    /// Whether `seq` would be accepted, without changing anything.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        if seq > self.highest {
            return Ok(());
        }
        let age = self.highest - seq;
        if age >= WINDOW {
            return Err(ReplayError::TooOld {
                seq,
                highest: self.highest,
            });
        }
        if self.seen & (1u128 << age) != 0 {
            Err(ReplayError::Replayed(seq))
        } else {
            Ok(())
        }
    }

    /// The window after accepting `seq` (which must have passed [`ReplayWindow::check`]).
    pub fn advanced(&self, seq: u64) -> ReplayWindow {
        if seq > self.highest {
            let shift = seq - self.highest;
            let seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            ReplayWindow {
                highest: seq,
                seen: seen | 1,
            }
        } else {
            ReplayWindow {
                highest: self.highest,
                seen: self.seen | (1u128 << (self.highest - seq)),
            }
        }
    }

    /// The window as 24 bytes, for storage.
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.highest.to_be_bytes());
        out[8..].copy_from_slice(&self.seen.to_be_bytes());
        out
    }

    /// A window from its 24 stored bytes.
    pub fn from_bytes(bytes: &[u8; 24]) -> ReplayWindow {
        let mut h = [0u8; 8];
        h.copy_from_slice(&bytes[..8]);
        let mut s = [0u8; 16];
        s.copy_from_slice(&bytes[8..]);
        ReplayWindow {
            highest: u64::from_be_bytes(h),
            seen: u128::from_be_bytes(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_once_old_never() {
        let mut w = ReplayWindow::default();
        for seq in [5, 3, 4, 200, 150] {
            w.check(seq).expect("new");
            w = w.advanced(seq);
            assert_eq!(w.check(seq), Err(ReplayError::Replayed(seq)));
        }
        assert_eq!(
            w.check(5),
            Err(ReplayError::TooOld {
                seq: 5,
                highest: 200
            })
        );
        assert_eq!(w.check(0), Err(ReplayError::Zero));
        assert!(w.check(199).is_ok() && w.check(73).is_ok() && w.check(72).is_err());
        assert_eq!(ReplayWindow::from_bytes(&w.to_bytes()), w);
    }
}
