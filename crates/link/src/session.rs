//! The session core: messages over an intermittent link, with no IO and no clock of its own (the shape of
//! quinn-proto: `handle_*` events in, `poll_transmit`, `poll_event` and `poll_timeout` out).
//!
//! A message is cut into content-addressed chunks (a SHA-256 per chunk, and one for the whole message); each
//! chunk is acknowledged once the receiver holds it. When a contact ends, chunks in flight go back to the queue and
//! the next contact resumes from the first unacknowledged one; an acknowledged chunk is never sent again. Messages
//! go out by priority (commands, then telemetry, then results by tenant priority). The receiver hands each message
//! to the application exactly once, checks every digest, and bounds what it buffers: a peer can make it drop
//! frames, never grow without limit.

use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Milliseconds on the caller's clock.
pub type Millis = i64;

/// Which traffic goes first (lower first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Commands.
    Command,
    /// Telemetry.
    Telemetry,
    /// Results, by tenant priority (9 first).
    Result(std::cmp::Reverse<u8>),
}

impl Priority {
    fn code(self) -> u8 {
        match self {
            Priority::Command => 0,
            Priority::Telemetry => 1,
            Priority::Result(std::cmp::Reverse(p)) => 2 + p.min(9),
        }
    }
    fn from_code(c: u8) -> Option<Priority> {
        match c {
            0 => Some(Priority::Command),
            1 => Some(Priority::Telemetry),
            2..=11 => Some(Priority::Result(std::cmp::Reverse(c - 2))),
            _ => None,
        }
    }
}

/// Limits of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
    /// Bytes per chunk.
    pub chunk_bytes: usize,
    /// Chunks sent and not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// Resend a chunk not acknowledged after this long, ms.
    pub retransmit_ms: Millis,
    /// Bytes the receiver buffers for incomplete messages, at most.
    pub max_buffered_bytes: usize,
    /// Largest message accepted, bytes.
    pub max_message_bytes: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_bytes: 64 * 1024,
            max_in_flight: 64,
            retransmit_ms: 2_000,
            max_buffered_bytes: 256 << 20,
            max_message_bytes: 4 << 30,
        }
    }
}

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole message arrived, checked against its digest (exactly once per message id).
    Delivered {
        /// The sender's message id.
        id: u64,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// The peer acknowledged every chunk of a message we sent.
    Acknowledged(u64),
}

/// A frame that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionFrameError {
    /// Too short, unknown kind, or a length that does not fit.
    #[error("malformed session frame: {0}")]
    Malformed(&'static str),
    /// A chunk whose bytes do not match its digest.
    #[error("chunk {chunk} of message {id} does not match its digest")]
    Corrupt {
        /// Message.
        id: u64,
        /// Chunk.
        chunk: u32,
    },
}

struct Outgoing {
    priority: Priority,
    payload: Vec<u8>,
    digest: [u8; 32],
    chunks: u32,
    acked: BTreeSet<u32>,
    sent_at: BTreeMap<u32, Millis>,
}

struct Incoming {
    total: u64,
    chunks: u32,
    digest: [u8; 32],
    parts: BTreeMap<u32, Vec<u8>>,
}

/// One end of a session.
pub struct Session {
    config: SessionConfig,
    up: bool,
    next_id: u64,
    outgoing: BTreeMap<(Priority, u64), Outgoing>,
    incoming: BTreeMap<u64, Incoming>,
    buffered: usize,
    delivered: BTreeSet<u64>,
    delivered_below: u64,
    acks: VecDeque<(u64, u32)>,
    events: VecDeque<Event>,
}

/// Incomplete messages the receiver keeps at once.
const MAX_OPEN_MESSAGES: usize = 1024;

const DATA: u8 = 1;
const ACK: u8 = 2;
const DATA_HEADER: usize = 1 + 8 + 1 + 8 + 4 + 4 + 32 + 32 + 4;

impl Session {
    /// A session with these limits, link down.
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            up: false,
            next_id: 1,
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            buffered: 0,
            delivered: BTreeSet::new(),
            delivered_below: 1,
            acks: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Queues a message; returns its id.
    pub fn send(&mut self, priority: Priority, payload: Vec<u8>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let chunks = payload.len().div_ceil(self.config.chunk_bytes).max(1) as u32;
        let digest = Sha256::digest(&payload).into();
        self.outgoing.insert(
            (priority, id),
            Outgoing {
                priority,
                payload,
                digest,
                chunks,
                acked: BTreeSet::new(),
                sent_at: BTreeMap::new(),
            },
        );
        id
    }

    /// A contact began (`true`) or ended (`false`). At the end, chunks in flight return to the queue.
    pub fn handle_contact(&mut self, up: bool) {
        self.up = up;
        if !up {
            for m in self.outgoing.values_mut() {
                m.sent_at.clear();
            }
            self.acks.clear();
        }
    }

    /// Messages not yet fully acknowledged.
    pub fn pending(&self) -> usize {
        self.outgoing.len()
    }

    /// The next frame to send now, if any: acknowledgements first, then chunks by priority.
    pub fn poll_transmit(&mut self, now: Millis) -> Option<Vec<u8>> {
        if !self.up {
            return None;
        }
        if let Some((id, chunk)) = self.acks.pop_front() {
            let mut f = vec![ACK];
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&chunk.to_be_bytes());
            return Some(f);
        }
        let in_flight: usize = self.outgoing.values().map(|m| m.sent_at.len()).sum();
        let chunk_bytes = self.config.chunk_bytes;
        let retransmit = self.config.retransmit_ms;
        for (&(_, id), m) in self.outgoing.iter_mut() {
            for c in 0..m.chunks {
                if m.acked.contains(&c) {
                    continue;
                }
                let due = match m.sent_at.get(&c) {
                    None => in_flight < self.config.max_in_flight,
                    Some(&at) => now - at >= retransmit,
                };
                if !due {
                    continue;
                }
                m.sent_at.insert(c, now);
                let start = c as usize * chunk_bytes;
                let part = &m.payload[start..(start + chunk_bytes).min(m.payload.len())];
                let mut f = Vec::with_capacity(DATA_HEADER + part.len());
                f.push(DATA);
                f.extend_from_slice(&id.to_be_bytes());
                f.push(m.priority.code());
                f.extend_from_slice(&(m.payload.len() as u64).to_be_bytes());
                f.extend_from_slice(&m.chunks.to_be_bytes());
                f.extend_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&m.digest);
                f.extend_from_slice(&Sha256::digest(part));
                f.extend_from_slice(&(part.len() as u32).to_be_bytes());
                f.extend_from_slice(part);
                return Some(f);
            }
        }
        None
    }

    /// When the session next wants to be woken (a retransmission), if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if !self.up {
            return None;
        }
        self.outgoing
            .values()
            .flat_map(|m| m.sent_at.values())
            .min()
            .map(|t| t + self.config.retransmit_ms)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A frame from the peer. Malformed or corrupt frames are refused and change nothing.
    pub fn handle_frame(&mut self, frame: &[u8]) -> Result<(), SessionFrameError> {
        let bad = SessionFrameError::Malformed;
        match frame.first() {
            Some(&ACK) => {
                if frame.len() != 13 {
                    return Err(bad("ack length"));
                }
                let id = u64::from_be_bytes(frame[1..9].try_into().map_err(|_| bad("ack"))?);
                let chunk = u32::from_be_bytes(frame[9..13].try_into().map_err(|_| bad("ack"))?);
                let key = self.outgoing.keys().find(|k| k.1 == id).copied();
                if let Some(key) = key
                    && let Some(m) = self.outgoing.get_mut(&key)
                    && chunk < m.chunks
                {
                    m.acked.insert(chunk);
                    m.sent_at.remove(&chunk);
                    if m.acked.len() as u32 == m.chunks {
                        self.outgoing.remove(&key);
                        self.events.push_back(Event::Acknowledged(id));
                    }
                }
                Ok(())
            }
            Some(&DATA) => self.handle_data(frame),
            _ => Err(bad("unknown frame kind")),
        }
    }

    fn handle_data(&mut self, f: &[u8]) -> Result<(), SessionFrameError> {
        let bad = SessionFrameError::Malformed;
        if f.len() < DATA_HEADER {
            return Err(bad("data header"));
        }
        let u64_at = |i: usize| u64::from_be_bytes(f[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_be_bytes(f[i..i + 4].try_into().unwrap_or([0; 4]));
        let id = u64_at(1);
        Priority::from_code(f[9]).ok_or(bad("priority"))?;
        let total = u64_at(10);
        let chunks = u32_at(18);
        let chunk = u32_at(22);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&f[26..58]);
        let chunk_digest = &f[58..90];
        let len = u32_at(90) as usize;
        let part = &f[DATA_HEADER..];
        let cb = self.config.chunk_bytes as u64;
        if part.len() != len
            || total > self.config.max_message_bytes
            || u64::from(chunks) != total.div_ceil(cb).max(1)
            || chunk >= chunks
            || len as u64 != (total - u64::from(chunk) * cb).min(cb)
        {
            return Err(bad("lengths do not agree"));
        }
        if Sha256::digest(part).as_slice() != chunk_digest {
            return Err(SessionFrameError::Corrupt { id, chunk });
        }
        if id < self.delivered_below || self.delivered.contains(&id) {
            // Already handed over: acknowledge again (the first ack may have been lost), deliver nothing.
            self.acks.push_back((id, chunk));
            return Ok(());
        }
        let fits = self.buffered + part.len() <= self.config.max_buffered_bytes;
        if !self.incoming.contains_key(&id) && (!fits || self.incoming.len() >= MAX_OPEN_MESSAGES) {
            // Full: drop without acknowledging; the sender will try again later.
            return Ok(());
        }
        let entry = self.incoming.entry(id).or_insert_with(|| Incoming {
            total,
            chunks,
            digest,
            parts: BTreeMap::new(),
        });
        if entry.total != total || entry.chunks != chunks || entry.digest != digest {
            return Err(bad("chunk disagrees with the rest of its message"));
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = entry.parts.entry(chunk) {
            if self.buffered + part.len() > self.config.max_buffered_bytes {
                // Full: drop without acknowledging; the sender will try again.
                return Ok(());
            }
            self.buffered += part.len();
            slot.insert(part.to_vec());
        }
        self.acks.push_back((id, chunk));
        if entry.parts.len() as u32 == entry.chunks {
            let Some(done) = self.incoming.remove(&id) else {
                return Ok(());
            };
            let payload: Vec<u8> = done.parts.into_values().flatten().collect();
            self.buffered -= payload.len();
            if <[u8; 32]>::from(Sha256::digest(&payload)) != done.digest {
                return Err(SessionFrameError::Corrupt {
                    id,
                    chunk: u32::MAX,
                });
            }
            self.delivered.insert(id);
            // Ids are sequential per sender: fold the contiguous run into the watermark, and cap what is left
            // so a hostile peer cannot grow it (an id forgotten that way is at worst delivered twice).
            while self.delivered.remove(&self.delivered_below) {
                self.delivered_below += 1;
            }
            while self.delivered.len() > MAX_OPEN_MESSAGES * 4 {
                self.delivered.pop_first();
            }
            self.events.push_back(Event::Delivered { id, payload });
        }
        Ok(())
    }
}
