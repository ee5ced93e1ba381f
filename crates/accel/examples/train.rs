//! Trains the built-in tile classifier on procedurally generated tiles and writes
//! `crates/accel/models/tile-classifier.safetensors`; prints the accuracy on a held-out generated set.
//! Run with `cargo run -p odc-accel --release --example train`.

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap, loss};
use odc_accel::model::TileClassifier;
use odc_accel::tiles::{self, VALUES};

fn batch(
    set: &[(tiles::Class, Vec<f32>)],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let data: Vec<f32> = set.iter().flat_map(|(_, t)| t.iter().copied()).collect();
    let labels: Vec<u32> = set.iter().map(|(c, _)| *c as u32).collect();
    Ok((
        Tensor::from_vec(data, (set.len(), 4, 64, 64), device)?,
        Tensor::from_vec(labels, set.len(), device)?,
    ))
}

fn main() -> candle_core::Result<()> {
    let device = Device::Cpu;
    let train = tiles::dataset(2400, 1);
    let held_out = tiles::dataset(800, 1_000_000);
    assert_eq!(train[0].1.len(), VALUES);
    let varmap = VarMap::new();
    let model = TileClassifier::new(VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )?;
    for epoch in 0..6 {
        let mut total = 0.0;
        for chunk in train.chunks(64) {
            let (x, y) = batch(chunk, &device)?;
            let l = loss::cross_entropy(&model.forward(&x)?, &y)?;
            opt.backward_step(&l)?;
            total += l.to_scalar::<f32>()?;
        }
        println!(
            "epoch {epoch}: mean loss {:.4}",
            total / (train.len() as f32 / 64.0)
        );
    }
    let (x, y) = batch(&held_out, &device)?;
    let predicted = model.forward(&x)?.argmax(1)?;
    let correct = predicted
        .eq(&y)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    println!(
        "held-out accuracy: {:.4} ({} tiles)",
        correct / held_out.len() as f32,
        held_out.len()
    );
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/tile-classifier.safetensors"
    );
    varmap.save(path)?;
    println!("weights written to {path}");
    Ok(())
}
