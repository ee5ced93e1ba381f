//! Text snapshots of small plans: a change in planning behaviour shows up as a readable diff of these files.
//! Set `ODC_UPDATE_SNAPSHOTS=1` to rewrite them after an intended change, and review the diff.

use odc_planner::synthetic::{Size, snapshot};
use odc_planner::{Change, Planner, plan};
use std::path::PathBuf;

fn check(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("ODC_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, text).expect("write snapshot");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if expected != text {
        let diff: Vec<String> = expected
            .lines()
            .zip(text.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "{name} changed ({} → {} lines):\n{}",
            expected.lines().count(),
            text.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn small_plan() {
    let s = snapshot(
        11,
        Size {
            nodes: 3,
            stations: 2,
            tenants: 2,
            jobs: 12,
            hours: 8,
        },
    );
    check("small_plan", &plan(&s).to_text());
}

#[test]
fn contended_plan() {
    let s = snapshot(
        5,
        Size {
            nodes: 2,
            stations: 1,
            tenants: 3,
            jobs: 30,
            hours: 6,
        },
    );
    check("contended_plan", &plan(&s).to_text());
}

#[test]
fn repaired_after_node_loss() {
    let s = snapshot(
        11,
        Size {
            nodes: 3,
            stations: 2,
            tenants: 2,
            jobs: 12,
            hours: 8,
        },
    );
    let mut planner = Planner::new(&s);
    let first = planner.outcome();
    let lost = first
        .jobs
        .values()
        .next()
        .map(|j| j.node.clone())
        .expect("a planned job");
    let repaired = planner.apply(&Change::NodeLost(lost), odc_model::id::PlanId::from_u128(1));
    check("repaired_after_node_loss", &repaired.to_text());
}
