//! End-to-end seals on relayed frames: what the origin sealed verifies as its own, and nothing a carrier could
//! make does — not an altered frame, not another sender's claim, not a certificate from another authority, an
//! expired one, or one of another identity.

use odc_link::{Authority, Identity, Keyring, PkiSeal, Role};
use odc_model::id::NodeId;
use odc_model::wire::{RelaySeal, Sender};
use time::OffsetDateTime;

mod common;
use common::{authority, ground, issue};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn node(id: &str) -> Sender {
    Sender::Node(NodeId::new(id).expect("id"))
}

fn seal_of(ca: &Authority, who: &Identity) -> Result<PkiSeal, Box<dyn std::error::Error>> {
    Ok(PkiSeal::new(&issue(ca, who)?, ca.cert_der()?, ground())?)
}

#[test]
fn a_certificate_seal_proves_its_origin_and_nothing_else() -> TestResult {
    let ca = authority()?;
    let ground_seal = seal_of(&ca, &ground())?;
    let sat1 = seal_of(&ca, &Identity::node("sat-1")?)?;
    let sat2 = seal_of(&ca, &Identity::node("sat-2")?)?;
    let frame = b"a result for the ground".to_vec();

    // sat-1's result, checked by the ground; the ground's plan, checked by sat-2.
    let sealed = sat1.seal(&frame);
    assert_eq!(ground_seal.verify(&node("sat-1"), &frame, &sealed), Ok(()));
    let plan = b"a plan for sat-2".to_vec();
    let from_ground = ground_seal.seal(&plan);
    assert_eq!(sat2.verify(&Sender::Ground, &plan, &from_ground), Ok(()));

    // A carrier (sat-2) cannot alter the frame, claim sat-1's frame as its own or pass its own as sat-1's,
    // or speak for the ground.
    let mut altered = frame.clone();
    altered[0] ^= 1;
    let refusals = [
        ground_seal.verify(&node("sat-1"), &altered, &sealed),
        ground_seal.verify(&node("sat-2"), &frame, &sealed),
        ground_seal.verify(&node("sat-1"), &frame, &sat2.seal(&frame)),
        sat1.verify(&Sender::Ground, &plan, &sat2.seal(&plan)),
        ground_seal.verify(&node("sat-1"), &frame, &[]),
        ground_seal.verify(&node("sat-1"), &frame, &sealed[..sealed.len() / 2]),
        ground_seal.verify(&node("sat-1"), &frame, &[1, 0xff, 0xff]),
    ];
    for (i, r) in refusals.iter().enumerate() {
        assert!(r.is_err(), "refusal {i} was accepted");
    }
    let why = ground_seal
        .verify(&node("sat-2"), &frame, &sealed)
        .err()
        .unwrap_or_default();
    assert!(
        why.contains("sat-2"),
        "the refusal names whom it checked: {why}"
    );
    // The signature is over the frame only under the relay domain: a flipped signature byte fails.
    let mut forged = sealed.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x55;
    assert!(ground_seal.verify(&node("sat-1"), &frame, &forged).is_err());
    Ok(())
}

#[test]
fn certificates_from_another_authority_expired_or_of_a_station_are_refused() -> TestResult {
    let ca = authority()?;
    let ground_seal = seal_of(&ca, &ground())?;
    let frame = b"frame".to_vec();
    let sat1 = Identity::node("sat-1")?;

    let rogue = authority()?;
    let impostor = seal_of(&rogue, &sat1)?;
    let err = ground_seal
        .verify(&node("sat-1"), &frame, &impostor.seal(&frame))
        .err()
        .unwrap_or_default();
    assert!(err.contains("constellation CA"), "{err}");

    let now = OffsetDateTime::now_utc();
    let expired = ca.issue(
        &sat1,
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )?;
    let old = PkiSeal::new(&expired, ca.cert_der()?, ground())?;
    assert!(
        ground_seal
            .verify(&node("sat-1"), &frame, &old.seal(&frame))
            .is_err()
    );

    // A station's certificate does not speak for the ground, nor for a node of the same name.
    let station = seal_of(&ca, &Identity::new(Role::Station, "gs")?)?;
    let s = station.seal(&frame);
    assert!(ground_seal.verify(&Sender::Ground, &frame, &s).is_err());
    assert!(ground_seal.verify(&node("gs"), &frame, &s).is_err());
    // And a seal cannot be built to speak for a node as the ground.
    assert!(PkiSeal::new(&issue(&ca, &sat1)?, ca.cert_der()?, sat1.clone()).is_err());
    Ok(())
}

#[test]
fn keyring_seals_are_deterministic_and_bound_to_their_sender() {
    let senders = [Sender::Ground, node("a"), node("b")];
    let ring = Keyring::from_seed(7, senders.clone());
    let again = Keyring::from_seed(7, senders.clone());
    let other = Keyring::from_seed(8, senders.clone());
    let [g, a, b] = senders.map(|s| ring.seal_for(&s).expect("in the ring"));
    let frame = b"frame".to_vec();
    let sealed = a.seal(&frame);
    assert_eq!(
        sealed,
        again.seal_for(&node("a")).expect("a").seal(&frame),
        "same seed, same seal"
    );
    assert_eq!(g.verify(&node("a"), &frame, &sealed), Ok(()));
    assert_eq!(b.verify(&node("a"), &frame, &sealed), Ok(()));
    assert!(g.verify(&node("b"), &frame, &sealed).is_err());
    assert!(g.verify(&node("a"), b"other", &sealed).is_err());
    assert!(g.verify(&Sender::Ground, &frame, &b.seal(&frame)).is_err());
    let foreign = other.seal_for(&node("a")).expect("a").seal(&frame);
    assert!(g.verify(&node("a"), &frame, &foreign).is_err());
    assert!(
        g.verify(&node("z"), &frame, &sealed).is_err(),
        "unknown sender"
    );
    assert!(ring.seal_for(&node("z")).is_none());
    // A certificate seal is not a keyring seal.
    assert!(g.verify(&node("a"), &frame, &[1, 0, 0]).is_err());
}
