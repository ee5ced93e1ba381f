//! odc-accel: the accelerator a flight node runs batches on, behind one trait, with three backends: `cpu` (real
//! inference with candle), `cuda` (the same model on a GPU, behind the `cuda` feature) and `modeled` (no compute:
//! the time and energy a spec says it would take, deterministically, for large twin runs).
//!
//! Inputs and outputs are bytes with a declared tensor shape and element type. A malformed input fails its job
//! with a reason and never the batch; a batch holds one tenant's inputs only; a batch that overruns its time
//! budget is cancelled and reported.

pub mod cpu;
pub mod model;
pub mod modeled;
pub mod tiles;

use odc_model::id::{JobId, ModelId, TenantId};
use odc_model::job::Digest;
use std::time::Duration;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float, little-endian.
    F32,
}

/// Shape and element type of a model's input or output (without the batch dimension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Bytes of one tensor of this spec.
    pub fn bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * 4
    }
}

/// A model a backend can run.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Its id.
    pub id: ModelId,
    /// Digest of the weights it was loaded from.
    pub digest: Digest,
    /// One input.
    pub input: TensorSpec,
    /// One output.
    pub output: TensorSpec,
}

/// What a backend offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Backend name (`cpu`, `cuda`, `modeled`).
    pub backend: &'static str,
    /// Models loaded.
    pub models: Vec<ModelInfo>,
    /// Largest batch accepted.
    pub max_batch: usize,
    /// Draw while idle, W.
    pub idle_power_w: f64,
    /// Draw while running, W.
    pub busy_power_w: f64,
}

/// Weights of a model, addressed by content.
#[derive(Debug, Clone)]
pub struct ModelArtifact {
    /// Model id.
    pub id: ModelId,
    /// The digest the caller expects.
    pub digest: Digest,
    /// The weights (safetensors).
    pub bytes: Vec<u8>,
}

impl ModelArtifact {
    /// Checks the weights against the digest asked for and describes the model they hold (the tile
    /// classifier's shapes: every model odc ships takes 4×64×64 tiles and gives 4 class probabilities).
    pub fn verify(&self) -> Result<ModelInfo, AccelError> {
        let actual = Digest::of(&self.bytes);
        if actual != self.digest {
            return Err(AccelError::DigestMismatch {
                model: self.id.clone(),
                expected: self.digest,
                actual,
            });
        }
        Ok(ModelInfo {
            id: self.id.clone(),
            digest: actual,
            input: TensorSpec {
                dtype: DType::F32,
                shape: vec![4, 64, 64],
            },
            output: TensorSpec {
                dtype: DType::F32,
                shape: vec![4],
            },
        })
    }

    /// The built-in tile classifier with its shipped weights.
    pub fn tile_classifier() -> ModelArtifact {
        ModelArtifact {
            id: ModelId::new(model::TILE_CLASSIFIER)
                .unwrap_or_else(|_| unreachable!("a valid literal name")),
            digest: Digest::of(model::TILE_CLASSIFIER_WEIGHTS),
            bytes: model::TILE_CLASSIFIER_WEIGHTS.to_vec(),
        }
    }
}

/// One job's input.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInput {
    /// The job.
    pub job: JobId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Declared shape (must equal the model's input shape).
    pub shape: Vec<usize>,
    /// The tensor's bytes.
    pub data: Vec<u8>,
}

/// A batch: one model, one tenant, a time budget.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The model.
    pub model: ModelId,
    /// The tenant every input belongs to.
    pub tenant: TenantId,
    /// The inputs, in run order.
    pub inputs: Vec<JobInput>,
    /// Longest the batch may take.
    pub budget: Duration,
}

/// Why one job of a batch failed (the rest of the batch is unaffected).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// The declared shape is not the model's.
    #[error("input shape {got:?} is not the model's {expected:?}")]
    WrongShape {
        /// The model's input shape.
        expected: Vec<usize>,
        /// The shape declared.
        got: Vec<usize>,
    },
    /// The bytes do not match the declared shape.
    #[error("input of {got} bytes does not match its shape ({expected} bytes)")]
    WrongSize {
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The input holds NaN or infinite values.
    #[error("input holds non-finite values")]
    NonFinite,
}

/// Why a whole batch was refused or stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccelError {
    /// The model is not loaded.
    #[error("model {0} is not loaded")]
    UnknownModel(ModelId),
    /// The weights do not match the digest asked for.
    #[error("model {model}: weights have digest {actual:?}, expected {expected:?}")]
    DigestMismatch {
        /// The model.
        model: ModelId,
        /// Digest asked for.
        expected: Digest,
        /// Digest of the bytes given.
        actual: Digest,
    },
    /// More inputs than the backend takes at once.
    #[error("batch of {size} exceeds the limit of {max}")]
    BatchTooLarge {
        /// Inputs given.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An input belongs to another tenant than the batch.
    #[error("job {job} belongs to another tenant than its batch")]
    MixedTenants {
        /// The offending job.
        job: JobId,
    },
    /// The batch ran past its budget and was cancelled; jobs done before are in `completed`.
    #[error("batch overran its {budget:?} budget after {completed} jobs")]
    DeadlineOverrun {
        /// The budget.
        budget: Duration,
        /// Jobs that finished before the cancellation.
        completed: usize,
    },
    /// The weights could not be loaded or the library failed.
    #[error("backend: {0}")]
    Backend(String),
}

/// The result of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    /// The job.
    pub job: JobId,
    /// Its output tensor's bytes, or why it failed.
    pub result: Result<Vec<u8>, JobError>,
}

/// What a batch produced and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    /// One output per input, in input order.
    pub outputs: Vec<JobOutput>,
    /// Accelerator time used.
    pub busy: Duration,
    /// Energy used, J.
    pub energy_j: f64,
}

/// An accelerator: loads models by content digest and runs one tenant's batches.
pub trait Accelerator: Send {
    /// What it offers now.
    fn capabilities(&self) -> Capabilities;
    /// Loads a model, refusing weights whose digest differs from the one asked for.
    fn load(&mut self, artifact: &ModelArtifact) -> Result<(), AccelError>;
    /// Runs a batch.
    fn run(&mut self, batch: &Batch) -> Result<BatchResult, AccelError>;
}

/// Checks common to every backend: batch size, one tenant, each input's shape and size (values are checked while
/// decoding, in the same pass). Returns per-input validation.
pub fn check_batch(
    batch: &Batch,
    info: &ModelInfo,
    max_batch: usize,
) -> Result<Vec<Result<(), JobError>>, AccelError> {
    if batch.inputs.len() > max_batch {
        return Err(AccelError::BatchTooLarge {
            size: batch.inputs.len(),
            max: max_batch,
        });
    }
    if let Some(other) = batch.inputs.iter().find(|i| i.tenant != batch.tenant) {
        return Err(AccelError::MixedTenants { job: other.job });
    }
    Ok(batch
        .inputs
        .iter()
        .map(|input| {
            if input.shape != info.input.shape {
                return Err(JobError::WrongShape {
                    expected: info.input.shape.clone(),
                    got: input.shape.clone(),
                });
            }
            if input.data.len() != info.input.bytes() {
                return Err(JobError::WrongSize {
                    expected: info.input.bytes(),
                    got: input.data.len(),
                });
            }
            Ok(())
        })
        .collect())
}

/// Appends little-endian f32 bytes to `out` in one pass; false if any value is NaN or infinite (the values are
/// still appended: the caller drops them).
pub fn decode_into(out: &mut Vec<f32>, bytes: &[u8]) -> bool {
    let start = out.len();
    // Two simple passes (a copy, then a bit test for an all-ones exponent) both vectorise; one fused pass
    // with a running flag does not.
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    let special = out[start..].iter().fold(0u32, |acc, v| {
        acc | u32::from((v.to_bits() & 0x7f80_0000) == 0x7f80_0000)
    });
    special == 0
}

/// Decodes little-endian f32 bytes.
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
