//! `odc`: the command line of the orbital data center control plane. Each subcommand wires library crates
//! together; no domain logic lives here.

mod cmd;
mod output;

// The twin and the planner allocate and free many mid-sized buffers (64 KiB frames and tiles); glibc's allocator
// spent a third of a large twin run consolidating and returning them to the kernel.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// odc: control plane for orbital data centers.
#[derive(Parser)]
#[command(name = "odc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main demo: the digital twin's default scenario (a dozen satellites, real inference, 24 simulated hours);
    /// with --live, a ground service and flight daemons as real processes linked over QUIC in accelerated time.
    Demo(cmd::twin::DemoArgs),
    /// Run the digital twin on a scenario (the built-in default without --scenario), or a fault campaign.
    Twin(cmd::twin::TwinArgs),
    /// Seeded fault campaign in the twin: many short runs, each with random faults; every invariant must hold.
    Campaign(cmd::twin::CampaignArgs),
    /// A day of the embedded calibration constellation: contacts, eclipses, links, and a plan of a workload.
    Overview(cmd::overview::OverviewArgs),
    /// Ground-station passes (AOS, TCA, LOS, maximum elevation) of every satellite over every station.
    Passes(cmd::ephemeris::PassesArgs),
    /// Eclipse intervals of every satellite (Sun-centre boundary by default; umbra or penumbra on request).
    Eclipses(cmd::ephemeris::EclipsesArgs),
    /// Inter-satellite line-of-sight windows within a range.
    Isl(cmd::ephemeris::IslArgs),
    /// Plan a scenario (TOML): contacts, batches and routes; prints a summary and writes the plan as JSON.
    Plan(cmd::plan::PlanArgs),
    /// A tenant's client of the ground API: submit, list, status, cancel, result, usage.
    Tenant(cmd::client::TenantArgs),
    /// An operator's client of the ground API: tenants, nodes, stations, alarms, audit log, plan.
    Ops(cmd::client::OpsArgs),
    /// The control-plane service: tenant and operator APIs over HTTP, on a durable store.
    Ground(cmd::ground::GroundArgs),
    /// The daemon of one flight node: its durable queue, the accelerator, and its links to the ground in passes.
    Flight(cmd::flight::FlightArgs),
    /// Certificates for the links: `pki init` creates the constellation CA, `pki issue --node N` a node's credentials.
    Pki(cmd::pki::PkiArgs),
    /// State vectors of one satellite: TEME, Earth-fixed, geodetic, and look angles from a station.
    Propagate(cmd::ephemeris::PropagateArgs),
}

/// mimalloc's `mi_option_purge_delay`: the same position (15) in the v2 and v3 headers the allocator crate builds.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// For the batch runs of the twin: freed memory stays with the process instead of going back to the kernel.
fn keep_freed_memory() {
    // A large twin run frees and reallocates tens of gigabytes of 64 KiB buffers; returned to the kernel 10 ms
    // after they are freed (mimalloc's default), the same pages were faulted in and zeroed again and again, a
    // tenth of the run. Peak memory grows by a few per cent. Long-running services keep the default.
    #[allow(unsafe_code)]
    // SAFETY: sets a process-wide allocator option before any other thread exists; no pointers are involved.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || !e.use_stderr()
            {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: the reason, without the usage block (`--help` has it).
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("{} (try --help)", first.trim());
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Demo(args) => {
            keep_freed_memory();
            cmd::twin::demo(args)
        }
        Command::Twin(args) => {
            keep_freed_memory();
            cmd::twin::run(args)
        }
        Command::Campaign(args) => {
            keep_freed_memory();
            cmd::twin::campaign(args)
        }
        Command::Overview(args) => cmd::overview::run(args),
        Command::Passes(args) => cmd::ephemeris::passes(args),
        Command::Eclipses(args) => cmd::ephemeris::eclipses(args),
        Command::Isl(args) => cmd::ephemeris::isl(args),
        Command::Propagate(args) => cmd::ephemeris::propagate(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Pki(args) => cmd::pki::run(args),
        Command::Ground(args) => cmd::ground::run(args),
        Command::Flight(args) => cmd::flight::run(args),
        Command::Tenant(args) => cmd::client::tenant(args),
        Command::Ops(args) => cmd::client::ops(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
