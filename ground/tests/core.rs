//! The ground core on its own: intake checks, idempotent submission, quotas, one delivery and one bill per job
//! however often a result arrives, and expiry at the deadline.

use odc_budget::Illumination;
use odc_ground::{GroundConfig, GroundCore, NodeInfo, SubmitError};
use odc_model::id::{IdGenerator, ModelId, NodeId, StationId};
use odc_model::job::{BlobRef, JobSpec, JobState, Priority};
use odc_model::spec::{ModelProfile, NodeSpec, StationSpec};
use odc_model::tenant::{Quota, Tenant};
use odc_model::time::{Duration, Instant};
use odc_model::wire::{Envelope, Hello, Message, PROTOCOL, ResultChunk, Sender};
use odc_planner::{ContactWindow, PlannerOptions};

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

struct Setup {
    ground: GroundCore,
    tenant: Tenant,
    node: NodeId,
}

fn setup(accelerator_s: f64) -> Setup {
    let mut ids = IdGenerator::seeded(9);
    let node = NodeId::new("n1").expect("id");
    let mut spec = NodeSpec::leo_default(node.clone(), 1);
    spec.accelerator.models.insert(
        ModelId::new("m").expect("id"),
        ModelProfile {
            input_bytes_per_s: 1_000.0,
            batch_setup_s: 1.0,
        },
    );
    let station =
        StationSpec::with_defaults(StationId::new("gs").expect("id"), 0.0, 0.0, 0.0, 10.0);
    let tenant = Tenant {
        id: ids.tenant(t0()),
        name: "t".into(),
        quota: Quota {
            accelerator_s,
            energy_wh: f64::MAX,
            uplink_bytes: u64::MAX,
            downlink_bytes: u64::MAX,
            period: Duration::from_hours(24),
        },
        share_weight: 1,
    };
    let contacts = (0..12)
        .map(|k| ContactWindow {
            station: station.id.clone(),
            node: node.clone(),
            start: t0() + Duration::from_mins(30 + 90 * k),
            end: t0() + Duration::from_mins(40 + 90 * k),
        })
        .collect();
    let ground = GroundCore::new(GroundConfig {
        nodes: vec![NodeInfo {
            spec,
            altitude_km: 550.0,
            illumination: Illumination::always_sunlit(),
            initial_soc: 0.9,
        }],
        stations: vec![station],
        contacts,
        isl: Default::default(),
        tenants: vec![tenant.clone()],
        horizon_end: t0() + Duration::from_hours(24),
        plan_ahead: Duration::from_hours(12),
        replan_every: Duration::from_mins(10),
        planner: PlannerOptions::default(),
        seed: 1,
    });
    Setup {
        ground,
        tenant,
        node,
    }
}

fn job(tenant: &Tenant, key: &str, data: &[u8], hours: i64) -> JobSpec {
    JobSpec {
        tenant: tenant.id,
        model: ModelId::new("m").expect("id"),
        input: BlobRef::of(data),
        output_bound_bytes: 1_000,
        deadline: t0() + Duration::from_hours(hours),
        priority: Priority::new(5).expect("priority"),
        idempotency_key: key.into(),
    }
}

#[test]
fn submissions_are_checked_and_idempotent() {
    let mut s = setup(f64::MAX);
    let data = b"tile".to_vec();
    let a = s
        .ground
        .submit(job(&s.tenant, "k", &data, 6), data.clone(), t0())
        .expect("accepted");
    let again = s
        .ground
        .submit(job(&s.tenant, "k", &data, 6), data.clone(), t0())
        .expect("same job");
    assert_eq!(a, again);
    assert_eq!(s.ground.jobs().count(), 1);
    let wrong = s
        .ground
        .submit(job(&s.tenant, "k2", &data, 6), b"other".to_vec(), t0());
    assert_eq!(wrong, Err(SubmitError::InputMismatch));
    let mut stranger = s.tenant.clone();
    stranger.id = IdGenerator::seeded(77).tenant(t0());
    let unknown = s
        .ground
        .submit(job(&stranger, "k3", &data, 6), data.clone(), t0());
    assert_eq!(unknown, Err(SubmitError::UnknownTenant));
}

#[test]
fn a_quota_refuses_what_would_exceed_it() {
    let mut s = setup(15.0);
    let data = vec![0u8; 10_000]; // 10 s of accelerator time each
    assert!(
        s.ground
            .submit(job(&s.tenant, "a", &data, 6), data.clone(), t0())
            .is_ok()
    );
    let second = s
        .ground
        .submit(job(&s.tenant, "b", &data, 6), data.clone(), t0());
    assert!(
        matches!(second, Err(SubmitError::Quota(ref r)) if r == "accelerator_s"),
        "{second:?}"
    );
}

#[test]
fn a_result_arriving_twice_is_delivered_and_billed_once() {
    let mut s = setup(f64::MAX);
    let data = b"tile".to_vec();
    let id = s
        .ground
        .submit(job(&s.tenant, "k", &data, 6), data, t0())
        .expect("accepted");
    s.ground.replan(t0(), "test");
    let now = t0() + Duration::from_mins(31);
    s.ground
        .handle_contact(&s.node, Some(StationId::new("gs").expect("id")), now);
    let env = |message| Envelope {
        version: PROTOCOL,
        sender: Sender::Node(s.node.clone()),
        incarnation: 1,
        seq: 1,
        sent_at: now,
        message,
    };
    let hello = Hello {
        node: s.node.clone(),
        software: "test".into(),
        plan_generation: 0,
        last_seq_received: 0,
    };
    s.ground
        .handle_message(&s.node, env(Message::Hello(hello)), now);
    let mut inputs = 0;
    while let Some((_, e)) = s.ground.poll_outgoing() {
        inputs += usize::from(matches!(e.message, Message::InputChunk(_)));
    }
    assert_eq!(inputs, 1, "the planned job's input goes up at the contact");
    let result = vec![7u8; 16];
    let chunk = result_of(id, result);
    s.ground
        .handle_message(&s.node, env(Message::ResultChunk(chunk.clone())), now);
    s.ground
        .handle_message(&s.node, env(Message::ResultChunk(chunk)), now);
    assert!(s.ground.poll_delivery().is_some());
    assert!(s.ground.poll_delivery().is_none(), "delivered once");
    assert_eq!(s.ground.ledger().len(), 1, "billed once");
    assert_eq!(
        s.ground.jobs().next().map(|j| j.state.clone()),
        Some(JobState::Delivered)
    );
}

#[test]
fn a_job_past_its_deadline_expires() {
    let mut s = setup(f64::MAX);
    let data = b"tile".to_vec();
    s.ground
        .submit(job(&s.tenant, "k", &data, 1), data, t0())
        .expect("accepted");
    s.ground.tick(t0() + Duration::from_hours(2));
    assert_eq!(
        s.ground.jobs().next().map(|j| j.state.clone()),
        Some(JobState::Expired)
    );
    let (_, reserved) = s.ground.usage(s.tenant.id).expect("tenant");
    assert_eq!(reserved.accelerator_s, 0.0, "the reservation is released");
}

#[test]
fn alarms_name_a_drained_hot_node_and_one_silent_through_its_passes() {
    let mut s = setup(f64::MAX);
    // Never heard, and two passes are over: silent.
    let later = t0() + Duration::from_mins(30 + 90 + 11);
    let codes = |g: &GroundCore, at| {
        g.alarms(at)
            .into_iter()
            .map(|a| (a.code, format!("{:?}", a.severity)))
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&s.ground, t0()), []);
    assert_eq!(
        codes(&s.ground, later),
        [("node_silent".to_string(), "Warning".to_string())]
    );
    // It speaks: below its charge floor and past its temperature limit.
    let telemetry = odc_model::telemetry::NodeTelemetry {
        node: s.node.clone(),
        incarnation: 1,
        at: later,
        state_of_charge: 0.5,
        battery_temp_c: 20.0,
        node_temp_c: 80.0,
        accelerator_temp_c: 80.0,
        accelerator_utilization: 1.0,
        queue_depth: 0,
        outbox_depth: 0,
        storage_used_bytes: 0,
        storage_capacity_bytes: 1,
        in_eclipse: true,
        plan_generation: 0,
    };
    let env = Envelope {
        version: PROTOCOL,
        sender: Sender::Node(s.node.clone()),
        incarnation: 1,
        seq: 1,
        sent_at: later,
        message: Message::Telemetry(telemetry),
    };
    s.ground.handle_message(&s.node, env, later);
    let mut got = codes(&s.ground, later);
    got.sort();
    assert_eq!(
        got,
        [
            ("battery_low".to_string(), "Critical".to_string()),
            ("overheating".to_string(), "Critical".to_string())
        ]
    );
    assert_eq!(s.ground.telemetry(&s.node).map(Iterator::count), Some(1));
    let status = s.ground.node_status(later);
    assert_eq!(status[0].missed_passes, 0);
    assert_eq!(status[0].last_heard, Some(later));
    assert!(status[0].next_pass.is_some());
}

/// Two nodes with passes two minutes apart every 90 minutes (the second with a gap later); the first (`n1`) is
/// never heard, the second (`n2`) is heard in each of its passes. Returns the core after n1's third missed pass, with a job submitted
/// and planned then.
fn silent_node(lose_after: Option<usize>) -> (GroundCore, Vec<NodeId>) {
    let s = setup(f64::MAX);
    let n2 = NodeId::new("n2").expect("id");
    let spec = |id: &NodeId, norad| {
        let mut spec = NodeSpec::leo_default(id.clone(), norad);
        spec.accelerator.models.insert(
            ModelId::new("m").expect("id"),
            ModelProfile {
                input_bytes_per_s: 1_000.0,
                batch_setup_s: 1.0,
            },
        );
        NodeInfo {
            spec,
            altitude_km: 550.0,
            illumination: Illumination::always_sunlit(),
            initial_soc: 0.9,
        }
    };
    let station =
        StationSpec::with_defaults(StationId::new("gs").expect("id"), 0.0, 0.0, 0.0, 10.0);
    let pass = |node: &NodeId, k: i64, offset: i64| ContactWindow {
        station: station.id.clone(),
        node: node.clone(),
        start: t0() + Duration::from_mins(offset + 90 * k),
        end: t0() + Duration::from_mins(offset + 10 + 90 * k),
    };
    let mut contacts: Vec<ContactWindow> = (0..12).map(|k| pass(&s.node, k, 30)).collect();
    // n2 then has no pass for four and a half hours: with n1 available, n1 is the better host.
    contacts.extend(
        (0..12)
            .filter(|k| !(3..6).contains(k))
            .map(|k| pass(&n2, k, 32)),
    );
    let mut ground = GroundCore::new(GroundConfig {
        nodes: vec![spec(&s.node, 1), spec(&n2, 2)],
        stations: vec![station],
        contacts,
        isl: Default::default(),
        tenants: vec![s.tenant.clone()],
        horizon_end: t0() + Duration::from_hours(24),
        plan_ahead: Duration::from_hours(12),
        replan_every: Duration::from_mins(10),
        planner: PlannerOptions::default(),
        seed: 1,
    });
    ground.lose_silent_nodes_after(lose_after);
    for k in 0..3 {
        let now = t0() + Duration::from_mins(33 + 90 * k);
        ground.handle_message(&n2, hello(&n2, now), now);
        ground.tick(now);
    }
    let now = t0() + Duration::from_mins(30 + 90 * 2 + 15);
    ground.tick(now);
    let data = b"tile".to_vec();
    ground
        .submit(job(&s.tenant, "after", &data, 12), data, now)
        .expect("accepted");
    ground.replan(now, "test");
    let on: Vec<NodeId> = ground
        .plan()
        .map(|p| p.batches.iter().map(|b| b.node.clone()).collect())
        .unwrap_or_default();
    (ground, on)
}

/// A job's whole result in one chunk, with the run's figures (1 s, 0.1 Wh).
fn result_of(job: odc_model::id::JobId, data: Vec<u8>) -> ResultChunk {
    ResultChunk {
        job,
        output: BlobRef::of(&data),
        offset: 0,
        data,
        accelerator_s: 1.0,
        energy_wh: 0.1,
    }
}

/// A message from `node` (first incarnation), numbered `seq`.
fn from_node(node: &NodeId, seq: u64, at: Instant, message: Message) -> Envelope {
    Envelope {
        version: PROTOCOL,
        sender: Sender::Node(node.clone()),
        incarnation: 1,
        seq,
        sent_at: at,
        message,
    }
}

fn hello(node: &NodeId, at: Instant) -> Envelope {
    from_node(
        node,
        1,
        at,
        Message::Hello(Hello {
            node: node.clone(),
            software: "test".into(),
            plan_generation: 0,
            last_seq_received: 0,
        }),
    )
}

#[test]
fn a_node_silent_through_its_passes_is_taken_for_lost_and_its_work_moves_until_it_speaks() {
    let n1 = NodeId::new("n1").expect("id");
    let n2 = NodeId::new("n2").expect("id");
    // Without loss detection the planner books the silent node (its pass comes first).
    let (ground, on) = silent_node(None);
    assert_eq!(on, std::slice::from_ref(&n1));
    assert!(ground.lost_nodes().next().is_none());
    // With it, n1 is lost after its third missed pass, raised as an alarm, and the work goes to n2.
    let (mut ground, on) = silent_node(Some(3));
    assert_eq!(ground.lost_nodes().collect::<Vec<_>>(), [&n1]);
    assert_eq!(on, [n2]);
    let now = t0() + Duration::from_mins(30 + 90 * 2 + 15);
    let codes: Vec<String> = ground.alarms(now).into_iter().map(|a| a.code).collect();
    assert!(codes.contains(&"node_lost".to_string()), "{codes:?}");
    // n1 speaks again: no longer lost.
    let later = now + Duration::from_mins(5);
    ground.handle_message(&n1, hello(&n1, later), later);
    assert!(ground.lost_nodes().next().is_none());
}

#[test]
fn a_result_carried_down_by_a_neighbour_is_taken_only_with_its_origins_seal() {
    use odc_model::plan::Endpoint;
    use odc_model::wire::{self, Relay, RelaySeal as _};
    let n1 = NodeId::new("n1").expect("id");
    let n2 = NodeId::new("n2").expect("id");
    let ring = odc_link::Keyring::from_seed(
        3,
        [
            Sender::Ground,
            Sender::Node(n1.clone()),
            Sender::Node(n2.clone()),
        ],
    );
    let seal = |s: &NodeId| {
        ring.seal_for(&Sender::Node(s.clone()))
            .expect("in the ring")
    };
    let (mut ground, on) = silent_node(None);
    assert_eq!(on, std::slice::from_ref(&n1));
    ground.set_relay_seal(std::sync::Arc::new(
        ring.seal_for(&Sender::Ground).expect("ground"),
    ));
    let gs = StationId::new("gs").expect("id");
    // n1's next pass: its input goes up.
    let at = t0() + Duration::from_mins(30 + 90 * 3 + 1);
    ground.handle_contact(&n1, Some(gs.clone()), at);
    ground.handle_message(&n1, hello(&n1, at), at);
    let id = std::iter::from_fn(|| ground.poll_outgoing())
        .find_map(|(_, e)| match e.message {
            Message::InputChunk(c) => Some(c.job),
            _ => None,
        })
        .expect("the input went up");
    // Then n2's pass: it carries down frames in n1's name.
    let at = at + Duration::from_mins(2);
    ground.handle_contact(&n2, Some(gs.clone()), at);
    ground.handle_message(&n2, hello(&n2, at), at);
    let result = vec![5u8; 16];
    let inner = from_node(&n1, 2, at, Message::ResultChunk(result_of(id, result)));
    let frame = wire::encode(&inner).expect("encode");
    let carried = |seq: u64, seal: Vec<u8>| {
        from_node(
            &n2,
            seq,
            at,
            Message::Relay(Relay {
                destination: Endpoint::Station(gs.clone()),
                expires_at: at + Duration::from_hours(6),
                hops: 1,
                frame: frame.clone(),
                seal,
            }),
        )
    };
    // Sealed by the carrier itself, or not at all: refused, and the carrier is named in an alarm.
    ground.handle_message(&n2, carried(2, seal(&n2).seal(&frame)), at);
    ground.handle_message(&n2, carried(3, Vec::new()), at);
    assert!(
        ground.poll_delivery().is_none(),
        "nothing forged is delivered"
    );
    assert_eq!(ground.relay_forged().get(&n2), Some(&2));
    let alarm = ground
        .alarms(at)
        .into_iter()
        .find(|a| a.code == "relay_forged")
        .expect("alarm");
    assert_eq!(alarm.subject, "n2");
    // n1's own seal: delivered once.
    ground.handle_message(&n2, carried(4, seal(&n1).seal(&frame)), at);
    assert_eq!(ground.poll_delivery().map(|d| d.job), Some(id));
    assert_eq!(ground.relay_counts().1, 1);
}

/// A store-backed core (as the service runs it) with a planned job whose input is durable, and its node in a pass.
fn store_backed() -> (Setup, odc_model::id::JobId, Vec<u8>, Instant) {
    let mut s = setup(f64::MAX);
    s.ground.forget_history();
    s.ground.inputs_in_store();
    let data = vec![3u8; 4_096];
    let id = s
        .ground
        .submit(job(&s.tenant, "k", &data, 6), data.clone(), t0())
        .expect("accepted");
    s.ground.hold(id);
    assert_eq!(s.ground.inputs_held(), (1, 4_096), "held until durable");
    s.ground.confirm(id, t0());
    assert_eq!(
        s.ground.inputs_held(),
        (0, 0),
        "a durable job's input lives in the store only"
    );
    s.ground.replan(t0(), "test");
    let now = t0() + Duration::from_mins(31);
    s.ground
        .handle_contact(&s.node, Some(StationId::new("gs").expect("id")), now);
    (s, id, data, now)
}

#[test]
fn inputs_live_in_the_store_and_are_loaded_only_while_a_node_in_contact_is_due_them() {
    let (mut s, id, data, now) = store_backed();
    s.ground.handle_message(&s.node, hello(&s.node, now), now);
    let sent = |g: &mut GroundCore| {
        std::iter::from_fn(|| g.poll_outgoing())
            .filter_map(|(_, e)| match e.message {
                Message::InputChunk(c) => Some((c.job, c.data)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(
        sent(&mut s.ground).is_empty(),
        "nothing to send until loaded"
    );
    assert_eq!(s.ground.take_wanted_inputs(), vec![id]);
    assert!(
        s.ground.take_wanted_inputs().is_empty(),
        "asked for once, not at every serve"
    );
    s.ground.provide_inputs(vec![(id, Some(data.clone()))], now);
    assert_eq!(sent(&mut s.ground), vec![(id, data)]);
    assert_eq!(
        s.ground.inputs_held(),
        (0, 0),
        "once handed to the link the core lets it go"
    );
}

#[test]
fn an_input_the_store_lost_or_damaged_fails_its_job_at_once_with_a_reason() {
    for stored in [None, Some(vec![4u8; 4_096])] {
        let (mut s, id, _, now) = store_backed();
        s.ground.handle_message(&s.node, hello(&s.node, now), now);
        assert_eq!(s.ground.take_wanted_inputs(), vec![id]);
        s.ground.provide_inputs(vec![(id, stored)], now);
        let job = s.ground.job(id).expect("still held until durable");
        assert!(
            matches!(&job.state, JobState::Failed { reason } if format!("{reason:?}").contains("input")),
            "{:?}",
            job.state
        );
        assert!(
            !std::iter::from_fn(|| s.ground.poll_outgoing())
                .any(|(_, e)| matches!(e.message, Message::InputChunk(_))),
            "a wrong input never goes up"
        );
    }
}

#[test]
fn a_forgotten_job_a_node_reports_again_is_looked_up_and_the_node_told_how_it_ended() {
    let (mut s, id, data, now) = store_backed();
    s.ground.handle_message(&s.node, hello(&s.node, now), now);
    let _ = s.ground.take_wanted_inputs();
    s.ground.provide_inputs(vec![(id, Some(data))], now);
    let chunk = result_of(id, vec![7u8; 16]);
    s.ground.handle_message(
        &s.node,
        from_node(&s.node, 2, now, Message::ResultChunk(chunk.clone())),
        now,
    );
    let delivered = s.ground.job(id).cloned().expect("delivered");
    assert_eq!(delivered.state, JobState::Delivered);
    let _ = s.ground.take_dirty();
    s.ground.forget_closed(&[id]);
    assert!(s.ground.job(id).is_none(), "closed and durable: forgotten");
    while s.ground.poll_outgoing().is_some() {}
    // The node's receipt was lost: it sends the result again.
    s.ground.handle_message(
        &s.node,
        from_node(&s.node, 3, now, Message::ResultChunk(chunk)),
        now,
    );
    assert_eq!(s.ground.take_lookups(), vec![(s.node.clone(), id)]);
    assert!(s.ground.take_lookups().is_empty());
    s.ground.remind_closed(&s.node, &delivered, now);
    let told: Vec<_> = std::iter::from_fn(|| s.ground.poll_outgoing())
        .flat_map(|(_, e)| match e.message {
            Message::JobUpdates(u) => u.updates,
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(told.len(), 1);
    assert_eq!(
        (told[0].job, &told[0].event),
        (id, &odc_model::job::JobEvent::Deliver)
    );
    assert!(s.ground.ledger().is_empty(), "billed once, by the store");
}

#[test]
fn jobs_between_replans_are_placed_by_a_repair_and_planned_jobs_stay_put() {
    let mut s = setup(f64::MAX);
    let data = b"tile".to_vec();
    let first = s
        .ground
        .submit(job(&s.tenant, "first", &data, 8), data.clone(), t0())
        .expect("accepted");
    // The first plan: a full replan, `replan_every` after the first job.
    let t1 = t0() + Duration::from_mins(10);
    s.ground.tick(t1);
    let planned = s.ground.job(first).cloned().expect("job");
    assert_eq!(planned.state, JobState::Planned);
    let generation = s.ground.plan().expect("a plan").generation;
    // A job a minute later is placed at the next tick, by a repair: no full replan, the first job unmoved.
    let t2 = t1 + Duration::from_mins(1);
    let second = s
        .ground
        .submit(job(&s.tenant, "second", &data, 8), data.clone(), t2)
        .expect("accepted");
    s.ground.tick(t2);
    assert_eq!(
        s.ground.job(second).map(|j| j.state.clone()),
        Some(JobState::Planned)
    );
    let repaired = s.ground.plan().expect("a plan");
    assert_eq!(repaired.generation, generation + 1);
    assert!(
        repaired.batches.iter().any(|b| b.jobs.contains(&second)),
        "the new job is in the plan's batches"
    );
    let last = s.ground.replans().last().expect("a record");
    assert!(last.reason.starts_with("repair"), "{}", last.reason);
    assert_eq!(
        s.ground.job(first).map(|j| (&j.placement, j.history.len())),
        Some((&planned.placement, planned.history.len())),
        "a planned job keeps its place and its history does not grow"
    );
    // A cancellation goes through a repair too: the job leaves the plan at the next tick.
    s.ground.cancel(s.tenant.id, second, t2).expect("cancelled");
    let t3 = t2 + Duration::from_secs(1);
    s.ground.tick(t3);
    let after = s.ground.plan().expect("a plan");
    assert_eq!(after.generation, generation + 2);
    assert!(after.batches.iter().all(|b| !b.jobs.contains(&second)));
    // Nothing new: a tick changes nothing.
    s.ground.tick(t3 + Duration::from_secs(1));
    assert_eq!(s.ground.plan().map(|p| p.generation), Some(generation + 2));
}

#[test]
fn a_node_that_was_not_given_a_job_cannot_deliver_fail_or_bill_it() {
    let (mut ground, on) = silent_node(None);
    let n1 = NodeId::new("n1").expect("id");
    let n2 = NodeId::new("n2").expect("id");
    assert_eq!(on, std::slice::from_ref(&n1));
    let gs = StationId::new("gs").expect("id");
    // n1's pass: its input goes up to n1.
    let at = t0() + Duration::from_mins(30 + 90 * 3 + 1);
    ground.handle_contact(&n1, Some(gs.clone()), at);
    ground.handle_message(&n1, hello(&n1, at), at);
    let id = std::iter::from_fn(|| ground.poll_outgoing())
        .find_map(|(_, e)| match e.message {
            Message::InputChunk(c) => Some(c.job),
            _ => None,
        })
        .expect("the input went up");
    // n2, in contact too, claims the job: a forged result, then a forged failure.
    ground.handle_contact(&n2, Some(gs.clone()), at);
    let forged = result_of(id, vec![6u8; 16]);
    ground.handle_message(&n2, from_node(&n2, 2, at, Message::ResultChunk(forged)), at);
    let fail = odc_model::wire::JobUpdates {
        updates: vec![odc_model::wire::JobUpdate {
            job: id,
            event: odc_model::job::JobEvent::Fail {
                reason: odc_model::job::FailureReason::Other {
                    message: "forged".into(),
                },
            },
            at,
        }],
    };
    ground.handle_message(&n2, from_node(&n2, 3, at, Message::JobUpdates(fail)), at);
    assert_eq!(
        ground.job(id).map(|j| j.state.clone()),
        Some(JobState::Planned),
        "neither the result nor the failure took"
    );
    assert!(
        ground.poll_delivery().is_none(),
        "nothing delivered or billed"
    );
    assert_eq!(ground.reports_foreign().get(&n2), Some(&2));
    let alarms = ground.alarms(at);
    assert!(
        alarms
            .iter()
            .any(|a| a.code == "report_foreign" && a.subject == "n2"),
        "{alarms:?}"
    );
    // The node it was sent to delivers it.
    let real = vec![7u8; 16];
    ground.handle_message(
        &n1,
        from_node(
            &n1,
            4,
            at,
            Message::ResultChunk(result_of(id, real.clone())),
        ),
        at,
    );
    let d = ground.poll_delivery().expect("delivered");
    assert_eq!((d.job, d.result), (id, real));
}
