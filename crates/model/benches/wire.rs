//! Wire benchmark: encode and decode rates of a typical batch-plan message (a node's day: 10 batches of 10 jobs,
//! 10 contacts, 200 routes) and of a small job-update message. Run with `cargo bench -p odc-model`.

use odc_model::sample::Sampler;
use odc_model::wire::{self, Envelope, JobUpdate, JobUpdates, Message, PlanUpdate};
use std::hint::black_box;
use std::time::Instant;

fn rate(label: &str, envelope: &Envelope) {
    let frame = wire::encode(envelope).expect("encodes");
    let json = wire::to_json(envelope);
    // Enough rounds for about a second each; best of three.
    let rounds = (200_000_000 / frame.len().max(1)).clamp(1_000, 1_000_000);
    let mut best_encode = f64::INFINITY;
    let mut best_decode = f64::INFINITY;
    for _ in 0..3 {
        let t0 = Instant::now();
        for _ in 0..rounds {
            black_box(wire::encode(black_box(envelope)).expect("encodes"));
        }
        best_encode = best_encode.min(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        for _ in 0..rounds {
            black_box(wire::decode(black_box(&frame)).expect("decodes"));
        }
        best_decode = best_decode.min(t0.elapsed().as_secs_f64());
    }
    let n = rounds as f64;
    println!(
        "{label}: {} bytes (JSON {} bytes); encode {:.0} msg/s ({:.0} MB/s), decode {:.0} msg/s ({:.0} MB/s)",
        frame.len(),
        json.len(),
        n / best_encode,
        n * frame.len() as f64 / best_encode / 1e6,
        n / best_decode,
        n * frame.len() as f64 / best_decode / 1e6,
    );
}

fn main() {
    let mut sampler = Sampler::new(2026);
    let mut plan = sampler.envelope(1);
    plan.message = Message::PlanUpdate(PlanUpdate {
        plan: sampler.plan(10, 10),
    });
    rate(
        "batch plan (10 batches × 10 jobs, 10 contacts, 200 routes)",
        &plan,
    );
    let mut updates = sampler.envelope(4);
    updates.message = Message::JobUpdates(JobUpdates {
        updates: (0..5)
            .map(|_| {
                let Message::JobUpdates(u) = sampler.message(4) else {
                    unreachable!("kind 4 is job updates")
                };
                u.updates
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| unreachable!("at least one update"))
            })
            .collect::<Vec<JobUpdate>>(),
    });
    rate("job updates (5 events)", &updates);
}
