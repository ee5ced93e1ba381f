//! Random planning problems from a seed, for property tests, quality measurements and benchmarks: a few nodes with
//! orbit-like contact and eclipse patterns, stations with one or two antennas, tenants with quotas, and jobs of
//! mixed sizes, priorities and deadlines. The same seed always gives the same snapshot.

use crate::snapshot::{ContactWindow, IslWindow, NodeInput, PlannerOptions, Snapshot, TenantInput};
use odc_budget::Illumination;
use odc_model::id::{IdGenerator, ModelId, NodeId, SplitMix64, StationId};
use odc_model::job::{BlobRef, Job, JobEvent, JobSpec, Priority};
use odc_model::spec::{NodeSpec, StationSpec};
use odc_model::tenant::{Quota, Tenant, Usage};
use odc_model::time::{Duration, Instant};

/// Size of a random problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Flight nodes.
    pub nodes: usize,
    /// Ground stations.
    pub stations: usize,
    /// Tenants.
    pub tenants: usize,
    /// Jobs.
    pub jobs: usize,
    /// Horizon, hours.
    pub hours: i64,
}

impl Size {
    /// A problem small enough for an exact solver.
    pub fn small() -> Size {
        Size {
            nodes: 2,
            stations: 2,
            tenants: 2,
            jobs: 10,
            hours: 6,
        }
    }
}

/// Start of every synthetic horizon: 2026-06-20T00:00:00Z.
pub const START_MS: i64 = 1_781_913_600_000;

/// Which difficulties a random problem may have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variation {
    /// Some nodes with small batteries, hot accelerators or one model only.
    pub hard_nodes: bool,
    /// ISL windows between nodes.
    pub isl: bool,
}

/// A random snapshot with every difficulty.
pub fn snapshot(seed: u64, size: Size) -> Snapshot {
    snapshot_with(
        seed,
        size,
        Variation {
            hard_nodes: true,
            isl: true,
        },
    )
}

/// A random snapshot with the chosen difficulties.
pub fn snapshot_with(seed: u64, size: Size, variation: Variation) -> Snapshot {
    let mut rng = SplitMix64::new(seed);
    let mut below = |n: u64| rng.next_u64() % n.max(1);
    let now = Instant::from_unix_ms(START_MS);
    let end = now + Duration::from_hours(size.hours);
    let mut ids = IdGenerator::seeded(seed);
    let models = ["minilm-l6", "resnet50"];
    let mut nodes = Vec::new();
    for i in 0..size.nodes {
        let id = NodeId::new(format!("sat-{i:03}")).unwrap_or_else(|_| unreachable!("valid name"));
        let mut spec = NodeSpec::leo_default(id, 90_000 + i as u64);
        // Some nodes have small batteries or hot accelerators, so energy and heat bind sometimes.
        let (small_battery, hot, one_model) = (below(3) == 0, below(4) == 0, below(4) == 0);
        if small_battery && variation.hard_nodes {
            spec.power.battery_capacity_wh = 150.0;
            spec.power.solar_array_w = 120.0;
        }
        if hot && variation.hard_nodes {
            spec.accelerator.busy_power_w = 150.0;
            spec.thermal.radiator_area_m2 = 0.35;
        }
        if one_model && variation.hard_nodes {
            // Not every node hosts every model.
            spec.accelerator
                .models
                .retain(|m, _| m.as_str() == models[i % 2]);
        }
        spec.storage_bytes = 50_000_000 + below(200_000_000);
        let period_ms = 5_700_000i64;
        let phase = below(period_ms as u64) as i64;
        let shadows: Vec<(Instant, Instant)> = (-1..=(size.hours * 3_600_000 / period_ms) + 1)
            .map(|k| {
                let s = now + Duration::from_millis(k * period_ms + phase);
                (s, s + Duration::from_mins(35))
            })
            .collect();
        nodes.push(NodeInput {
            spec,
            altitude_km: 550.0,
            state_of_charge: 0.72 + below(28) as f64 / 100.0,
            temp_c: 10.0 + below(15) as f64,
            storage_used_bytes: below(10_000_000),
            illumination: Illumination::from_eclipses(&shadows),
        });
    }
    let station_names = [
        "svalbard",
        "mcmurdo",
        "madrid",
        "singapore",
        "hartebeesthoek",
        "south-point",
        "fairbanks",
    ];
    let stations: Vec<StationSpec> = (0..size.stations)
        .map(|i| {
            let name = if i < station_names.len() {
                station_names[i].to_owned()
            } else {
                format!("gs-{i:03}")
            };
            let mut st = StationSpec::with_defaults(
                StationId::new(name).unwrap_or_else(|_| unreachable!("valid name")),
                (i as f64 * 37.0) % 160.0 - 80.0,
                (i as f64 * 71.0) % 360.0 - 180.0,
                100.0,
                5.0,
            );
            st.antennas = 1 + (i % 2) as u32;
            st
        })
        .collect();
    let mut contacts = Vec::new();
    for n in &nodes {
        for st in &stations {
            // Passes come in clusters once or twice per orbit: 3-10 minutes each.
            let mut t = now + Duration::from_mins(below(180) as i64);
            while t < end {
                let len = Duration::from_mins(3 + below(8) as i64);
                contacts.push(ContactWindow {
                    station: st.id.clone(),
                    node: n.spec.id.clone(),
                    start: t,
                    end: t + len,
                });
                t += Duration::from_mins(90 + below(200) as i64);
            }
        }
    }
    let mut isl = Vec::new();
    for a in 0..if variation.isl { nodes.len() } else { 0 } {
        for b in a + 1..nodes.len() {
            let mut t = now + Duration::from_mins(below(120) as i64);
            while t < end {
                let len = Duration::from_mins(5 + below(40) as i64);
                isl.push(IslWindow {
                    a: nodes[a].spec.id.clone(),
                    b: nodes[b].spec.id.clone(),
                    start: t,
                    end: t + len,
                });
                t += Duration::from_mins(60 + below(240) as i64);
            }
        }
    }
    let tenants: Vec<TenantInput> = (0..size.tenants)
        .map(|i| {
            let tight = below(3) == 0;
            TenantInput {
                tenant: Tenant {
                    id: ids.tenant(now),
                    name: format!("tenant-{i}"),
                    quota: Quota {
                        accelerator_s: if tight { 60.0 } else { 1e6 },
                        energy_wh: 1e6,
                        uplink_bytes: if tight { 20_000_000 } else { 1 << 40 },
                        downlink_bytes: 1 << 40,
                        period: Duration::from_hours(24),
                    },
                    share_weight: 1 + (i % 3) as u32,
                },
                used: Usage::default(),
            }
        })
        .collect();
    let mut jobs = Vec::new();
    for _ in 0..size.jobs {
        let tenant = tenants[below(tenants.len() as u64) as usize].tenant.id;
        let spec = JobSpec {
            tenant,
            model: ModelId::new(models[below(2) as usize])
                .unwrap_or_else(|_| unreachable!("valid name")),
            input: BlobRef {
                size_bytes: 100_000 + below(30_000_000),
                ..BlobRef::of(&below(u64::MAX).to_le_bytes())
            },
            output_bound_bytes: 10_000 + below(5_000_000),
            deadline: now + Duration::from_mins(60 + below(size.hours as u64 * 60) as i64),
            priority: Priority::new(below(10) as u8).unwrap_or(Priority::MAX),
            idempotency_key: format!("k{}", below(1 << 40)),
        };
        let submitted = now - Duration::from_mins(below(60) as i64);
        let mut job = Job::new(ids.job(submitted), spec, submitted);
        let _ = job.apply(&JobEvent::Accept, submitted);
        jobs.push(job);
    }
    Snapshot {
        now,
        horizon_end: end,
        plan_id: ids.plan(now),
        id_seed: seed,
        previous: None,
        nodes,
        stations,
        contacts,
        isl: std::sync::Arc::new(isl),
        tenants,
        jobs,
        options: PlannerOptions::default(),
    }
}
