//! Budget tests: analytic cases, conservation, and the limits a load may not break.

use super::*;
use odc_model::id::NodeId;
use odc_model::time::Duration;

fn t(s: i64) -> Instant {
    Instant::from_unix_ms(1_781_913_600_000 + s * 1000)
}

fn model() -> NodeModel {
    NodeModel::from_spec(
        &NodeSpec::leo_default(NodeId::new("sat-001").expect("id"), 1),
        550.0,
    )
}

#[test]
fn constant_load_in_darkness_discharges_linearly() {
    let m = model();
    let dark = Illumination::from_eclipses(&[(t(0), t(36_000))]);
    let start = NodeState {
        energy_wh: m.capacity_wh,
        temp_k: 290.0,
    };
    let b = NodeBudget::new(m, &dark, t(0), t(3600), 60, start);
    // E(t) = E0 − P t / η_d.
    let expected = m.capacity_wh - m.base_load_w * 1.0 / m.discharge_efficiency;
    let got = b.state_at_slot(b.slots()).energy_wh;
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
}

#[test]
fn temperature_relaxes_to_radiative_equilibrium() {
    let m = model();
    let sun = Illumination::always_sunlit();
    let b = NodeBudget::new(
        m,
        &sun,
        t(0),
        t(10 * 86_400),
        60,
        NodeState {
            energy_wh: m.capacity_wh,
            temp_k: 250.0,
        },
    );
    let expected = m.equilibrium_temp_k(1.0, m.base_load_w);
    let got = b.state_at_slot(b.slots()).temp_k;
    assert!((got - expected).abs() < 0.01, "{got} vs {expected}");
    // T_eq⁴ = Q / (εσA): check the closed form itself.
    let q = m.solar_absorbing_m2 * SOLAR_CONSTANT_W_M2 + m.earth_ir_w + m.base_load_w;
    assert!(
        (m.radiator_w_per_k4 * (expected.powi(4) - SINK_TEMPERATURE_K.powi(4)) - q).abs() < 1e-6
    );
    // A plausible spacecraft temperature for the default figures: 5-25 °C idle in full sun.
    assert!((278.0..298.0).contains(&expected), "{expected} K");
}

#[test]
fn energy_is_conserved_over_orbits() {
    let m = model();
    let shadows: Vec<_> = (0..15)
        .map(|k| (t(k * 5739 + 3000), t(k * 5739 + 5100)))
        .collect();
    let light = Illumination::from_shadows(&shadows, &[]);
    let mut b = NodeBudget::new(
        m,
        &light,
        t(0),
        t(86_400),
        60,
        NodeState {
            energy_wh: 350.0,
            temp_k: 290.0,
        },
    );
    for k in 0..40 {
        let _ = b.try_add_busy(t(k * 2000), t(k * 2000 + 900));
    }
    let f = b.flows();
    let balance =
        f.solar_wh - (f.load_wh - f.unserved_wh + f.stored_wh + f.losses_wh + f.curtailed_wh);
    assert!(balance.abs() < 1e-6, "{f:?}");
    let final_energy = b.state_at_slot(b.slots()).energy_wh;
    assert!((final_energy - 350.0 - f.stored_wh).abs() < 1e-6);
}

#[test]
fn loads_that_break_the_battery_minimum_are_refused_and_leave_nothing_behind() {
    let m = model();
    let dark = Illumination::from_eclipses(&[(t(0), t(86_400))]);
    let start = NodeState {
        energy_wh: m.capacity_wh,
        temp_k: 280.0,
    };
    let mut b = NodeBudget::new(m, &dark, t(0), t(7200), 60, start);
    let before = b.clone();
    // In darkness the battery (400 Wh, 120 Wh usable) runs bus + idle (55 W) for two hours = ~116 Wh:
    // almost nothing is left for the accelerator.
    assert!(b.check_busy(t(0), t(3600)).is_err());
    let err = b.try_add_busy(t(0), t(3600)).expect_err("too much");
    assert!(matches!(err, BudgetViolation::Energy { .. }), "{err}");
    assert_eq!(b.min_energy_wh(), before.min_energy_wh());
    let headroom = b.busy_headroom_s(t(0), t(7200));
    assert!(headroom > 0.0 && headroom < 600.0, "{headroom}");
    b.try_add_busy(t(0), t(0) + Duration::from_secs(headroom as i64))
        .expect("fits exactly");
    assert!(b.min_energy_wh() >= m.min_energy_wh - 1e-9);
    // Releasing it restores the prediction.
    b.remove_busy(t(0), t(0) + Duration::from_secs(headroom as i64));
    assert!((b.min_energy_wh() - before.min_energy_wh()).abs() < 1e-9);
}

#[test]
fn a_hot_node_refuses_long_batches() {
    let mut spec = NodeSpec::leo_default(NodeId::new("sat-hot").expect("id"), 1);
    spec.thermal.radiator_area_m2 = 0.4;
    spec.accelerator.busy_power_w = 200.0;
    spec.power.battery_capacity_wh = 5000.0;
    spec.power.solar_array_w = 2000.0;
    let m = NodeModel::from_spec(&spec, 550.0);
    let sun = Illumination::always_sunlit();
    let mut b = NodeBudget::new(
        m,
        &sun,
        t(0),
        t(86_400),
        60,
        NodeState {
            energy_wh: 4000.0,
            temp_k: 300.0,
        },
    );
    let err = b.try_add_busy(t(0), t(40_000)).expect_err("overheats");
    assert!(matches!(err, BudgetViolation::Thermal { .. }), "{err}");
    assert!(
        b.try_add_busy(t(0), t(600)).is_ok(),
        "a short batch only warms it"
    );
}

#[test]
fn penumbra_counts_half() {
    let ill = Illumination::from_shadows(&[(t(100), t(200))], &[(t(90), t(210))]);
    assert_eq!(ill.fraction_at(t(95)), 0.5);
    assert_eq!(ill.fraction_at(t(150)), 0.0);
    assert_eq!(ill.fraction_at(t(205)), 0.5);
    assert_eq!(ill.fraction_at(t(300)), 1.0);
    let mean = ill.mean_fraction(t(0), t(300));
    assert!(
        (mean - (1.0 - (100.0 + 10.0) / 300.0)).abs() < 1e-12,
        "{mean}"
    );
}
