//! The flight core on its own: inputs queued once, corrupt inputs refused, batches at their slots, results held
//! until the ground's receipt, the governor's three answers, and recovery after a restart.

use odc_flight::{Action, FlightCore, FlightJobState, GovernorConfig, RunOutput, Sensors};
use odc_model::id::{IdGenerator, ModelId, NodeId};
use odc_model::job::{BlobRef, JobEvent, JobSpec, Priority};
use odc_model::spec::{ModelProfile, NodeSpec};
use odc_model::time::{Duration, Instant};
use odc_model::wire::{Envelope, InputChunk, JobUpdate, JobUpdates, Message, PROTOCOL, Sender};

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

fn spec() -> NodeSpec {
    let mut s = NodeSpec::leo_default(NodeId::new("n1").expect("id"), 1);
    s.accelerator.models.insert(
        ModelId::new("m").expect("id"),
        ModelProfile {
            input_bytes_per_s: 1_000.0,
            batch_setup_s: 1.0,
        },
    );
    s
}

fn envelope(message: Message) -> Envelope {
    Envelope {
        version: PROTOCOL,
        sender: Sender::Ground,
        incarnation: 1,
        seq: 1,
        sent_at: t0(),
        message,
    }
}

fn input(ids: &mut IdGenerator, k: u8, data: &[u8]) -> (odc_model::id::JobId, Envelope) {
    let id = ids.job(t0());
    let spec = JobSpec {
        // One tenant for every job, so they can share a batch.
        tenant: IdGenerator::seeded(0).tenant(t0()),
        model: ModelId::new("m").expect("id"),
        input: BlobRef::of(data),
        output_bound_bytes: 64,
        deadline: t0() + Duration::from_hours(6),
        priority: Priority::new(5).expect("priority"),
        idempotency_key: format!("k{k}"),
    };
    let chunk = InputChunk {
        job: id,
        spec,
        offset: 0,
        data: data.to_vec(),
    };
    (id, envelope(Message::InputChunk(chunk)))
}

fn healthy() -> Sensors {
    Sensors {
        state_of_charge: 0.95,
        temp_c: 20.0,
        in_eclipse: false,
    }
}

fn events(core: &mut FlightCore) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(e) = core.poll_outgoing() {
        if let Message::JobUpdates(u) = e.message {
            out.extend(u.updates.iter().map(|u| u.event.name().to_string()));
        } else {
            out.push(e.message.kind().to_string());
        }
    }
    out
}

#[test]
fn an_input_is_queued_once_however_often_it_arrives() {
    let mut ids = IdGenerator::seeded(1);
    let mut core = FlightCore::new(spec(), GovernorConfig::default());
    let (id, msg) = input(&mut ids, 1, b"tile");
    core.handle_message(msg.clone(), t0());
    core.handle_message(msg, t0());
    assert_eq!(core.queue_depth(), 1);
    assert_eq!(events(&mut core), ["uplink", "enqueue"]);
    assert!(core.durable().jobs.contains_key(&id));
}

#[test]
fn a_corrupt_input_fails_with_a_reason_and_never_runs() {
    let mut ids = IdGenerator::seeded(2);
    let mut core = FlightCore::new(spec(), GovernorConfig::default());
    let (_, mut msg) = input(&mut ids, 1, b"tile");
    if let Message::InputChunk(c) = &mut msg.message {
        c.data[0] ^= 1;
    }
    core.handle_message(msg, t0());
    assert_eq!(events(&mut core), ["fail"]);
    core.tick(healthy(), t0());
    assert_eq!(core.poll_action(t0()), None);
}

#[test]
fn a_batch_runs_its_result_waits_for_the_receipt_and_a_resent_input_never_reruns() {
    let mut ids = IdGenerator::seeded(3);
    let mut core = FlightCore::new(spec(), GovernorConfig::default());
    let (id, msg) = input(&mut ids, 1, b"tile");
    core.handle_message(msg.clone(), t0());
    core.tick(healthy(), t0());
    let Some(Action::Run(req)) = core.poll_action(t0()) else {
        panic!("a due job with a healthy node runs");
    };
    assert_eq!(req.jobs.len(), 1);
    let now = t0() + Duration::from_secs(10);
    core.batch_done(
        req.run,
        vec![RunOutput {
            job: id,
            result: Ok(vec![1, 2, 3]),
        }],
        5.0,
        0.1,
        now,
    );
    assert_eq!(core.outbox_depth(), 1);
    let sent = events(&mut core);
    assert!(
        sent.contains(&"finish".to_string()) && sent.contains(&"result_chunk".to_string()),
        "{sent:?}"
    );
    let receipt = JobUpdates {
        updates: vec![JobUpdate {
            job: id,
            event: JobEvent::Deliver,
            at: now,
        }],
    };
    core.handle_message(envelope(Message::JobUpdates(receipt)), now);
    assert_eq!(core.outbox_depth(), 0);
    assert_eq!(core.durable().jobs[&id].state, FlightJobState::Closed);
    core.handle_message(msg, now);
    assert_eq!(core.poll_action(now), None, "a closed job never runs again");
}

#[test]
fn the_governor_defers_throttles_and_preempts() {
    let mut ids = IdGenerator::seeded(4);
    let mut core = FlightCore::new(spec(), GovernorConfig::default());
    for k in 0..8 {
        // Each job: 60 s of accelerator time at 1 kB/s.
        let (_, msg) = input(&mut ids, k, &[k; 60_000]);
        core.handle_message(msg, t0());
    }
    let floor = spec().power.min_state_of_charge;
    core.tick(
        Sensors {
            state_of_charge: floor + 0.01,
            ..healthy()
        },
        t0(),
    );
    assert_eq!(
        core.poll_action(t0()),
        None,
        "too close to the floor: deferred"
    );
    assert_eq!(
        core.governor_actions().last().map(|a| a.kind.as_str()),
        Some("defer")
    );
    let later = t0() + Duration::from_mins(2);
    // Room for about two of the eight jobs above the reserve.
    let busy_wh =
        (spec().accelerator.busy_power_w - spec().accelerator.idle_power_w) * 61.0 / 3600.0;
    let soc = floor
        + 0.03
        + 2.5 * busy_wh / spec().power.battery_capacity_wh / spec().power.discharge_efficiency;
    core.tick(
        Sensors {
            state_of_charge: soc,
            ..healthy()
        },
        later,
    );
    let Some(Action::Run(req)) = core.poll_action(later) else {
        panic!("some jobs fit");
    };
    assert!(
        (1..8).contains(&req.jobs.len()),
        "throttled to {}",
        req.jobs.len()
    );
    assert_eq!(
        core.governor_actions().last().map(|a| a.kind.as_str()),
        Some("throttle")
    );
    core.tick(
        Sensors {
            state_of_charge: floor,
            ..healthy()
        },
        later + Duration::from_secs(30),
    );
    assert_eq!(
        core.poll_action(later),
        Some(Action::Preempt { run: req.run })
    );
    assert!(!core.is_running());
    assert_eq!(
        core.queue_depth(),
        8,
        "preempted jobs are back in the queue"
    );
}

#[test]
fn a_restart_keeps_every_job_and_requeues_the_running_ones() {
    let mut ids = IdGenerator::seeded(5);
    let mut core = FlightCore::new(spec(), GovernorConfig::default());
    for k in 0..3 {
        let (_, msg) = input(&mut ids, k, &[k; 100]);
        core.handle_message(msg, t0());
    }
    core.tick(healthy(), t0());
    let Some(Action::Run(_)) = core.poll_action(t0()) else {
        panic!("runs");
    };
    // What a store would hold, through serialisation.
    let bytes = rmp_serde::to_vec_named(core.durable()).expect("serialises");
    let durable: odc_flight::Durable = rmp_serde::from_slice(&bytes).expect("deserialises");
    let mut again = FlightCore::recover(durable, spec(), GovernorConfig::default(), t0());
    assert_eq!(again.durable().incarnation, 2);
    assert_eq!(again.queue_depth(), 3);
    assert!(
        events(&mut again)
            .iter()
            .filter(|e| *e == "requeue")
            .count()
            == 3
    );
}

#[test]
fn an_older_plan_is_refused() {
    let mut ids = IdGenerator::seeded(6);
    let mut core = FlightCore::new(spec(), GovernorConfig::default());
    let t = t0();
    let p1 = odc_model::plan::Plan::first(ids.plan(t), t, t, t + Duration::from_hours(1));
    let p2 = p1.successor(ids.plan(t), t, t, t + Duration::from_hours(1));
    let update = |p: &odc_model::plan::Plan| {
        envelope(Message::PlanUpdate(odc_model::wire::PlanUpdate {
            plan: p.clone(),
        }))
    };
    core.handle_message(update(&p2), t);
    core.handle_message(update(&p1), t);
    assert_eq!(core.durable().gate.applied_generation, 2);
    assert_eq!(core.durable().plan.as_ref().map(|p| p.id), Some(p2.id));
}
