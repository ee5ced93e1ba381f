//! The run report: a summary for the terminal, the machine-readable JSON, and a self-contained HTML page with SVG
//! plots (contact and batch timeline per satellite, state of charge and temperature per satellite, latency
//! distribution, usage per tenant). No scripts, no external files: it opens in any browser.

use serde::Serialize;
use std::fmt::Write as _;

/// A contact, hours into the run.
#[derive(Debug, Clone, Serialize)]
pub struct ContactSpan {
    /// Start.
    pub start_h: f64,
    /// End.
    pub end_h: f64,
    /// Station index.
    pub station: usize,
}

/// A batch on the accelerator, hours into the run.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSpan {
    /// Start.
    pub start_h: f64,
    /// End.
    pub end_h: f64,
    /// Jobs in it.
    pub jobs: usize,
    /// Whether the governor stopped it.
    pub preempted: bool,
}

/// A reading of a node's physics.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Hours into the run.
    pub hours: f64,
    /// State of charge, 0..1.
    pub soc: f64,
    /// Temperature, °C.
    pub temp_c: f64,
    /// Whether the accelerator was busy.
    pub busy: bool,
}

/// One satellite over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeReport {
    /// Node id.
    pub name: String,
    /// Its contacts.
    pub contacts: Vec<ContactSpan>,
    /// Its batches.
    pub batches: Vec<BatchSpan>,
    /// Readings every ten minutes.
    pub samples: Vec<Sample>,
    /// Lowest state of charge.
    pub min_soc: f64,
    /// Highest temperature, °C.
    pub max_temp_c: f64,
    /// When the battery first went below its minimum, hours (none in a correct run without faults).
    pub soc_breach: Option<f64>,
    /// When the temperature first went above its maximum, hours.
    pub temp_breach: Option<f64>,
    /// Governor decisions: hours, kind, reason.
    pub governor: Vec<(f64, String, String)>,
}

/// One tenant over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantReport {
    /// Name.
    pub name: String,
    /// Jobs accepted.
    pub accepted: usize,
    /// Delivered.
    pub delivered: usize,
    /// Delivered by the deadline.
    pub on_time: usize,
    /// Failed.
    pub failed: usize,
    /// Expired.
    pub expired: usize,
    /// Cancelled.
    pub cancelled: usize,
    /// Still open at the end (deadline after the end of the run).
    pub open: usize,
    /// Billed accelerator time, s.
    pub accelerator_s: f64,
    /// Billed energy, Wh.
    pub energy_wh: f64,
    /// Billed uplink, bytes.
    pub uplink_bytes: u64,
    /// Billed downlink, bytes.
    pub downlink_bytes: u64,
    /// Submission to delivery, s, per delivered job.
    pub latencies_s: Vec<f64>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Start, RFC 3339.
    pub scenario_start: String,
    /// Simulated hours.
    pub hours: f64,
    /// Seed.
    pub seed: u64,
    /// Accelerator backend.
    pub backend: String,
    /// Per satellite.
    pub nodes: Vec<NodeReport>,
    /// Station ids, by index.
    pub stations: Vec<String>,
    /// Per tenant.
    pub tenants: Vec<TenantReport>,
    /// Jobs submitted.
    pub submitted: usize,
    /// Submissions refused, by reason.
    pub refused: Vec<(String, usize)>,
    /// Full replans.
    pub replans: usize,
    /// Repairs of the plan in force (new jobs placed, changes applied between full replans).
    pub repairs: usize,
    /// Link frames sent.
    pub frames_sent: u64,
    /// Link frames lost.
    pub frames_lost: u64,
    /// Bytes sent up.
    pub bytes_up: u64,
    /// Bytes sent down.
    pub bytes_down: u64,
    /// Bytes sent over inter-satellite links.
    pub bytes_isl: u64,
    /// Inputs the ground handed to a neighbour to relay over an ISL.
    pub relayed_inputs: u64,
    /// Results that came down through a neighbour.
    pub relayed_results: u64,
    /// Results whose class was checked against the tile's true class.
    pub results_checked: usize,
    /// Of which correct.
    pub results_correct: usize,
    /// Faults injected: hours, what.
    pub faults: Vec<(f64, String)>,
    /// Invariants that failed.
    pub violations: Vec<String>,
    /// Trace hash.
    pub trace_hash: String,
}

/// The p-th percentile (0..100) of unsorted values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let k = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v.get(k.min(v.len() - 1)).copied()
}

impl RunReport {
    /// Governor actions of all nodes, by kind.
    pub fn governor_counts(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<String, usize> =
            std::collections::BTreeMap::new();
        for n in &self.nodes {
            for g in &n.governor {
                *counts.entry(g.1.clone()).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// Contact hours over the run and the fraction of them that carried traffic is not tracked; this is the total.
    pub fn contact_hours(&self) -> f64 {
        self.nodes
            .iter()
            .flat_map(|n| &n.contacts)
            .map(|c| c.end_h - c.start_h)
            .sum()
    }

    /// Accelerator hours used.
    pub fn busy_hours(&self) -> f64 {
        self.nodes
            .iter()
            .flat_map(|n| &n.batches)
            .map(|b| b.end_h - b.start_h)
            .sum()
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The human summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let delivered: usize = self.tenants.iter().map(|t| t.delivered).sum();
        let accepted: usize = self.tenants.iter().map(|t| t.accepted).sum();
        let _ = writeln!(
            s,
            "{} satellites, {} stations, {:.0} h from {}, backend {}, seed {}",
            self.nodes.len(),
            self.stations.len(),
            self.hours,
            self.scenario_start,
            self.backend,
            self.seed
        );
        let _ = writeln!(
            s,
            "jobs: {} submitted, {} accepted, {} delivered, {} replans, {} repairs",
            self.submitted, accepted, delivered, self.replans, self.repairs
        );
        for (reason, n) in &self.refused {
            let _ = writeln!(s, "  refused {n}: {reason}");
        }
        let _ = writeln!(
            s,
            "{:<14} {:>8} {:>9} {:>7} {:>6} {:>7} {:>6} {:>9} {:>9} {:>9}",
            "tenant",
            "accepted",
            "delivered",
            "on time",
            "failed",
            "expired",
            "open",
            "p50",
            "p90",
            "p99"
        );
        for t in &self.tenants {
            let p = |q| {
                percentile(&t.latencies_s, q)
                    .map_or("-".to_string(), |v| format!("{:.1} h", v / 3600.0))
            };
            let _ = writeln!(
                s,
                "{:<14} {:>8} {:>9} {:>7} {:>6} {:>7} {:>6} {:>9} {:>9} {:>9}",
                t.name,
                t.accepted,
                t.delivered,
                t.on_time,
                t.failed,
                t.expired,
                t.open,
                p(50.0),
                p(90.0),
                p(99.0)
            );
        }
        let _ = writeln!(
            s,
            "links: {:.1} contact hours, {:.1} MB up, {:.1} MB down, {} frames ({} lost)",
            self.contact_hours(),
            self.bytes_up as f64 / 1e6,
            self.bytes_down as f64 / 1e6,
            self.frames_sent,
            self.frames_lost
        );
        let _ = writeln!(
            s,
            "relay: {:.1} MB over ISLs; {} inputs sent up and {} results brought down through a neighbour",
            self.bytes_isl as f64 / 1e6,
            self.relayed_inputs,
            self.relayed_results
        );
        let energy: f64 = self.tenants.iter().map(|t| t.energy_wh).sum();
        let lowest = self.nodes.iter().map(|n| n.min_soc).fold(1.0, f64::min);
        let hottest = self
            .nodes
            .iter()
            .map(|n| n.max_temp_c)
            .fold(f64::MIN, f64::max);
        let _ = writeln!(
            s,
            "energy: {:.1} accelerator hours, {energy:.0} Wh billed; lowest charge {:.1}%, hottest {hottest:.1} °C",
            self.busy_hours(),
            lowest * 100.0
        );
        let governor: Vec<String> = self
            .governor_counts()
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let _ = writeln!(
            s,
            "governor: {}",
            if governor.is_empty() {
                "no actions".to_string()
            } else {
                governor.join(", ")
            }
        );
        if self.results_checked > 0 {
            let _ = writeln!(
                s,
                "inference: {} of {} results name the tile's true class ({:.1}%)",
                self.results_correct,
                self.results_checked,
                100.0 * self.results_correct as f64 / self.results_checked as f64
            );
        }
        for (h, f) in &self.faults {
            let _ = writeln!(s, "fault at {h:.2} h: {f}");
        }
        if self.violations.is_empty() {
            let _ = writeln!(s, "invariants: all hold");
        } else {
            let _ = writeln!(s, "invariants: {} violated", self.violations.len());
            for v in self.violations.iter().take(20) {
                let _ = writeln!(s, "  {v}");
            }
        }
        let _ = writeln!(s, "trace {}", self.trace_hash);
        s
    }

    /// The self-contained HTML report.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>odc twin report</title>\n");
        h.push_str("<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}h2{margin-top:1.5em}");
        h.push_str("table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}");
        h.push_str("th:first-child,td:first-child{text-align:left}svg{display:block;margin:0.5em 0}</style></head><body>\n");
        let _ = writeln!(
            h,
            "<h1>odc twin report</h1>\n<pre>{}</pre>",
            escape(&self.summary())
        );
        h.push_str("<h2>Contacts and batches</h2>\n");
        h.push_str(&self.timeline_svg());
        h.push_str("<h2>State of charge</h2>\n");
        h.push_str(&self.series_svg(|s| s.soc * 100.0, "%"));
        h.push_str("<h2>Temperature</h2>\n");
        h.push_str(&self.series_svg(|s| s.temp_c, "°C"));
        h.push_str("<h2>Latency, submission to delivery</h2>\n");
        h.push_str(&self.latency_svg());
        h.push_str("<h2>Usage per tenant</h2>\n");
        h.push_str(&self.usage_svg());
        h.push_str("<table><tr><th>tenant</th><th>delivered</th><th>accelerator s</th><th>energy Wh</th><th>up MB</th><th>down MB</th></tr>\n");
        for t in &self.tenants {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td></tr>",
                escape(&t.name),
                t.delivered,
                t.accelerator_s,
                t.energy_wh,
                t.uplink_bytes as f64 / 1e6,
                t.downlink_bytes as f64 / 1e6
            );
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }

    fn timeline_svg(&self) -> String {
        let (w, row, left) = (1000.0, 16.0, 90.0);
        let height = row * self.nodes.len().max(1) as f64 + 30.0;
        let x =
            |hours: f64| left + (w - left - 10.0) * (hours / self.hours.max(1e-9)).clamp(0.0, 1.0);
        let mut s = svg_open(w, height, "contact and batch timeline per satellite");
        for (i, n) in self.nodes.iter().take(60).enumerate() {
            let y = 10.0 + row * i as f64;
            let _ = write!(
                s,
                "<text x=\"2\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                y + 10.0,
                escape(&n.name)
            );
            for c in &n.contacts {
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"6\" fill=\"#4c8bd6\"/>",
                    x(c.start_h),
                    (x(c.end_h) - x(c.start_h)).max(0.5)
                );
            }
            for b in &n.batches {
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"6\" fill=\"{}\"/>",
                    x(b.start_h),
                    y + 7.0,
                    (x(b.end_h) - x(b.start_h)).max(0.5),
                    if b.preempted { "#d64c4c" } else { "#3aa655" }
                );
            }
        }
        axis_hours(&mut s, self.hours, left, w, height - 12.0);
        let _ = write!(
            s,
            "<text x=\"{left}\" y=\"{:.1}\" font-size=\"10\" fill=\"#4c8bd6\">contacts</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#3aa655\">batches</text>",
            height - 1.0,
            left + 60.0,
            height - 1.0
        );
        s.push_str("</svg>\n");
        s
    }

    fn series_svg(&self, f: impl Fn(&Sample) -> f64, unit: &str) -> String {
        let (w, h, left) = (1000.0, 220.0, 50.0);
        let values: Vec<f64> = self
            .nodes
            .iter()
            .flat_map(|n| n.samples.iter().map(&f))
            .collect();
        let lo = values.iter().copied().fold(f64::MAX, f64::min);
        let hi = values.iter().copied().fold(f64::MIN, f64::max);
        let (lo, hi) = if values.is_empty() {
            (0.0, 1.0)
        } else if hi - lo < 1e-9 {
            (lo - 1.0, hi + 1.0)
        } else {
            (lo, hi)
        };
        let x =
            |hours: f64| left + (w - left - 10.0) * (hours / self.hours.max(1e-9)).clamp(0.0, 1.0);
        let y = |v: f64| 10.0 + (h - 40.0) * (1.0 - (v - lo) / (hi - lo));
        let mut s = svg_open(w, h, &format!("per-satellite series in {unit}"));
        for (k, n) in self.nodes.iter().enumerate() {
            if n.samples.is_empty() {
                continue;
            }
            let points: Vec<String> = n
                .samples
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.hours), y(f(p))))
                .collect();
            let hue = (k * 47) % 360;
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"hsl({hue},60%,45%)\" stroke-width=\"1\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        let _ = write!(
            s,
            "<text x=\"2\" y=\"14\" font-size=\"10\">{hi:.1} {unit}</text><text x=\"2\" y=\"{:.1}\" font-size=\"10\">{lo:.1} {unit}</text>",
            h - 30.0
        );
        axis_hours(&mut s, self.hours, left, w, h - 12.0);
        s.push_str("</svg>\n");
        s
    }

    fn latency_svg(&self) -> String {
        let (w, h) = (1000.0, 200.0);
        let all: Vec<f64> = self
            .tenants
            .iter()
            .flat_map(|t| t.latencies_s.iter().map(|v| v / 3600.0))
            .collect();
        let max = all.iter().copied().fold(1.0, f64::max).ceil();
        let bins = 48usize;
        let mut counts = vec![0usize; bins];
        for v in &all {
            let k = ((v / max) * bins as f64) as usize;
            counts[k.min(bins - 1)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let mut s = svg_open(w, h, "latency histogram in hours");
        let bw = (w - 60.0) / bins as f64;
        for (k, c) in counts.iter().enumerate() {
            let bh = (h - 40.0) * (*c as f64 / top);
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#7a5cc7\"/>",
                50.0 + bw * k as f64,
                h - 30.0 - bh,
                bw - 1.0
            );
        }
        let _ = write!(
            s,
            "<text x=\"50\" y=\"{:.1}\" font-size=\"10\">0 h</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{max:.0} h</text><text x=\"2\" y=\"14\" font-size=\"10\">{top:.0} jobs</text>",
            h - 16.0,
            w - 40.0,
            h - 16.0
        );
        s.push_str("</svg>\n");
        s
    }

    fn usage_svg(&self) -> String {
        let (w, row) = (1000.0, 24.0);
        let h = row * self.tenants.len().max(1) as f64 + 20.0;
        let max = self
            .tenants
            .iter()
            .map(|t| t.accelerator_s)
            .fold(1e-9, f64::max);
        let mut s = svg_open(w, h, "accelerator seconds billed per tenant");
        for (k, t) in self.tenants.iter().enumerate() {
            let y = 5.0 + row * k as f64;
            let bw = (w - 250.0) * t.accelerator_s / max;
            let _ = write!(
                s,
                "<text x=\"2\" y=\"{:.1}\" font-size=\"11\">{}</text><rect x=\"120\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"16\" fill=\"#d68a4c\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{:.1} s, {} jobs</text>",
                y + 12.0,
                escape(&t.name),
                125.0 + bw,
                y + 12.0,
                t.accelerator_s,
                t.delivered
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn svg_open(w: f64, h: f64, label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    )
}

fn axis_hours(s: &mut String, hours: f64, left: f64, w: f64, y: f64) {
    let step = if hours > 48.0 {
        12.0
    } else if hours > 12.0 {
        3.0
    } else {
        1.0
    };
    let mut t = 0.0;
    while t <= hours + 1e-9 {
        let x = left + (w - left - 10.0) * (t / hours.max(1e-9));
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"9\">{t:.0}h</text>"
        );
        t += step;
    }
}

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
