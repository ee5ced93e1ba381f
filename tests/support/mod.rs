//! What the binary's end-to-end tests share: running `odc`, its stderr, scratch directories.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `odc` with these arguments.
pub fn odc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odc"))
        .args(args)
        .output()
        .expect("odc runs")
}

/// What a run wrote to stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh scratch directory.
pub fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "odc-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The calibration files.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/orbit-calibration");

/// A TLE line with its checksum (column 69) recomputed.
pub fn with_checksum(line: &str) -> String {
    let body: String = line.chars().take(68).collect();
    let sum: u32 = body
        .chars()
        .map(|c| match c {
            '-' => 1,
            d => d.to_digit(10).unwrap_or(0),
        })
        .sum();
    format!("{body}{}", sum % 10)
}

/// The calibration satellites.
pub fn tle() -> String {
    format!("{DATA}/satellites.tle")
}
