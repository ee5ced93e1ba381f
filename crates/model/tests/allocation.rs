//! Decoding allocates in proportion to the frame: a hostile frame that declares huge arrays or strings cannot make
//! the decoder reserve memory the frame does not carry. Measured with a counting allocator.

#![allow(unsafe_code)] // A counting global allocator needs it; the library itself has none.

use odc_model::sample::Sampler;
use odc_model::wire::{self, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated while decoding `frame`, above what was live before.
fn peak_while_decoding(frame: &[u8]) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let _ = std::hint::black_box(wire::decode(std::hint::black_box(frame)));
    PEAK.load(Ordering::SeqCst) - base
}

#[test]
fn decoding_allocates_in_proportion_to_the_frame() {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    // Lies about lengths, at the top and nested inside a real envelope.
    frames.push(vec![b'o', b'd', 1, 0, 0xdd, 0xff, 0xff, 0xff, 0xff]);
    frames.push(vec![b'o', b'd', 1, 0, 0xdb, 0x7f, 0xff, 0xff, 0xff]);
    let mut sampler = Sampler::new(3);
    // A real job-update frame whose `updates` array claims 2^32 − 1 elements.
    let updates = wire::encode(&sampler.envelope(4)).expect("encodes");
    let key = updates
        .windows(7)
        .position(|w| w == b"updates")
        .expect("field name in the frame")
        + 7;
    let mut lying = updates[..key].to_vec();
    lying.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    lying.extend_from_slice(&updates[key + 1..]);
    frames.push(lying);
    for kind in 0..Message::KINDS.len() {
        let frame = wire::encode(&sampler.envelope(kind)).expect("encodes");
        for i in (4..frame.len()).step_by(7) {
            for v in [0xdd, 0xdc, 0xdf, 0xc6, 0xdb] {
                let mut bad = frame.clone();
                bad[i] = v;
                frames.push(bad);
            }
        }
        frames.push(frame);
    }
    for frame in &frames {
        let peak = peak_while_decoding(frame);
        // Decoded values hold strings and vectors a few times the size of their encoding, never more.
        assert!(
            peak <= 64 * frame.len() + 4096,
            "decoding {} bytes peaked at {peak} bytes",
            frame.len()
        );
    }
}
