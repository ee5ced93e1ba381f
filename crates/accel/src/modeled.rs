//! The modeled backend: no real compute. Each batch "takes" the time and energy the node spec says (setup plus
//! input bytes over throughput), deterministically, so the twin can run large fleets fast. Outputs are a
//! deterministic function of the input (a probability-like vector derived from its digest), not inference.

use crate::{
    AccelError, Accelerator, Batch, BatchResult, Capabilities, JobOutput, ModelArtifact, ModelInfo,
    check_batch,
};
use odc_model::spec::AcceleratorSpec;
use std::collections::BTreeMap;
use std::time::Duration;

/// A backend that only accounts time and energy.
pub struct ModeledBackend {
    spec: AcceleratorSpec,
    loaded: BTreeMap<odc_model::ModelId, ModelInfo>,
    max_batch: usize,
}

impl ModeledBackend {
    /// A modeled accelerator of this spec.
    pub fn new(spec: AcceleratorSpec) -> Self {
        ModeledBackend {
            spec,
            loaded: BTreeMap::new(),
            max_batch: 64,
        }
    }
}

impl Accelerator for ModeledBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: "modeled",
            models: self.loaded.values().cloned().collect(),
            max_batch: self.max_batch,
            idle_power_w: self.spec.idle_power_w,
            busy_power_w: self.spec.busy_power_w,
        }
    }

    fn load(&mut self, artifact: &ModelArtifact) -> Result<(), AccelError> {
        let info = artifact.verify()?;
        self.loaded.insert(artifact.id.clone(), info);
        Ok(())
    }

    fn run(&mut self, batch: &Batch) -> Result<BatchResult, AccelError> {
        let info = self
            .loaded
            .get(&batch.model)
            .ok_or_else(|| AccelError::UnknownModel(batch.model.clone()))?;
        let mut valid = check_batch(batch, info, self.max_batch)?;
        let mut scratch = Vec::new();
        for (input, v) in batch.inputs.iter().zip(valid.iter_mut()) {
            scratch.clear();
            if v.is_ok() && !crate::decode_into(&mut scratch, &input.data) {
                *v = Err(crate::JobError::NonFinite);
            }
        }
        // Throughput of the model on this accelerator, or of the closest known one.
        let profile = self
            .spec
            .models
            .get(&batch.model)
            .or_else(|| self.spec.models.values().next())
            .copied();
        let (rate, setup) = profile
            .map(|p| (p.input_bytes_per_s, p.batch_setup_s))
            .unwrap_or((1e6, 1.0));
        let mut seconds = setup;
        let mut completed = 0;
        let mut outputs = Vec::with_capacity(batch.inputs.len());
        for (input, ok) in batch.inputs.iter().zip(&valid) {
            let result = match ok {
                Err(e) => Err(e.clone()),
                Ok(()) => {
                    seconds += input.data.len() as f64 / rate;
                    if seconds > batch.budget.as_secs_f64() {
                        return Err(AccelError::DeadlineOverrun {
                            budget: batch.budget,
                            completed,
                        });
                    }
                    completed += 1;
                    // BLAKE3 rather than SHA-256: this only has to be deterministic, and large twin runs hash every input.
                    let d = *blake3::hash(&input.data).as_bytes();
                    let raw: Vec<f32> = (0..4).map(|k| 1.0 + f32::from(d[k])).collect();
                    let sum: f32 = raw.iter().sum();
                    Ok(raw.iter().flat_map(|v| (v / sum).to_le_bytes()).collect())
                }
            };
            outputs.push(JobOutput {
                job: input.job,
                result,
            });
        }
        let busy = Duration::from_secs_f64(seconds);
        Ok(BatchResult {
            outputs,
            busy,
            energy_j: self.spec.busy_power_w * seconds,
        })
    }
}
