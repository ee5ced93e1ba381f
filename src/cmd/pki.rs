//! `odc pki`: the constellation certificate authority and per-node credentials for the QUIC links.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use odc_link::{Authority, Identity, Role};
use std::path::PathBuf;
use time::OffsetDateTime;

/// Arguments of `odc pki`.
#[derive(Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the constellation certificate authority: DIR/ca.pem (trust anchor) and DIR/ca.key (owner-only).
    Init {
        /// Directory for the authority's files (created if missing).
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// Name of the constellation, in the CA's common name.
        #[arg(long, default_value = "odc")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Issue credentials binding one identity (DIR/<role>-<id>.pem chain, DIR/<role>-<id>.key owner-only), or the
    /// HTTPS API's certificate (DIR/api.pem, DIR/api.key).
    Issue {
        /// The authority's directory (credentials are written there too).
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// A flight node's id.
        #[arg(long, group = "who")]
        node: Option<String>,
        /// A ground station's id.
        #[arg(long, group = "who")]
        station: Option<String>,
        /// A ground control plane's id.
        #[arg(long, group = "who")]
        ground: Option<String>,
        /// The HTTPS API's server certificate (api.pem, api.key) for these hosts, comma-separated (names or IPs).
        #[arg(long, group = "who", value_delimiter = ',')]
        api: Option<Vec<String>>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

/// Runs `odc pki`.
pub fn run(args: PkiArgs) -> Result<()> {
    match args.command {
        PkiCommand::Init { dir, name, days } => {
            let (from, to) = validity(days)?;
            let ca = Authority::generate(&name, from, to)?;
            let (cert, key) = ca.save(&dir)?;
            println!("certificate authority `{name}` valid {days} days");
            println!("  trust anchor: {}", cert.display());
            println!(
                "  signing key:  {} (owner-only; keep it offline)",
                key.display()
            );
            Ok(())
        }
        PkiCommand::Issue {
            dir,
            node,
            station,
            ground,
            api,
            days,
        } => {
            let ca = Authority::load(&dir).with_context(|| {
                format!(
                    "no usable authority in {} (run `odc pki init` first)",
                    dir.display()
                )
            })?;
            let (from, to) = validity(days)?;
            if let Some(hosts) = api {
                let (cert, key) = ca.issue_api(&hosts, from, to, &dir)?;
                println!(
                    "HTTPS certificate for {} valid {days} days",
                    hosts.join(", ")
                );
                println!("  certificate chain: {}", cert.display());
                println!("  private key:       {} (owner-only)", key.display());
                return Ok(());
            }
            let identity = match (node, station, ground) {
                (Some(id), None, None) => Identity::new(Role::Node, &id)?,
                (None, Some(id), None) => Identity::new(Role::Station, &id)?,
                (None, None, Some(id)) => Identity::new(Role::Ground, &id)?,
                _ => {
                    bail!(
                        "say whose credentials to issue: --node ID, --station ID, --ground ID or --api HOSTS"
                    )
                }
            };
            let creds = ca.issue(&identity, from, to)?;
            let (cert, key) = creds.save(&dir)?;
            println!(
                "credentials for {identity} ({}) valid {days} days",
                identity.dns_name()
            );
            println!("  certificate chain: {}", cert.display());
            println!("  private key:       {} (owner-only)", key.display());
            Ok(())
        }
    }
}

fn validity(days: i64) -> Result<(OffsetDateTime, OffsetDateTime)> {
    if !(1..=36_500).contains(&days) {
        bail!("--days must be between 1 and 36500, not {days}");
    }
    // Back-dated an hour so a peer whose clock runs a little slow still accepts a fresh certificate.
    let now = OffsetDateTime::now_utc();
    Ok((
        now - time::Duration::hours(1),
        now + time::Duration::days(days),
    ))
}
