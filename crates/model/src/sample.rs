//! Deterministic sample values built from a seed: every message kind with plausible contents, for round-trip
//! tests, benchmarks, fuzz seeds and synthetic workloads. The same seed always gives the same values.

use crate::id::{IdGenerator, ModelId, NodeId, SplitMix64, StationId};
use crate::job::{BlobRef, FailureReason, JobEvent, JobSpec, Priority};
use crate::plan::{Batch, ContactReservation, Direction, Endpoint, Hop, Plan, Route};
use crate::telemetry::NodeTelemetry;
use crate::time::{Duration, Instant};
use crate::wire::{
    Ack, Envelope, Hello, InputChunk, JobUpdate, JobUpdates, Message, PROTOCOL, PlanUpdate, Reject,
    Relay, ResultChunk, Sender,
};

/// A source of sample values.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: SplitMix64,
    ids: IdGenerator,
    now: Instant,
}

impl Sampler {
    /// A sampler for this seed, with its clock at 2026-06-20T00:00:00Z.
    pub fn new(seed: u64) -> Sampler {
        Sampler {
            rng: SplitMix64::new(seed),
            ids: IdGenerator::seeded(seed ^ 0x5eed),
            now: Instant::from_unix_ms(1_781_913_600_000),
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn tick(&mut self) -> Instant {
        let step = Duration::from_millis(1 + self.below(5_000) as i64);
        self.now += step;
        self.now
    }

    /// A node id among a fleet of 24.
    pub fn node(&mut self) -> NodeId {
        NodeId::new(format!("sat-{:03}", self.below(24))).unwrap_or_else(|_| unreachable_name())
    }

    /// A station id among six.
    pub fn station(&mut self) -> StationId {
        const NAMES: [&str; 6] = [
            "svalbard",
            "mcmurdo",
            "madrid",
            "singapore",
            "hartebeesthoek",
            "south-point",
        ];
        StationId::new(NAMES[self.below(6) as usize]).unwrap_or_else(|_| unreachable_name())
    }

    /// A model id among three.
    pub fn model(&mut self) -> ModelId {
        const NAMES: [&str; 3] = ["minilm-l6", "resnet50", "yolo-v8n"];
        ModelId::new(NAMES[self.below(3) as usize]).unwrap_or_else(|_| unreachable_name())
    }

    /// A blob reference of a random small payload.
    pub fn blob(&mut self) -> BlobRef {
        let bytes: Vec<u8> = (0..16).map(|_| self.below(256) as u8).collect();
        BlobRef {
            size_bytes: 1 + self.below(50_000_000),
            ..BlobRef::of(&bytes)
        }
    }

    /// A job spec.
    pub fn job_spec(&mut self) -> JobSpec {
        let now = self.tick();
        JobSpec {
            tenant: self.ids.tenant(now),
            model: self.model(),
            input: self.blob(),
            output_bound_bytes: 1 + self.below(10_000_000),
            deadline: now + Duration::from_hours(1 + self.below(48) as i64),
            priority: Priority::new(self.below(10) as u8).unwrap_or(Priority::MAX),
            idempotency_key: format!("req-{}", self.below(1 << 40)),
        }
    }

    /// A job event of any kind.
    pub fn job_event(&mut self) -> JobEvent {
        let now = self.tick();
        match self.below(13) {
            0 => JobEvent::Accept,
            1 => JobEvent::Plan {
                plan: self.ids.plan(now),
                batch: self.ids.batch(now),
                node: self.node(),
            },
            2 => JobEvent::Unplan {
                plan: self.ids.plan(now),
            },
            3 => JobEvent::Uplink { node: self.node() },
            4 => JobEvent::Enqueue { node: self.node() },
            5 => JobEvent::Start {
                node: self.node(),
                attempt: 1 + self.below(3) as u32,
            },
            6 => JobEvent::Requeue {
                node: self.node(),
                attempt: 1 + self.below(3) as u32,
            },
            7 => JobEvent::Finish {
                output: self.blob(),
                accelerator_s: self.unit() * 100.0,
                energy_wh: self.unit(),
            },
            8 => JobEvent::Downlink {
                station: self.station(),
                output: self.blob(),
            },
            9 => JobEvent::Deliver,
            10 => JobEvent::Fail {
                reason: match self.below(4) {
                    0 => FailureReason::QuotaExceeded {
                        resource: "energy_wh".into(),
                    },
                    1 => FailureReason::OutputTooLarge {
                        limit_bytes: 10,
                        actual_bytes: 11,
                    },
                    2 => FailureReason::ExecutionError {
                        message: "backend error".into(),
                    },
                    _ => FailureReason::DeadlineUnreachable,
                },
            },
            11 => JobEvent::Cancel,
            _ => JobEvent::Expire,
        }
    }

    /// A plan with this many batches of `jobs_per_batch` jobs, one contact per batch and an up and a down route
    /// per job: the shape of a real plan update.
    pub fn plan(&mut self, batches: usize, jobs_per_batch: usize) -> Plan {
        let now = self.tick();
        let start = now;
        let end = now + Duration::from_hours(24);
        let mut plan = Plan::first(self.ids.plan(now), now, start, end);
        plan.generation = 1 + self.below(1000);
        if plan.generation > 1 {
            plan.parent = Some(self.ids.plan(now));
        }
        for _ in 0..batches {
            let node = self.node();
            let station = self.station();
            let slot = start + Duration::from_mins(self.below(1300) as i64);
            let contact = self.ids.contact(now);
            plan.contacts.push(ContactReservation {
                id: contact,
                station: station.clone(),
                antenna: self.below(2) as u32,
                node: node.clone(),
                start: slot,
                end: slot + Duration::from_mins(8),
                uplink_bytes: self.below(1 << 30),
                downlink_bytes: self.below(1 << 34),
            });
            let jobs: Vec<_> = (0..jobs_per_batch).map(|_| self.ids.job(now)).collect();
            for job in &jobs {
                for direction in [Direction::Up, Direction::Down] {
                    plan.routes.push(Route {
                        job: *job,
                        direction,
                        bytes: self.below(1 << 26),
                        hops: vec![Hop {
                            from: Endpoint::Station(station.clone()),
                            to: Endpoint::Node(node.clone()),
                            start: slot,
                            end: slot + Duration::from_mins(8),
                            contact: Some(contact),
                        }],
                    });
                }
            }
            plan.batches.push(Batch {
                id: self.ids.batch(now),
                node,
                tenant: self.ids.tenant(now),
                model: self.model(),
                jobs,
                start: slot + Duration::from_mins(10),
                end: slot + Duration::from_mins(30),
                accelerator_s: self.unit() * 1200.0,
                energy_wh: self.unit() * 20.0,
            });
        }
        plan
    }

    /// Telemetry of a node.
    pub fn telemetry(&mut self) -> NodeTelemetry {
        NodeTelemetry {
            node: self.node(),
            incarnation: self.below(100),
            at: self.tick(),
            state_of_charge: self.unit(),
            battery_temp_c: 10.0 + 20.0 * self.unit(),
            node_temp_c: 5.0 + 30.0 * self.unit(),
            accelerator_temp_c: 20.0 + 50.0 * self.unit(),
            accelerator_utilization: self.unit(),
            queue_depth: self.below(500) as u32,
            outbox_depth: self.below(500) as u32,
            storage_used_bytes: self.below(1 << 38),
            storage_capacity_bytes: 1 << 38,
            in_eclipse: self.below(2) == 1,
            plan_generation: self.below(1000),
        }
    }

    /// A message of the given kind (an index into [`Message::KINDS`], wrapped).
    pub fn message(&mut self, kind: usize) -> Message {
        let now = self.tick();
        match kind % Message::KINDS.len() {
            0 => Message::Hello(Hello {
                node: self.node(),
                software: format!("odc 0.{}.{}", self.below(9), self.below(9)),
                plan_generation: self.below(1000),
                last_seq_received: self.below(1 << 20),
            }),
            1 => {
                let (batches, jobs) = (1 + self.below(4) as usize, 1 + self.below(5) as usize);
                Message::PlanUpdate(PlanUpdate {
                    plan: self.plan(batches, jobs),
                })
            }
            2 => Message::InputChunk(InputChunk {
                job: self.ids.job(now),
                spec: self.job_spec(),
                offset: self.below(1 << 30),
                data: (0..self.below(300))
                    .map(|_| self.below(256) as u8)
                    .collect(),
            }),
            3 => Message::ResultChunk(ResultChunk {
                job: self.ids.job(now),
                output: self.blob(),
                offset: self.below(1 << 30),
                data: (0..self.below(300))
                    .map(|_| self.below(256) as u8)
                    .collect(),
                accelerator_s: self.below(10_000) as f64 / 8.0,
                energy_wh: self.below(10_000) as f64 / 16.0,
            }),
            4 => Message::JobUpdates(JobUpdates {
                updates: (0..1 + self.below(6))
                    .map(|_| JobUpdate {
                        job: self.ids.job(now),
                        event: self.job_event(),
                        at: self.tick(),
                    })
                    .collect(),
            }),
            5 => Message::Ack(Ack {
                incarnation: self.below(100),
                upto_seq: self.below(1 << 40),
            }),
            6 => Message::Telemetry(self.telemetry()),
            7 => Message::Relay(Relay {
                destination: if self.below(2) == 0 {
                    Endpoint::Station(self.station())
                } else {
                    Endpoint::Node(self.node())
                },
                expires_at: now + Duration::from_hours(6),
                hops: self.below(8) as u8,
                frame: (0..self.below(200))
                    .map(|_| self.below(256) as u8)
                    .collect(),
                // Left empty so the frozen samples keep their bytes; sealed frames are tested in `wire`.
                seal: Vec::new(),
            }),
            _ => Message::Reject(Reject {
                seq: self.below(1 << 30),
                reason: "stale incarnation".into(),
            }),
        }
    }

    /// An envelope around a message of the given kind.
    pub fn envelope(&mut self, kind: usize) -> Envelope {
        let sender = if self.below(2) == 0 {
            Sender::Ground
        } else {
            Sender::Node(self.node())
        };
        Envelope {
            version: PROTOCOL,
            sender,
            incarnation: self.below(50),
            seq: 1 + self.below(1 << 32),
            sent_at: self.tick(),
            message: self.message(kind),
        }
    }
}

fn unreachable_name<T>() -> T {
    // The names above are literals that satisfy the id rules; this is never reached.
    panic!("sample names are valid ids")
}
