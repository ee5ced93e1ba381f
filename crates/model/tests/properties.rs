//! Property tests: the job life cycle and the wire protocol.

use odc_model::id::IdGenerator;
use odc_model::job::{BlobRef, FailureReason, Job, JobEvent, JobSpec, JobState, Outcome, Priority};
use odc_model::sample::Sampler;
use odc_model::wire::{self, Message};
use odc_model::{Instant, ModelId, NodeId, StationId};
use proptest::prelude::*;

fn spec(ids: &mut IdGenerator, now: Instant) -> JobSpec {
    JobSpec {
        tenant: ids.tenant(now),
        model: ModelId::new("minilm-l6").expect("id"),
        input: BlobRef::of(b"input"),
        output_bound_bytes: 1000,
        deadline: Instant::from_unix_ms(now.unix_ms() + 3_600_000),
        priority: Priority::new(5).expect("priority"),
        idempotency_key: "k".into(),
    }
}

/// A small pool of events, so random sequences hit duplicates, stale reports and the whole chain often.
fn event_pool() -> Vec<JobEvent> {
    let mut ids = IdGenerator::seeded(9);
    let t = Instant::from_unix_ms(0);
    let (p1, p2) = (ids.plan(t), ids.plan(t));
    let (b1, b2) = (ids.batch(t), ids.batch(t));
    let node = NodeId::new("sat-001").expect("id");
    let out = BlobRef::of(b"result");
    vec![
        JobEvent::Accept,
        JobEvent::Plan {
            plan: p1,
            batch: b1,
            node: node.clone(),
        },
        JobEvent::Plan {
            plan: p2,
            batch: b2,
            node: node.clone(),
        },
        JobEvent::Unplan { plan: p1 },
        JobEvent::Unplan { plan: p2 },
        JobEvent::Uplink { node: node.clone() },
        JobEvent::Enqueue { node: node.clone() },
        JobEvent::Start {
            node: node.clone(),
            attempt: 1,
        },
        JobEvent::Requeue {
            node: node.clone(),
            attempt: 1,
        },
        JobEvent::Start {
            node: node.clone(),
            attempt: 2,
        },
        JobEvent::Finish {
            output: out,
            accelerator_s: 12.5,
            energy_wh: 0.2,
        },
        JobEvent::Downlink {
            station: StationId::new("svalbard").expect("id"),
            output: out,
        },
        JobEvent::Downlink {
            station: StationId::new("madrid").expect("id"),
            output: BlobRef::of(b"other"),
        },
        JobEvent::Deliver,
        JobEvent::Fail {
            reason: FailureReason::ExecutionError {
                message: "oom".into(),
            },
        },
        JobEvent::Cancel,
        JobEvent::Expire,
    ]
}

fn fresh() -> Job {
    let mut ids = IdGenerator::seeded(1);
    let now = Instant::from_unix_ms(1_000);
    Job::new(ids.job(now), spec(&mut ids, now), now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn job_life_cycle_invariants(picks in proptest::collection::vec(0usize..17, 0..40)) {
        let pool = event_pool();
        let mut job = fresh();
        let mut accepted = Vec::new();
        let mut terminal_entries = 0;
        for (k, &i) in picks.iter().enumerate() {
            let before = job.clone();
            let at = Instant::from_unix_ms(2_000 + k as i64);
            match job.apply(&pool[i], at) {
                Ok(Outcome::Applied { from, to }) => {
                    prop_assert!(!from.is_terminal(), "left terminal state {:?} by {:?}", from, pool[i]);
                    prop_assert_eq!(&to, &job.state);
                    if to.is_terminal() {
                        terminal_entries += 1;
                    }
                    accepted.push(pool[i].clone());
                }
                Ok(Outcome::Duplicate | Outcome::Stale) => prop_assert_eq!(&job, &before),
                Err(e) => {
                    prop_assert_eq!(&job, &before, "a refused event changed the job");
                    prop_assert!(e.to_string().contains(&job.id.to_string()));
                }
            }
            if before.state.is_terminal() {
                prop_assert_eq!(&job.state, &before.state, "a terminal state changed");
            }
        }
        prop_assert!(terminal_entries <= 1);
        // Billing happens at most once: only one Finish can be applied.
        prop_assert!(job.accelerator_s == 0.0 || job.accelerator_s == 12.5);

        // Applying the accepted sequence to a fresh job, twice over, gives the same job.
        let mut replay = fresh();
        for (k, e) in accepted.iter().chain(accepted.iter()).enumerate() {
            let at = job.history.get(k).map(|t| t.at).unwrap_or(Instant::from_unix_ms(0));
            let _ = replay.apply(e, at);
        }
        prop_assert_eq!(&replay, &job);
    }

    #[test]
    fn every_message_round_trips(seed in any::<u64>()) {
        let mut sampler = Sampler::new(seed);
        for kind in 0..Message::KINDS.len() {
            let envelope = sampler.envelope(kind);
            prop_assert_eq!(envelope.message.kind(), Message::KINDS[kind]);
            let frame = wire::encode(&envelope).expect("encodes");
            prop_assert_eq!(&wire::decode(&frame).expect("decodes"), &envelope);
            prop_assert_eq!(&wire::from_json(&wire::to_json(&envelope)).expect("json"), &envelope);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::decode(&bytes);
        let mut framed = b"od\x01\x00".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = wire::decode(&framed);
    }

    #[test]
    fn truncated_and_flipped_frames_are_errors(
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut sampler = Sampler::new(seed);
        let kind = (seed % Message::KINDS.len() as u64) as usize;
        let frame = wire::encode(&sampler.envelope(kind)).expect("encodes");
        let at = cut.index(frame.len());
        prop_assert!(wire::decode(&frame[..at]).is_err(), "a frame cut at {} of {} decoded", at, frame.len());
        let mut flipped = frame.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 1 << bit;
        let _ = wire::decode(&flipped);
    }
}

#[test]
fn late_and_reordered_reports_do_not_move_a_job_back() {
    let pool = event_pool();
    let mut job = fresh();
    let t = Instant::from_unix_ms(5_000);
    for i in [0, 1, 5, 6, 7, 10] {
        assert!(
            matches!(job.apply(&pool[i], t), Ok(Outcome::Applied { .. })),
            "{:?}",
            pool[i]
        );
    }
    assert_eq!(job.state, JobState::Done);
    // A retried "uplinked" arrives after "done": duplicate. A "queued" never seen before: stale.
    assert_eq!(job.apply(&pool[5], t), Ok(Outcome::Duplicate));
    let mut other = fresh();
    for i in [0, 1, 10] {
        other.apply(&pool[i], t).expect("applies");
    }
    assert_eq!(
        other.state,
        JobState::Done,
        "a done report may overtake the ones before it"
    );
    assert_eq!(other.apply(&pool[6], t), Ok(Outcome::Stale));
    // Results that disagree with the node's report are refused.
    assert!(job.apply(&pool[12], t).is_err());
    assert!(matches!(
        job.apply(&pool[11], t),
        Ok(Outcome::Applied { .. })
    ));
    assert!(
        job.apply(&pool[15], t).is_err(),
        "cancel after the result is down"
    );
}
