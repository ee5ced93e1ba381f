//! Jobs and their life cycle: one pure transition function, used by ground and flight alike.
//!
//! ```text
//! submitted → accepted → planned → uplinked → queued → running → done → downlinked → delivered
//!     any state before done ─▶ cancelled;  any state before downlinked ─▶ expired;  any open state ─▶ failed
//!     planned ─unplan─▶ accepted (plan withdrawn before uplink);  running ─requeue─▶ queued (node restarted)
//! ```
//!
//! Every transition is idempotent and keyed by the job id: an event already in the job's history is a
//! [`Outcome::Duplicate`], and a report that arrives after the job has moved past it (links reorder and delay
//! messages by hours) is [`Outcome::Stale`]; neither changes the job, so a retried message never runs or bills a
//! job twice. Flight reports may skip steps the ground has not heard of yet (a "done" can overtake the "started"),
//! so forward events from `planned` onwards may jump ahead along the chain.

use crate::id::{BatchId, JobId, ModelId, NodeId, PlanId, StationId, TenantId};
use crate::time::Instant;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// BLAKE3 of a blob (its content address): hex in JSON, 32 bytes on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of these bytes.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Digest> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", &self.to_hex()[..12])
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Digest::from_hex(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not 64 hex digits")))
        } else {
            let bytes: crate::fixed_bytes::FixedBytes<32> = Deserialize::deserialize(d)?;
            Ok(Digest(bytes.0))
        }
    }
}

/// A blob (a job's input or output) by content: where to find it is the store's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// SHA-256 of the content.
    pub digest: Digest,
    /// Length, bytes.
    pub size_bytes: u64,
}

impl BlobRef {
    /// The reference of these bytes.
    pub fn of(bytes: &[u8]) -> BlobRef {
        BlobRef {
            digest: Digest::of(bytes),
            size_bytes: bytes.len() as u64,
        }
    }
}

/// Scheduling priority: 0 (background) to 9 (urgent); the planner weights delivered jobs by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Priority(u8);

impl Priority {
    /// Highest priority.
    pub const MAX: Priority = Priority(9);

    /// A priority, if in 0..=9.
    pub fn new(level: u8) -> Option<Priority> {
        (level <= 9).then_some(Priority(level))
    }
    /// The level, 0..=9.
    pub fn level(self) -> u8 {
        self.0
    }
    /// The planner's weight of a delivered job: doubles every two levels (1 at 0, 22.6 at 9).
    pub fn weight(self) -> f64 {
        2f64.powf(f64::from(self.0) / 2.0)
    }
}

/// What a tenant asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Who asks (and pays).
    pub tenant: TenantId,
    /// Which model to run.
    pub model: ModelId,
    /// The input blob.
    pub input: BlobRef,
    /// Largest output the tenant accepts (and the planner reserves downlink for), bytes.
    pub output_bound_bytes: u64,
    /// The result is worth nothing after this.
    pub deadline: Instant,
    /// Priority.
    pub priority: Priority,
    /// A key the tenant chooses: resubmitting a spec with the same key returns the same job.
    pub idempotency_key: String,
}

/// Why a job spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobSpecError {
    /// The deadline is not after the submission time.
    #[error("deadline {deadline} is not after submission at {now}")]
    DeadlineInPast {
        /// The deadline asked.
        deadline: Instant,
        /// The submission time.
        now: Instant,
    },
    /// The input is empty.
    #[error("input is empty")]
    EmptyInput,
    /// The output bound is zero.
    #[error("output_bound_bytes must be > 0")]
    ZeroOutputBound,
    /// The idempotency key is empty, too long or not printable ASCII.
    #[error("idempotency_key must be 1-128 printable ASCII characters")]
    BadIdempotencyKey,
}

impl JobSpec {
    /// Checks a spec at submission time `now`.
    pub fn validate(&self, now: Instant) -> Result<(), JobSpecError> {
        if self.deadline <= now {
            return Err(JobSpecError::DeadlineInPast {
                deadline: self.deadline,
                now,
            });
        }
        if self.input.size_bytes == 0 {
            return Err(JobSpecError::EmptyInput);
        }
        if self.output_bound_bytes == 0 {
            return Err(JobSpecError::ZeroOutputBound);
        }
        let key = &self.idempotency_key;
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(JobSpecError::BadIdempotencyKey);
        }
        Ok(())
    }
}

/// Why a job failed: kept short and readable, tenants see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// A quota would be exceeded.
    QuotaExceeded {
        /// Which quota (accelerator_s, energy_wh, uplink_bytes, downlink_bytes).
        resource: String,
    },
    /// No node in the fleet runs this model.
    ModelUnavailable,
    /// No contacts and nodes can deliver it before its deadline.
    DeadlineUnreachable,
    /// The input does not match its digest or size.
    InputCorrupt,
    /// The output exceeded the bound the tenant set.
    OutputTooLarge {
        /// The bound.
        limit_bytes: u64,
        /// What the model produced.
        actual_bytes: u64,
    },
    /// The accelerator backend reported an error.
    ExecutionError {
        /// Its message.
        message: String,
    },
    /// Some other reason, explained.
    Other {
        /// The explanation.
        message: String,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::QuotaExceeded { resource } => write!(f, "quota exceeded: {resource}"),
            FailureReason::ModelUnavailable => f.write_str("no node runs this model"),
            FailureReason::DeadlineUnreachable => {
                f.write_str("the deadline cannot be met with the contacts available")
            }
            FailureReason::InputCorrupt => f.write_str("input does not match its digest"),
            FailureReason::OutputTooLarge {
                limit_bytes,
                actual_bytes,
            } => {
                write!(
                    f,
                    "output of {actual_bytes} bytes exceeds the bound of {limit_bytes}"
                )
            }
            FailureReason::ExecutionError { message } => write!(f, "execution failed: {message}"),
            FailureReason::Other { message } => f.write_str(message),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Received, not yet checked against quotas.
    Submitted,
    /// Quota reserved; waiting for a plan.
    Accepted,
    /// In a plan: a batch on a node in a slot.
    Planned,
    /// Input delivered to the node.
    Uplinked,
    /// In the node's durable queue.
    Queued,
    /// On the accelerator.
    Running,
    /// Finished on the node; result waiting to come down.
    Done,
    /// Result on the ground.
    Downlinked,
    /// Result handed to the tenant. Terminal.
    Delivered,
    /// Failed. Terminal.
    Failed {
        /// Why.
        reason: FailureReason,
    },
    /// Cancelled by the tenant or an operator. Terminal.
    Cancelled,
    /// Deadline passed before delivery. Terminal.
    Expired,
}

impl JobState {
    /// Whether the job can never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Delivered | JobState::Failed { .. } | JobState::Cancelled | JobState::Expired
        )
    }

    /// Position on the main chain (submitted = 0 … delivered = 8); `None` for failed, cancelled, expired.
    pub fn rank(&self) -> Option<u8> {
        Some(match self {
            JobState::Submitted => 0,
            JobState::Accepted => 1,
            JobState::Planned => 2,
            JobState::Uplinked => 3,
            JobState::Queued => 4,
            JobState::Running => 5,
            JobState::Done => 6,
            JobState::Downlinked => 7,
            JobState::Delivered => 8,
            _ => return None,
        })
    }

    /// Short name, for messages and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Submitted => "submitted",
            JobState::Accepted => "accepted",
            JobState::Planned => "planned",
            JobState::Uplinked => "uplinked",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Downlinked => "downlinked",
            JobState::Delivered => "delivered",
            JobState::Failed { .. } => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Expired => "expired",
        }
    }
}

// Enums on the wire are externally tagged (`{"plan": {...}}`, `"accept"`): internally tagged enums are buffered
// by serde in a form that forgets the binary format is not human-readable, which breaks compact ids inside them.

/// Something that happened to a job. Events carry what distinguishes one legitimate occurrence from another
/// (the plan, the attempt), so an identical event is always a retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEvent {
    /// Quota reserved.
    Accept,
    /// Placed in a plan (again, when a newer plan moves it before uplink).
    Plan {
        /// The plan.
        plan: PlanId,
        /// Its batch.
        batch: BatchId,
        /// The node.
        node: NodeId,
    },
    /// The plan that placed it was withdrawn before uplink.
    Unplan {
        /// The plan withdrawn.
        plan: PlanId,
    },
    /// Input reached the node.
    Uplink {
        /// The node.
        node: NodeId,
    },
    /// Entered the node's durable queue.
    Enqueue {
        /// The node.
        node: NodeId,
    },
    /// Started on the accelerator.
    Start {
        /// The node.
        node: NodeId,
        /// 1 for the first run, 2 after one requeue, …
        attempt: u32,
    },
    /// An interrupted run went back to the queue (node restart, governor pause).
    Requeue {
        /// The node.
        node: NodeId,
        /// The attempt interrupted.
        attempt: u32,
    },
    /// Finished on the node.
    Finish {
        /// The result.
        output: BlobRef,
        /// Accelerator time used, seconds.
        accelerator_s: f64,
        /// Energy drawn by the accelerator, Wh.
        energy_wh: f64,
    },
    /// The result reached the ground.
    Downlink {
        /// Through which station.
        station: StationId,
        /// The result received.
        output: BlobRef,
    },
    /// The result was handed to the tenant.
    Deliver,
    /// It failed.
    Fail {
        /// Why.
        reason: FailureReason,
    },
    /// The tenant or an operator cancelled it.
    Cancel,
    /// Its deadline passed.
    Expire,
}

impl JobEvent {
    /// Short name, for messages and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            JobEvent::Accept => "accept",
            JobEvent::Plan { .. } => "plan",
            JobEvent::Unplan { .. } => "unplan",
            JobEvent::Uplink { .. } => "uplink",
            JobEvent::Enqueue { .. } => "enqueue",
            JobEvent::Start { .. } => "start",
            JobEvent::Requeue { .. } => "requeue",
            JobEvent::Finish { .. } => "finish",
            JobEvent::Downlink { .. } => "downlink",
            JobEvent::Deliver => "deliver",
            JobEvent::Fail { .. } => "fail",
            JobEvent::Cancel => "cancel",
            JobEvent::Expire => "expire",
        }
    }
}

/// Where a plan put a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Placement {
    /// The plan.
    pub plan: PlanId,
    /// The batch.
    pub batch: BatchId,
    /// The node.
    pub node: NodeId,
}

/// One applied transition, kept in the job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When it was applied.
    pub at: Instant,
    /// State before.
    pub from: JobState,
    /// State after.
    pub to: JobState,
    /// The event.
    pub event: JobEvent,
}

/// A job: its spec, its state and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What was asked.
    pub spec: JobSpec,
    /// When it was submitted.
    pub submitted_at: Instant,
    /// Where it is.
    pub state: JobState,
    /// Where the current plan put it.
    pub placement: Option<Placement>,
    /// Runs started so far.
    pub attempts: u32,
    /// Its result, once known.
    pub output: Option<BlobRef>,
    /// Accelerator time used, seconds (for billing).
    pub accelerator_s: f64,
    /// Accelerator energy used, Wh (for billing).
    pub energy_wh: f64,
    /// Every applied transition, oldest first.
    pub history: Vec<Transition>,
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job moved (or its placement changed).
    Applied {
        /// State before.
        from: JobState,
        /// State after.
        to: JobState,
    },
    /// The same event was applied before: nothing changed.
    Duplicate,
    /// The job has already moved past what this event reports: nothing changed.
    Stale,
}

/// An event the job's state does not allow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("job {job}: cannot {event} a job that is {state}: {why}")]
pub struct TransitionError {
    /// The job.
    pub job: JobId,
    /// Its state.
    pub state: &'static str,
    /// The event refused.
    pub event: &'static str,
    /// Why.
    pub why: &'static str,
}

/// The next state for an event, or why the event is refused: the pure transition table.
///
/// Returns `Ok(None)` for a stale report (the job is already past it).
pub fn next_state(state: &JobState, event: &JobEvent) -> Result<Option<JobState>, &'static str> {
    use JobEvent as E;
    use JobState as S;
    let rank = state.rank();
    // A forward event on the main chain: its target, and the lowest state it may come from.
    let forward = |target: S, lowest: u8| -> Result<Option<S>, &'static str> {
        let (Some(r), Some(t)) = (rank, target.rank()) else {
            return Err("the job is closed");
        };
        if r >= t {
            Ok(None)
        } else if r >= lowest {
            Ok(Some(target))
        } else {
            Err("an earlier step is missing")
        }
    };
    match event {
        E::Accept => forward(S::Accepted, 0),
        E::Plan { .. } => match state {
            S::Accepted | S::Planned => Ok(Some(S::Planned)),
            _ => forward(S::Planned, 1),
        },
        E::Unplan { .. } => match state {
            S::Planned => Ok(Some(S::Accepted)),
            S::Submitted | S::Accepted => Err("the job is not planned"),
            _ if state.is_terminal() && rank.is_none() => Err("the job is closed"),
            _ => Ok(None),
        },
        E::Uplink { .. } => forward(S::Uplinked, 2),
        E::Enqueue { .. } => forward(S::Queued, 2),
        E::Start { .. } => forward(S::Running, 2),
        E::Requeue { .. } => match state {
            S::Running => Ok(Some(S::Queued)),
            _ if rank.is_none() => Err("the job is closed"),
            _ => Ok(None),
        },
        E::Finish { .. } => forward(S::Done, 2),
        E::Downlink { .. } => forward(S::Downlinked, 2),
        E::Deliver => forward(S::Delivered, 7),
        E::Fail { reason } => {
            if state.is_terminal() {
                Err("the job is closed")
            } else {
                Ok(Some(S::Failed {
                    reason: reason.clone(),
                }))
            }
        }
        E::Cancel => match rank {
            Some(r) if r <= 5 => Ok(Some(S::Cancelled)),
            Some(8) | None => Err("the job is closed"),
            Some(_) => Err("the job has already run"),
        },
        E::Expire => match rank {
            Some(r) if r <= 6 => Ok(Some(S::Expired)),
            Some(7) => Err("the result is already on the ground"),
            _ => Err("the job is closed"),
        },
    }
}

impl Job {
    /// A newly submitted job.
    pub fn new(id: JobId, spec: JobSpec, submitted_at: Instant) -> Job {
        Job {
            id,
            spec,
            submitted_at,
            state: JobState::Submitted,
            placement: None,
            attempts: 0,
            output: None,
            accelerator_s: 0.0,
            energy_wh: 0.0,
            history: Vec::new(),
        }
    }

    /// Applies an event at `at`. On error the job is unchanged.
    pub fn apply(&mut self, event: &JobEvent, at: Instant) -> Result<Outcome, TransitionError> {
        if self.history.iter().any(|t| &t.event == event) {
            return Ok(Outcome::Duplicate);
        }
        let refuse = |why| TransitionError {
            job: self.id,
            state: self.state.name(),
            event: event.name(),
            why,
        };
        // Events that only make sense for the job's current plan or attempt.
        match event {
            JobEvent::Unplan { plan }
                if self.placement.as_ref().is_some_and(|p| &p.plan != plan) =>
            {
                return Ok(Outcome::Stale);
            }
            JobEvent::Start { attempt, .. } if *attempt <= self.attempts => {
                return Ok(Outcome::Stale);
            }
            JobEvent::Requeue { attempt, .. } if *attempt != self.attempts => {
                return Ok(Outcome::Stale);
            }
            JobEvent::Downlink { output, .. } if self.output.is_some_and(|o| &o != output) => {
                return Err(refuse("the result differs from the one the node reported"));
            }
            _ => {}
        }
        let Some(to) = next_state(&self.state, event).map_err(refuse)? else {
            return Ok(Outcome::Stale);
        };
        match event {
            JobEvent::Plan { plan, batch, node } => {
                self.placement = Some(Placement {
                    plan: *plan,
                    batch: *batch,
                    node: node.clone(),
                })
            }
            JobEvent::Unplan { .. } => self.placement = None,
            JobEvent::Start { attempt, .. } => self.attempts = *attempt,
            JobEvent::Finish {
                output,
                accelerator_s,
                energy_wh,
            } => {
                self.output = Some(*output);
                // A node's figures are taken only when they are real amounts (an infinite or NaN figure could
                // neither be billed nor stored).
                let amount = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
                self.accelerator_s += amount(*accelerator_s);
                self.energy_wh += amount(*energy_wh);
            }
            JobEvent::Downlink { output, .. } => self.output = Some(*output),
            _ => {}
        }
        let from = std::mem::replace(&mut self.state, to.clone());
        self.history.push(Transition {
            at,
            from: from.clone(),
            to: to.clone(),
            event: event.clone(),
        });
        Ok(Outcome::Applied { from, to })
    }
}
