//! Commands: 1,000 replays and 1,000 forged or tampered frames are all refused and none executes; unauthenticated
//! frames never move the window; a window that cannot be persisted executes nothing; corrupt frames never panic.

use ed25519_dalek::SigningKey;
use odc_link::{AuthError, CommandGate, ReplayWindow, SignedCommand};
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn ok(_: &ReplayWindow) -> Result<(), String> {
    Ok(())
}

#[test]
fn replays_forgeries_and_tampering_never_execute() {
    let ground = key(1);
    let mut gate = CommandGate::new(ground.verifying_key(), ReplayWindow::default());
    let mut executed = Vec::new();
    let frames: Vec<Vec<u8>> = (1..=1000u64)
        .map(|seq| {
            SignedCommand::sign(&ground, seq, format!("run batch {seq}").as_bytes()).expect("signs")
        })
        .collect();
    for f in &frames {
        let (seq, body) = gate.admit(f, ok).expect("fresh commands are admitted");
        executed.push((seq, body.to_vec()));
    }
    assert_eq!(executed.len(), 1000);
    // 1,000 replays, in every order.
    for f in frames.iter().rev() {
        let err = gate.admit(f, ok).expect_err("replay");
        assert!(matches!(err, AuthError::Replay(_)), "{err}");
    }
    let window = gate.window();
    // 1,000 forgeries (another key) and tampered frames (one bit flipped anywhere).
    let attacker = key(2);
    for seq in 1001..=1500u64 {
        let forged = SignedCommand::sign(&attacker, seq, b"run batch evil").expect("signs");
        assert_eq!(gate.admit(&forged, ok), Err(AuthError::BadSignature));
    }
    for (i, f) in frames.iter().take(500).enumerate() {
        let mut tampered = f.clone();
        let bit = (i * 7919) % (tampered.len() * 8);
        tampered[bit / 8] ^= 1 << (bit % 8);
        assert!(
            gate.admit(&tampered, ok).is_err(),
            "tampered frame {i} admitted"
        );
    }
    assert_eq!(
        gate.window(),
        window,
        "refused frames never move the window"
    );
    assert_eq!(executed.len(), 1000);
}

#[test]
fn nothing_executes_unless_the_window_is_persisted() {
    let ground = key(3);
    let mut gate = CommandGate::new(ground.verifying_key(), ReplayWindow::default());
    let frame = SignedCommand::sign(&ground, 7, b"stow antenna").expect("signs");
    let err = gate
        .admit(&frame, |_| Err("disk full"))
        .expect_err("not persisted");
    assert!(matches!(err, AuthError::NotPersisted(_)));
    assert_eq!(gate.window(), ReplayWindow::default());
    // After a restart from the persisted window, the command is still new exactly once.
    let mut stored = None;
    gate.admit(&frame, |w| {
        stored = Some(w.to_bytes());
        Ok::<(), String>(())
    })
    .expect("admitted");
    let mut restarted = CommandGate::new(
        ground.verifying_key(),
        ReplayWindow::from_bytes(&stored.expect("persisted")),
    );
    assert!(matches!(
        restarted.admit(&frame, ok),
        Err(AuthError::Replay(_))
    ));
}

proptest! {
    #[test]
    fn corrupt_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..200) {
        let ground = key(4);
        let mut gate = CommandGate::new(ground.verifying_key(), ReplayWindow::default());
        let _ = gate.admit(&bytes, ok);
        let good = SignedCommand::sign(&ground, 1, b"hello").expect("signs");
        let cut = cut.min(good.len() - 1);
        prop_assert!(gate.admit(&good[..cut], ok).is_err());
        let mut lying = good.clone();
        lying[11..15].copy_from_slice(&u32::MAX.to_be_bytes());
        prop_assert!(gate.admit(&lying, ok).is_err());
        prop_assert_eq!(gate.window(), ReplayWindow::default());
    }
}
