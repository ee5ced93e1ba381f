//! The versioned wire protocol: every ground↔flight and flight↔flight message, inside an envelope that names the
//! sender, its incarnation and a sequence number.
//!
//! A frame is a 4-byte header — `b"od"`, major version, minor version — and the envelope in MessagePack with named
//! fields. Named fields make the format self-describing: a newer minor version may add fields (ignored here) and
//! message kinds (decoded as [`Message::Unknown`]); a different major version is refused with an error naming both
//! versions. JSON (the same field names) is for debugging and logs.
//!
//! Decoding never panics, and before any value is built the frame is walked once to check that every declared
//! length fits in the bytes that remain and that nesting stays shallow, so a hostile frame cannot make the decoder
//! allocate more than the frame's own size allows.

use crate::id::{JobId, NodeId};
use crate::job::{BlobRef, JobEvent, JobSpec};
use crate::plan::{Endpoint, Plan};
use crate::telemetry::NodeTelemetry;
use crate::time::Instant;
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A protocol version: the major version must match; the minor version only adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProtocolVersion {
    /// Incompatible changes.
    pub major: u8,
    /// Compatible additions.
    pub minor: u8,
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version this build speaks.
pub const PROTOCOL: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };

/// The QUIC ALPN that carries the major version.
pub const ALPN: &[u8] = b"odc/1";

/// Largest frame accepted, bytes (a result chunk of 16 MiB with headroom).
pub const MAX_FRAME_BYTES: usize = 32 << 20;

/// Deepest nesting of values accepted in a frame.
pub const MAX_DEPTH: usize = 32;

const MAGIC: [u8; 2] = *b"od";

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Sender {
    /// The ground segment.
    Ground,
    /// A flight node.
    Node(NodeId),
}

/// A message with who sent it, in which incarnation, and its place in the sender's sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version of the sender (taken from the frame header when decoding).
    #[serde(skip, default = "current_version")]
    pub version: ProtocolVersion,
    /// The sender.
    pub sender: Sender,
    /// The sender's incarnation: bumped at each restart; messages to an older incarnation are refused.
    pub incarnation: u64,
    /// Sequence number within the incarnation, from 1; acknowledgements and anti-replay use it.
    pub seq: u64,
    /// When it was sent, by the sender's clock.
    pub sent_at: Instant,
    /// The message.
    pub message: Message,
}

fn current_version() -> ProtocolVersion {
    PROTOCOL
}

/// A node introduces itself at the start of a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The node.
    pub node: NodeId,
    /// Its software version.
    pub software: String,
    /// Generation of the plan it runs.
    pub plan_generation: u64,
    /// Highest sequence number it has received from the ground in this incarnation.
    pub last_seq_received: u64,
}

/// A plan (or the part of it that concerns the receiver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanUpdate {
    /// The plan.
    pub plan: Plan,
}

/// A piece of a job's input, sent up (possibly over several contacts, resumably).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputChunk {
    /// The job.
    pub job: JobId,
    /// Its spec (with the input's digest and size, which the node checks when the last chunk arrives).
    pub spec: JobSpec,
    /// Byte offset of this chunk in the input.
    pub offset: u64,
    /// The bytes.
    #[serde(with = "bytes_field")]
    pub data: Vec<u8>,
}

/// A piece of a job's result, sent down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultChunk {
    /// The job.
    pub job: JobId,
    /// The whole result's digest and size.
    pub output: BlobRef,
    /// Byte offset of this chunk in the result.
    pub offset: u64,
    /// The bytes.
    #[serde(with = "bytes_field")]
    pub data: Vec<u8>,
    /// Accelerator time of the run, s: a result that overtakes its `Finish` report (relayed over ISLs, or
    /// reordered) still bills what it used. Absent from older senders, and left out when zero so that what they
    /// sent encodes to the same bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accelerator_s: f64,
    /// Energy of the run, Wh (same reason).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub energy_wh: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// One job event, as reported by whoever saw it happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    /// The job.
    pub job: JobId,
    /// What happened.
    pub event: JobEvent,
    /// When.
    pub at: Instant,
}

/// Job events: node → ground (progress), ground → node (cancellations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdates {
    /// The events, in the order they happened.
    pub updates: Vec<JobUpdate>,
}

/// Acknowledges everything up to a sequence number of the peer's current incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The peer's incarnation acknowledged.
    pub incarnation: u64,
    /// Every message up to and including this sequence number was received and made durable.
    pub upto_seq: u64,
}

/// A message carried for someone else over ISLs (store and forward), as an encoded frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relay {
    /// Final destination.
    pub destination: Endpoint,
    /// Drop it after this.
    pub expires_at: Instant,
    /// Hops so far (loop guard).
    pub hops: u8,
    /// The frame carried, as [`encode`] made it.
    #[serde(with = "bytes_field")]
    pub frame: Vec<u8>,
    /// The origin's proof that it made `frame` (see [`RelaySeal`]): the carriers cannot forge or alter what they
    /// carry. Absent from older senders, and left out when empty so what they sent encodes to the same bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "bytes_field")]
    pub seal: Vec<u8>,
}

/// End-to-end proof of who made a relayed frame. Links authenticate each hop, but a frame relayed over ISLs passes
/// through neighbours that could forge or alter it; its origin seals it and its destination checks the seal against
/// the sender the frame names. Replays need no guard here: everything a frame carries is idempotent by job id and
/// plan generation.
pub trait RelaySeal: Send + Sync {
    /// A proof that this side made `frame`.
    fn seal(&self, frame: &[u8]) -> Vec<u8>;
    /// Whether `seal` proves that `sender` made `frame`; why not, readable.
    fn verify(&self, sender: &Sender, frame: &[u8], seal: &[u8]) -> Result<(), String>;
}

/// A refusal, so the sender knows why instead of retrying forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reject {
    /// Sequence number refused.
    pub seq: u64,
    /// Why, readable.
    pub reason: String,
}

macro_rules! messages {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $kind:literal, )*) => {
        /// Every message of the protocol. Serialised as `{"kind": …, "body": …}` so that a kind added by a newer
        /// minor version decodes as [`Message::Unknown`] instead of failing the frame.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Message {
            $( $(#[$doc])* $variant($ty), )*
            /// A kind this build does not know (from a newer minor version); its body was skipped.
            Unknown {
                /// The kind named by the sender.
                kind: String,
            },
        }

        impl Message {
            /// The kind's wire name.
            pub fn kind(&self) -> &str {
                match self {
                    $( Message::$variant(_) => $kind, )*
                    Message::Unknown { kind } => kind,
                }
            }

            /// Every kind this build knows.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];
        }

        impl Serialize for Message {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut st = s.serialize_struct("Message", 2)?;
                match self {
                    $( Message::$variant(body) => {
                        st.serialize_field("kind", $kind)?;
                        st.serialize_field("body", body)?;
                    } )*
                    Message::Unknown { kind } => {
                        st.serialize_field("kind", kind)?;
                        st.serialize_field("body", &())?;
                    }
                }
                st.end()
            }
        }

        impl<'de> Deserialize<'de> for Message {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Message;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a message {kind, body}")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
                        let mut kind: Option<String> = None;
                        let mut message: Option<Message> = None;
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                "kind" => kind = Some(map.next_value()?),
                                "body" => {
                                    let k = kind.as_deref().ok_or_else(|| A::Error::custom("message body before its kind"))?;
                                    message = Some(match k {
                                        $( $kind => Message::$variant(map.next_value()?), )*
                                        other => {
                                            map.next_value::<IgnoredAny>()?;
                                            Message::Unknown { kind: other.to_owned() }
                                        }
                                    });
                                }
                                _ => {
                                    map.next_value::<IgnoredAny>()?;
                                }
                            }
                        }
                        message.ok_or_else(|| A::Error::missing_field("body"))
                    }
                }
                d.deserialize_struct("Message", &["kind", "body"], V)
            }
        }
    };
}

messages! {
    /// Node → ground at the start of a contact.
    Hello(Hello) = "hello",
    /// Ground → node: a newer plan.
    PlanUpdate(PlanUpdate) = "plan_update",
    /// Ground → node: part of a job's input.
    InputChunk(InputChunk) = "input_chunk",
    /// Node → ground: part of a job's result.
    ResultChunk(ResultChunk) = "result_chunk",
    /// Either way: job events.
    JobUpdates(JobUpdates) = "job_updates",
    /// Either way: receipt of messages up to a sequence number.
    Ack(Ack) = "ack",
    /// Node → ground: health and load.
    Telemetry(NodeTelemetry) = "telemetry",
    /// Node → node: a frame carried towards its destination.
    Relay(Relay) = "relay",
    /// Either way: a message refused, and why.
    Reject(Reject) = "reject",
}

/// Byte vectors as MessagePack bin (compact) and as arrays of numbers in JSON.
mod bytes_field {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(v)
        } else {
            s.serialize_bytes(v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        if d.is_human_readable() {
            Vec::<u8>::deserialize(d)
        } else {
            d.deserialize_byte_buf(V)
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than a header.
    #[error("frame of {0} bytes is shorter than its 4-byte header")]
    Truncated(usize),
    /// Longer than [`MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not an odc frame.
    #[error("not an odc frame (header starts {0:02x?})")]
    BadMagic([u8; 2]),
    /// A different major version.
    #[error(
        "protocol version {theirs} is not compatible with this side's {ours} (major versions differ)"
    )]
    Version {
        /// This side's version.
        ours: ProtocolVersion,
        /// The frame's version.
        theirs: ProtocolVersion,
    },
    /// The body is not valid MessagePack, or lies about its lengths, or nests too deep.
    #[error("malformed frame at byte {offset}: {problem}")]
    Malformed {
        /// Where (from the start of the frame).
        offset: usize,
        /// What.
        problem: &'static str,
    },
    /// Valid MessagePack, but not an envelope this version understands.
    #[error("frame does not decode as an envelope: {0}")]
    Schema(String),
    /// Encoding failed (an envelope that cannot be represented).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Encodes an envelope as a frame of [`PROTOCOL`].
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, WireError> {
    // Sized for the bulk bytes up front: growing a buffer to fit a 64 KiB tile doubles through eight copies.
    let bulk = match &envelope.message {
        Message::InputChunk(c) => c.data.len(),
        Message::ResultChunk(c) => c.data.len(),
        Message::Relay(r) => r.frame.len(),
        _ => 0,
    };
    let mut out = Vec::with_capacity(bulk + 512);
    out.extend_from_slice(&MAGIC);
    out.push(PROTOCOL.major);
    out.push(PROTOCOL.minor);
    let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
    envelope
        .serialize(&mut ser)
        .map_err(|e| WireError::Encode(e.to_string()))?;
    if out.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge {
            len: out.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(out)
}

/// Decodes a frame; never panics.
pub fn decode(frame: &[u8]) -> Result<Envelope, WireError> {
    if frame.len() < 4 {
        return Err(WireError::Truncated(frame.len()));
    }
    if frame.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge {
            len: frame.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    if frame[..2] != MAGIC {
        return Err(WireError::BadMagic([frame[0], frame[1]]));
    }
    let theirs = ProtocolVersion {
        major: frame[2],
        minor: frame[3],
    };
    if theirs.major != PROTOCOL.major {
        return Err(WireError::Version {
            ours: PROTOCOL,
            theirs,
        });
    }
    let body = &frame[4..];
    check_msgpack(body).map_err(|(offset, problem)| WireError::Malformed {
        offset: offset + 4,
        problem,
    })?;
    let mut envelope: Envelope =
        rmp_serde::from_slice(body).map_err(|e| WireError::Schema(e.to_string()))?;
    envelope.version = theirs;
    Ok(envelope)
}

/// The envelope as pretty JSON, for logs and debugging.
pub fn to_json(envelope: &Envelope) -> String {
    serde_json::to_string_pretty(envelope).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// An envelope from JSON (debugging tools).
pub fn from_json(text: &str) -> Result<Envelope, WireError> {
    serde_json::from_str(text).map_err(|e| WireError::Schema(e.to_string()))
}

/// Walks one MessagePack value covering all of `buf`, checking declared lengths against what remains and the
/// nesting depth. Returns the offending offset and the problem.
fn check_msgpack(buf: &[u8]) -> Result<(), (usize, &'static str)> {
    let mut pos = 0;
    check_value(buf, &mut pos, 0)?;
    if pos != buf.len() {
        return Err((pos, "trailing bytes after the envelope"));
    }
    Ok(())
}

fn take(buf: &[u8], pos: &mut usize, n: usize) -> Result<usize, (usize, &'static str)> {
    let start = *pos;
    if buf.len().saturating_sub(start) < n {
        return Err((start, "declared length runs past the end of the frame"));
    }
    *pos += n;
    Ok(start)
}

fn read_len(buf: &[u8], pos: &mut usize, width: usize) -> Result<usize, (usize, &'static str)> {
    let at = take(buf, pos, width)?;
    Ok(buf[at..at + width]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)))
}

fn check_value(buf: &[u8], pos: &mut usize, depth: usize) -> Result<(), (usize, &'static str)> {
    if depth > MAX_DEPTH {
        return Err((*pos, "nesting too deep"));
    }
    let at = take(buf, pos, 1)?;
    let marker = buf[at];
    let (items, skip) = match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
        0x80..=0x8f => (2 * usize::from(marker & 0x0f), 0),
        0x90..=0x9f => (usize::from(marker & 0x0f), 0),
        0xa0..=0xbf => (0, usize::from(marker & 0x1f)),
        0xc4 | 0xd9 => (0, read_len(buf, pos, 1)?),
        0xc5 | 0xda => (0, read_len(buf, pos, 2)?),
        0xc6 | 0xdb => (0, read_len(buf, pos, 4)?),
        0xc7 => (0, read_len(buf, pos, 1)? + 1),
        0xc8 => (0, read_len(buf, pos, 2)? + 1),
        0xc9 => (0, read_len(buf, pos, 4)? + 1),
        0xca => (0, 4),
        0xcb => (0, 8),
        0xcc | 0xd0 => (0, 1),
        0xcd | 0xd1 => (0, 2),
        0xce | 0xd2 => (0, 4),
        0xcf | 0xd3 => (0, 8),
        0xd4 => (0, 2),
        0xd5 => (0, 3),
        0xd6 => (0, 5),
        0xd7 => (0, 9),
        0xd8 => (0, 17),
        0xdc => (read_len(buf, pos, 2)?, 0),
        0xdd => (read_len(buf, pos, 4)?, 0),
        0xde => (2 * read_len(buf, pos, 2)?, 0),
        0xdf => (2usize.saturating_mul(read_len(buf, pos, 4)?), 0),
        0xc1 => return Err((at, "reserved MessagePack marker 0xc1")),
    };
    take(buf, pos, skip)?;
    // Every element takes at least one byte: a count above what remains is a lie.
    if items > buf.len() - *pos {
        return Err((at, "declared element count exceeds the bytes that remain"));
    }
    for _ in 0..items {
        check_value(buf, pos, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Envelope {
        Envelope {
            version: PROTOCOL,
            sender: Sender::Node(NodeId::new("sat-001").expect("id")),
            incarnation: 3,
            seq: 17,
            sent_at: Instant::from_unix_ms(1_781_913_600_000),
            message: Message::Hello(Hello {
                node: NodeId::new("sat-001").expect("id"),
                software: "odc 0.1.0".into(),
                plan_generation: 4,
                last_seq_received: 9,
            }),
        }
    }

    #[test]
    fn round_trip_binary_and_json() {
        let e = hello();
        let frame = encode(&e).expect("encodes");
        assert_eq!(&frame[..4], b"od\x01\x00");
        assert_eq!(decode(&frame).expect("decodes"), e);
        assert_eq!(from_json(&to_json(&e)).expect("json"), e);
    }

    #[test]
    fn a_sealed_relay_round_trips_and_an_unsealed_one_encodes_as_before() {
        let inner = encode(&hello()).expect("encodes");
        let relay = |seal: Vec<u8>| Envelope {
            message: Message::Relay(Relay {
                destination: Endpoint::Station(crate::id::StationId::new("gs").expect("id")),
                expires_at: Instant::from_unix_ms(1_781_913_700_000),
                hops: 1,
                frame: inner.clone(),
                seal,
            }),
            ..hello()
        };
        let sealed = relay(vec![2; 65]);
        let frame = encode(&sealed).expect("encodes");
        assert_eq!(decode(&frame).expect("decodes"), sealed);
        assert_eq!(from_json(&to_json(&sealed)).expect("json"), sealed);
        // No seal, no field: the bytes an older sender made.
        let plain = encode(&relay(Vec::new())).expect("encodes");
        assert!(plain.len() + 65 < frame.len());
        assert!(!to_json(&relay(Vec::new())).contains("seal"));
    }

    #[test]
    fn other_major_version_is_refused_by_name() {
        let mut frame = encode(&hello()).expect("encodes");
        frame[2] = 2;
        frame[3] = 5;
        let err = decode(&frame).expect_err("major 2");
        assert_eq!(
            err.to_string(),
            "protocol version 2.5 is not compatible with this side's 1.0 (major versions differ)"
        );
    }

    #[test]
    fn newer_minor_version_decodes() {
        let mut frame = encode(&hello()).expect("encodes");
        frame[3] = 9;
        assert_eq!(
            decode(&frame).expect("minor 9").version,
            ProtocolVersion { major: 1, minor: 9 }
        );
    }

    #[test]
    fn lying_lengths_are_refused_before_decoding() {
        // An array claiming 2^32 − 1 elements in a 10-byte frame.
        let frame = [b'o', b'd', 1, 0, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(
            matches!(decode(&frame), Err(WireError::Malformed { offset: 4, .. })),
            "{:?}",
            decode(&frame)
        );
        // A string claiming 4 GiB.
        let frame = [b'o', b'd', 1, 0, 0xdb, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode(&frame), Err(WireError::Malformed { .. })));
        // Deep nesting.
        let mut frame = vec![b'o', b'd', 1, 0];
        frame.extend(std::iter::repeat_n(0x91, 100));
        frame.push(0xc0);
        assert!(matches!(
            decode(&frame),
            Err(WireError::Malformed {
                problem: "nesting too deep",
                ..
            })
        ));
    }
}

/// Which queue a message waits in on a link: control first, then telemetry, then bulk data by priority. Not on the
/// wire itself: the link's session carries it as its own priority class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrafficClass {
    /// Plans, receipts, cancellations, job events.
    Control,
    /// Health and load.
    Telemetry,
    /// Inputs and results, by job priority (0–9, 9 first).
    Bulk(u8),
}

impl Message {
    /// The class a message travels in.
    pub fn class(&self) -> TrafficClass {
        match self {
            Message::InputChunk(_) | Message::ResultChunk(_) | Message::Relay(_) => {
                TrafficClass::Bulk(5)
            }
            Message::Telemetry(_) => TrafficClass::Telemetry,
            _ => TrafficClass::Control,
        }
    }
}
