//! The built-in model: a small convolutional classifier of 64×64×4 multispectral tiles into cloud, water,
//! vegetation and bare land. One definition serves the CPU and GPU backends and the training program.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder, conv2d, linear};

/// Model id of the built-in classifier.
pub const TILE_CLASSIFIER: &str = "tile-classifier";

/// The shipped weights (safetensors), produced by `cargo run -p odc-accel --release --example train`.
pub const TILE_CLASSIFIER_WEIGHTS: &[u8] = include_bytes!("../models/tile-classifier.safetensors");

/// conv(4→8, 3×3) → ReLU → max-pool 4 → conv(8→16, 3×3) → ReLU → max-pool 4 → linear(256→4).
#[derive(Debug)]
pub struct TileClassifier {
    conv1: Conv2d,
    conv2: Conv2d,
    head: Linear,
}

impl TileClassifier {
    /// The network with weights from `vb` (names `conv1`, `conv2`, `head`).
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(TileClassifier {
            conv1: conv2d(4, 8, 3, cfg, vb.pp("conv1"))?,
            conv2: conv2d(8, 16, 3, cfg, vb.pp("conv2"))?,
            head: linear(16 * 4 * 4, 4, vb.pp("head"))?,
        })
    }

    /// The network with weights from safetensors bytes, on a device.
    pub fn from_safetensors(bytes: Vec<u8>, device: &candle_core::Device) -> Result<Self> {
        Self::new(VarBuilder::from_buffered_safetensors(
            bytes,
            candle_core::DType::F32,
            device,
        )?)
    }

    /// Logits `[n, 4]` of tiles `[n, 4, 64, 64]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(x)?.relu()?.max_pool2d(4)?;
        let x = self.conv2.forward(&x)?.relu()?.max_pool2d(4)?;
        self.head.forward(&x.flatten_from(1)?)
    }
}
