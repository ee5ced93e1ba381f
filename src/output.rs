//! Output helpers: JSON in the calibration files' layout (one record per line, `": "` and `", "` separators) and
//! a progress bar that appears only on a terminal.

use std::io::{IsTerminal, Write};

/// A serde_json formatter that separates like Python's `json.dumps` defaults: `{"a": 1, "b": [1, 2]}`.
struct SpacedFormatter;

impl serde_json::ser::Formatter for SpacedFormatter {
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
}

/// Writes records as a JSON array with one record per line.
pub fn write_json_lines<T: serde::Serialize>(records: &[T]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    out.write_all(b"[\n")?;
    for (i, record) in records.iter().enumerate() {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, SpacedFormatter);
        record.serialize(&mut ser)?;
        out.write_all(if i + 1 < records.len() { b",\n" } else { b"\n" })?;
    }
    out.write_all(b"]\n")?;
    out.flush()?;
    Ok(())
}

/// A progress bar over `total` items on stderr, or nothing when stderr is not a terminal.
pub fn progress(total: usize, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || total < 20 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

/// A table in the house style: borders, no rule between rows.
pub fn table() -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table
}
