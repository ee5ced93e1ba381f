//! `odc flight`: the daemon of one flight node. Opens the node's store (recovering what it committed), loads the
//! accelerator backend, computes its passes over the stations from the same scenario as the ground, and runs the
//! flight core until SIGTERM or Ctrl-C, dialling the ground over QUIC in every pass. Prometheus metrics on request.

use super::fleet::{TimeSettings, geometry, load_config};
use anyhow::Context;
use clap::Args;
use odc_accel::Accelerator;
use odc_flight::daemon::{DaemonConfig, FlightGauges, Windows, run as run_daemon};
use odc_flight::sensors::SimulatedSensors;
use odc_flight::store::FlightStore;
use odc_link::pki::load_trust;
use odc_link::{Credentials, Identity, Role};
use odc_model::time::{Clock, Duration};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The documented defaults (`odc flight --print-default-config`).
pub const DEFAULT_CONFIG: &str = r#"# odc flight: the daemon of one flight node.

# This node's id: one of the scenario's satellites.
node = ""
# The ground's QUIC link address and identity.
ground = "127.0.0.1:7700"
ground_id = "ground"
# Certificates, made with `odc pki`: the CA's ca.pem and this node's node-<node>.pem/.key.
pki_dir = "pki"
# The node's store: one crash-safe file, created on first start.
store = "node.db"
# Address of the Prometheus endpoint (GET /metrics); empty: none.
metrics_listen = ""
# Accelerator backend: "cpu" (real inference of the tile classifier) or "modeled" (timing and energy only).
backend = "cpu"
# The constellation: a planner scenario file (`odc plan` format); empty for the embedded demo constellation.
# Must be the ground's.
scenario = ""
# Inter-satellite links: where neighbours dial in (UDP address; empty: no ISL terminal), and the neighbours with
# their addresses, e.g. { n60102 = "127.0.0.1:17702" }. A node dials the neighbours whose id is greater than its
# own, in the ISL windows computed within the scenario's isl_range_km.
isl_listen = ""
neighbours = {}
# The local address the links this node dials (to the ground, to neighbours) leave from; empty: any interface of
# the ground address's family, any port.
link_bind = ""
# Hours of passes and eclipses computed at start.
horizon_hours = 24.0
# Simulated seconds between sensor readings.
sense_seconds = 60.0
# The clock, as the ground's (see `odc ground --print-default-config`).
time_start = ""
time_anchor_unix_ms = 0
time_speed = 1.0
"#;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlightFile {
    node: String,
    ground: String,
    ground_id: String,
    pki_dir: PathBuf,
    store: PathBuf,
    metrics_listen: String,
    isl_listen: String,
    neighbours: std::collections::BTreeMap<String, String>,
    link_bind: String,
    backend: String,
    scenario: String,
    horizon_hours: f64,
    sense_seconds: f64,
    time_start: String,
    time_anchor_unix_ms: i64,
    time_speed: f64,
}

/// Arguments of `odc flight`.
#[derive(Args)]
pub struct FlightArgs {
    /// Configuration file (TOML); the documented defaults without it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Log format on stderr: text or json (one object per line). Levels from `RUST_LOG` (default info).
    #[arg(long, default_value = "text")]
    log_format: String,
}

/// Runs `odc flight`.
pub fn run(args: FlightArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let (file, base): (FlightFile, PathBuf) = load_config(DEFAULT_CONFIG, args.config.as_deref())?;
    anyhow::ensure!(
        !file.node.is_empty(),
        "say which node this is: node = \"<id>\""
    );
    anyhow::ensure!(
        file.sense_seconds > 0.0 && file.horizon_hours > 0.0,
        "sense_seconds and horizon_hours must be positive"
    );
    super::ground::init_logs(&args.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(file, base))
}

async fn serve(file: FlightFile, base: PathBuf) -> anyhow::Result<()> {
    let time = TimeSettings {
        start: file.time_start.clone(),
        anchor_unix_ms: file.time_anchor_unix_ms,
        speed: file.time_speed,
    };
    let clock = time.clock()?;
    let now = clock.now();
    // This node and its neighbours: its passes, and its ISL windows with them.
    let only: Vec<String> = std::iter::once(file.node.clone())
        .chain(file.neighbours.keys().cloned())
        .collect();
    let snapshot = geometry(&file.scenario, &base, now, file.horizon_hours, &only)?;
    let node = snapshot
        .nodes
        .iter()
        .find(|n| n.spec.id.as_str() == file.node)
        .with_context(|| {
            format!(
                "node {:?} is not in the scenario (it has {})",
                file.node,
                snapshot
                    .nodes
                    .iter()
                    .map(|n| n.spec.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let windows = windows_of(&snapshot, &node.spec.id);
    let mut neighbours = Vec::new();
    for (id, addr) in &file.neighbours {
        let id = odc_model::id::NodeId::new(id.as_str())
            .map_err(|e| anyhow::anyhow!("neighbour {id:?}: {e}"))?;
        let addr: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("neighbour {id}: {addr:?} is not an address"))?;
        neighbours.push((id, addr));
    }
    let isl_listen = if file.isl_listen.is_empty() {
        None
    } else {
        Some(
            file.isl_listen
                .parse()
                .with_context(|| format!("isl_listen {:?} is not an address", file.isl_listen))?,
        )
    };
    let pki = base.join(&file.pki_dir);
    let me = Identity::new(Role::Node, &file.node)?;
    let credentials = Credentials::load(&pki, me).with_context(|| {
        format!(
            "no credentials for node {} in {} (make them with `odc pki issue --node {}`)",
            file.node,
            pki.display(),
            file.node
        )
    })?;
    let ca = load_trust(&pki.join("ca.pem"))?;
    let ground_addr = file
        .ground
        .parse()
        .with_context(|| format!("ground {:?} is not an address", file.ground))?;
    let ground_id = Identity::new(Role::Ground, &file.ground_id)?;
    let link_bind = link_bind(&file.link_bind, ground_addr)?;
    let store_path = base.join(&file.store);
    let store = FlightStore::open(&store_path)
        .with_context(|| format!("cannot open the node's store {}", store_path.display()))?;
    let mut backend: Box<dyn Accelerator> = match file.backend.as_str() {
        "cpu" => Box::new(odc_accel::cpu::CandleBackend::cpu(
            node.spec.accelerator.idle_power_w,
            node.spec.accelerator.busy_power_w,
        )),
        "modeled" => Box::new(odc_accel::modeled::ModeledBackend::new(
            node.spec.accelerator.clone(),
        )),
        other => anyhow::bail!("backend {other:?}: use cpu or modeled"),
    };
    backend
        .load(&odc_accel::ModelArtifact::tile_classifier())
        .map_err(|e| anyhow::anyhow!("the accelerator cannot load the tile classifier: {e}"))?;
    let sensors = SimulatedSensors::new(
        &node.spec,
        node.altitude_km,
        node.illumination.clone(),
        now,
        node.state_of_charge,
        node.temp_c,
    );
    let gauges = Arc::new(Mutex::new(FlightGauges::default()));
    if !file.metrics_listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&file.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {}", file.metrics_listen))?;
        tokio::spawn(serve_metrics(listener, gauges.clone(), file.node.clone()));
    }
    say(&format!(
        "odc flight {} up: {} passes and {} ISL windows in the next {} h, store {}",
        file.node,
        windows.passes.len(),
        windows.isl.len(),
        file.horizon_hours,
        store_path.display()
    ));
    let (scenario, hours, me) = (
        file.scenario.clone(),
        file.horizon_hours,
        node.spec.id.clone(),
    );
    let more_windows = Box::new(move |from: odc_model::time::Instant| {
        let snapshot =
            geometry(&scenario, &base, from, hours, &only).map_err(|e| format!("{e:#}"))?;
        Ok(windows_of(&snapshot, &me))
    });
    let config = DaemonConfig {
        spec: node.spec.clone(),
        windows,
        more_windows,
        neighbours,
        isl_listen,
        link_bind,
        ground: (ground_addr, ground_id),
        credentials,
        ca,
        store,
        clock,
        sensors: Box::new(sensors),
        backend,
        input_shape: vec![
            odc_accel::tiles::BANDS,
            odc_accel::tiles::SIDE,
            odc_accel::tiles::SIDE,
        ],
        sense_every: Duration::from_secs_f64(file.sense_seconds),
    };
    run_daemon(config, gauges, super::ground::shutdown()).await?;
    say(&format!(
        "odc flight {} stopped; the store is closed",
        file.node
    ));
    Ok(())
}

/// A node's passes and its ISL windows with the other nodes of the snapshot.
fn windows_of(snapshot: &odc_planner::Snapshot, me: &odc_model::id::NodeId) -> Windows {
    let passes = snapshot
        .contacts
        .iter()
        .filter(|c| &c.node == me)
        .map(|c| (c.start, c.end))
        .collect();
    let isl = snapshot
        .isl
        .iter()
        .filter_map(|w| {
            if &w.a == me {
                Some((w.b.clone(), w.start, w.end))
            } else if &w.b == me {
                Some((w.a.clone(), w.start, w.end))
            } else {
                None
            }
        })
        .collect();
    Windows {
        passes,
        isl,
        until: snapshot.horizon_end,
    }
}

/// Answers every request on the metrics address with the node's gauges (Prometheus text).
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    gauges: Arc<Mutex<FlightGauges>>,
    node: String,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let body = gauges.lock().map(|g| g.render(&node)).unwrap_or_default();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
            let ok = request.starts_with(b"GET /metrics");
            let (status, body) = if ok {
                ("200 OK", body)
            } else {
                (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_string(),
                )
            };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
    }
}

/// The local address a node's outgoing links leave from: the configured one, or any interface of the ground
/// address's family (so links reach a ground and neighbours on other hosts, not only loopback), any port.
fn link_bind(
    configured: &str,
    ground: std::net::SocketAddr,
) -> anyhow::Result<std::net::SocketAddr> {
    if configured.is_empty() {
        return Ok(match ground {
            std::net::SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            std::net::SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        });
    }
    configured
        .parse()
        .with_context(|| format!("link_bind {configured:?} is not an address"))
}

fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_parses_and_unknown_settings_are_named() {
        let (file, _): (FlightFile, PathBuf) = load_config(DEFAULT_CONFIG, None).expect("defaults");
        assert_eq!(file.backend, "cpu");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.toml");
        std::fs::write(&path, "node = \"sat-1\"\nbakend = 1\n").expect("write");
        let err = load_config::<FlightFile>(DEFAULT_CONFIG, Some(std::path::Path::new(&path)))
            .expect_err("unknown key");
        assert!(err.to_string().contains("bakend"), "{err}");
    }

    #[test]
    fn links_leave_from_any_interface_unless_told_otherwise() {
        let v4: std::net::SocketAddr = "10.77.0.1:7700".parse().expect("addr");
        let v6: std::net::SocketAddr = "[fd00::1]:7700".parse().expect("addr");
        assert_eq!(link_bind("", v4).expect("v4").to_string(), "0.0.0.0:0");
        assert_eq!(link_bind("", v6).expect("v6").to_string(), "[::]:0");
        assert_eq!(
            link_bind("10.77.0.2:0", v4).expect("given").to_string(),
            "10.77.0.2:0"
        );
        let err = link_bind("eth0", v4).expect_err("not an address");
        assert!(format!("{err:#}").contains("link_bind \"eth0\""), "{err:#}");
    }
}
