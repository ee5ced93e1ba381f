//! The flight store: a saved node comes back the same after a reopen, and `kill -9` at random points of a node
//! that takes jobs and runs them loses nothing it acknowledged and never forgets a finished result.
//!
//! The crash test re-runs this test binary as the node (`crash_child`, ignored unless asked for), kills it with
//! SIGKILL after a random few milliseconds, reopens the file and checks it, 100 times over one store.
//! `ODC_CRASH_ROUNDS=1000 cargo test -p odc-flight --test store` runs a longer campaign.

use odc_flight::store::FlightStore;
use odc_flight::{Action, FlightCore, FlightJobState, GovernorConfig, RunOutput, Sensors};
use odc_model::id::{IdGenerator, JobId, ModelId, NodeId, SplitMix64};
use odc_model::job::{BlobRef, JobSpec, Priority};
use odc_model::spec::{ModelProfile, NodeSpec};
use odc_model::time::{Duration, Instant};
use odc_model::wire::{Envelope, InputChunk, Message, PROTOCOL, Sender};
use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::str::FromStr;

fn t0() -> Instant {
    Instant::from_unix_ms(1_780_000_000_000)
}

fn spec() -> NodeSpec {
    let mut s = NodeSpec::leo_default(NodeId::new("n1").expect("id"), 1);
    s.accelerator.models.insert(
        ModelId::new("m").expect("id"),
        ModelProfile {
            input_bytes_per_s: 1_000.0,
            batch_setup_s: 1.0,
        },
    );
    s
}

fn input(id: JobId, k: u64) -> Envelope {
    let data = k.to_le_bytes().repeat(64);
    let spec = JobSpec {
        tenant: IdGenerator::seeded(0).tenant(t0()),
        model: ModelId::new("m").expect("id"),
        input: BlobRef::of(&data),
        output_bound_bytes: 64,
        deadline: t0() + Duration::from_hours(6),
        priority: Priority::new(5).expect("priority"),
        idempotency_key: format!("k{k}"),
    };
    Envelope {
        version: PROTOCOL,
        sender: Sender::Ground,
        incarnation: 1,
        seq: k,
        sent_at: t0(),
        message: Message::InputChunk(InputChunk {
            job: id,
            spec,
            offset: 0,
            data,
        }),
    }
}

fn healthy() -> Sensors {
    Sensors {
        state_of_charge: 0.95,
        temp_c: 20.0,
        in_eclipse: false,
    }
}

/// Opens the node as a daemon would: recovered from the store, or fresh.
fn boot(store: &FlightStore, now: Instant) -> FlightCore {
    match store.load().expect("load") {
        Some(durable) => FlightCore::recover(durable, spec(), GovernorConfig::default(), now),
        None => FlightCore::new(spec(), GovernorConfig::default()),
    }
}

fn save(store: &FlightStore, core: &mut FlightCore) {
    let changed = core.take_changed();
    store.save(core.durable(), &changed).expect("save");
}

/// Runs every due batch to completion with a result derived from the job id; the ids finished.
fn run_due(core: &mut FlightCore, now: Instant) -> Vec<JobId> {
    core.tick(healthy(), now);
    let mut done = Vec::new();
    while let Some(Action::Run(req)) = core.poll_action(now) {
        let outputs: Vec<RunOutput> = req
            .jobs
            .iter()
            .map(|(id, _)| RunOutput {
                job: *id,
                result: Ok(id.to_string().into_bytes()),
            })
            .collect();
        done.extend(req.jobs.iter().map(|(id, _)| *id));
        core.batch_done(req.run, outputs, 1.0, 0.01, now);
    }
    done
}

#[test]
fn a_saved_node_comes_back_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.redb");
    let mut ids = IdGenerator::seeded(1);
    let before = {
        let store = FlightStore::open(&path).expect("open");
        assert!(store.load().expect("load").is_none(), "first boot");
        let mut core = FlightCore::new(spec(), GovernorConfig::default());
        for k in 0..20 {
            core.handle_message(input(ids.job(t0()), k), t0());
        }
        save(&store, &mut core);
        run_due(&mut core, t0());
        for k in 20..25 {
            core.handle_message(input(ids.job(t0()), k), t0());
        }
        save(&store, &mut core);
        rmp_serde::to_vec_named(core.durable()).expect("encode")
    };
    let store = FlightStore::open(&path).expect("reopen");
    let loaded = store.load().expect("load").expect("saved");
    assert_eq!(rmp_serde::to_vec_named(&loaded).expect("encode"), before);
    let core = FlightCore::recover(loaded, spec(), GovernorConfig::default(), t0());
    assert_eq!(core.durable().incarnation, 2);
    assert_eq!(core.queue_depth(), 5);
    assert_eq!(core.outbox_depth(), 20);
}

/// The node the crash test kills: takes a job, saves, says `acked <id>`; every few jobs runs what is due, saves,
/// says `done <id>` for each. Runs until killed.
#[test]
#[ignore = "run by kill_9_at_random_points_loses_nothing as a child process"]
fn crash_child() {
    let Ok(path) = std::env::var("ODC_CRASH_STORE") else {
        return;
    };
    let store = FlightStore::open(std::path::Path::new(&path)).expect("open");
    let now = t0();
    let mut core = boot(&store, now);
    save(&store, &mut core);
    let incarnation = core.durable().incarnation;
    let mut ids = IdGenerator::seeded(incarnation);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "up {incarnation}");
    for k in 0.. {
        let id = ids.job(now + Duration::from_millis(k));
        core.handle_message(input(id, incarnation * 1_000_000 + k as u64), now);
        save(&store, &mut core);
        let _ = writeln!(out, "acked {id}");
        if k % 5 == 4 {
            let done = run_due(&mut core, now);
            save(&store, &mut core);
            for id in done {
                let _ = writeln!(out, "done {id}");
            }
        }
        let _ = out.flush();
    }
}

#[test]
fn kill_9_at_random_points_loses_nothing() {
    let rounds: u64 = std::env::var("ODC_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.redb");
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = SplitMix64::new(7);
    let mut acked: BTreeSet<JobId> = BTreeSet::new();
    let mut done: BTreeSet<JobId> = BTreeSet::new();
    for round in 0..rounds {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("ODC_CRASH_STORE", &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        // Sometimes during start-up and recovery, mostly while it works.
        let wait = 1 + rng.next_u64() % 40;
        std::thread::sleep(std::time::Duration::from_millis(wait));
        let _ = child.kill();
        let _ = child.wait();
        let lines = reader.join().expect("reader");
        for l in &lines {
            if let Some(id) = l.strip_prefix("acked ") {
                acked.insert(JobId::from_str(id).expect("id"));
            } else if let Some(id) = l.strip_prefix("done ") {
                done.insert(JobId::from_str(id).expect("id"));
            }
        }
        let store = FlightStore::open(&path).expect("reopen after kill -9");
        let Some(durable) = store.load().expect("the file is consistent after kill -9") else {
            assert!(
                acked.is_empty(),
                "round {round}: nothing on disk but jobs were acknowledged"
            );
            continue;
        };
        for id in &acked {
            assert!(
                durable.jobs.contains_key(id),
                "round {round}: acknowledged job {id} lost"
            );
        }
        for id in &done {
            let job = &durable.jobs[id];
            assert_eq!(
                job.state,
                FlightJobState::Done,
                "round {round}: finished job {id} went back"
            );
            assert_eq!(
                job.result.as_deref(),
                Some(id.to_string().as_bytes()),
                "round {round}: result of {id}"
            );
            assert_eq!(job.attempts, 1, "round {round}: {id} ran more than once");
        }
    }
    println!(
        "{rounds} kill -9 restarts: {} jobs acknowledged, {} finished, none lost",
        acked.len(),
        done.len()
    );
    assert!(
        acked.len() as u64 > rounds,
        "the node made progress: {} jobs",
        acked.len()
    );
    assert!(!done.is_empty(), "batches ran");
}
