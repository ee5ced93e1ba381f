//! The governor: gates every batch on the battery and the temperature the node reads, and stops a running
//! batch before a limit is crossed.
//!
//! Before a batch starts it predicts the energy the batch draws beyond the idle load (busy power × estimated
//! time) and refuses to take the state of charge below the minimum plus a reserve: it **throttles** the batch to
//! the jobs that fit, or **defers** it when none do or the node is too hot. While a batch runs, a reading below
//! the minimum plus a small margin, or above the temperature limit minus a margin, **preempts** it. Every decision
//! is recorded with its reason and reported.

use odc_model::id::ModelId;
use odc_model::spec::NodeSpec;
use odc_model::time::Instant;
use serde::{Deserialize, Serialize};

/// Margins the governor keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GovernorConfig {
    /// State of charge kept above the minimum when a batch is admitted (fraction of capacity).
    pub reserve_soc: f64,
    /// A running batch is preempted below the minimum plus this (fraction of capacity).
    pub preempt_soc_margin: f64,
    /// No batch starts within this of the temperature limit, °C.
    pub start_temp_margin_c: f64,
    /// A running batch is preempted within this of the temperature limit, °C.
    pub preempt_temp_margin_c: f64,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        GovernorConfig {
            reserve_soc: 0.03,
            preempt_soc_margin: 0.005,
            start_temp_margin_c: 5.0,
            preempt_temp_margin_c: 1.0,
        }
    }
}

/// What the governor decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run the first n jobs.
    Run(usize),
    /// Do not start now.
    Defer(String),
    /// Stop the running batch.
    Preempt(String),
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernorAction {
    /// When.
    pub at: Instant,
    /// `defer`, `throttle` or `preempt`.
    pub kind: String,
    /// Why.
    pub reason: String,
}

impl GovernorAction {
    /// A deferral.
    pub fn defer(at: Instant, reason: String) -> Self {
        GovernorAction {
            at,
            kind: "defer".into(),
            reason,
        }
    }
    /// A batch cut to the jobs that fit.
    pub fn throttle(at: Instant, ran: usize, asked: usize) -> Self {
        GovernorAction {
            at,
            kind: "throttle".into(),
            reason: format!("ran {ran} of {asked} jobs within the energy reserve"),
        }
    }
    /// A preemption.
    pub fn preempt(at: Instant, reason: String) -> Self {
        GovernorAction {
            at,
            kind: "preempt".into(),
            reason,
        }
    }
}

/// The governor of one node.
pub struct Governor {
    config: GovernorConfig,
    spec: NodeSpec,
    actions: Vec<GovernorAction>,
}

impl Governor {
    /// A governor for a node of this spec.
    pub fn new(config: GovernorConfig, spec: &NodeSpec) -> Governor {
        Governor {
            config,
            spec: spec.clone(),
            actions: Vec::new(),
        }
    }

    /// Decisions so far.
    pub fn actions(&self) -> &[GovernorAction] {
        &self.actions
    }

    /// Records a decision (repeated deferrals for the same reason are kept once per quarter hour).
    pub fn record(&mut self, now: Instant, action: GovernorAction) {
        if let Some(last) = self.actions.last()
            && last.kind == action.kind
            && last.reason == action.reason
            && (now - last.at).as_secs_f64() < 900.0
        {
            return;
        }
        self.actions.push(action);
    }

    /// Accelerator seconds one input of this size takes with this model.
    pub fn job_seconds(&self, model: &ModelId, input_bytes: u64) -> f64 {
        let rate = self
            .spec
            .accelerator
            .models
            .get(model)
            .map_or(1e6, |p| p.input_bytes_per_s);
        input_bytes as f64 / rate.max(1.0)
    }

    /// Fixed seconds per batch of this model.
    pub fn setup_seconds(&self, model: &ModelId) -> f64 {
        self.spec
            .accelerator
            .models
            .get(model)
            .map_or(1.0, |p| p.batch_setup_s)
    }

    fn busy_extra_w(&self) -> f64 {
        (self.spec.accelerator.busy_power_w - self.spec.accelerator.idle_power_w).max(0.0)
    }

    /// Whether a batch (setup plus these per-job seconds) may start now, and how many of its jobs.
    pub fn admit(
        &self,
        s: &crate::Sensors,
        setup_s: f64,
        per_job_s: &[f64],
        _now: Instant,
    ) -> Verdict {
        let limit_c = self.spec.thermal.max_temp_c - self.config.start_temp_margin_c;
        if s.temp_c > limit_c {
            return Verdict::Defer(format!(
                "temperature {:.1} °C above {limit_c:.1} °C",
                s.temp_c
            ));
        }
        let p = &self.spec.power;
        let floor = p.min_state_of_charge + self.config.reserve_soc;
        let available_wh = (s.state_of_charge - floor) * p.battery_capacity_wh;
        let wh =
            |seconds: f64| self.busy_extra_w() * seconds / 3600.0 / p.discharge_efficiency.max(0.1);
        let mut used = setup_s;
        let mut n = 0;
        for &t in per_job_s {
            if wh(used + t) > available_wh {
                break;
            }
            used += t;
            n += 1;
        }
        if n == 0 {
            return Verdict::Defer(format!(
                "state of charge {:.1}% too close to the {:.0}% floor",
                s.state_of_charge * 100.0,
                floor * 100.0
            ));
        }
        Verdict::Run(n)
    }

    /// Whether a running batch must stop.
    pub fn check_running(&self, s: &crate::Sensors, _now: Instant) -> Verdict {
        let p = &self.spec.power;
        let floor = p.min_state_of_charge + self.config.preempt_soc_margin;
        if s.state_of_charge < floor {
            return Verdict::Preempt(format!(
                "state of charge {:.1}% below {:.1}%",
                s.state_of_charge * 100.0,
                floor * 100.0
            ));
        }
        let limit_c = self.spec.thermal.max_temp_c - self.config.preempt_temp_margin_c;
        if s.temp_c > limit_c {
            return Verdict::Preempt(format!(
                "temperature {:.1} °C above {limit_c:.1} °C",
                s.temp_c
            ));
        }
        Verdict::Run(usize::MAX)
    }
}
