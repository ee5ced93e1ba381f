//! The ground's node links over real QUIC on loopback: a known node's messages reach the core through the
//! station its pass is over, a node that restarted (a new session number) is heard afresh rather than having its
//! messages dropped as repeats, and a certified peer that is not a node of the fleet is turned away.

use odc_budget::Illumination;
use odc_ground::api::{Ground, router, token_hash};
use odc_ground::dispatch::{NodeSide, accept_links};
use odc_ground::store::SqliteStore;
use odc_ground::{GroundConfig, GroundCore, NodeInfo};
use odc_link::quic::{self, ContactEnd};
use odc_link::session::{Event, Priority, Session, SessionConfig};
use odc_link::{Authority, Credentials, Identity, LinkConfig, Role};
use odc_model::id::{NodeId, StationId};
use odc_model::spec::{NodeSpec, StationSpec};
use odc_model::telemetry::NodeTelemetry;
use odc_model::time::{Duration, Instant, SimClock};
use odc_model::wire::{self, Envelope, Message, PROTOCOL, Sender};
use odc_planner::{ContactWindow, PlannerOptions};
use std::sync::Arc;
use tower::ServiceExt as _;

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

struct Setup {
    ground: Arc<Ground<SqliteStore>>,
    ca: Authority,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    )
}

fn credentials(ca: &Authority, who: &Identity) -> Credentials {
    let (a, b) = validity();
    ca.issue(who, a, b).expect("credentials")
}

async fn setup() -> Setup {
    let node = NodeId::new("n1").expect("id");
    let station =
        StationSpec::with_defaults(StationId::new("gs").expect("id"), 0.0, 0.0, 0.0, 10.0);
    let core = GroundCore::new(GroundConfig {
        nodes: vec![NodeInfo {
            spec: NodeSpec::leo_default(node.clone(), 1),
            altitude_km: 550.0,
            illumination: Illumination::always_sunlit(),
            initial_soc: 0.9,
        }],
        stations: vec![station.clone()],
        contacts: vec![ContactWindow {
            station: station.id.clone(),
            node,
            start: t0(),
            end: t0() + Duration::from_hours(1),
        }],
        isl: Default::default(),
        tenants: Vec::new(),
        horizon_end: t0() + Duration::from_hours(24),
        plan_ahead: Duration::from_hours(12),
        replan_every: Duration::from_mins(10),
        planner: PlannerOptions::default(),
        seed: 1,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("g.db"))
        .await
        .expect("store");
    let clock = Arc::new(SimClock::new(t0() + Duration::from_mins(5)));
    let ground = Ground::start(core, store, clock, &[token_hash("token-op")])
        .await
        .expect("start");
    let (a, b) = validity();
    let ca = Authority::generate("test", a, b).expect("ca");
    let me = Identity::new(Role::Ground, "ground").expect("id");
    let endpoint = quic::server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &credentials(&ca, &me),
        &ca.cert_der().expect("der"),
        LinkConfig::default(),
    )
    .expect("endpoint");
    let addr = endpoint.local_addr().expect("addr");
    tokio::spawn(accept_links(
        ground.clone(),
        endpoint,
        7,
        std::future::pending(),
    ));
    Setup {
        ground,
        ca,
        addr,
        _dir: dir,
    }
}

fn telemetry(node: &NodeId, at: Instant) -> Vec<u8> {
    let envelope = Envelope {
        version: PROTOCOL,
        sender: Sender::Node(node.clone()),
        incarnation: 1,
        seq: 1,
        sent_at: at,
        message: Message::Telemetry(NodeTelemetry {
            node: node.clone(),
            incarnation: 1,
            at,
            state_of_charge: 0.8,
            battery_temp_c: 20.0,
            node_temp_c: 20.0,
            accelerator_temp_c: 20.0,
            accelerator_utilization: 0.0,
            queue_depth: 0,
            outbox_depth: 0,
            storage_used_bytes: 0,
            storage_capacity_bytes: 1,
            in_eclipse: false,
            plan_generation: 0,
        }),
    };
    wire::encode(&envelope).expect("encodes")
}

/// One contact as `node` with a fresh session named `session_id`: sends one telemetry report and hangs up once the
/// ground has acknowledged it. Returns the ground's session number.
async fn contact(s: &Setup, node: &str, session_id: u64, at: Instant) -> Result<u64, String> {
    let me = Identity::node(node).expect("id");
    let endpoint = quic::client_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &credentials(&s.ca, &me),
        &s.ca.cert_der().expect("der"),
        LinkConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let ground = Identity::new(Role::Ground, "ground").expect("id");
    let link = quic::connect_session(&endpoint, s.addr, &ground, &me, session_id)
        .await
        .map_err(|e| e.to_string())?;
    let theirs = link.session_id();
    let mut session = Session::new(SessionConfig::default());
    session.send(
        Priority::Telemetry,
        telemetry(&NodeId::new(node).expect("id"), at),
    );
    let acked = Arc::new(tokio::sync::Notify::new());
    let signal = acked.clone();
    let mut on_event = move |e: Event| {
        if matches!(e, Event::Acknowledged(_)) {
            signal.notify_one();
        }
    };
    let stop = async move {
        acked.notified().await;
    };
    let end = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        link.run(&mut session, &mut on_event, stop),
    )
    .await
    .map_err(|_| "the ground never acknowledged".to_string())?;
    match end {
        Ok(ContactEnd::Stopped) => Ok(theirs),
        other => Err(format!("{other:?}")),
    }
}

async fn reports(s: &Setup) -> serde_json::Value {
    let app = router(s.ground.clone(), 1 << 20);
    let req = axum::http::Request::builder()
        .uri("/v1/ops/nodes/n1/telemetry")
        .header("authorization", "Bearer token-op")
        .body(axum::body::Body::empty())
        .expect("request");
    let res = app.oneshot(req).await.expect("response");
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&body).expect("json")
}

async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_node_is_heard_through_its_pass_and_again_after_a_restart() {
    let s = setup().await;
    let ground_session = contact(&s, "n1", 100, t0()).await.expect("first contact");
    assert_eq!(ground_session, 7, "the ground names its session");
    assert!(eventually(async || reports(&s).await.as_array().map(Vec::len) == Some(1)).await);
    // The node restarted: a new session whose first message has the same id as the old one's.
    contact(&s, "n1", 200, t0() + Duration::from_mins(1))
        .await
        .expect("second contact");
    assert!(
        eventually(async || reports(&s).await.as_array().map(Vec::len) == Some(2)).await,
        "the restarted node's report was taken, not dropped as a repeat: {}",
        reports(&s).await
    );
    let node = NodeId::new("n1").expect("id");
    assert!(
        eventually(async || s.ground.links().in_contact_with(&node).is_none()).await,
        "the contact ended when the node hung up"
    );
}

#[tokio::test]
async fn a_certified_peer_that_is_not_a_node_of_the_fleet_is_turned_away() {
    let s = setup().await;
    let refused = contact(&s, "n9", 1, t0()).await;
    assert!(refused.is_err(), "{refused:?}");
    let stranger = NodeId::new("n9").expect("id");
    assert!(s.ground.links().in_contact_with(&stranger).is_none());
    assert_eq!(reports(&s).await.as_array().map(Vec::len), Some(0));
}
