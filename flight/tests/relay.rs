//! Relay over inter-satellite links: frames held durably for a neighbour until its ISL is up, inputs taken in
//! from a neighbour, results sent down through the neighbour the plan names, and the fall-back to the node's own
//! contact when a relayed result goes unacknowledged; and the seals that prove, end to end, that what a
//! neighbour carries to a node is the ground's and what it carries down is the origin node's.

use odc_flight::{
    Action, FlightCore, GovernorConfig, MAX_RELAY_HOPS, RELAY_GRACE, RunOutput, Sensors,
};
use odc_model::id::{IdGenerator, JobId, ModelId, NodeId, StationId};
use odc_model::job::{BlobRef, JobSpec, Priority};
use odc_model::plan::{Direction, Endpoint, Hop, Plan, Route};
use odc_model::spec::{ModelProfile, NodeSpec};
use odc_model::time::{Duration, Instant};
use odc_model::wire::{
    self, Envelope, InputChunk, Message, PROTOCOL, PlanUpdate, Relay, RelaySeal, Sender,
};
use std::sync::Arc;

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

/// The keys of the ground and of the nodes these tests name.
fn keyring() -> odc_link::Keyring {
    odc_link::Keyring::from_seed(
        1,
        std::iter::once(Sender::Ground).chain(["r1", "x1", "x9"].map(|n| Sender::Node(node(n)))),
    )
}

fn seal_of(sender: &Sender) -> odc_link::KeyringSeal {
    keyring().seal_for(sender).expect("in the ring")
}

/// A node with its seal.
fn core(name: &str) -> FlightCore {
    let mut c = FlightCore::new(spec(name), GovernorConfig::default());
    c.set_relay_seal(Arc::new(seal_of(&Sender::Node(node(name)))));
    c
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

/// `inner` relayed towards `destination`, sealed by the ground.
fn relay_to(destination: Endpoint, inner: &Envelope, hops: u8) -> Envelope {
    sealed_by(&Sender::Ground, destination, inner, hops)
}

/// `inner` relayed towards `destination`, sealed by `sealer` (who may not be who the frame names).
fn sealed_by(sealer: &Sender, destination: Endpoint, inner: &Envelope, hops: u8) -> Envelope {
    let frame = wire::encode(inner).expect("encode");
    from(
        Sender::Ground,
        Message::Relay(Relay {
            destination,
            expires_at: t0() + Duration::from_hours(6),
            hops,
            seal: seal_of(sealer).seal(&frame),
            frame,
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
    assert_eq!(relay.relay_depth(), 1, "transit needs no seal");

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

/// Gives x1 a job whose plan sends its result down through r1, and runs it (out of contact).
fn run_one_routed_down_through_r1(x: &mut FlightCore, ids: &mut IdGenerator) -> JobId {
    let (id, msg) = input(ids);
    x.handle_message(msg, t0());
    let plan = plan_down_through_r1(ids, id);
    x.handle_message(
        from(Sender::Ground, Message::PlanUpdate(PlanUpdate { plan })),
        t0(),
    );
    run_job(x, id);
    id
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
    let id = run_one_routed_down_through_r1(&mut x, &mut ids);
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
    assert_eq!(
        seal_of(&Sender::Ground).verify(&inner.sender, &carried.frame, &carried.seal),
        Ok(()),
        "x1 sealed its result; r1 carried it unchanged"
    );
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

#[test]
fn a_frame_in_the_grounds_name_is_taken_only_with_the_grounds_seal() {
    let mut ids = IdGenerator::seeded(4);
    let mut x = core("x1");
    let here = || Endpoint::Node(node("x1"));
    // The neighbour that carries it makes its own input and seals it itself, or seals nothing.
    let (_, made) = input(&mut ids);
    x.handle_isl_message(sealed_by(&Sender::Node(node("r1")), here(), &made, 1), t0());
    let mut unsealed = relay_to(here(), &made, 1);
    if let Message::Relay(r) = &mut unsealed.message {
        r.seal.clear();
    }
    x.handle_isl_message(unsealed, t0());
    // Or it changes the ground's frame on the way (another job's spec and bytes under the same seal).
    let (_, genuine) = input(&mut ids);
    let mut altered = relay_to(here(), &genuine, 1);
    if let Message::Relay(r) = &mut altered.message {
        let (_, other) = input(&mut ids);
        r.frame = wire::encode(&other).expect("encode");
    }
    x.handle_isl_message(altered, t0());
    assert_eq!(x.queue_depth(), 0, "nothing forged was taken in");
    assert_eq!(x.relay_forged(), 3);
    // The ground's own frame, carried unchanged, is taken.
    x.handle_isl_message(relay_to(here(), &genuine, 1), t0());
    assert_eq!(x.queue_depth(), 1);
    assert_eq!(x.relay_forged(), 3);
}

#[test]
fn a_node_without_a_seal_takes_nothing_relayed_and_sends_its_results_itself() {
    let mut ids = IdGenerator::seeded(5);
    let mut x = FlightCore::new(spec("x1"), GovernorConfig::default());
    let (_, relayed) = input(&mut ids);
    x.handle_isl_message(relay_to(Endpoint::Node(node("x1")), &relayed, 1), t0());
    assert_eq!(
        x.queue_depth(),
        0,
        "it cannot tell the ground's frame from a neighbour's"
    );
    run_one_routed_down_through_r1(&mut x, &mut ids);
    let at_isl = t0() + Duration::from_mins(10);
    x.handle_isl(&node("r1"), true, at_isl);
    assert_eq!(
        x.poll_isl_outgoing(&node("r1")),
        None,
        "an unsealed result would be refused by the ground: it waits for the node's own pass"
    );
    x.handle_contact(true, at_isl + Duration::from_mins(1));
    assert!(kinds(&mut x).contains(&"result_chunk".to_string()));
}
