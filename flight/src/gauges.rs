//! The flight daemon's Prometheus exposition: the figures it keeps of its node, rendered as text.

/// What the daemon exposes on its metrics endpoint.
#[derive(Debug, Default, Clone)]
pub struct FlightGauges {
    /// Jobs by flight state.
    pub jobs: std::collections::BTreeMap<&'static str, u64>,
    /// Jobs queued.
    pub queue_depth: usize,
    /// Messages waiting for the ground.
    pub outbox_depth: usize,
    /// Frames held for relay.
    pub relay_depth: usize,
    /// Frames relayed to the node in the ground's name whose seal did not prove it.
    pub relay_forged: u64,
    /// Battery state of charge, 0..1.
    pub state_of_charge: f64,
    /// Temperature, °C.
    pub temp_c: f64,
    /// Whether a contact is open.
    pub in_contact: bool,
    /// Contacts opened since start.
    pub contacts: u64,
    /// ISL contacts with neighbours opened since start, and messages they carried in.
    pub isl: (u64, u64),
    /// Bytes sent and received over the ground link since start.
    pub link_bytes: (u64, u64),
    /// Batches run, and jobs in them, since start.
    pub batches: (u64, u64),
    /// The node's incarnation (restarts so far, plus one).
    pub incarnation: u64,
    /// The generation of the plan the node applied last (it applies only newer ones).
    pub plan_generation: u64,
}

impl FlightGauges {
    /// The Prometheus text exposition.
    pub fn render(&self, node: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        // Figures that only grow are counters (with Prometheus' `_total` suffix), so rates can be taken of them;
        // a restart starts them again from zero, which Prometheus reads as a counter reset.
        let mut metric = |name: &str, help: &str, v: f64| {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {v}"
            );
        };
        metric(
            "odc_flight_queue_depth",
            "Jobs queued.",
            self.queue_depth as f64,
        );
        metric(
            "odc_flight_outbox_depth",
            "Messages waiting for the ground.",
            self.outbox_depth as f64,
        );
        metric(
            "odc_flight_relay_depth",
            "Frames held for relay.",
            self.relay_depth as f64,
        );
        metric(
            "odc_flight_relays_forged_total",
            "Frames relayed in the ground's name whose seal did not prove it.",
            self.relay_forged as f64,
        );
        metric(
            "odc_flight_state_of_charge",
            "Battery state of charge, 0..1.",
            self.state_of_charge,
        );
        metric(
            "odc_flight_temperature_celsius",
            "Node temperature.",
            self.temp_c,
        );
        metric(
            "odc_flight_in_contact",
            "Whether a ground contact is open.",
            f64::from(u8::from(self.in_contact)),
        );
        metric(
            "odc_flight_contacts_total",
            "Ground contacts opened since start.",
            self.contacts as f64,
        );
        metric(
            "odc_flight_link_sent_bytes_total",
            "Bytes sent over ground links since start.",
            self.link_bytes.0 as f64,
        );
        metric(
            "odc_flight_link_received_bytes_total",
            "Bytes received over ground links since start.",
            self.link_bytes.1 as f64,
        );
        metric(
            "odc_flight_batches_total",
            "Batches run since start.",
            self.batches.0 as f64,
        );
        metric(
            "odc_flight_batch_jobs_total",
            "Jobs in batches run since start.",
            self.batches.1 as f64,
        );
        metric(
            "odc_flight_isl_contacts_total",
            "ISL contacts with neighbours opened since start.",
            self.isl.0 as f64,
        );
        metric(
            "odc_flight_isl_messages_total",
            "Messages neighbours delivered over ISLs since start.",
            self.isl.1 as f64,
        );
        metric(
            "odc_flight_incarnation",
            "Restarts so far, plus one.",
            self.incarnation as f64,
        );
        metric(
            "odc_flight_plan_generation",
            "Generation of the plan applied last.",
            self.plan_generation as f64,
        );
        let _ = writeln!(
            out,
            "# HELP odc_flight_jobs Jobs held by the node, by state.\n# TYPE odc_flight_jobs gauge"
        );
        for (state, n) in &self.jobs {
            let _ = writeln!(
                out,
                "odc_flight_jobs{{node=\"{node}\",state=\"{state}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::FlightGauges;

    #[test]
    fn growing_figures_are_counters_and_every_sample_has_its_type() {
        let mut g = FlightGauges {
            contacts: 3,
            queue_depth: 2,
            ..FlightGauges::default()
        };
        g.jobs.insert("queued", 2);
        let text = g.render("n1");
        assert!(text.contains(
            "# TYPE odc_flight_contacts_total counter\nodc_flight_contacts_total{node=\"n1\"} 3"
        ));
        assert!(text.contains(
            "# TYPE odc_flight_queue_depth gauge\nodc_flight_queue_depth{node=\"n1\"} 2"
        ));
        assert!(text.contains("odc_flight_jobs{node=\"n1\",state=\"queued\"} 2"));
        // Every sample's family is declared, and only the `_total` families are counters.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let family = line.split('{').next().unwrap_or_default();
            let kind = if family.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{line}"
            );
        }
    }
}
