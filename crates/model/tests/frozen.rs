//! Frozen wire samples: frames encoded by protocol 1.0 (and two from a hypothetical 1.3) are kept in
//! `tests/frozen/`. A change that stops this build decoding them — or decoding them to the same values — fails here.
//! To add samples for a new minor version, run with `ODC_WRITE_FROZEN=1` once and commit the new files; never
//! rewrite existing ones.

use odc_model::sample::Sampler;
use odc_model::wire::{self, Message, ProtocolVersion, Sender};
use odc_model::{Instant, NodeId};
use serde::Serialize;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/frozen")
}

/// The 1.0 samples: one envelope per message kind, from a fixed seed.
fn samples_v1_0() -> Vec<(String, wire::Envelope)> {
    let mut sampler = Sampler::new(20260620);
    Message::KINDS
        .iter()
        .enumerate()
        .map(|(i, kind)| (format!("v1.0-{kind}"), sampler.envelope(i)))
        .collect()
}

#[derive(Serialize)]
struct FutureEnvelope {
    sender: Sender,
    incarnation: u64,
    seq: u64,
    sent_at: Instant,
    message: FutureMessage,
    route_class: String,
}

#[derive(Serialize)]
struct FutureMessage {
    kind: String,
    body: FutureBody,
}

#[derive(Serialize)]
#[serde(untagged)]
enum FutureBody {
    Hello {
        node: NodeId,
        software: String,
        plan_generation: u64,
        last_seq_received: u64,
        firmware_sha256: String,
    },
    Other {
        qubits: Vec<u32>,
        fidelity: f64,
    },
}

/// Frames a 1.3 sender might send: an extra envelope field, an extra field in a known message, and a message
/// kind this build does not know.
fn future_frames() -> Vec<(String, Vec<u8>)> {
    let node = NodeId::new("sat-009").expect("id");
    let envelope = |kind: &str, body: FutureBody| FutureEnvelope {
        sender: Sender::Node(node.clone()),
        incarnation: 4,
        seq: 77,
        sent_at: Instant::from_unix_ms(1_781_913_600_000),
        message: FutureMessage {
            kind: kind.into(),
            body,
        },
        route_class: "bulk".into(),
    };
    let hello = FutureBody::Hello {
        node: node.clone(),
        software: "odc 1.3.0".into(),
        plan_generation: 12,
        last_seq_received: 40,
        firmware_sha256: "ab".repeat(32),
    };
    let unknown = FutureBody::Other {
        qubits: vec![1, 2, 3],
        fidelity: 0.97,
    };
    [
        ("v1.3-hello-extra-field", envelope("hello", hello)),
        ("v1.3-unknown-kind", envelope("entangle", unknown)),
    ]
    .into_iter()
    .map(|(name, e)| {
        let mut frame = b"od\x01\x03".to_vec();
        e.serialize(&mut rmp_serde::Serializer::new(&mut frame).with_struct_map())
            .expect("encodes");
        (name.to_owned(), frame)
    })
    .collect()
}

#[test]
fn frozen_samples_still_decode_to_the_same_values() {
    if std::env::var_os("ODC_WRITE_FROZEN").is_some() {
        std::fs::create_dir_all(dir()).expect("dir");
        for (name, envelope) in samples_v1_0() {
            let bin = dir().join(format!("{name}.bin"));
            if !bin.exists() {
                std::fs::write(&bin, wire::encode(&envelope).expect("encodes")).expect("write");
                std::fs::write(dir().join(format!("{name}.json")), wire::to_json(&envelope))
                    .expect("write");
            }
        }
        for (name, frame) in future_frames() {
            let bin = dir().join(format!("{name}.bin"));
            if !bin.exists() {
                std::fs::write(bin, frame).expect("write");
            }
        }
    }
    let mut checked = 0;
    for kind in Message::KINDS {
        let name = format!("v1.0-{kind}");
        let frame = std::fs::read(dir().join(format!("{name}.bin")))
            .unwrap_or_else(|e| panic!("{name}.bin: {e}"));
        let expected = std::fs::read_to_string(dir().join(format!("{name}.json"))).expect("json");
        let decoded =
            wire::decode(&frame).unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
        assert_eq!(decoded.message.kind(), *kind);
        let decoded_json: serde_json::Value =
            serde_json::from_str(&wire::to_json(&decoded)).expect("json");
        let expected_json: serde_json::Value = serde_json::from_str(&expected).expect("json");
        assert_eq!(
            decoded_json, expected_json,
            "{name} decodes to different values"
        );
        // And today's encoder still produces the frozen bytes.
        assert_eq!(
            wire::encode(&decoded).expect("encodes"),
            frame,
            "{name}: encoding changed"
        );
        checked += 1;
    }
    assert_eq!(checked, Message::KINDS.len());

    let hello = std::fs::read(dir().join("v1.3-hello-extra-field.bin")).expect("frozen 1.3 frame");
    let decoded = wire::decode(&hello).expect("a newer minor version decodes");
    assert_eq!(decoded.version, ProtocolVersion { major: 1, minor: 3 });
    let Message::Hello(h) = decoded.message else {
        panic!("expected hello, got {:?}", decoded.message)
    };
    assert_eq!((h.plan_generation, h.software.as_str()), (12, "odc 1.3.0"));

    let unknown = std::fs::read(dir().join("v1.3-unknown-kind.bin")).expect("frozen 1.3 frame");
    let decoded = wire::decode(&unknown).expect("an unknown kind still decodes");
    assert_eq!(
        decoded.message,
        Message::Unknown {
            kind: "entangle".into()
        }
    );
    assert_eq!(decoded.seq, 77);
}
