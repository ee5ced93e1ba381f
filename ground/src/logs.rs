//! Log output that never stops a service: a line that cannot be written (a full disk under a redirected stderr,
//! a closed pipe) is dropped and counted, never raised as an error that would panic the thread writing it.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped because they could not be written, since the process started.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A writer that passes everything to `W` and, when `W` fails, drops the bytes and counts a dropped line.
#[derive(Debug)]
pub struct Lossy<W>(pub W);

impl<W: Write> Write for Lossy<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write_all(buf) {
            Ok(()) => {}
            Err(_) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// Standard error, lossy: what services log to.
pub fn stderr() -> Lossy<std::io::Stderr> {
    Lossy(std::io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_device_drops_and_counts_lines_without_an_error() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let before = dropped();
        let mut w = Lossy(full);
        for _ in 0..3 {
            assert_eq!(w.write(b"a line\n").expect("never an error"), 7);
        }
        assert!(w.flush().is_ok());
        assert!(dropped() >= before + 3);
    }
}
