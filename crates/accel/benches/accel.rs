//! CPU backend benchmark: inferences per second at batch sizes 1, 8 and 32, and the overhead of odc's backend
//! layer (byte decoding, input checks, per-job results, budget checks) against calling candle directly on the
//! same batch in the same run. Run with `cargo bench -p odc-accel`.

use odc_accel::cpu::{CandleBackend, direct_forward};
use odc_accel::model::TileClassifier;
use odc_accel::tiles::{self, Class};
use odc_accel::{Accelerator, Batch, JobInput, ModelArtifact};
use odc_model::Instant;
use odc_model::id::IdGenerator;
use std::hint::black_box;
use std::time::{Duration, Instant as Clock};

fn main() {
    let artifact = ModelArtifact::tile_classifier();
    let mut backend = CandleBackend::cpu(5.0, 25.0);
    backend.load(&artifact).expect("loads");
    let net = TileClassifier::from_safetensors(artifact.bytes.clone(), &candle_core::Device::Cpu)
        .expect("network");
    let mut ids = IdGenerator::seeded(1);
    let tenant = ids.tenant(Instant::from_unix_ms(0));
    println!(
        "tile classifier on CPU ({} threads)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for size in [1usize, 8, 32] {
        let tiles: Vec<Vec<f32>> = (0..size)
            .map(|i| tiles::tile(Class::ALL[i % 4], 77 + i as u64))
            .collect();
        let flat: Vec<f32> = tiles.iter().flatten().copied().collect();
        let batch = Batch {
            model: artifact.id.clone(),
            tenant,
            inputs: tiles
                .iter()
                .map(|t| JobInput {
                    job: ids.job(Instant::from_unix_ms(0)),
                    tenant,
                    shape: vec![4, 64, 64],
                    data: t.iter().flat_map(|v| v.to_le_bytes()).collect(),
                })
                .collect(),
            budget: Duration::from_secs(600),
        };
        // Interleave the two call by call, so that drift on a shared machine hits both alike, and compare the
        // median of the per-pair ratios (robust to the odd preempted call).
        let pairs = (3000 / size).max(200);
        let (mut layer_total, mut direct_total) = (0.0, 0.0);
        let mut ratios = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            let t0 = Clock::now();
            black_box(backend.run(black_box(&batch)).expect("runs"));
            let layer = t0.elapsed().as_secs_f64();
            let t0 = Clock::now();
            black_box(direct_forward(&net, black_box(&flat), size).expect("runs"));
            let direct = t0.elapsed().as_secs_f64();
            layer_total += layer;
            direct_total += direct;
            ratios.push(layer / direct);
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        let n = (pairs * size) as f64;
        println!(
            "batch {size:>2}: {:>7.0} inferences/s through the backend, {:>7.0} calling candle directly; overhead {:+.1}% (median of {pairs} paired calls) [target ≤ 5%]",
            n / layer_total,
            n / direct_total,
            100.0 * (median - 1.0)
        );
    }
}
