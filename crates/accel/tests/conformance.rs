//! The conformance suite every backend must pass. Run here for the CPU and modeled backends; the GPU backend runs
//! the same suite with `cargo test -p odc-accel --features cuda` on a machine with CUDA.

use odc_accel::cpu::{CandleBackend, direct_forward};
use odc_accel::model::TileClassifier;
use odc_accel::modeled::ModeledBackend;
use odc_accel::tiles::{self, Class};
use odc_accel::{AccelError, Accelerator, Batch, JobError, JobInput, ModelArtifact, f32s};
use odc_model::id::IdGenerator;
use odc_model::job::Digest;
use odc_model::spec::NodeSpec;
use odc_model::{Instant, NodeId};
use std::time::Duration;

fn inputs(
    ids: &mut IdGenerator,
    tenant: odc_model::TenantId,
    n: usize,
    seed: u64,
) -> Vec<JobInput> {
    (0..n)
        .map(|i| JobInput {
            job: ids.job(Instant::from_unix_ms(1000 + i as i64)),
            tenant,
            shape: vec![4, 64, 64],
            data: tiles::tile_bytes(Class::ALL[i % 4], seed + i as u64),
        })
        .collect()
}

/// The suite. `reference` gives the expected output of one valid input; `tolerance` bounds the difference.
fn conformance(
    mut backend: Box<dyn Accelerator>,
    reference: &dyn Fn(&[u8]) -> Vec<f32>,
    tolerance: f32,
) {
    let artifact = ModelArtifact::tile_classifier();
    let mut ids = IdGenerator::seeded(4);
    let now = Instant::from_unix_ms(0);
    let (tenant, other) = (ids.tenant(now), ids.tenant(now));

    // Weights are addressed by content: a digest mismatch is refused.
    let mut forged = artifact.clone();
    forged.digest = Digest::of(b"something else");
    assert!(matches!(
        backend.load(&forged),
        Err(AccelError::DigestMismatch { .. })
    ));
    let batch = Batch {
        model: artifact.id.clone(),
        tenant,
        inputs: inputs(&mut ids, tenant, 2, 1),
        budget: Duration::from_secs(60),
    };
    assert!(
        matches!(backend.run(&batch), Err(AccelError::UnknownModel(_))),
        "nothing is loaded yet"
    );
    backend.load(&artifact).expect("the shipped weights load");
    assert_eq!(backend.capabilities().models.len(), 1);

    // Outputs equal the reference and map back to their jobs, in order; the same inputs give the same outputs.
    let batch = Batch {
        inputs: inputs(&mut ids, tenant, 12, 100),
        ..batch
    };
    let first = backend.run(&batch).expect("runs");
    assert_eq!(first.outputs.len(), 12);
    for (input, out) in batch.inputs.iter().zip(&first.outputs) {
        assert_eq!(out.job, input.job, "outputs map back to their jobs");
        let got = f32s(out.result.as_ref().expect("valid input"));
        let want = reference(&input.data);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= tolerance, "{got:?} vs {want:?}");
        }
    }
    assert!(first.energy_j > 0.0 && first.busy > Duration::ZERO);
    let second = backend.run(&batch).expect("runs again");
    assert_eq!(first.outputs, second.outputs, "deterministic");

    // A malformed input fails its job only.
    let mut bad = batch.clone();
    bad.inputs[1].shape = vec![3, 64, 64];
    bad.inputs[2].data.truncate(100);
    let mut nan = f32s(&bad.inputs[3].data);
    nan[7] = f32::NAN;
    bad.inputs[3].data = nan.iter().flat_map(|v| v.to_le_bytes()).collect();
    let result = backend.run(&bad).expect("the batch survives bad inputs");
    assert!(matches!(
        result.outputs[1].result,
        Err(JobError::WrongShape { .. })
    ));
    assert!(matches!(
        result.outputs[2].result,
        Err(JobError::WrongSize { .. })
    ));
    assert_eq!(result.outputs[3].result, Err(JobError::NonFinite));
    assert_eq!(
        result.outputs[0], first.outputs[0],
        "the other jobs are unaffected"
    );

    // Batch limits, tenant isolation, deadlines: each has its own error.
    let max = backend.capabilities().max_batch;
    let huge = Batch {
        inputs: inputs(&mut ids, tenant, max + 1, 7),
        ..batch.clone()
    };
    assert!(matches!(
        backend.run(&huge),
        Err(AccelError::BatchTooLarge { .. })
    ));
    let mut mixed = batch.clone();
    mixed.inputs[5].tenant = other;
    assert!(
        matches!(backend.run(&mixed), Err(AccelError::MixedTenants { job }) if job == mixed.inputs[5].job)
    );
    let rushed = Batch {
        budget: Duration::ZERO,
        ..batch.clone()
    };
    assert!(matches!(
        backend.run(&rushed),
        Err(AccelError::DeadlineOverrun { .. })
    ));
}

#[test]
fn cpu_backend_conforms() {
    let artifact = ModelArtifact::tile_classifier();
    let net = TileClassifier::from_safetensors(artifact.bytes.clone(), &candle_core::Device::Cpu)
        .expect("network");
    let reference = move |data: &[u8]| {
        direct_forward(&net, &f32s(data), 1)
            .expect("forward")
            .remove(0)
    };
    conformance(Box::new(CandleBackend::cpu(5.0, 25.0)), &reference, 1e-5);
}

#[test]
fn modeled_backend_conforms() {
    let spec = NodeSpec::leo_default(NodeId::new("sat-001").expect("id"), 1).accelerator;
    let reference = |data: &[u8]| {
        let d = *blake3::hash(data).as_bytes();
        let raw: Vec<f32> = (0..4).map(|k| 1.0 + f32::from(d[k])).collect();
        let sum: f32 = raw.iter().sum();
        raw.iter().map(|v| v / sum).collect()
    };
    conformance(Box::new(ModeledBackend::new(spec)), &reference, 0.0);
}

#[test]
fn shipped_model_classifies_held_out_tiles() {
    let mut backend = CandleBackend::cpu(5.0, 25.0);
    let artifact = ModelArtifact::tile_classifier();
    backend.load(&artifact).expect("loads");
    let mut ids = IdGenerator::seeded(9);
    let tenant = ids.tenant(Instant::from_unix_ms(0));
    let set = tiles::dataset(200, 5_000_000);
    let mut correct = 0;
    for chunk in set.chunks(40) {
        let inputs = chunk
            .iter()
            .map(|(_, t)| JobInput {
                job: ids.job(Instant::from_unix_ms(0)),
                tenant,
                shape: vec![4, 64, 64],
                data: t.iter().flat_map(|v| v.to_le_bytes()).collect(),
            })
            .collect();
        let out = backend
            .run(&Batch {
                model: artifact.id.clone(),
                tenant,
                inputs,
                budget: Duration::from_secs(120),
            })
            .expect("runs");
        for ((class, _), o) in chunk.iter().zip(out.outputs) {
            let p = f32s(&o.result.expect("valid"));
            let best = (0..4).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
            correct += usize::from(best == *class as usize);
        }
    }
    let accuracy = correct as f64 / set.len() as f64;
    assert!(accuracy >= 0.9, "held-out accuracy {accuracy}");
}
