//! Relay over inter-satellite links: frames held durably for a neighbour until its ISL is up, inputs taken in
//! from a neighbour, results sent down through the neighbour the plan names, and the fall-back to the node's own
//! contact when a relayed result goes unacknowledged.

use odc_flight::{
    Action, FlightCore, GovernorConfig, MAX_RELAY_HOPS, RELAY_GRACE, RunOutput, Sensors,
};
use odc_model::id::{IdGenerator, JobId, ModelId, NodeId, StationId};
use odc_model::job::{BlobRef, JobSpec, Priority};
use odc_model::plan::{Direction, Endpoint, Hop, Plan, Route};
use odc_model::spec::{ModelProfile, NodeSpec};
use odc_model::time::{Duration, Instant};
use odc_model::wire::{self, Envelope, InputChunk, Message, PROTOCOL, PlanUpdate, Relay, Sender};

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).expect("id")
}

fn spec(name: &str) -> NodeSpec {
    let mut s = NodeSpec::leo_default(node(name), 1);
    s.accelerator.models.insert(
        ModelId::new("m").expect("id"),
        ModelProfile {
            input_bytes_per_s: 1_000.0,
            batch_setup_s: 1.0,
        },
    );
    s
}

fn core(name: &str) -> FlightCore {
    FlightCore::new(spec(name), GovernorConfig::default())
}

fn from(sender: Sender, message: Message) -> Envelope {
    Envelope {
        version: PROTOCOL,
        sender,
        incarnation: 1,
        seq: 1,
        sent_at: t0(),
        message,
    }
}

/// A job's input, as the ground frames it.
fn input(ids: &mut IdGenerator) -> (JobId, Envelope) {
    let id = ids.job(t0());
    let data = b"tile".to_vec();
    let spec = JobSpec {
        tenant: IdGenerator::seeded(0).tenant(t0()),
        model: ModelId::new("m").expect("id"),
        input: BlobRef::of(&data),
        output_bound_bytes: 64,
        deadline: t0() + Duration::from_hours(6),
        priority: Priority::new(5).expect("priority"),
        idempotency_key: "k".into(),
    };
    let chunk = InputChunk {
        job: id,
        spec,
        offset: 0,
        data,
    };
    (id, from(Sender::Ground, Message::InputChunk(chunk)))
}

fn relay_to(destination: Endpoint, inner: &Envelope, hops: u8) -> Envelope {
    from(
        Sender::Ground,
        Message::Relay(Relay {
            destination,
            expires_at: t0() + Duration::from_hours(6),
            hops,
            frame: wire::encode(inner).expect("encode"),
        }),
    )
}

fn healthy() -> Sensors {
    Sensors {
        state_of_charge: 0.95,
        temp_c: 20.0,
        in_eclipse: false,
    }
}

fn kinds(core: &mut FlightCore) -> Vec<String> {
    std::iter::from_fn(|| core.poll_outgoing())
        .map(|e| e.message.kind().to_string())
        .collect()
}

#[test]
fn a_frame_for_a_neighbour_is_held_across_a_restart_and_crosses_when_the_isl_opens() {
    let mut ids = IdGenerator::seeded(1);
    let mut relay = core("r1");
    let (id, inner) = input(&mut ids);
    relay.handle_message(relay_to(Endpoint::Node(node("x1")), &inner, 0), t0());
    assert_eq!(relay.relay_depth(), 1, "held while no ISL to x1 is up");
    assert_eq!(relay.poll_isl_outgoing(&node("x1")), None);

    // The held frame is part of what the node commits: a restart keeps it.
    let bytes = rmp_serde::to_vec_named(relay.durable()).expect("serialise");
    let durable = rmp_serde::from_slice(&bytes).expect("deserialise");
    let mut relay = FlightCore::recover(durable, spec("r1"), GovernorConfig::default(), t0());
    assert_eq!(relay.relay_depth(), 1);

    let later = t0() + Duration::from_mins(20);
    relay.handle_isl(&node("x1"), true, later);
    let out = relay.poll_isl_outgoing(&node("x1")).expect("forwarded");
    assert_eq!(relay.relay_depth(), 0);
    let Message::Relay(r) = &out.message else {
        panic!("a relay frame crosses, got {}", out.message.kind());
    };
    assert_eq!(r.hops, 1, "each hop counts");

    let mut target = core("x1");
    target.handle_isl_message(out, later);
    assert_eq!(target.queue_depth(), 1, "the input arrived through r1");
    assert!(target.durable().jobs.contains_key(&id));
    let reported: Vec<String> = kinds(&mut target);
    assert_eq!(
        reported,
        ["job_updates"],
        "uplink and enqueue wait for x1's own contact"
    );
}

#[test]
fn frames_that_loop_have_expired_or_do_not_come_from_the_ground_are_refused() {
    let mut ids = IdGenerator::seeded(2);
    let mut n = core("r1");
    let (_, inner) = input(&mut ids);
    n.handle_message(
        relay_to(Endpoint::Node(node("x1")), &inner, MAX_RELAY_HOPS),
        t0(),
    );
    let mut stale = relay_to(Endpoint::Node(node("x1")), &inner, 0);
    if let Message::Relay(r) = &mut stale.message {
        r.expires_at = t0();
    }
    n.handle_message(stale, t0());
    // A frame for this node that claims to be another node's: nothing but the ground is carried to a node.
    let (_, mut forged) = input(&mut ids);
    forged.sender = Sender::Node(node("x9"));
    n.handle_isl_message(relay_to(Endpoint::Node(node("r1")), &forged, 1), t0());
    let mut garbage = relay_to(Endpoint::Node(node("r1")), &inner, 1);
    if let Message::Relay(r) = &mut garbage.message {
        r.frame = vec![0xff; 12];
    }
    n.handle_isl_message(garbage, t0());
    assert_eq!(n.relay_depth(), 0);
    assert_eq!(n.queue_depth(), 0);
    assert_eq!(n.relay_dropped(), 4);
}

/// A plan that runs `job` on x1 now and sends its result down through r1 to gs0.
fn plan_down_through_r1(ids: &mut IdGenerator, job: JobId) -> Plan {
    let t = t0();
    let mut plan = Plan::first(ids.plan(t), t, t, t + Duration::from_hours(6));
    plan.routes.push(Route {
        job,
        direction: Direction::Down,
        bytes: 12,
        hops: vec![
            Hop {
                from: Endpoint::Node(node("x1")),
                to: Endpoint::Node(node("r1")),
                start: t + Duration::from_mins(10),
                end: t + Duration::from_mins(11),
                contact: None,
            },
            Hop {
                from: Endpoint::Node(node("r1")),
                to: Endpoint::Station(StationId::new("gs0").expect("id")),
                start: t + Duration::from_mins(30),
                end: t + Duration::from_mins(31),
                contact: None,
            },
        ],
    });
    plan
}

/// Runs x1's one queued job to completion at `t0 + 1 min`, out of contact.
fn run_job(x: &mut FlightCore, id: JobId) {
    let now = t0() + Duration::from_mins(1);
    x.tick(healthy(), now);
    let Some(Action::Run(req)) = x.poll_action(now) else {
        panic!("the job runs");
    };
    x.batch_done(
        req.run,
        vec![RunOutput {
            job: id,
            result: Ok(vec![9; 12]),
        }],
        4.0,
        0.5,
        now,
    );
}

#[test]
fn a_result_goes_down_through_the_neighbour_the_plan_names_and_bills_what_it_used() {
    let mut ids = IdGenerator::seeded(3);
    let mut x = core("x1");
    let (id, msg) = input(&mut ids);
    x.handle_message(msg, t0());
    let plan = plan_down_through_r1(&mut ids, id);
    x.handle_message(
        from(Sender::Ground, Message::PlanUpdate(PlanUpdate { plan })),
        t0(),
    );
    run_job(&mut x, id);
    assert!(
        !kinds(&mut x).contains(&"result_chunk".to_string()),
        "out of contact, the result waits for the planned ISL instead of the next pass"
    );
    let at_isl = t0() + Duration::from_mins(10);
    x.handle_isl(&node("r1"), true, at_isl);
    let out = x.poll_isl_outgoing(&node("r1")).expect("handed to r1");

    let mut r = core("r1");
    r.handle_isl_message(out, at_isl);
    assert_eq!(r.relay_depth(), 1, "held until r1 sees a station");
    r.handle_contact(true, t0() + Duration::from_mins(30));
    let down: Vec<Envelope> = std::iter::from_fn(|| r.poll_outgoing()).collect();
    let carried = down
        .iter()
        .find_map(|e| match &e.message {
            Message::Relay(relay) => Some(relay),
            _ => None,
        })
        .expect("r1 sends the frame down");
    assert!(matches!(carried.destination, Endpoint::Station(_)));
    let inner = wire::decode(&carried.frame).expect("inner frame");
    assert_eq!(inner.sender, Sender::Node(node("x1")));
    let Message::ResultChunk(chunk) = inner.message else {
        panic!("the result, got {}", inner.message.kind());
    };
    assert_eq!((chunk.job, chunk.data.len()), (id, 12));
    assert_eq!(
        (chunk.accelerator_s, chunk.energy_wh),
        (4.0, 0.5),
        "the run's figures travel with it"
    );

    // No receipt by x1's own next contact, a grace period on: x1 sends the result itself.
    x.handle_contact(true, at_isl + Duration::from_mins(5));
    assert!(
        !kinds(&mut x).contains(&"result_chunk".to_string()),
        "too soon: the relayed copy is on its way"
    );
    x.handle_contact(false, at_isl + Duration::from_mins(6));
    x.handle_contact(true, at_isl + RELAY_GRACE + Duration::from_mins(1));
    assert!(kinds(&mut x).contains(&"result_chunk".to_string()));
}
