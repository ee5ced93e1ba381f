//! The session core over a simulated intermittent link: a 100 MB message crosses 20 contact windows with random
//! loss and arrives byte-identical, exactly once, with no chunk sent again after it was acknowledged; priorities
//! order traffic; corrupt frames are refused without a panic.

use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_model::id::SplitMix64;
use proptest::prelude::*;

/// What the link saw: events at the receiver, and data frames the sender sent for chunks it had already had
/// acknowledged (read off the wire, independently of the session's own bookkeeping).
struct Trace {
    events: Vec<Event>,
    resent_after_ack: usize,
}

/// Runs `contacts` windows of `frames_per_contact` frame slots each way, dropping frames with probability `loss`.
fn run(
    a: &mut Session,
    b: &mut Session,
    contacts: usize,
    frames_per_contact: usize,
    loss: f64,
    seed: u64,
) -> Trace {
    let mut rng = SplitMix64::new(seed);
    let lost = |rng: &mut SplitMix64| (rng.next_u64() % 10_000) as f64 / 10_000.0 < loss;
    let id_chunk = |f: &[u8], at: usize| {
        (
            u64::from_be_bytes(f[1..9].try_into().expect("8 bytes")),
            u32::from_be_bytes(f[at..at + 4].try_into().expect("4 bytes")),
        )
    };
    let mut acked_at_sender = std::collections::BTreeSet::new();
    let mut resent_after_ack = 0;
    let mut now = 0i64;
    let mut events = Vec::new();
    for _ in 0..contacts {
        a.handle_contact(true);
        b.handle_contact(true);
        for _ in 0..frames_per_contact {
            now += 10;
            if let Some(f) = a.poll_transmit(now) {
                if f[0] == 1 && acked_at_sender.contains(&id_chunk(&f, 22)) {
                    resent_after_ack += 1;
                }
                if !lost(&mut rng) {
                    b.handle_frame(&f).expect("well-formed");
                }
            }
            if let Some(f) = b.poll_transmit(now)
                && !lost(&mut rng)
            {
                if f[0] == 2 {
                    let (id, first) = id_chunk(&f, 9);
                    let count = u32::from_be_bytes(f[13..17].try_into().expect("4 bytes"));
                    for c in first..first + count {
                        acked_at_sender.insert((id, c));
                    }
                }
                a.handle_frame(&f).expect("well-formed");
            }
            while let Some(e) = b.poll_event() {
                events.push(e);
            }
            while a.poll_event().is_some() {}
        }
        a.handle_contact(false);
        b.handle_contact(false);
        now += 3_600_000; // an hour to the next pass
    }
    Trace {
        events,
        resent_after_ack,
    }
}

#[test]
fn a_100_mb_result_crosses_20_contacts_with_loss_intact_and_once() {
    let config = SessionConfig::default();
    let (mut a, mut b) = (Session::new(config), Session::new(config));
    let mut rng = SplitMix64::new(42);
    let payload: Vec<u8> = (0..100_000_000 / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    let id = a.send(Priority::Result(std::cmp::Reverse(5)), payload.clone());
    // 1,526 chunks of 64 KiB; 120 frame slots per contact each way with 10% loss: it takes the 20 contacts.
    let trace = run(&mut a, &mut b, 20, 120, 0.10, 7);
    let delivered: Vec<_> = trace
        .events
        .iter()
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .collect();
    assert_eq!(delivered.len(), 1, "exactly once");
    let Event::Delivered {
        id: got,
        payload: bytes,
    } = delivered[0]
    else {
        unreachable!()
    };
    assert_eq!(*got, id);
    assert!(bytes == &payload, "byte-identical");
    assert_eq!(
        trace.resent_after_ack, 0,
        "no chunk is sent again once acknowledged"
    );
    assert_eq!(a.pending(), 0);
}

#[test]
fn commands_overtake_results() {
    let config = SessionConfig {
        chunk_bytes: 1024,
        ..SessionConfig::default()
    };
    let (mut a, mut b) = (Session::new(config), Session::new(config));
    a.send(Priority::Result(std::cmp::Reverse(1)), vec![1; 50_000]);
    a.send(Priority::Telemetry, vec![2; 100]);
    let command = a.send(Priority::Command, vec![3; 100]);
    let events = run(&mut a, &mut b, 1, 5, 0.0, 1).events;
    assert!(
        matches!(events.first(), Some(Event::Delivered { id, .. }) if *id == command),
        "{events:?}"
    );
}

proptest! {
    #[test]
    fn corrupt_frames_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), flip in 0usize..2000) {
        let config = SessionConfig { chunk_bytes: 256, ..SessionConfig::default() };
        let (mut a, mut b) = (Session::new(config), Session::new(config));
        let _ = b.handle_frame(&bytes);
        a.send(Priority::Telemetry, vec![9; 1000]);
        a.handle_contact(true);
        let mut frame = a.poll_transmit(0).expect("a chunk");
        let i = flip % frame.len();
        frame[i] ^= 0x20;
        let _ = b.handle_frame(&frame);
        prop_assert!(b.poll_event().is_none(), "a corrupted chunk never completes a message");
    }
}

/// A large early message holds a gap open while thousands of later ones complete: the receiver bounds what it
/// remembers by making later messages wait, never by forgetting, so every message still arrives exactly once.
#[test]
fn a_long_gap_bounds_memory_without_delivering_twice() {
    let config = SessionConfig {
        chunk_bytes: 64,
        max_in_flight: 256,
        ..SessionConfig::default()
    };
    let mut a = Session::new(config);
    let mut b = Session::new(config);
    let big = a.send(Priority::Result(std::cmp::Reverse(0)), vec![1u8; 64 * 600]);
    let mut expected = vec![big];
    for i in 0..6_000u32 {
        expected.push(a.send(Priority::Command, i.to_be_bytes().to_vec()));
    }
    a.handle_contact(true);
    b.handle_contact(true);
    let mut delivered = Vec::new();
    let mut now = 0;
    for _ in 0..200_000 {
        now += 1;
        let mut moved = false;
        while let Some(f) = a.poll_transmit(now) {
            b.handle_frame(&f).expect("well-formed");
            moved = true;
        }
        while let Some(f) = b.poll_transmit(now) {
            a.handle_frame(&f).expect("well-formed");
            moved = true;
        }
        while let Some(e) = b.poll_event() {
            if let Event::Delivered { id, .. } = e {
                delivered.push(id);
            }
        }
        while a.poll_event().is_some() {}
        if !moved && a.pending() == 0 {
            break;
        }
        // Some acknowledgements go astray, so chunks of completed messages come again.
        if now % 97 == 0 {
            b.handle_contact(false);
            b.handle_contact(true);
        }
    }
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        delivered.len(),
        "a message was delivered twice"
    );
    expected.sort_unstable();
    assert!(
        sorted == expected,
        "{} of {} messages delivered",
        sorted.len(),
        expected.len()
    );
}

/// A peer that leaves a hole after every message cannot make the receiver remember without bound: past a few
/// thousand separate runs of ids it stops accepting new ones, and once the holes are filled everything arrives
/// exactly once.
#[test]
fn alternating_holes_are_bounded_and_then_filled() {
    let config = SessionConfig {
        chunk_bytes: 64,
        max_in_flight: 20_000,
        ..SessionConfig::default()
    };
    let mut a = Session::new(config);
    let mut b = Session::new(config);
    for i in 0..12_000u32 {
        a.send(Priority::Command, i.to_be_bytes().to_vec());
    }
    a.handle_contact(true);
    b.handle_contact(true);
    let mut delivered = Vec::new();
    let drain = |b: &mut Session, delivered: &mut Vec<u64>| {
        while let Some(e) = b.poll_event() {
            if let Event::Delivered { id, .. } = e {
                delivered.push(id);
            }
        }
    };
    // First pass: only even ids get through, so every delivery is its own run.
    let mut frames = Vec::new();
    while let Some(f) = a.poll_transmit(0) {
        frames.push(f);
    }
    for f in &frames {
        let id = u64::from_be_bytes(f[1..9].try_into().expect("8 bytes"));
        if id % 2 == 0 {
            b.handle_frame(f).expect("well-formed");
        }
    }
    drain(&mut b, &mut delivered);
    assert!(
        delivered.len() < 6_000,
        "all {} holes remembered",
        delivered.len()
    );
    assert!(
        delivered.len() >= 4_000,
        "refused too early: {}",
        delivered.len()
    );
    // Then everything, repeatedly (as retransmissions would), until the sender is done.
    let mut now = 0;
    while a.pending() > 0 && now < 100_000 {
        now += 2_000;
        while let Some(f) = a.poll_transmit(now) {
            b.handle_frame(&f).expect("well-formed");
        }
        while let Some(f) = b.poll_transmit(now) {
            a.handle_frame(&f).expect("well-formed");
        }
        drain(&mut b, &mut delivered);
    }
    let total = delivered.len();
    delivered.sort_unstable();
    delivered.dedup();
    assert_eq!(delivered.len(), total, "a message was delivered twice");
    assert_eq!(total, 12_000);
}
