//! Fuzz target: the session and command frame decoders must never panic, and a session fed arbitrary frames
//! must never deliver anything (nothing valid was sent to it).

#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use odc_link::session::{Session, SessionConfig};
use odc_link::{CommandGate, ReplayWindow};

fuzz_target!(|data: &[u8]| {
    let config = SessionConfig { chunk_bytes: 64, max_buffered_bytes: 4096, ..SessionConfig::default() };
    let mut session = Session::new(config);
    session.handle_contact(true);
    for frame in data.split(|&b| b == 0xA5) {
        let _ = session.handle_frame(frame);
        let _ = session.poll_transmit(0);
    }
    // The same bytes as a QUIC stream: length-prefixed frames, arriving in uneven pieces.
    let mut stream_session = Session::new(config);
    stream_session.handle_contact(true);
    let mut decoder = odc_link::quic::FrameDecoder::default();
    for piece in data.chunks(7) {
        if decoder.push(&mut stream_session, bytes::Bytes::copy_from_slice(piece)).is_err() {
            break;
        }
    }
    while let Some(event) = session.poll_event().or_else(|| stream_session.poll_event()) {
        // Only a frame carrying a chunk whose digest matches can complete a message; random bytes cannot.
        if let odc_link::session::Event::Delivered { payload, .. } = event {
            assert!(payload.len() <= 4096);
        }
    }
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut gate = CommandGate::new(key.verifying_key(), ReplayWindow::default());
    assert!(gate.admit(data, |_| Ok::<(), String>(())).is_err(), "an unsigned frame was admitted");
});
