//! `odc demo --live`: a local constellation of real processes. A ground service and several flight daemons start
//! on loopback with one accelerated clock; each daemon dials the ground over QUIC (mutual TLS under a fresh
//! constellation CA) only during its computed passes. A tenant is created, submits satellite tiles through the
//! HTTPS API (its certificate from the same CA) and downloads the results, each compared with the model run here.
//! On request daemons and the ground are killed with SIGKILL at random moments and restarted each time; the run
//! then also checks that no job was lost or delivered twice.

use super::client::Connection;
use super::fleet::geometry;
use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use odc_accel::tiles::{Class, tile_bytes};
use odc_link::{Authority, Identity, Role};
use odc_model::id::SplitMix64;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options of the live demo (`odc demo --live`).
#[derive(Args, Debug, Clone)]
pub struct LiveArgs {
    /// Run the live constellation instead of the twin.
    #[arg(long)]
    pub live: bool,
    /// Flight daemons to start.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Jobs the tenant submits.
    #[arg(long, default_value_t = 24)]
    pub jobs: usize,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 600.0)]
    pub speed: f64,
    /// Times the first daemon is killed with SIGKILL (at random moments) and restarted.
    #[arg(long, default_value_t = 0)]
    pub kills: usize,
    /// Times the ground service is killed with SIGKILL (at random moments) and restarted.
    #[arg(long, default_value_t = 0)]
    pub ground_kills: usize,
    /// Longest wall time between two kills, milliseconds (each is drawn up to this).
    #[arg(long, default_value_t = 1500)]
    pub kill_every_ms: u64,
    /// Link the daemons to each other over inter-satellite links too, and let the ground route over them.
    #[arg(long)]
    pub isl: bool,
    /// Hours of passes each service computes ahead (and again when half are used).
    #[arg(long, default_value_t = 48.0)]
    pub horizon_hours: f64,
    /// Give up after this many wall seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
    /// Working directory (kept); a fresh temporary one, removed at the end, without it.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the outcome as JSON on the last line.
    #[arg(long)]
    pub json: bool,
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    fn spawn(exe: &Path, dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<Proc> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .with_context(|| format!("cannot open {name}.log"))?;
        let child = Command::new(exe)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            child,
            name: name.to_string(),
        })
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.terminate();
        }
    }
}

/// What a live run found.
#[derive(Debug, Default, serde::Serialize)]
pub struct LiveOutcome {
    /// Jobs accepted by the ground.
    pub submitted: usize,
    /// Jobs delivered, with a result downloaded.
    pub delivered: usize,
    /// Results equal to the tile classifier's output for the input, computed here for comparison (same class, every
    /// score within 1e-4).
    pub correct: usize,
    /// Results whose class is the tile's true class (the model's accuracy, not the system's).
    pub accurate: usize,
    /// Jobs the ground lists for the tenant (more than submitted would mean a job was made twice).
    pub listed: usize,
    /// Jobs in a final state other than delivered (expired, failed, cancelled).
    pub lost: usize,
    /// Kill-and-restart cycles of the first daemon.
    pub kills: usize,
    /// Kill-and-restart cycles of the ground.
    pub ground_kills: usize,
    /// Wall seconds of the run.
    pub wall_s: f64,
    /// Simulated hours of the run.
    pub simulated_h: f64,
    /// Node contacts the ground opened.
    pub contacts: u64,
    /// Inputs the ground sent up through a neighbour, and results that came down through one (ISL relay).
    pub relayed: (u64, u64),
    /// The lowest state of charge the daemons' metrics endpoints gave at the end (0..1).
    pub node_state_of_charge: f64,
    /// Job records the daemons' metrics endpoints counted at the end, over all nodes and states.
    pub node_jobs: u64,
    /// Telemetry reports the ground holds from the daemons (one per contact).
    pub telemetry_reports: usize,
    /// Messages the daemons received from neighbours over ISLs (their metrics; since their last start).
    pub isl_messages: u64,
    /// The highest plan generation the ground had issued before it was last killed (0 without ground kills).
    pub generation_before_restart: u64,
    /// The highest plan generation any daemon had applied at the end.
    pub node_generation_max: u64,
    /// The generation of the ground's plan in force at the end.
    pub ground_generation: u64,
}

/// Runs the live demo.
pub fn run(args: &LiveArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=24).contains(&args.nodes), "--nodes must be 1 to 24");
    anyhow::ensure!((1..=1000).contains(&args.jobs), "--jobs must be 1 to 1000");
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempdir()?;
            temp.0.clone()
        }
    };
    let outcome = live(args, &dir)?;
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    }
    let whole = outcome.delivered == outcome.submitted
        && outcome.correct == outcome.submitted
        && outcome.listed == outcome.submitted
        && outcome.lost == 0;
    if !whole {
        bail!(
            "not every job came back once and right: {} submitted, {} delivered, {} correct, {} listed, {} lost (logs in {})",
            outcome.submitted,
            outcome.delivered,
            outcome.correct,
            outcome.listed,
            outcome.lost,
            dir.display()
        );
    }
    Ok(())
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> anyhow::Result<TempDir> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("odc-live-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(TempDir(dir))
}

/// A free loopback port (TCP or UDP, as asked).
fn free_port(udp: bool) -> anyhow::Result<u16> {
    Ok(if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

fn live(args: &LiveArgs, dir: &Path) -> anyhow::Result<LiveOutcome> {
    let begun = Instant::now();
    let exe = std::env::current_exe().context("cannot find the odc executable")?;
    // One clock for every process: the simulated start at a wall-clock anchor two seconds ahead.
    let start: odc_model::time::Instant = "2026-06-20T00:00:00Z"
        .parse()
        .map_err(|e| anyhow::anyhow!("start: {e}"))?;
    let anchor = chrono::Utc::now().timestamp_millis() + 2_000;
    let clock = odc_model::time::ScaledClock {
        start,
        anchor_unix_ms: anchor,
        speed: args.speed,
    };
    // The nodes with the most passes in the first twelve hours: jobs come back soonest through them.
    let fleet = geometry("", dir, start, 12.0, &[])?;
    let mut by_passes: Vec<(usize, String)> = fleet
        .nodes
        .iter()
        .map(|n| {
            let id = n.spec.id.as_str().to_string();
            let passes = fleet
                .contacts
                .iter()
                .filter(|c| c.node.as_str() == id)
                .count();
            (passes, id)
        })
        .collect();
    by_passes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let nodes: Vec<String> = by_passes
        .into_iter()
        .take(args.nodes)
        .map(|(_, id)| id)
        .collect();
    // A fresh constellation CA and credentials for the ground and each node.
    let pki = dir.join("pki");
    let from = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let to = time::OffsetDateTime::now_utc() + time::Duration::days(2);
    if !pki.join("ca.pem").exists() {
        let ca = Authority::generate("odc-live", from, to)?;
        ca.save(&pki)?;
        ca.issue(&Identity::new(Role::Ground, "ground")?, from, to)?
            .save(&pki)?;
        for n in &nodes {
            ca.issue(&Identity::new(Role::Node, n)?, from, to)?
                .save(&pki)?;
        }
        ca.issue_api(&["127.0.0.1".to_string()], from, to, &pki)?;
    }
    let http = free_port(false)?;
    let quic = free_port(true)?;
    let time_keys = format!(
        "time_start = \"{start}\"\ntime_anchor_unix_ms = {anchor}\ntime_speed = {}\nhorizon_hours = {}\n",
        args.speed, args.horizon_hours
    );
    let node_list = nodes
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join("ground.toml"),
        format!(
            "plan_isl = {}\nlisten = \"127.0.0.1:{http}\"\napi_tls_cert = \"pki/api.pem\"\napi_tls_key = \"pki/api.key\"\nlink_listen = \"127.0.0.1:{quic}\"\nnodes = [{node_list}]\nreplan_minutes = 5.0\n{time_keys}",
            args.isl
        ),
    )?;
    let mut isl_ports = Vec::new();
    for _ in &nodes {
        isl_ports.push(free_port(true)?);
    }
    let mut metrics_ports = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let metrics_port = free_port(false)?;
        metrics_ports.push(metrics_port);
        let isl = if args.isl {
            let neighbours = nodes
                .iter()
                .zip(&isl_ports)
                .filter(|(m, _)| *m != n)
                .map(|(m, p)| format!("{m} = \"127.0.0.1:{p}\""))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "isl_listen = \"127.0.0.1:{}\"\nneighbours = {{ {neighbours} }}\n",
                isl_ports[i]
            )
        } else {
            String::new()
        };
        std::fs::write(
            dir.join(format!("{n}.toml")),
            format!(
                "node = \"{n}\"\nground = \"127.0.0.1:{quic}\"\nstore = \"{n}.db\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n{isl}{time_keys}"
            ),
        )?;
    }
    let mut ground = Proc::spawn(&exe, dir, "ground", &["ground", "--config", "ground.toml"])?;
    let mut daemons = Vec::new();
    for n in &nodes {
        let config = format!("{n}.toml");
        daemons.push(Proc::spawn(&exe, dir, n, &["flight", "--config", &config])?);
    }
    let url = format!("https://127.0.0.1:{http}");
    let ca = pki.join("ca.pem");
    let token_file = dir.join("operator.token");
    let operator = wait_for(&mut ground, dir, "come up", || {
        let token = std::fs::read_to_string(&token_file).ok()?;
        let operator = Connection::new(&url, token.trim()).with_ca(&ca);
        answers(&operator).then_some(operator)
    })?;
    println!(
        "live constellation: ground on {url}, {} flight daemons ({}) linking over QUIC in their passes, {}x real time",
        nodes.len(),
        nodes.join(", "),
        args.speed
    );
    let created = operator.json(
        "POST",
        "/v1/ops/tenants",
        Some(
            &serde_json::json!({
                "name": "earth-watch",
                "quota": {
                    "accelerator_s": 36_000.0,
                    "energy_wh": 5_000.0,
                    "uplink_bytes": 10_000_000_000_u64,
                    "downlink_bytes": 10_000_000_000_u64,
                    "period": 86_400_000,
                },
                "share_weight": 1,
            })
            .to_string(),
        ),
    )?;
    let token = created["token"]
        .as_str()
        .context("the ground's answer has no tenant token")?;
    let tenant = Connection::new(&url, token).with_ca(&ca);
    // Tiles of known classes, each submitted once with a deadline a day ahead on the ground's clock; the model is
    // run here too, as the reference each result must equal.
    let mut reference = odc_accel::cpu::CandleBackend::cpu(10.0, 100.0);
    odc_accel::Accelerator::load(&mut reference, &odc_accel::ModelArtifact::tile_classifier())
        .map_err(|e| anyhow::anyhow!("reference model: {e}"))?;
    let mut ids = odc_model::id::IdGenerator::seeded(1);
    let mut expected = Vec::new();
    for k in 0..args.jobs {
        let class = Class::ALL[k % Class::ALL.len()];
        let input = tile_bytes(class, 1_000 + k as u64);
        let body = serde_json::json!({
            "model": odc_accel::model::TILE_CLASSIFIER,
            "input": base64::engine::general_purpose::STANDARD.encode(&input),
            "output_bound_bytes": 4096,
            "within_s": 24.0 * 3600.0,
            "priority": 5,
            "idempotency_key": format!("tile-{k}"),
        });
        let job = tenant.json("POST", "/v1/jobs", Some(&body.to_string()))?;
        let id = job["id"].as_str().context("no job id")?.to_string();
        let model = odc_model::id::ModelId::new(odc_accel::model::TILE_CLASSIFIER)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let tenant_id = ids.tenant(start);
        let batch = odc_accel::Batch {
            model,
            tenant: tenant_id,
            inputs: vec![odc_accel::JobInput {
                job: ids.job(start),
                tenant: tenant_id,
                shape: vec![
                    odc_accel::tiles::BANDS,
                    odc_accel::tiles::SIDE,
                    odc_accel::tiles::SIDE,
                ],
                data: input,
            }],
            budget: Duration::from_secs(60),
        };
        let out = odc_accel::Accelerator::run(&mut reference, &batch)
            .map_err(|e| anyhow::anyhow!("reference run: {e}"))?;
        let scores = out
            .outputs
            .into_iter()
            .next()
            .and_then(|o| o.result.ok())
            .map(|b| odc_accel::f32s(&b))
            .context("the reference run gave no output")?;
        expected.push((id, class, scores));
    }
    println!("tenant earth-watch submitted {} tiles", expected.len());
    let mut outcome = LiveOutcome {
        submitted: expected.len(),
        ..LiveOutcome::default()
    };
    let mut rng = SplitMix64::new(anchor as u64);
    let mut next_kill = Instant::now() + kill_gap(&mut rng, args.kill_every_ms);
    let mut next_ground_kill = Instant::now() + kill_gap(&mut rng, 4 * args.kill_every_ms);
    let give_up = begun + Duration::from_secs(args.timeout_s);
    let mut states = std::collections::BTreeMap::new();
    let mut last_poll = Instant::now() - Duration::from_secs(1);
    loop {
        if outcome.kills < args.kills && Instant::now() >= next_kill {
            let victim = &mut daemons[0];
            victim.kill9();
            outcome.kills += 1;
            let config = format!("{}.toml", nodes[0]);
            *victim = Proc::spawn(&exe, dir, &nodes[0], &["flight", "--config", &config])?;
            next_kill = Instant::now() + kill_gap(&mut rng, args.kill_every_ms);
        }
        if outcome.ground_kills < args.ground_kills && Instant::now() >= next_ground_kill {
            // The generation the ground issued last before it dies (as its metrics said it, a few seconds
            // old at most): the restarted ground must plan above it for the nodes to take its plans.
            if let Ok(m) = operator.call("GET", "/metrics", None) {
                let text = String::from_utf8_lossy(&m.body);
                let issued = text
                    .lines()
                    .find_map(|l| l.strip_prefix("odc_ground_plan_generation "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map_or(0, |v| v as u64);
                outcome.generation_before_restart = outcome.generation_before_restart.max(issued);
            }
            ground.kill9();
            outcome.ground_kills += 1;
            ground = Proc::spawn(&exe, dir, "ground", &["ground", "--config", "ground.toml"])?;
            wait_for(&mut ground, dir, "come back", || {
                answers(&operator).then_some(())
            })?;
            next_ground_kill = Instant::now() + kill_gap(&mut rng, 4 * args.kill_every_ms);
        }
        for d in &mut daemons {
            if let Some(status) = d.exited() {
                bail!(
                    "flight daemon {} stopped ({status}); see its log in {}",
                    d.name,
                    dir.display()
                );
            }
        }
        if let Some(status) = ground.exited() {
            bail!(
                "the ground stopped ({status}); see {}",
                dir.join("ground.log").display()
            );
        }
        if last_poll.elapsed() >= Duration::from_millis(500) {
            last_poll = Instant::now();
            let list = tenant.json("GET", "/v1/jobs?limit=1000", None)?;
            states.clear();
            for j in list["jobs"].as_array().into_iter().flatten() {
                if let (Some(id), Some(state)) = (j["id"].as_str(), j["state"].as_str()) {
                    states.insert(id.to_string(), state.to_string());
                }
            }
            let finished = states
                .values()
                .filter(|s| matches!(s.as_str(), "delivered" | "expired" | "failed" | "cancelled"))
                .count();
            if finished >= expected.len()
                && outcome.kills >= args.kills
                && outcome.ground_kills >= args.ground_kills
            {
                break;
            }
        }
        if Instant::now() >= give_up {
            let mut by_state = std::collections::BTreeMap::new();
            for s in states.values() {
                *by_state.entry(s.as_str()).or_insert(0) += 1;
            }
            println!(
                "gave up after {} s; jobs by state: {by_state:?}",
                args.timeout_s
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    outcome.listed = states.len();
    let argmax = |values: &[f32]| {
        values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    };
    for (k, (id, class, scores)) in expected.iter().enumerate() {
        match states.get(id).map(String::as_str) {
            Some("delivered") => {
                let reply = tenant.call("GET", &format!("/v1/jobs/{id}/result"), None)?;
                if reply.status == 200 {
                    outcome.delivered += 1;
                    let values = odc_accel::f32s(&reply.body);
                    let label = argmax(&values);
                    if k < 4 {
                        let named = label
                            .and_then(|l| Class::ALL.get(l))
                            .map_or("?", |c| c.name());
                        println!(
                            "  tile-{k} ({id}): a {} tile came back classified {named}",
                            class.name()
                        );
                    }
                    if label == argmax(scores)
                        && values.len() == scores.len()
                        && values
                            .iter()
                            .zip(scores)
                            .all(|(a, b)| (a - b).abs() <= 1e-4)
                    {
                        outcome.correct += 1;
                    }
                    if label == Some(*class as usize) {
                        outcome.accurate += 1;
                    }
                }
            }
            Some("expired" | "failed" | "cancelled") => outcome.lost += 1,
            _ => {}
        }
    }
    let metrics = operator.call("GET", "/metrics", None)?;
    let text = String::from_utf8_lossy(&metrics.body);
    let figure = |prefix: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    outcome.contacts = figure("odc_ground_contacts_total ");
    outcome.ground_generation = figure("odc_ground_plan_generation ");
    outcome.relayed = (
        figure("odc_ground_relayed{what=\"inputs\"} "),
        figure("odc_ground_relayed{what=\"results\"} "),
    );
    for n in &nodes {
        let reports = operator.json("GET", &format!("/v1/ops/nodes/{n}/telemetry"), None)?;
        outcome.telemetry_reports += reports.as_array().map_or(0, Vec::len);
    }
    // The daemons' own metrics endpoints.
    outcome.node_state_of_charge = f64::MAX;
    for port in &metrics_ports {
        let text = scrape(*port).unwrap_or_default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if line.starts_with("odc_flight_state_of_charge{") {
                outcome.node_state_of_charge =
                    outcome.node_state_of_charge.min(value.unwrap_or(-1.0));
            } else if line.starts_with("odc_flight_jobs{") {
                outcome.node_jobs += value.unwrap_or(0.0) as u64;
            } else if line.starts_with("odc_flight_plan_generation{") {
                outcome.node_generation_max =
                    outcome.node_generation_max.max(value.unwrap_or(0.0) as u64);
            } else if line.starts_with("odc_flight_isl_messages_total{") {
                outcome.isl_messages += value.unwrap_or(0.0) as u64;
            }
        }
    }
    outcome.wall_s = begun.elapsed().as_secs_f64();
    outcome.simulated_h = (odc_model::time::Clock::now(&clock) - start).as_secs_f64() / 3600.0;
    for d in &mut daemons {
        d.terminate();
    }
    ground.terminate();
    println!(
        "{} of {} jobs delivered, {} equal to the reference inference ({} of the true class), {} lost; {} listed; {} node contacts; {} inputs up and {} results down through a neighbour; {} kill -9 restarts of a daemon, {} of the ground; {:.1} simulated hours in {:.1} s",
        outcome.delivered,
        outcome.submitted,
        outcome.correct,
        outcome.accurate,
        outcome.lost,
        outcome.listed,
        outcome.contacts,
        outcome.relayed.0,
        outcome.relayed.1,
        outcome.kills,
        outcome.ground_kills,
        outcome.simulated_h,
        outcome.wall_s
    );
    Ok(outcome)
}

/// `GET /metrics` from a daemon on loopback.
fn scrape(port: u16) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// Whether the ground answers an operator.
fn answers(operator: &Connection) -> bool {
    operator
        .call("GET", "/v1/ops/tenants", None)
        .is_ok_and(|r| r.status == 200)
}

/// Polls `ready` until it gives a value, for a minute at most, failing at once if the ground exits.
fn wait_for<T>(
    ground: &mut Proc,
    dir: &Path,
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = ready() {
            return Ok(value);
        }
        if let Some(status) = ground.exited() {
            bail!(
                "the ground stopped ({status}); see {}",
                dir.join("ground.log").display()
            );
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the ground did not {what} within a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill_gap(rng: &mut SplitMix64, most_ms: u64) -> Duration {
    Duration::from_millis(50 + rng.next_u64() % most_ms.max(1))
}
