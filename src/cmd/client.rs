//! `odc tenant …` and `odc ops …`: clients of the ground service's HTTP API, for tenants (submit, list, status,
//! cancel, result, usage) and operators (tenants). The ground's address comes from `--url` or `ODC_URL`, the
//! bearer token from `--token` or `ODC_TOKEN`. Errors from the service print as `code: message`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

/// Where the ground is and who is calling.
#[derive(Args)]
pub struct Connection {
    /// The ground's base URL (plain HTTP; default `$ODC_URL` or http://127.0.0.1:8080).
    #[arg(long, global = true)]
    url: Option<String>,
    /// Bearer token (default `$ODC_TOKEN`).
    #[arg(long, global = true)]
    token: Option<String>,
    /// For https:// URLs: the certificate authority the ground's certificate must chain to (PEM; default
    /// `$ODC_CA`).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
}

/// `odc tenant`.
#[derive(Args)]
pub struct TenantArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: TenantCommand,
}

/// What a tenant can do.
#[derive(Subcommand)]
enum TenantCommand {
    /// Submits a job: a model and an input file.
    Submit {
        /// Model to run.
        #[arg(long)]
        model: String,
        /// Input file.
        #[arg(long)]
        input: PathBuf,
        /// Deliver within this many hours.
        #[arg(long, default_value_t = 6.0)]
        deadline_hours: f64,
        /// Priority, 0 (lowest) to 9.
        #[arg(long, default_value_t = 5)]
        priority: u8,
        /// Largest result accepted, bytes.
        #[arg(long, default_value_t = 1 << 20)]
        output_bound: u64,
        /// Idempotency key (default: the input's digest, so submitting the same file twice makes one job).
        #[arg(long)]
        key: Option<String>,
    },
    /// Lists your jobs, newest first, a page at a time.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only jobs older than this one (the `next` of the previous page).
        #[arg(long)]
        before: Option<String>,
    },
    /// One job.
    Status {
        /// Job id.
        id: String,
    },
    /// Cancels a job that has not run.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Writes a delivered job's result to a file.
    Result {
        /// Job id.
        id: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Your usage and quota.
    Usage,
}

/// `odc ops`.
#[derive(Args)]
pub struct OpsArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: OpsCommand,
}

/// What an operator can do.
#[derive(Subcommand)]
enum OpsCommand {
    /// Creates a tenant and prints its token (shown once).
    TenantCreate {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Accelerator seconds per period.
        #[arg(long, default_value_t = 3600.0)]
        accelerator_s: f64,
        /// Energy per period, Wh.
        #[arg(long, default_value_t = 500.0)]
        energy_wh: f64,
        /// Uplink bytes per period.
        #[arg(long, default_value_t = 10_000_000_000)]
        uplink_bytes: u64,
        /// Downlink bytes per period.
        #[arg(long, default_value_t = 10_000_000_000)]
        downlink_bytes: u64,
        /// Fair-share weight.
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Changes a tenant's name, quota figures or weight (only those given); jobs already accepted stay accepted.
    TenantUpdate {
        /// The tenant's id.
        #[arg(long)]
        tenant: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Accelerator seconds per period.
        #[arg(long)]
        accelerator_s: Option<f64>,
        /// Energy per period, Wh.
        #[arg(long)]
        energy_wh: Option<f64>,
        /// Uplink bytes per period.
        #[arg(long)]
        uplink_bytes: Option<u64>,
        /// Downlink bytes per period.
        #[arg(long)]
        downlink_bytes: Option<u64>,
        /// Fair-share weight.
        #[arg(long)]
        weight: Option<u32>,
    },
    /// Gives a tenant a new token (printed once); its old token is refused from then on.
    TenantToken {
        /// The tenant's id.
        #[arg(long)]
        tenant: String,
    },
    /// Lists tenants with their usage.
    Tenants,
    /// Creates a named operator account and prints its token (shown once); takes an admin's token.
    OperatorCreate {
        /// Its name (lower-case letters, digits, '.', '_', '-').
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (also changes the fleet and tenants) or admin (also manages operators).
        #[arg(long)]
        role: String,
    },
    /// Gives an operator a new token (printed once); its old token is refused from then on.
    OperatorToken {
        /// The operator's name.
        #[arg(long)]
        name: String,
    },
    /// Lists operator accounts with their roles.
    Operators,
    /// Every node: contact, last telemetry, open jobs, next pass, passes missed.
    Nodes,
    /// A node's recent telemetry, oldest first.
    Telemetry {
        /// The node's id.
        #[arg(long)]
        node: String,
    },
    /// Conditions needing attention (low battery, overheating, silent nodes, stations down, expired jobs).
    Alarms,
    /// The ground stations and whether each is up.
    Stations,
    /// Marks a station up or down (plans leave a down station out).
    StationStatus {
        /// The station's id.
        #[arg(long)]
        station: String,
        /// up or down.
        #[arg(long)]
        status: String,
    },
    /// Each node's element epoch in force.
    Orbits,
    /// Uploads element sets (TLE text or an OMM JSON file): fresher epochs replace those in force, older ones
    /// are refused as stale; the plan is redone with the new passes.
    OrbitsUpload {
        /// The file.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// The audit log: who changed what, when (the latest entries, oldest first, a page at a time).
    Audit {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Only entries older than this `seq` (the first of the page shown before).
        #[arg(long)]
        before: Option<u64>,
    },
    /// The plan in force (JSON).
    Plan,
}

/// A byte stream both ways: plain TCP or TLS over it.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// An answer from the ground.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Connection {
    /// A connection to `url` as the holder of `token`.
    pub fn new(url: &str, token: &str) -> Connection {
        Connection {
            url: Some(url.to_string()),
            token: Some(token.to_string()),
            ca: None,
        }
    }

    /// The same, trusting `ca` for https:// URLs.
    pub fn with_ca(mut self, ca: &std::path::Path) -> Connection {
        self.ca = Some(ca.to_path_buf());
        self
    }

    /// Whether the URL is https, its host (with port) and its path prefix.
    fn base(&self) -> anyhow::Result<(bool, String, String)> {
        let url = self
            .url
            .clone()
            .or_else(|| std::env::var("ODC_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => bail!("{url}: only http:// and https:// URLs are supported"),
        };
        let (host, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h.to_string(), format!("/{}", p.trim_end_matches('/'))),
            None => (rest.to_string(), String::new()),
        };
        anyhow::ensure!(!host.is_empty(), "{url}: no host");
        Ok((tls, host, prefix))
    }

    /// A TLS session to `host` (name or IP, port stripped) trusting only the configured CA.
    fn tls(&self, host: &str) -> anyhow::Result<rustls::ClientConnection> {
        use rustls_pki_types::pem::PemObject as _;
        let ca = self
            .ca
            .clone()
            .or_else(|| std::env::var_os("ODC_CA").map(PathBuf::from))
            .context("an https:// URL needs the CA to trust: give --ca FILE or set ODC_CA")?;
        let pem = std::fs::read(&ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| anyhow::anyhow!("{}: not PEM certificates ({e})", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
        }
        anyhow::ensure!(!roots.is_empty(), "{}: no certificate in it", ca.display());
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let server = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|_| anyhow::anyhow!("{name} is not a valid server name"))?;
        Ok(rustls::ClientConnection::new(
            std::sync::Arc::new(config),
            server,
        )?)
    }

    fn token(&self) -> anyhow::Result<String> {
        self.token
            .clone()
            .or_else(|| std::env::var("ODC_TOKEN").ok())
            .context("no token: give --token or set ODC_TOKEN")
    }

    /// One request over a fresh connection (HTTP/1.1, `Connection: close`).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Reply> {
        self.send(
            method,
            path,
            body.unwrap_or("").as_bytes(),
            "application/json",
        )
    }

    /// One request with a body of any type; the reply as it came.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        content_type: &str,
    ) -> anyhow::Result<Reply> {
        let (tls, host, prefix) = self.base()?;
        let token = self.token()?;
        let tcp = TcpStream::connect(&host)
            .with_context(|| format!("cannot reach the ground at {host}"))?;
        tcp.set_read_timeout(Some(StdDuration::from_secs(120)))?;
        let mut stream: Box<dyn ReadWrite> = if tls {
            Box::new(rustls::StreamOwned::new(self.tls(&host)?, tcp))
        } else {
            Box::new(tcp)
        };
        let mut request = format!(
            "{method} {prefix}{path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let what = if tls { "TLS with" } else { "request to" };
        stream
            .write_all(&request)
            .with_context(|| format!("{what} the ground at {host}"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .with_context(|| format!("{what} the ground at {host}: no answer"))?;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .with_context(|| {
                if tls {
                    "the ground's answer is not HTTP".to_string()
                } else {
                    "the ground's answer is not HTTP (if it serves HTTPS, use an https:// URL and --ca)".to_string()
                }
            })?;
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("the ground's answer has no status")?;
        let mut body = raw[end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body)?;
        }
        Ok(Reply { status, body })
    }

    /// A JSON request whose success is JSON.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let reply = self.call(method, path, body)?;
        check(&reply)?;
        serde_json::from_slice(&reply.body).context("the ground's answer is not JSON")
    }
}

/// A text as a URL query value: unreserved characters as they are, every other byte percent-encoded.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(data.len() >= size + 2, "truncated chunked body");
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// An error reply as `code: message`.
fn check(reply: &Reply) -> anyhow::Result<()> {
    if (200..300).contains(&reply.status) {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    match (v["code"].as_str(), v["message"].as_str()) {
        (Some(code), Some(message)) => bail!("{code}: {message} (HTTP {})", reply.status),
        _ => bail!(
            "HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body).trim()
        ),
    }
}

fn print(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Runs `odc tenant …`.
pub fn tenant(args: TenantArgs) -> anyhow::Result<()> {
    let c = &args.connection;
    match args.command {
        TenantCommand::Submit {
            model,
            input,
            deadline_hours,
            priority,
            output_bound,
            key,
        } => {
            anyhow::ensure!(
                deadline_hours > 0.0 && deadline_hours <= 24.0 * 30.0,
                "--deadline-hours must be in (0, 720]"
            );
            let bytes = std::fs::read(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let key = key.unwrap_or_else(|| blake3::hash(&bytes).to_hex()[..32].to_string());
            // The input goes as the body itself (no base64); the deadline is relative to the ground's clock
            // (which may run accelerated), not this machine's.
            let path = format!(
                "/v1/jobs/upload?model={}&output_bound_bytes={output_bound}&within_s={}&priority={priority}&idempotency_key={}",
                query_escape(&model),
                deadline_hours * 3600.0,
                query_escape(&key),
            );
            let reply = c.send("POST", &path, &bytes, "application/octet-stream")?;
            check(&reply)?;
            let job: serde_json::Value =
                serde_json::from_slice(&reply.body).context("the ground's answer is not JSON")?;
            print(&job);
        }
        TenantCommand::List { limit, before } => {
            let after = before.map(|b| format!("&before={b}")).unwrap_or_default();
            print(&c.json("GET", &format!("/v1/jobs?limit={limit}{after}"), None)?);
        }
        TenantCommand::Status { id } => print(&c.json("GET", &format!("/v1/jobs/{id}"), None)?),
        TenantCommand::Cancel { id } => {
            print(&c.json("POST", &format!("/v1/jobs/{id}/cancel"), None)?)
        }
        TenantCommand::Result { id, out } => {
            let reply = c.call("GET", &format!("/v1/jobs/{id}/result"), None)?;
            check(&reply)?;
            std::fs::write(&out, &reply.body)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("{} bytes written to {}", reply.body.len(), out.display());
        }
        TenantCommand::Usage => print(&c.json("GET", "/v1/usage", None)?),
    }
    Ok(())
}

/// Runs `odc ops …`.
pub fn ops(args: OpsArgs) -> anyhow::Result<()> {
    let c = &args.connection;
    match args.command {
        OpsCommand::TenantCreate {
            name,
            accelerator_s,
            energy_wh,
            uplink_bytes,
            downlink_bytes,
            weight,
        } => {
            let body = serde_json::json!({
                "name": name,
                "quota": {
                    "accelerator_s": accelerator_s,
                    "energy_wh": energy_wh,
                    "uplink_bytes": uplink_bytes,
                    "downlink_bytes": downlink_bytes,
                    "period": 86_400_000,
                },
                "share_weight": weight,
            });
            print(&c.json("POST", "/v1/ops/tenants", Some(&body.to_string()))?);
        }
        OpsCommand::TenantUpdate {
            tenant,
            name,
            accelerator_s,
            energy_wh,
            uplink_bytes,
            downlink_bytes,
            weight,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(n) = name {
                body.insert("name".into(), n.into());
            }
            if let Some(w) = weight {
                body.insert("share_weight".into(), w.into());
            }
            let mut quota = serde_json::Map::new();
            for (key, value) in [
                ("accelerator_s", accelerator_s.map(serde_json::Value::from)),
                ("energy_wh", energy_wh.map(serde_json::Value::from)),
                ("uplink_bytes", uplink_bytes.map(serde_json::Value::from)),
                (
                    "downlink_bytes",
                    downlink_bytes.map(serde_json::Value::from),
                ),
            ] {
                if let Some(v) = value {
                    quota.insert(key.into(), v);
                }
            }
            if !quota.is_empty() {
                body.insert("quota".into(), quota.into());
            }
            let path = format!("/v1/ops/tenants/{tenant}");
            let body = serde_json::Value::Object(body).to_string();
            print(&c.json("PATCH", &path, Some(&body))?);
        }
        OpsCommand::TenantToken { tenant } => {
            print(&c.json("POST", &format!("/v1/ops/tenants/{tenant}/token"), None)?)
        }
        OpsCommand::Tenants => print(&c.json("GET", "/v1/ops/tenants", None)?),
        OpsCommand::OperatorCreate { name, role } => {
            let body = serde_json::json!({ "name": name, "role": role }).to_string();
            print(&c.json("POST", "/v1/ops/operators", Some(&body))?);
        }
        OpsCommand::OperatorToken { name } => {
            print(&c.json("POST", &format!("/v1/ops/operators/{name}/token"), None)?)
        }
        OpsCommand::Operators => print(&c.json("GET", "/v1/ops/operators", None)?),
        OpsCommand::Nodes => print(&c.json("GET", "/v1/ops/nodes", None)?),
        OpsCommand::Alarms => print(&c.json("GET", "/v1/ops/alarms", None)?),
        OpsCommand::Telemetry { node } => {
            print(&c.json("GET", &format!("/v1/ops/nodes/{node}/telemetry"), None)?)
        }
        OpsCommand::Stations => print(&c.json("GET", "/v1/ops/stations", None)?),
        OpsCommand::StationStatus { station, status } => {
            let up = match status.as_str() {
                "up" => true,
                "down" => false,
                other => bail!("--status {other:?}: use up or down"),
            };
            let body = serde_json::json!({ "up": up }).to_string();
            print(&c.json(
                "POST",
                &format!("/v1/ops/stations/{station}/status"),
                Some(&body),
            )?);
        }
        OpsCommand::Orbits => print(&c.json("GET", "/v1/ops/orbits", None)?),
        OpsCommand::OrbitsUpload { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            print(&c.json("POST", "/v1/ops/orbits", Some(&text))?);
        }
        OpsCommand::Audit { limit, before } => {
            let after = before.map(|b| format!("&before={b}")).unwrap_or_default();
            print(&c.json("GET", &format!("/v1/ops/audit?limit={limit}{after}"), None)?)
        }
        OpsCommand::Plan => print(&c.json("GET", "/v1/ops/plan", None)?),
    }
    Ok(())
}
