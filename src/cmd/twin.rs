//! `odc twin` / `odc demo`: the digital twin on a scenario (the built-in default unless one is given), with a
//! summary on the terminal and a report (HTML with plots, and JSON) written to a directory. `odc campaign`: many
//! short seeded runs with random faults, stopping at the first seed whose invariants fail.

use anyhow::{Context, bail};
use clap::Args;
use odc_planner::scenario::ScenarioFiles;
use odc_twin::{BackendKind, TwinConfig};
use std::path::PathBuf;

/// Arguments of `odc twin` and `odc demo`.
#[derive(Args)]
pub struct TwinArgs {
    /// Scenario file (TOML); the built-in default scenario without it.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Seed (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated hours (overrides the scenario's).
    #[arg(long)]
    hours: Option<f64>,
    /// Accelerator backend: cpu (real inference) or modeled (overrides the scenario's).
    #[arg(long)]
    backend: Option<String>,
    /// Directory for report.html and report.json.
    #[arg(long, default_value = "twin-report")]
    out: PathBuf,
    /// Print the default scenario and exit.
    #[arg(long)]
    print_default_scenario: bool,
}

/// Arguments of `odc demo`: the twin's, or a live constellation of processes with `--live`.
#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    twin: TwinArgs,
    #[command(flatten)]
    live: super::live::LiveArgs,
}

/// Runs `odc demo`: the twin on its default scenario, or with `--live` the local constellation.
pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    if args.live.live {
        super::live::run(&args.live)
    } else {
        run(args.twin)
    }
}

/// Arguments of `odc campaign`.
#[derive(Args)]
pub struct CampaignArgs {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    first: u64,
    /// Faults per run.
    #[arg(long, default_value_t = 6)]
    faults: usize,
}

/// Runs `odc twin` / `odc demo`.
pub fn run(args: TwinArgs) -> anyhow::Result<()> {
    if args.print_default_scenario {
        print!("{}", odc_twin::scenario::DEFAULT_SCENARIO);
        return Ok(());
    }
    let (mut config, files) = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let config = TwinConfig::from_toml(&text).map_err(|e| {
                anyhow::anyhow!("{}: {}", path.display(), e.to_string().replace('\n', " "))
            })?;
            let files = super::scenario_files(
                path,
                config.constellation.tle.as_deref(),
                config.stations.file.as_deref(),
            )?;
            (config, files)
        }
        None => (TwinConfig::default_scenario()?, ScenarioFiles::default()),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(hours) = args.hours {
        if !(hours > 0.0 && hours <= 336.0) {
            bail!("--hours must be in (0, 336]");
        }
        config.hours = hours;
        config.workload.spread_hours = config.workload.spread_hours.min(hours);
        config.faults.retain(|f| f.at_hours <= hours);
    }
    match args.backend.as_deref() {
        None => {}
        Some("cpu") => config.twin.backend = BackendKind::Cpu,
        Some("modeled") => config.twin.backend = BackendKind::Modeled,
        Some(other) => bail!("--backend {other:?}: use cpu or modeled"),
    }
    let begun = std::time::Instant::now();
    let bar = crate::output::progress(1000, "simulating");
    let outcome = odc_twin::run(config, &files, &mut |f| {
        if let Some(b) = &bar {
            b.set_position((f * 1000.0) as u64);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let elapsed = begun.elapsed();
    print!("{}", outcome.report.summary());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let html = args.out.join("report.html");
    let json = args.out.join("report.json");
    std::fs::write(&html, outcome.report.to_html())
        .with_context(|| format!("cannot write {}", html.display()))?;
    std::fs::write(&json, outcome.report.to_json())
        .with_context(|| format!("cannot write {}", json.display()))?;
    println!(
        "simulated in {:.1} s; report: {} and {}",
        elapsed.as_secs_f64(),
        html.display(),
        json.display()
    );
    if !outcome.violations.is_empty() {
        bail!(
            "{} invariant(s) violated (seed {})",
            outcome.violations.len(),
            outcome.report.seed
        );
    }
    Ok(())
}

/// Runs `odc campaign`.
pub fn campaign(args: CampaignArgs) -> anyhow::Result<()> {
    let begun = std::time::Instant::now();
    let bar = crate::output::progress(args.seeds as usize, "seeds");
    for seed in args.first..args.first.saturating_add(args.seeds) {
        let outcome = odc_twin::campaign_run(seed, args.faults)?;
        if !outcome.violations.is_empty() {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            eprint!("{}", outcome.report.summary());
            bail!(
                "seed {seed}: {} invariant(s) violated; replay with `odc campaign --first {seed} --seeds 1 --faults {}`",
                outcome.violations.len(),
                args.faults
            );
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    println!(
        "{} seeds from {}, {} faults each: every invariant held ({:.1} s)",
        args.seeds,
        args.first,
        args.faults,
        begun.elapsed().as_secs_f64()
    );
    Ok(())
}
