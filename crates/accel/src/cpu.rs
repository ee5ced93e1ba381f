//! The CPU backend: real inference with candle on the host's cores (the GPU backend is this code on a CUDA
//! device).

use crate::model::TileClassifier;
use crate::{
    AccelError, Accelerator, Batch, BatchResult, Capabilities, JobOutput, ModelArtifact, ModelInfo,
    check_batch, model,
};
use candle_core::{Device, Tensor};
use std::time::{Duration, Instant};

/// Inputs run per step; the budget is checked between steps.
const STEP: usize = 32;

/// The candle backend.
pub struct CandleBackend {
    device: Device,
    name: &'static str,
    loaded: Option<(ModelInfo, TileClassifier)>,
    max_batch: usize,
    busy_power_w: f64,
    idle_power_w: f64,
}

impl CandleBackend {
    /// A CPU backend; power figures are what the node's spec says its processor draws.
    pub fn cpu(idle_power_w: f64, busy_power_w: f64) -> Self {
        CandleBackend {
            device: Device::Cpu,
            name: "cpu",
            loaded: None,
            max_batch: 64,
            busy_power_w,
            idle_power_w,
        }
    }

    /// A CUDA backend on GPU `ordinal` (needs the `cuda` feature).
    #[cfg(feature = "cuda")]
    pub fn cuda(ordinal: usize, idle_power_w: f64, busy_power_w: f64) -> Result<Self, AccelError> {
        let device = Device::new_cuda(ordinal).map_err(|e| AccelError::Backend(e.to_string()))?;
        Ok(CandleBackend {
            device,
            name: "cuda",
            loaded: None,
            max_batch: 256,
            busy_power_w,
            idle_power_w,
        })
    }
}

impl Accelerator for CandleBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: self.name,
            models: self.loaded.iter().map(|(info, _)| info.clone()).collect(),
            max_batch: self.max_batch,
            idle_power_w: self.idle_power_w,
            busy_power_w: self.busy_power_w,
        }
    }

    fn load(&mut self, artifact: &ModelArtifact) -> Result<(), AccelError> {
        let info = artifact.verify()?;
        if artifact.id.as_str() != model::TILE_CLASSIFIER {
            return Err(AccelError::Backend(format!(
                "no network definition for model {}",
                artifact.id
            )));
        }
        let net = TileClassifier::from_safetensors(artifact.bytes.clone(), &self.device)
            .map_err(|e| AccelError::Backend(e.to_string()))?;
        self.loaded = Some((info, net));
        Ok(())
    }

    fn run(&mut self, batch: &Batch) -> Result<BatchResult, AccelError> {
        let started = Instant::now();
        let (info, net) = match &self.loaded {
            Some((info, net)) if info.id == batch.model => (info, net),
            _ => return Err(AccelError::UnknownModel(batch.model.clone())),
        };
        let mut valid = check_batch(batch, info, self.max_batch)?;
        let mut outputs: Vec<JobOutput> = Vec::with_capacity(batch.inputs.len());
        let good: Vec<usize> = (0..batch.inputs.len())
            .filter(|&i| valid[i].is_ok())
            .collect();
        let mut results: Vec<Option<Vec<u8>>> = vec![None; batch.inputs.len()];
        let mut completed = 0;
        let per_input = info.input.bytes() / 4;
        for step in good.chunks(STEP) {
            if started.elapsed() > batch.budget {
                return Err(AccelError::DeadlineOverrun {
                    budget: batch.budget,
                    completed,
                });
            }
            // Decode and check values in one pass; inputs with NaN or infinities drop out of the step.
            let mut data: Vec<f32> = Vec::with_capacity(step.len() * per_input);
            let mut kept: Vec<usize> = Vec::with_capacity(step.len());
            for &i in step {
                if crate::decode_into(&mut data, &batch.inputs[i].data) {
                    kept.push(i);
                } else {
                    data.truncate(kept.len() * per_input);
                    valid[i] = Err(crate::JobError::NonFinite);
                }
            }
            if kept.is_empty() {
                continue;
            }
            let step = &kept[..];
            let x = Tensor::from_vec(data, (step.len(), 4, 64, 64), &self.device)
                .map_err(|e| AccelError::Backend(e.to_string()))?;
            let probabilities = candle_nn::ops::softmax(
                &net.forward(&x)
                    .map_err(|e| AccelError::Backend(e.to_string()))?,
                1,
            )
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(|e| AccelError::Backend(e.to_string()))?;
            for (&i, row) in step.iter().zip(probabilities) {
                results[i] = Some(row.iter().flat_map(|v| v.to_le_bytes()).collect());
            }
            completed += step.len();
        }
        let busy = started.elapsed();
        if busy > batch.budget {
            return Err(AccelError::DeadlineOverrun {
                budget: batch.budget,
                completed,
            });
        }
        for (i, input) in batch.inputs.iter().enumerate() {
            let result = match &valid[i] {
                Err(e) => Err(e.clone()),
                Ok(()) => Ok(results[i].take().unwrap_or_default()),
            };
            outputs.push(JobOutput {
                job: input.job,
                result,
            });
        }
        Ok(BatchResult {
            outputs,
            busy,
            energy_j: self.busy_power_w * busy.as_secs_f64(),
        })
    }
}

/// Runs the network directly on a batch of tiles, without the backend layer: the reference the backend's
/// overhead is measured against.
pub fn direct_forward(
    net: &TileClassifier,
    tiles: &[f32],
    n: usize,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let x = Tensor::from_vec(tiles.to_vec(), (n, 4, 64, 64), &Device::Cpu)?;
    candle_nn::ops::softmax(&net.forward(&x)?, 1)?.to_vec2::<f32>()
}

/// The time budget used when a caller gives none: generous for a batch of the limit on a slow core.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
