//! Procedurally generated multispectral tiles: the built-in workload (on-board triage of Earth-observation
//! imagery). A tile is 64×64 pixels in 4 bands (blue, green, red, near-infrared), reflectance 0..1, stored
//! band-major as little-endian f32. Classes follow the spectral signatures an on-board classifier uses:
//! clouds are bright and flat in every band, water is dark with near-infrared darkest, vegetated land is dark in
//! red and bright in near-infrared, bare land is mid-bright and rises towards the red.

use odc_model::id::SplitMix64;

/// Tile side, pixels.
pub const SIDE: usize = 64;
/// Spectral bands.
pub const BANDS: usize = 4;
/// Values per tile.
pub const VALUES: usize = SIDE * SIDE * BANDS;
/// Bytes per tile (f32).
pub const TILE_BYTES: usize = VALUES * 4;

/// What a tile shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Cloud cover: worthless for most customers, the triage case.
    Cloud = 0,
    /// Open water.
    Water = 1,
    /// Vegetated land.
    Vegetation = 2,
    /// Bare soil, rock, built-up land.
    Bare = 3,
}

impl Class {
    /// All classes, by index.
    pub const ALL: [Class; 4] = [Class::Cloud, Class::Water, Class::Vegetation, Class::Bare];

    /// The class's label.
    pub fn name(self) -> &'static str {
        match self {
            Class::Cloud => "cloud",
            Class::Water => "water",
            Class::Vegetation => "vegetation",
            Class::Bare => "bare",
        }
    }
}

fn unit(rng: &mut SplitMix64) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

/// A tile of this class, from a seed: band-major f32 reflectances with smooth texture, noise, haze, and the
/// confusions real scenes have — scattered cloud over a clear scene (under a third of it), thin cloud letting
/// the ground show through, and land cover mixed with a minority of another cover.
pub fn tile(class: Class, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed ^ (class as u64).wrapping_mul(0x9E37_79B9));
    // Mean reflectance per band, with per-tile variation.
    let base: [f32; BANDS] = match class {
        Class::Cloud => [0.75, 0.75, 0.74, 0.72],
        Class::Water => [0.10, 0.08, 0.05, 0.02],
        Class::Vegetation => [0.04, 0.08, 0.05, 0.45],
        Class::Bare => [0.18, 0.24, 0.30, 0.36],
    };
    let gain = 0.7 + 0.6 * unit(&mut rng);
    let haze = if class == Class::Cloud {
        0.0
    } else {
        0.15 * unit(&mut rng) * unit(&mut rng)
    };
    // Low-frequency texture: a few random waves.
    let waves: Vec<(f32, f32, f32, f32)> = (0..4)
        .map(|_| {
            (
                unit(&mut rng) * 0.3,
                unit(&mut rng) * 0.3,
                unit(&mut rng) * std::f32::consts::TAU,
                0.02 + 0.08 * unit(&mut rng),
            )
        })
        .collect();
    // A minority cover mixed in (land classes), and cloud: scattered over clear scenes, thin over cloudy ones.
    let minority: [f32; BANDS] = match class {
        Class::Vegetation => [0.18, 0.24, 0.30, 0.36],
        Class::Bare => [0.04, 0.08, 0.05, 0.45],
        _ => base,
    };
    let minority_share = 0.35 * unit(&mut rng);
    let cloud_cover = if class == Class::Cloud {
        0.65 + 0.35 * unit(&mut rng)
    } else {
        0.3 * unit(&mut rng)
    };
    let cloud_opacity = if class == Class::Cloud {
        0.55 + 0.45 * unit(&mut rng)
    } else {
        0.9
    };
    let (cx, cy, cr) = (
        unit(&mut rng) * SIDE as f32,
        unit(&mut rng) * SIDE as f32,
        4.0 + 12.0 * unit(&mut rng),
    );
    let mut out = vec![0.0f32; VALUES];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let texture: f32 = waves
                .iter()
                .map(|&(fx, fy, ph, a)| a * (fx * x as f32 + fy * y as f32 + ph).sin())
                .sum();
            // Cloud mask: a smooth field thresholded at the cover fraction.
            let field = 0.5
                + 0.25 * ((x as f32 - cx) / cr).sin() * ((y as f32 - cy) / cr).cos()
                + 0.25 * (texture * 4.0).sin();
            let clouded = class == Class::Cloud || field < cloud_cover;
            let mixed = ((x as f32 * 0.21 + y as f32 * 0.13 + texture * 9.0).sin() * 0.5 + 0.5)
                < minority_share;
            for b in 0..BANDS {
                let noise = 0.03 * (unit(&mut rng) - 0.5);
                let ground_mean = if mixed { minority[b] } else { base[b] };
                let mut v = ground_mean * gain + texture * (0.5 + ground_mean) + haze + noise;
                if clouded && class != Class::Cloud {
                    v = cloud_opacity * 0.75 + (1.0 - cloud_opacity) * v;
                } else if class == Class::Cloud {
                    // Thin cloud over some ground: the ground shows through.
                    let ground = [0.10, 0.12, 0.12, 0.25][b];
                    v = cloud_opacity * v + (1.0 - cloud_opacity) * ground;
                }
                out[b * SIDE * SIDE + y * SIDE + x] = v.clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// A tile as the bytes a tenant uploads (little-endian f32, band-major).
pub fn tile_bytes(class: Class, seed: u64) -> Vec<u8> {
    tile(class, seed)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// A labelled set: `n` tiles cycling through the classes, seeds from `first_seed`.
pub fn dataset(n: usize, first_seed: u64) -> Vec<(Class, Vec<f32>)> {
    (0..n)
        .map(|i| {
            let class = Class::ALL[i % 4];
            (class, tile(class, first_seed + i as u64))
        })
        .collect()
}
