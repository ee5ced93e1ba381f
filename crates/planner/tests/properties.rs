//! Property tests on random scenarios: every plan passes the independent validator; planning is deterministic;
//! generations grow; every job is either planned or left out with a reason.

mod validator;

use odc_planner::synthetic::{Size, snapshot};
use odc_planner::{Change, Planner, plan};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn plans_break_no_rule(seed in any::<u64>(), nodes in 1usize..6, stations in 1usize..4, jobs in 1usize..60) {
        let s = snapshot(seed, Size { nodes, stations, tenants: 3, jobs, hours: 12 });
        let out = plan(&s);
        let bad = validator::violations(&s, &out);
        prop_assert!(bad.is_empty(), "{:#?}", bad);
        prop_assert_eq!(out.jobs.len() + out.left_out.len(), s.jobs.len());
        prop_assert!(out.jobs.keys().all(|j| !out.left_out.contains_key(j)));
        // Same input, same plan.
        let again = plan(&s);
        prop_assert_eq!(format!("{:?}", again.plan), format!("{:?}", out.plan));
        prop_assert_eq!(again.left_out, out.left_out.clone());
    }

    #[test]
    fn repaired_plans_break_no_rule(seed in any::<u64>(), lost in 0usize..4) {
        let s = snapshot(seed, Size { nodes: 4, stations: 3, tenants: 2, jobs: 40, hours: 12 });
        let mut planner = Planner::new(&s);
        let first = planner.outcome();
        let node = s.nodes[lost].spec.id.clone();
        let next_id = odc_model::id::PlanId::from_u128(first.plan.id.as_u128() + 1);
        let repaired = planner.apply(&Change::NodeLost(node.clone()), next_id);
        prop_assert_eq!(repaired.plan.generation, first.plan.generation + 1);
        prop_assert_eq!(repaired.plan.parent, Some(first.plan.id));
        prop_assert!(repaired.plan.batches.iter().all(|b| b.node != node));
        prop_assert!(repaired.plan.contacts.iter().all(|c| c.node != node));
        // Validate against the snapshot without the lost node (its windows are gone too).
        let mut without = s.clone();
        without.nodes.retain(|n| n.spec.id != node);
        without.contacts.retain(|c| c.node != node);
        std::sync::Arc::make_mut(&mut without.isl).retain(|w| w.a != node && w.b != node);
        without.previous = Some(first.plan.clone());
        let bad = validator::violations(&without, &repaired);
        prop_assert!(bad.is_empty(), "{:#?}", bad);
        prop_assert_eq!(repaired.jobs.len() + repaired.left_out.len(), s.jobs.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Jobs accepted after the plan was made go into what it left free, no earlier than when they came, and
    /// nothing already planned moves; the repaired plan breaks no rule of the whole snapshot.
    #[test]
    fn jobs_added_later_fill_what_is_left_and_move_nothing(seed in any::<u64>(), later in 1usize..20, minutes in 0i64..120) {
        let s = snapshot(seed, Size { nodes: 3, stations: 2, tenants: 2, jobs: 40, hours: 12 });
        let mut first_half = s.clone();
        let added: Vec<_> = first_half.jobs.split_off(40 - later);
        let mut planner = Planner::new(&first_half);
        let first = planner.outcome();
        let at = s.now + odc_model::time::Duration::from_mins(minutes);
        planner.advance(at);
        let next_id = odc_model::id::PlanId::from_u128(first.plan.id.as_u128() + 1);
        let repaired = planner.apply(&Change::JobsAdded(added.clone()), next_id);
        prop_assert_eq!(repaired.plan.generation, first.plan.generation + 1);
        prop_assert_eq!(repaired.jobs.len() + repaired.left_out.len(), s.jobs.len());
        for (id, jp) in &first.jobs {
            let now = repaired.jobs.get(id);
            prop_assert_eq!(now.map(|j| (&j.node, j.batch)), Some((&jp.node, jp.batch)), "a planned job moved");
        }
        for job in &added {
            if let Some(jp) = repaired.jobs.get(&job.id) {
                prop_assert!(jp.input_on_node >= at, "input up before the job came: {} < {}", jp.input_on_node, at);
                prop_assert!(job.spec.deadline >= jp.delivered);
            }
        }
        let mut whole = s.clone();
        whole.previous = Some(first.plan.clone());
        let bad = validator::violations(&whole, &repaired);
        prop_assert!(bad.is_empty(), "{:#?}", bad);
    }
}

#[test]
fn jobs_added_later_are_mostly_placed_when_the_fleet_has_room() {
    let (mut added_total, mut placed) = (0, 0);
    for seed in 0..12 {
        let s = snapshot(
            seed,
            Size {
                nodes: 4,
                stations: 3,
                tenants: 2,
                jobs: 20,
                hours: 12,
            },
        );
        let mut first_half = s.clone();
        let added = first_half.jobs.split_off(15);
        let mut planner = Planner::new(&first_half);
        planner.advance(s.now + odc_model::time::Duration::from_mins(10));
        let repaired = planner.apply(
            &Change::JobsAdded(added.clone()),
            odc_model::id::PlanId::from_u128(9),
        );
        added_total += added.len();
        placed += added
            .iter()
            .filter(|j| repaired.jobs.contains_key(&j.id))
            .count();
    }
    assert!(
        placed * 2 >= added_total,
        "only {placed} of {added_total} added jobs placed"
    );
}

#[test]
fn left_out_jobs_have_readable_reasons() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let s = snapshot(
            seed,
            Size {
                nodes: 2,
                stations: 1,
                tenants: 3,
                jobs: 60,
                hours: 8,
            },
        );
        for reason in plan(&s).left_out.values() {
            seen.insert(reason.to_string());
        }
    }
    assert!(seen.iter().any(|r| r.contains("quota")), "{seen:?}");
    assert!(seen.iter().any(|r| r.contains("deadline")), "{seen:?}");
}

#[test]
fn plans_do_real_work_and_the_validator_catches_broken_ones() {
    let s = snapshot(
        7,
        Size {
            nodes: 4,
            stations: 3,
            tenants: 2,
            jobs: 60,
            hours: 12,
        },
    );
    let out = plan(&s);
    eprintln!("{:?}", out.stats);
    assert!(out.stats.planned >= 20, "{:?}", out.stats);
    assert!(validator::violations(&s, &out).is_empty());
    // Each corruption must be caught.
    let mut late = out.clone();
    let job = *late.jobs.keys().next().expect("a planned job");
    for r in late
        .plan
        .routes
        .iter_mut()
        .filter(|r| r.job == job && r.direction == odc_model::plan::Direction::Down)
    {
        if let Some(h) = r.hops.last_mut() {
            h.end = s
                .jobs
                .iter()
                .find(|j| j.id == job)
                .expect("job")
                .spec
                .deadline
                + odc_model::Duration::from_secs(1);
        }
    }
    assert!(
        !validator::violations(&s, &late).is_empty(),
        "late delivery not caught"
    );
    let mut overlapping = out.clone();
    if overlapping.plan.batches.len() >= 2 {
        let first = overlapping.plan.batches[0].clone();
        let node = first.node.clone();
        if let Some(b) = overlapping
            .plan
            .batches
            .iter_mut()
            .skip(1)
            .find(|b| b.node == node)
        {
            b.start = first.start;
            assert!(
                !validator::violations(&s, &overlapping).is_empty(),
                "overlap not caught"
            );
        }
    }
    let mut stuffed = out.clone();
    stuffed.plan.contacts[0].uplink_bytes += 1 << 40;
    assert!(
        !validator::violations(&s, &stuffed).is_empty(),
        "overfull contact not caught"
    );
    let mut busy = out.clone();
    for b in &mut busy.plan.batches {
        b.end = b.start + odc_model::Duration::from_hours(5);
    }
    assert!(
        !validator::violations(&s, &busy).is_empty(),
        "energy or overlap not caught"
    );
}

#[test]
fn station_outages_and_cancellations_repair_cleanly() {
    for seed in 0..20 {
        let s = snapshot(
            seed,
            Size {
                nodes: 3,
                stations: 3,
                tenants: 2,
                jobs: 40,
                hours: 12,
            },
        );
        let mut planner = Planner::new(&s);
        let first = planner.outcome();
        let station = s.stations[0].id.clone();
        let second = planner.apply(
            &Change::StationDown(station.clone()),
            odc_model::id::PlanId::from_u128(7),
        );
        assert!(
            second.plan.contacts.iter().all(|c| c.station != station),
            "seed {seed}: booked a station that is down"
        );
        let mut without = s.clone();
        without.contacts.retain(|c| c.station != station);
        without.previous = Some(first.plan.clone());
        let bad = validator::violations(&without, &second);
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
        assert_eq!(second.jobs.len() + second.left_out.len(), s.jobs.len());

        let Some(&cancelled) = second.jobs.keys().next() else {
            continue;
        };
        let third = planner.apply(
            &Change::JobCancelled(cancelled),
            odc_model::id::PlanId::from_u128(8),
        );
        assert!(!third.jobs.contains_key(&cancelled) && !third.left_out.contains_key(&cancelled));
        assert!(
            third
                .plan
                .batches
                .iter()
                .all(|b| !b.jobs.contains(&cancelled))
        );
        assert_eq!(third.plan.generation, second.plan.generation + 1);
        let mut after = without.clone();
        after.previous = Some(second.plan.clone());
        let bad = validator::violations(&after, &third);
        assert!(bad.is_empty(), "seed {seed}: {bad:#?}");
        // Everything the cancelled job held is free again: its bytes are off every contact.
        let bytes = |o: &odc_planner::PlanOutcome| {
            o.plan.contacts.iter().map(|c| c.uplink_bytes).sum::<u64>()
        };
        assert!(bytes(&third) <= bytes(&second));
    }
}
