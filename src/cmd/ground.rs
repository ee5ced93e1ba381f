//! `odc ground`: the control-plane service. Opens the store (creating it on first start), rebuilds the ground
//! core from what it holds, and serves the tenant and operator APIs over HTTP until SIGTERM or Ctrl-C, when
//! in-flight requests finish and the store is closed. The fleet and stations the planner works with come from a
//! planner scenario (the embedded demo constellation by default), its geometry computed from the start time on.
//! With `link_listen` set it also accepts the flight nodes' QUIC links (mutual TLS under the constellation CA) and
//! dispatches the plan and the inputs to them, and takes their reports and results, during their passes.

use super::fleet::{TimeSettings, geometry, load_config, orbit_book};
use anyhow::Context;
use clap::Args;
use odc_ground::api::{Ground, new_token, serve as serve_api, token_hash};
use odc_ground::dispatch::accept_links;
use odc_ground::http::HttpLimits;
use odc_ground::store::{SqliteStore, Store};
use odc_ground::{GroundConfig, GroundCore, NodeInfo};
use odc_link::pki::load_trust;
use odc_link::{Credentials, Identity, Role};
use odc_model::time::{Clock, Duration};
use odc_planner::PlannerOptions;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The documented defaults (`odc ground --print-default-config`).
pub const DEFAULT_CONFIG: &str = r#"# odc ground: the control-plane service.

# Address the HTTP API listens on.
listen = "127.0.0.1:8080"
# The store: one SQLite file, created on first start.
store = "ground.db"
# The operator's bearer token, created (owner-only) on first start if the file does not exist. Only its hash is
# held in memory.
operator_token_file = "operator.token"
# HTTPS: the API's certificate chain and key (PEM; `odc pki issue --api HOSTS` makes api.pem and api.key).
# Both empty: plain HTTP, for loopback or behind a TLS proxy.
api_tls_cert = ""
api_tls_key = ""
# Largest input uploaded as the body of POST /v1/jobs/upload, bytes. JSON submissions (POST /v1/jobs, the input in
# base64) take bodies of up to 1 MiB; every other JSON body 64 KiB; element-set uploads 4 MiB.
max_body_bytes = 94371840
# What clients can take, whatever they do: connections open at once (in all, and from one address), requests
# handled at once (past it: 503 overloaded), upload bytes being received at once; seconds to send the headers
# (and the longest a kept-alive connection may idle), the longest pause inside a body, the time to handle a
# request (an upload).
max_connections = 4096
max_connections_per_address = 512
max_concurrent_requests = 1024
max_upload_bytes_in_flight = 536870912
header_timeout_s = 10.0
body_idle_timeout_s = 10.0
request_timeout_s = 30.0
upload_timeout_s = 600.0
# The furthest ahead a job's deadline may be, days.
max_deadline_days = 30.0
# How long what closed jobs leave behind is kept, days: a delivered result (the time its tenant has to download
# it) and a closed job's record with its idempotency key, from when the job closed; audit entries and billing
# records from when they were made. What is older is deleted every simulated hour and its space given back.
keep_results_days = 30.0
keep_jobs_days = 90.0
keep_audit_days = 400.0
# The fleet and the ground stations: a planner scenario file (`odc plan` format); empty for the embedded demo
# constellation. Its start time is replaced by the service's start.
scenario = ""
# How far ahead each plan looks, hours, and the least time between replans for new jobs, minutes.
plan_ahead_hours = 12.0
replan_minutes = 10.0
# Hours of passes and eclipses computed at start.
horizon_hours = 24.0
# The scenario's nodes this ground plans for; empty: all of them.
nodes = []
# Route inputs and results over inter-satellite links (the nodes' daemons must have ISL terminals configured:
# isl_listen and neighbours in node.toml).
plan_isl = false
# A node silent through this many passes in a row is taken for lost: plans leave it out (jobs whose input is
# aboard wait for it) until it is heard again. 0: never.
lose_node_after_missed_passes = 3
# UDP address the flight nodes' QUIC links come in on; empty: no links (the APIs only).
link_listen = ""
# Certificates for the links, made with `odc pki`: the CA's ca.pem and this ground's ground-<ground_id>.pem/.key.
pki_dir = "pki"
ground_id = "ground"
# The clock: simulated time `time_start` (RFC 3339; empty: now) at wall-clock `time_anchor_unix_ms` (0: at
# start), running `time_speed` times real time. A local constellation gives all its processes the same three.
time_start = ""
time_anchor_unix_ms = 0
time_speed = 1.0
"#;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroundFile {
    listen: String,
    store: PathBuf,
    operator_token_file: PathBuf,
    max_body_bytes: usize,
    max_connections: usize,
    max_connections_per_address: usize,
    max_concurrent_requests: usize,
    max_upload_bytes_in_flight: usize,
    header_timeout_s: f64,
    body_idle_timeout_s: f64,
    request_timeout_s: f64,
    upload_timeout_s: f64,
    max_deadline_days: f64,
    keep_results_days: f64,
    keep_jobs_days: f64,
    keep_audit_days: f64,
    api_tls_cert: PathBuf,
    api_tls_key: PathBuf,
    scenario: String,
    plan_ahead_hours: f64,
    replan_minutes: f64,
    horizon_hours: f64,
    nodes: Vec<String>,
    lose_node_after_missed_passes: usize,
    plan_isl: bool,
    link_listen: String,
    pki_dir: PathBuf,
    ground_id: String,
    time_start: String,
    time_anchor_unix_ms: i64,
    time_speed: f64,
}

impl GroundFile {
    /// The HTTP server's limits.
    fn http_limits(&self) -> HttpLimits {
        let secs = std::time::Duration::from_secs_f64;
        HttpLimits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_timeout: secs(self.header_timeout_s),
            body_idle_timeout: secs(self.body_idle_timeout_s),
            request_timeout: secs(self.request_timeout_s),
            upload_timeout: secs(self.upload_timeout_s),
            max_concurrent_requests: self.max_concurrent_requests,
            max_upload_bytes: self.max_body_bytes,
            max_upload_bytes_in_flight: self.max_upload_bytes_in_flight,
            ..HttpLimits::default()
        }
    }

    fn time(&self) -> TimeSettings {
        TimeSettings {
            start: self.time_start.clone(),
            anchor_unix_ms: self.time_anchor_unix_ms,
            speed: self.time_speed,
        }
    }
}

/// Arguments of `odc ground`.
#[derive(Args)]
pub struct GroundArgs {
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

fn load(args: &GroundArgs) -> anyhow::Result<(GroundFile, PathBuf)> {
    let (file, base): (GroundFile, PathBuf) = load_config(DEFAULT_CONFIG, args.config.as_deref())?;
    anyhow::ensure!(
        file.plan_ahead_hours > 0.0,
        "plan_ahead_hours must be positive"
    );
    anyhow::ensure!(
        file.replan_minutes >= 1.0,
        "replan_minutes must be at least 1"
    );
    anyhow::ensure!(
        file.horizon_hours > 0.0 && file.horizon_hours <= 14.0 * 24.0,
        "horizon_hours must be above 0 and at most 336"
    );
    for (name, v) in [
        ("header_timeout_s", file.header_timeout_s),
        ("body_idle_timeout_s", file.body_idle_timeout_s),
        ("request_timeout_s", file.request_timeout_s),
        ("upload_timeout_s", file.upload_timeout_s),
        ("max_deadline_days", file.max_deadline_days),
        ("keep_results_days", file.keep_results_days),
        ("keep_jobs_days", file.keep_jobs_days),
        ("keep_audit_days", file.keep_audit_days),
    ] {
        anyhow::ensure!(
            v.is_finite() && v > 0.0 && v < 1e7,
            "{name} must be a positive number of reasonable size"
        );
    }
    for (name, v) in [
        ("max_connections", file.max_connections),
        (
            "max_connections_per_address",
            file.max_connections_per_address,
        ),
        ("max_concurrent_requests", file.max_concurrent_requests),
        (
            "max_upload_bytes_in_flight",
            file.max_upload_bytes_in_flight,
        ),
        ("max_body_bytes", file.max_body_bytes),
    ] {
        anyhow::ensure!(v > 0, "{name} must be above 0");
    }
    anyhow::ensure!(
        file.keep_jobs_days >= file.keep_results_days,
        "keep_jobs_days must be at least keep_results_days (a result is reached through its job)"
    );
    file.time().clock()?;
    Ok((file, base))
}

/// The operator token: read from its file, or made and written owner-only on first start.
fn operator_token(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let token = token.trim().to_string();
        anyhow::ensure!(!token.is_empty(), "{} is empty", path.display());
        return Ok(token);
    }
    let token = new_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("operator token written to {} (owner-only)", path.display());
    Ok(token)
}

/// The fleet, stations and geometry, from the service's start on.
fn fleet(
    file: &GroundFile,
    base: &Path,
    now: odc_model::time::Instant,
) -> anyhow::Result<GroundConfig> {
    let snapshot = geometry(&file.scenario, base, now, file.horizon_hours, &file.nodes)?;
    Ok(GroundConfig {
        nodes: snapshot
            .nodes
            .iter()
            .map(|n| NodeInfo {
                spec: n.spec.clone(),
                altitude_km: n.altitude_km,
                illumination: n.illumination.clone(),
                initial_soc: n.state_of_charge,
            })
            .collect(),
        stations: snapshot.stations.clone(),
        contacts: snapshot.contacts.clone(),
        isl: snapshot.isl.clone(),
        tenants: Vec::new(),
        horizon_end: now + Duration::from_secs_f64(file.horizon_hours * 3600.0),
        plan_ahead: Duration::from_secs_f64(file.plan_ahead_hours * 3600.0),
        replan_every: Duration::from_secs_f64(file.replan_minutes * 60.0),
        // ISL routes only where the daemons run ISL terminals (plan_isl); otherwise through ground passes.
        planner: PlannerOptions {
            use_isl: file.plan_isl,
            ..PlannerOptions::default()
        },
        seed: now.unix_ms() as u64,
    })
}

/// Sends logs to stderr as text or JSON lines, at the levels `RUST_LOG` names (info by default).
pub fn init_logs(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Lossy: a line that cannot be written is dropped and counted, never a panic in the thread that logged it.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(odc_ground::logs::stderr);
    match format {
        "text" => logs.init(),
        "json" => logs.json().init(),
        other => anyhow::bail!("--log-format {other:?}: use text or json"),
    }
    Ok(())
}

/// Runs `odc ground`.
pub fn run(args: GroundArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let (file, base) = load(&args)?;
    init_logs(&args.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(file, base))
}

async fn serve(file: GroundFile, base: PathBuf) -> anyhow::Result<()> {
    let scaled = file.time().clock()?;
    let clock: Arc<dyn Clock> = Arc::new(scaled);
    let now = clock.now();
    let operator = operator_token(&base.join(&file.operator_token_file))?;
    let store_path = base.join(&file.store);
    let store = SqliteStore::open(&store_path)
        .await
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let mut config = fleet(&file, &base, now)?;
    let tenants = store.tenants().await?;
    config.tenants = tenants.iter().map(|t| t.tenant.clone()).collect();
    let mut core = GroundCore::new(config);
    core.set_max_deadline_ahead(Duration::from_secs_f64(file.max_deadline_days * 86_400.0));
    core.lose_silent_nodes_after(Some(file.lose_node_after_missed_passes));
    // The node links' credentials; they also seal what the ground relays through neighbours and check what nodes
    // relay down, end to end.
    let link_pki = if file.link_listen.is_empty() {
        None
    } else {
        let pki = base.join(&file.pki_dir);
        let me = Identity::new(Role::Ground, &file.ground_id)?;
        let creds = Credentials::load(&pki, me.clone()).with_context(|| {
            format!(
                "no ground credentials in {} (make them with `odc pki issue --ground {}`)",
                pki.display(),
                file.ground_id
            )
        })?;
        let ca = load_trust(&pki.join("ca.pem"))?;
        core.set_relay_seal(std::sync::Arc::new(odc_link::PkiSeal::new(
            &creds,
            ca.clone(),
            me,
        )?));
        Some((creds, ca))
    };
    let restored = odc_ground::restore::restore(&mut core, &store, now).await?;
    let ground = Ground::start(core, store, clock.clone(), &[token_hash(&operator)]).await?;
    if let Some(book) = orbit_book(&file.scenario, &base, &file.nodes)? {
        ground.set_orbits(book);
    }
    // Station status and orbit uploads operators made before this start.
    ground
        .replay_fleet_changes()
        .await
        .context("cannot replay the fleet changes in the store")?;
    let listener = tokio::net::TcpListener::bind(&file.listen)
        .await
        .with_context(|| format!("cannot listen on {}", file.listen))?;
    let addr = listener.local_addr()?;
    let tls = match (
        file.api_tls_cert.as_os_str().is_empty(),
        file.api_tls_key.as_os_str().is_empty(),
    ) {
        (true, true) => None,
        (false, false) => Some(odc_ground::tls::server_config(
            &base.join(&file.api_tls_cert),
            &base.join(&file.api_tls_key),
        )?),
        _ => anyhow::bail!("api_tls_cert and api_tls_key go together: give both or neither"),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Written, not printed: a service whose stdout was closed must not stop over it.
    say(&format!(
        "odc ground listening on {scheme}://{addr} (tenants: {}, open jobs restored: {restored}, store: {})",
        tenants.len(),
        store_path.display()
    ));
    let links = if let Some((creds, ca)) = &link_pki {
        let bind: std::net::SocketAddr = file
            .link_listen
            .parse()
            .with_context(|| format!("link_listen {:?} is not an address", file.link_listen))?;
        let endpoint = odc_link::quic::server_endpoint(
            bind,
            creds,
            ca,
            odc_link::LinkConfig {
                idle_timeout: std::time::Duration::from_secs(3),
            },
        )?;
        let addr = endpoint.local_addr()?;
        say(&format!("odc ground: node links on quic://{addr}"));
        Some(tokio::spawn(accept_links(
            ground.clone(),
            endpoint,
            odc_link::quic::new_session_id(),
            std::future::pending(),
        )))
    } else {
        None
    };
    // Passes and shadows computed ahead as the clock moves on.
    let extender = {
        let ground = ground.clone();
        let hours = file.horizon_hours;
        let every = std::time::Duration::from_secs_f64((3600.0 / scaled.speed).clamp(0.2, 60.0));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                ground.extend_geometry(hours).await;
            }
        })
    };
    // Ticks often enough for the clock's speed: ten simulated minutes between ticks at most.
    let period = std::time::Duration::from_secs_f64((600.0 / scaled.speed).clamp(0.05, 1.0));
    let ticker = {
        let ground = ground.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            loop {
                every.tick().await;
                ground.tick(clock.now()).await;
            }
        })
    };
    let retention = {
        let ground = ground.clone();
        let keep = odc_ground::store::Retention {
            results_days: file.keep_results_days,
            jobs_days: file.keep_jobs_days,
            audit_days: file.keep_audit_days,
        };
        // Once a simulated hour (at least every ten seconds and at most every hour of wall time).
        let every = std::time::Duration::from_secs_f64((3600.0 / scaled.speed).clamp(10.0, 3600.0));
        tokio::spawn(async move {
            loop {
                match ground.purge(&keep).await {
                    Ok((p, freed)) if p.total() > 0 => tracing::info!(
                        results = p.results,
                        jobs = p.jobs,
                        audit = p.audit,
                        usage = p.usage,
                        freed_bytes = freed,
                        "retention deleted what it no longer keeps"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "retention could not purge; tried again later")
                    }
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let limits = file.http_limits();
    match tls {
        Some(config) => {
            let listener = odc_ground::tls::TlsListener::new(listener, config)?;
            serve_api(listener, ground.clone(), &limits, shutdown()).await
        }
        None => serve_api(listener, ground.clone(), &limits, shutdown()).await,
    }
    .context("the HTTP server failed")?;
    ticker.abort();
    extender.abort();
    retention.abort();
    if let Some(links) = links {
        links.abort();
    }
    ground.store().close().await;
    say("odc ground stopped; the store is closed");
    Ok(())
}

fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Resolves at SIGTERM or Ctrl-C.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_parses_and_a_partial_file_keeps_the_rest() {
        let args = GroundArgs {
            config: None,
            print_default_config: false,
            log_format: "text".into(),
        };
        let (file, _) = load(&args).expect("defaults");
        assert_eq!(file.listen, "127.0.0.1:8080");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").expect("write");
        let (partial, base) = load(&GroundArgs {
            config: Some(path.clone()),
            print_default_config: false,
            log_format: "text".into(),
        })
        .expect("partial");
        assert_eq!(partial.listen, "127.0.0.1:0");
        assert_eq!(partial.store, file.store);
        assert_eq!(base, dir.path());
        std::fs::write(&path, "lisen = 1\n").expect("write");
        let err = load(&GroundArgs {
            config: Some(path),
            print_default_config: false,
            log_format: "text".into(),
        })
        .expect_err("unknown key");
        assert!(err.to_string().contains("lisen"), "{err}");
    }
}
