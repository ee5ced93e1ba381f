//! What operators see of the fleet: each node's status and telemetry, and the alarms raised now.

use super::*;

impl GroundCore {
    /// A node's recent telemetry, oldest first (`None` for a node the ground does not know).
    pub fn telemetry(&self, node: &NodeId) -> Option<impl Iterator<Item = &NodeTelemetry>> {
        self.links.get(node).map(|l| l.history.iter())
    }

    /// Every node as the ground knows it at `now`.
    pub fn node_status(&self, now: Instant) -> Vec<NodeStatus> {
        self.config
            .nodes
            .iter()
            .map(|n| {
                let id = &n.spec.id;
                let link = self.links.get(id);
                let last_heard = link.and_then(|l| l.last_heard);
                let passes = self.config.contacts.iter().filter(|c| &c.node == id);
                let next_pass = passes
                    .clone()
                    .filter(|c| c.end > now)
                    .min_by_key(|c| c.start)
                    .map(|c| (c.station.clone(), c.start, c.end));
                let missed_passes = passes
                    .filter(|c| {
                        c.end <= now
                            && last_heard.is_none_or(|h| c.start > h)
                            && !self.down_stations.contains(&c.station)
                    })
                    .count();
                NodeStatus {
                    node: id.clone(),
                    station: link.and_then(|l| l.station.clone()),
                    incarnation: link.map_or(0, |l| l.incarnation),
                    last_heard,
                    telemetry: link.and_then(|l| l.telemetry.clone()),
                    jobs: self
                        .jobs
                        .values()
                        .filter(|j| !j.job.state.is_terminal() && j.node.as_ref() == Some(id))
                        .count(),
                    next_pass,
                    missed_passes,
                }
            })
            .collect()
    }

    /// The conditions operators must see now: nodes short of charge or hot (from their last telemetry), nodes
    /// silent through their passes, stations down, jobs that expired.
    pub fn alarms(&self, now: Instant) -> Vec<Alarm> {
        let mut out = Vec::new();
        let mut alarm = |severity, code: &str, subject: String, message: String| {
            out.push(Alarm {
                severity,
                code: code.into(),
                subject,
                message,
            });
        };
        let specs: BTreeMap<&NodeId, &NodeSpec> = self
            .config
            .nodes
            .iter()
            .map(|n| (&n.spec.id, &n.spec))
            .collect();
        for status in self.node_status(now) {
            let Some(spec) = specs.get(&status.node) else {
                continue;
            };
            if let Some(t) = &status.telemetry {
                let floor = spec.power.min_state_of_charge;
                if t.state_of_charge < floor + 0.05 {
                    let severity = if t.state_of_charge < floor {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    alarm(
                        severity,
                        "battery_low",
                        status.node.to_string(),
                        format!(
                            "state of charge {:.0}% at {} (floor {:.0}%)",
                            t.state_of_charge * 100.0,
                            t.at,
                            floor * 100.0
                        ),
                    );
                }
                let ceiling = spec.thermal.max_temp_c;
                if t.node_temp_c > ceiling - 5.0 {
                    let severity = if t.node_temp_c > ceiling {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    alarm(
                        severity,
                        "overheating",
                        status.node.to_string(),
                        format!(
                            "{:.1} °C at {} (limit {ceiling:.0} °C)",
                            t.node_temp_c, t.at
                        ),
                    );
                }
            }
            if self.lost_nodes.contains(&status.node) {
                alarm(
                    Severity::Critical,
                    "node_lost",
                    status.node.to_string(),
                    format!(
                        "silent through {} passes: plans leave it out; jobs aboard wait for it",
                        status.missed_passes
                    ),
                );
            } else if status.missed_passes >= 2 {
                let since = status
                    .last_heard
                    .map_or_else(|| "never heard".to_string(), |t| format!("last heard {t}"));
                alarm(
                    Severity::Warning,
                    "node_silent",
                    status.node.to_string(),
                    format!("silent through {} passes ({since})", status.missed_passes),
                );
            }
        }
        for station in &self.down_stations {
            alarm(
                Severity::Warning,
                "station_down",
                station.to_string(),
                "marked down: plans leave it out".into(),
            );
        }
        let mut expired: BTreeMap<TenantId, usize> = BTreeMap::new();
        for j in self.jobs.values() {
            if j.job.state == JobState::Expired {
                *expired.entry(j.job.spec.tenant).or_default() += 1;
            }
        }
        for (tenant, n) in expired {
            alarm(
                Severity::Warning,
                "jobs_expired",
                tenant.to_string(),
                format!("{n} job(s) passed their deadline undelivered"),
            );
        }
        for (sender, n) in &self.reports_foreign {
            alarm(
                Severity::Critical,
                "report_foreign",
                sender.to_string(),
                format!(
                    "sent {n} report(s) or result(s) for jobs it was never given: refused; the node is faulty or \
                     an attacker holds its credentials"
                ),
            );
        }
        for (carrier, n) in &self.relay_forged {
            alarm(
                Severity::Critical,
                "relay_forged",
                carrier.to_string(),
                format!(
                    "carried down {n} frame(s) in another node's name that its seal does not prove: refused; \
                     the carrier or a node before it forged or altered them"
                ),
            );
        }
        out
    }

    /// Passes each node has missed since it was last heard from (over stations that are up), by node.
    pub(crate) fn missed_passes(&self, now: Instant) -> BTreeMap<&NodeId, usize> {
        let mut missed: BTreeMap<&NodeId, usize> = BTreeMap::new();
        for c in &self.config.contacts {
            if c.end > now || self.down_stations.contains(&c.station) {
                continue;
            }
            let heard = self.links.get(&c.node).and_then(|l| l.last_heard);
            if heard.is_none_or(|h| c.start > h) {
                *missed.entry(&c.node).or_default() += 1;
            }
        }
        missed
    }
}
