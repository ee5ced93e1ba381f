//! The session core: messages over an intermittent link, with no IO and no clock of its own (the shape of
//! quinn-proto: `handle_*` events in, `poll_transmit`, `poll_event` and `poll_timeout` out).
//!
//! A message is cut into content-addressed chunks (a BLAKE3 digest per chunk, and one for the whole message: the
//! digest of its chunk digests in order, so neither end hashes the bytes twice); each
//! chunk is acknowledged once the receiver holds it. When a contact ends, chunks in flight go back to the queue and
//! the next contact resumes from the first unacknowledged one; an acknowledged chunk is never sent again. Messages
//! go out by priority (commands, then telemetry, then results by tenant priority). The receiver hands each message
//! to the application exactly once, checks every digest, and bounds what it buffers: a peer can make it drop
//! frames, never grow without limit.

use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

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

impl From<odc_model::wire::TrafficClass> for Priority {
    /// A message's queue on the link: control as commands, telemetry next, bulk data by tenant priority.
    fn from(class: odc_model::wire::TrafficClass) -> Priority {
        use odc_model::wire::TrafficClass;
        match class {
            TrafficClass::Control => Priority::Command,
            TrafficClass::Telemetry => Priority::Telemetry,
            TrafficClass::Bulk(p) => Priority::Result(std::cmp::Reverse(p)),
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

/// One frame to send: `header` then `body` (empty for an acknowledgement).
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Frame kind and fields.
    pub header: Vec<u8>,
    /// The chunk's bytes, shared with the queued message.
    pub body: Bytes,
}

impl Transmit {
    /// Frame length in bytes.
    pub fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    /// Never true: a frame has at least its kind.
    pub fn is_empty(&self) -> bool {
        self.header.is_empty() && self.body.is_empty()
    }
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
    payload: Bytes,
    digest: [u8; 32],
    chunk_digests: Vec<[u8; 32]>,
    chunks: u32,
    acked: Vec<bool>,
    acked_count: u32,
    /// Chunks sent in this contact and not yet acknowledged, with when.
    sent_at: BTreeMap<u32, Millis>,
    /// Every chunk below this was sent in this contact or is acknowledged.
    cursor: u32,
}

struct Incoming {
    total: u64,
    chunks: u32,
    digest: [u8; 32],
    /// Whether the whole message's buffer was reserved (and counted) when it opened.
    reserved: bool,
    /// Chunks `0..next`, in order: the common case appends in place, with one copy.
    data: Vec<u8>,
    next: u32,
    /// The message digest so far, over the digests of chunks `0..next`.
    hasher: blake3::Hasher,
    /// Chunks that arrived ahead of `next`, with their digests.
    parked: BTreeMap<u32, (Vec<u8>, [u8; 32])>,
}

/// One end of a session.
pub struct Session {
    config: SessionConfig,
    up: bool,
    next_id: u64,
    outgoing: BTreeMap<(Priority, u64), Outgoing>,
    incoming: BTreeMap<u64, Incoming>,
    buffered: usize,
    in_flight: usize,
    delivered: DeliveredIds,
    /// Acknowledgements to send: (message, first chunk, count); consecutive chunks share one entry.
    acks: VecDeque<(u64, u32, u32)>,
    events: VecDeque<Event>,
}

/// Incomplete messages the receiver keeps at once.
const MAX_OPEN_MESSAGES: usize = 1024;

const DATA: u8 = 1;
const ACK: u8 = 2;
/// Separate runs of delivered ids the receiver remembers above the oldest undelivered one; beyond it, a message
/// that would start a new run waits (unacknowledged) rather than risk a forgotten id being delivered twice.
const MAX_DELIVERED_RUNS: usize = 4 * MAX_OPEN_MESSAGES;
const ACK_LEN: usize = 1 + 8 + 4 + 4;
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
            in_flight: 0,
            delivered: DeliveredIds::default(),
            acks: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Queues a message; returns its id.
    pub fn send(&mut self, priority: Priority, payload: impl Into<Bytes>) -> u64 {
        let payload: Bytes = payload.into();
        let id = self.next_id;
        self.next_id += 1;
        let chunk_digests: Vec<[u8; 32]> = if payload.is_empty() {
            vec![*blake3::hash(&[]).as_bytes()]
        } else {
            payload
                .chunks(self.config.chunk_bytes)
                .map(|c| *blake3::hash(c).as_bytes())
                .collect()
        };
        let chunks = chunk_digests.len() as u32;
        let digest = message_digest(&chunk_digests);
        self.outgoing.insert(
            (priority, id),
            Outgoing {
                priority,
                payload,
                digest,
                chunk_digests,
                chunks,
                acked: vec![false; chunks as usize],
                acked_count: 0,
                sent_at: BTreeMap::new(),
                cursor: 0,
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
                m.cursor = 0;
            }
            self.acks.clear();
            self.in_flight = 0;
        }
    }

    /// Messages not yet fully acknowledged.
    pub fn pending(&self) -> usize {
        self.outgoing.len()
    }

    /// The next frame to send now, if any: acknowledgements first, then chunks by priority.
    pub fn poll_transmit(&mut self, now: Millis) -> Option<Vec<u8>> {
        let mut f = Vec::new();
        self.poll_transmit_into(now, &mut f).then_some(f)
    }

    /// Like [`Session::poll_transmit`], appending the frame to `out`; false if nothing is due.
    pub fn poll_transmit_into(&mut self, now: Millis, out: &mut Vec<u8>) -> bool {
        let Some(t) = self.poll_transmit_parts(now) else {
            return false;
        };
        out.extend_from_slice(&t.header);
        out.extend_from_slice(&t.body);
        true
    }

    /// Like [`Session::poll_transmit`], as a small header and a body that shares the queued message's bytes, so
    /// a transport that takes [`Bytes`] sends a chunk without copying it.
    pub fn poll_transmit_parts(&mut self, now: Millis) -> Option<Transmit> {
        if !self.up {
            return None;
        }
        if let Some((id, first, count)) = self.acks.pop_front() {
            let mut header = Vec::with_capacity(ACK_LEN);
            header.push(ACK);
            header.extend_from_slice(&id.to_be_bytes());
            header.extend_from_slice(&first.to_be_bytes());
            header.extend_from_slice(&count.to_be_bytes());
            return Some(Transmit {
                header,
                body: Bytes::new(),
            });
        }
        let chunk_bytes = self.config.chunk_bytes;
        let retransmit = self.config.retransmit_ms;
        for (&(_, id), m) in self.outgoing.iter_mut() {
            let due = m
                .sent_at
                .iter()
                .find(|&(_, &at)| now - at >= retransmit)
                .map(|(&c, _)| c);
            let c = match due {
                Some(c) => c,
                None if self.in_flight < self.config.max_in_flight => {
                    while m.cursor < m.chunks && m.acked[m.cursor as usize] {
                        m.cursor += 1;
                    }
                    if m.cursor == m.chunks {
                        continue;
                    }
                    m.cursor += 1;
                    self.in_flight += 1;
                    m.cursor - 1
                }
                None => continue,
            };
            m.sent_at.insert(c, now);
            let start = c as usize * chunk_bytes;
            let body = m
                .payload
                .slice(start..(start + chunk_bytes).min(m.payload.len()));
            let mut header = Vec::with_capacity(DATA_HEADER);
            header.push(DATA);
            header.extend_from_slice(&id.to_be_bytes());
            header.push(m.priority.code());
            header.extend_from_slice(&(m.payload.len() as u64).to_be_bytes());
            header.extend_from_slice(&m.chunks.to_be_bytes());
            header.extend_from_slice(&c.to_be_bytes());
            header.extend_from_slice(&m.digest);
            header.extend_from_slice(&m.chunk_digests[c as usize]);
            header.extend_from_slice(&(body.len() as u32).to_be_bytes());
            return Some(Transmit { header, body });
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
        self.handle_frame_parts(&[frame])
    }

    /// A frame from the peer that arrived in pieces (as a transport's receive buffers hold it): the pieces are
    /// read in place, and a chunk that continues its message is copied once, straight into the message.
    pub fn handle_frame_parts(&mut self, parts: &[&[u8]]) -> Result<(), SessionFrameError> {
        let bad = SessionFrameError::Malformed;
        let total_len: usize = parts.iter().map(|p| p.len()).sum();
        let mut head = [0u8; DATA_HEADER];
        let head_len = total_len.min(DATA_HEADER);
        let mut body: Vec<&[u8]> = Vec::with_capacity(parts.len());
        let mut filled = 0;
        for p in parts {
            let take = (head_len - filled).min(p.len());
            head[filled..filled + take].copy_from_slice(&p[..take]);
            filled += take;
            if take < p.len() {
                body.push(&p[take..]);
            }
        }
        let frame = &head[..head_len];
        match frame.first() {
            Some(&ACK) => {
                if total_len != ACK_LEN {
                    return Err(bad("ack length"));
                }
                let id = u64::from_be_bytes(frame[1..9].try_into().map_err(|_| bad("ack"))?);
                let first = u32::from_be_bytes(frame[9..13].try_into().map_err(|_| bad("ack"))?);
                let count = u32::from_be_bytes(frame[13..17].try_into().map_err(|_| bad("ack"))?);
                let end = first
                    .checked_add(count)
                    .filter(|_| count > 0)
                    .ok_or(bad("ack range"))?;
                let key = self.outgoing.keys().find(|k| k.1 == id).copied();
                if let Some(key) = key
                    && let Some(m) = self.outgoing.get_mut(&key)
                {
                    for chunk in first..end.min(m.chunks) {
                        if m.acked[chunk as usize] {
                            continue;
                        }
                        m.acked[chunk as usize] = true;
                        m.acked_count += 1;
                        if m.sent_at.remove(&chunk).is_some() {
                            self.in_flight -= 1;
                        }
                    }
                    if m.acked_count == m.chunks {
                        self.outgoing.remove(&key);
                        self.events.push_back(Event::Acknowledged(id));
                    }
                }
                Ok(())
            }
            Some(&DATA) if total_len >= DATA_HEADER => {
                self.handle_data(&head, &body, total_len - DATA_HEADER)
            }
            Some(&DATA) => Err(bad("data header")),
            _ => Err(bad("unknown frame kind")),
        }
    }

    /// Queues an acknowledgement, folding it into the last one when it continues that range.
    fn ack(&mut self, id: u64, chunk: u32) {
        if let Some((last_id, first, count)) = self.acks.back_mut()
            && *last_id == id
            && first.checked_add(*count) == Some(chunk)
        {
            *count += 1;
            return;
        }
        self.acks.push_back((id, chunk, 1));
    }

    fn handle_data(
        &mut self,
        f: &[u8; DATA_HEADER],
        body: &[&[u8]],
        body_len: usize,
    ) -> Result<(), SessionFrameError> {
        let bad = SessionFrameError::Malformed;
        let u64_at = |i: usize| u64::from_be_bytes(f[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_be_bytes(f[i..i + 4].try_into().unwrap_or([0; 4]));
        let id = u64_at(1);
        Priority::from_code(f[9]).ok_or(bad("priority"))?;
        let total = u64_at(10);
        let chunks = u32_at(18);
        let chunk = u32_at(22);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&f[26..58]);
        let mut chunk_digest = [0u8; 32];
        chunk_digest.copy_from_slice(&f[58..90]);
        let len = u32_at(90) as usize;
        let cb = self.config.chunk_bytes as u64;
        if body_len != len
            || total > self.config.max_message_bytes
            || u64::from(chunks) != total.div_ceil(cb).max(1)
            || chunk >= chunks
            || len as u64 != (total - u64::from(chunk) * cb).min(cb)
        {
            return Err(bad("lengths do not agree"));
        }
        let corrupt = SessionFrameError::Corrupt { id, chunk };
        let in_place = self.incoming.get(&id).is_some_and(|e| {
            e.next == chunk && e.total == total && e.chunks == chunks && e.digest == digest
        });
        if !in_place {
            // The uncommon paths (first chunk, out of order, duplicates) gather the chunk and check it first.
            let part: Vec<u8> = body.concat();
            let computed: [u8; 32] = *blake3::hash(&part).as_bytes();
            if computed != chunk_digest {
                return Err(corrupt);
            }
            return self.store_checked(id, total, chunks, chunk, digest, part, computed);
        }
        let entry = self.incoming.get_mut(&id).ok_or(bad("message vanished"))?;
        let cost = if entry.reserved { 0 } else { len };
        if self.buffered + cost > self.config.max_buffered_bytes {
            // Full: drop without acknowledging; the sender will try again.
            return Ok(());
        }
        // Copied straight into the message, then checked where it lies; a bad chunk is cut off again.
        let start = entry.data.len();
        for p in body {
            entry.data.extend_from_slice(p);
        }
        let computed: [u8; 32] = *blake3::hash(&entry.data[start..]).as_bytes();
        if computed != chunk_digest {
            entry.data.truncate(start);
            return Err(corrupt);
        }
        self.buffered += cost;
        entry.hasher.update(&computed);
        entry.next += 1;
        self.unpark_and_finish(id, chunk)
    }

    /// Stores a chunk already checked against its digest (or acknowledges it again if it is a duplicate).
    #[allow(clippy::too_many_arguments)]
    fn store_checked(
        &mut self,
        id: u64,
        total: u64,
        chunks: u32,
        chunk: u32,
        digest: [u8; 32],
        part: Vec<u8>,
        computed: [u8; 32],
    ) -> Result<(), SessionFrameError> {
        let bad = SessionFrameError::Malformed;
        if self.delivered.contains(id) {
            // Already handed over: acknowledge again (the first ack may have been lost), deliver nothing.
            self.ack(id, chunk);
            return Ok(());
        }
        let fits = self.buffered + part.len() <= self.config.max_buffered_bytes;
        // The oldest undelivered id is always let in, so the gap can close and progress is guaranteed; other new
        // messages need room, and a message that would start yet another run of ids needs a free run.
        let oldest = id == self.delivered.below;
        let crowded = self.incoming.len() >= MAX_OPEN_MESSAGES
            || (self.delivered.runs.len() + self.incoming.len() >= MAX_DELIVERED_RUNS
                && !self.delivered.touches(id));
        if !self.incoming.contains_key(&id) && (!fits || (crowded && !oldest)) {
            // Full: drop without acknowledging; the sender will try again later (once the gap below has closed).
            return Ok(());
        }
        // A message that fits what is left of the budget gets its whole buffer at once (counted against the
        // budget from the start), so it is assembled with one copy and no reallocation; a larger one grows.
        let left = self.config.max_buffered_bytes.saturating_sub(self.buffered);
        let entry = match self.incoming.entry(id) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let reserved = total as usize <= left;
                if reserved {
                    self.buffered += total as usize;
                }
                let capacity = if reserved {
                    total as usize
                } else {
                    (total as usize).min(4 * self.config.chunk_bytes)
                };
                e.insert(Incoming {
                    total,
                    chunks,
                    digest,
                    reserved,
                    data: Vec::with_capacity(capacity),
                    next: 0,
                    hasher: blake3::Hasher::new(),
                    parked: BTreeMap::new(),
                })
            }
        };
        if entry.total != total || entry.chunks != chunks || entry.digest != digest {
            return Err(bad("chunk disagrees with the rest of its message"));
        }
        if chunk >= entry.next && !entry.parked.contains_key(&chunk) {
            let cost = if entry.reserved && chunk == entry.next {
                0
            } else {
                part.len()
            };
            if self.buffered + cost > self.config.max_buffered_bytes {
                // Full: drop without acknowledging; the sender will try again.
                return Ok(());
            }
            self.buffered += cost;
            if chunk == entry.next {
                entry.data.extend_from_slice(&part);
                entry.hasher.update(&computed);
                entry.next += 1;
            } else {
                entry.parked.insert(chunk, (part, computed));
            }
        }
        self.unpark_and_finish(id, chunk)
    }

    /// Moves parked chunks that now continue the message into place, acknowledges `chunk`, and delivers the
    /// message if it is whole.
    fn unpark_and_finish(&mut self, id: u64, chunk: u32) -> Result<(), SessionFrameError> {
        let Some(entry) = self.incoming.get_mut(&id) else {
            return Ok(());
        };
        while let Some((bytes, d)) = entry.parked.remove(&entry.next) {
            entry.data.extend_from_slice(&bytes);
            entry.hasher.update(&d);
            entry.next += 1;
            if entry.reserved {
                // Counted twice while parked: once in the reservation, once on its own.
                self.buffered -= bytes.len();
            }
        }
        let complete = entry.next == entry.chunks;
        self.ack(id, chunk);
        if complete {
            let Some(done) = self.incoming.remove(&id) else {
                return Ok(());
            };
            self.buffered -= if done.reserved {
                done.total as usize
            } else {
                done.data.len()
            };
            let payload = done.data;
            if *done.hasher.finalize().as_bytes() != done.digest {
                return Err(SessionFrameError::Corrupt {
                    id,
                    chunk: u32::MAX,
                });
            }
            self.delivered.insert(id);
            self.events.push_back(Event::Delivered { id, payload });
        }
        Ok(())
    }
}

/// A message's digest: BLAKE3 over its chunk digests in order (each chunk is checked against its own digest, so
/// this binds the whole message without hashing its bytes a second time).
pub fn message_digest(chunk_digests: &[[u8; 32]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for d in chunk_digests {
        h.update(d);
    }
    *h.finalize().as_bytes()
}

/// Message ids already handed to the application: every id below `below`, and disjoint runs above it. Ids are
/// sequential per sender, so a run is one entry however many messages it covers; what bounds the runs is the
/// admission check in `store_checked`, never forgetting an id.
struct DeliveredIds {
    below: u64,
    /// start -> end (exclusive).
    runs: BTreeMap<u64, u64>,
}

impl Default for DeliveredIds {
    fn default() -> Self {
        DeliveredIds {
            below: 1,
            runs: BTreeMap::new(),
        }
    }
}

impl DeliveredIds {
    fn contains(&self, id: u64) -> bool {
        id < self.below
            || self
                .runs
                .range(..=id)
                .next_back()
                .is_some_and(|(_, &end)| id < end)
    }

    /// Whether `id` would extend the watermark or an existing run rather than start a new one.
    fn touches(&self, id: u64) -> bool {
        id == self.below
            || id
                .checked_add(1)
                .is_some_and(|next| self.runs.contains_key(&next))
            || self
                .runs
                .range(..id)
                .next_back()
                .is_some_and(|(_, &end)| end == id)
    }

    fn insert(&mut self, id: u64) {
        if self.contains(id) {
            return;
        }
        let (mut start, mut end) = (id, id.saturating_add(1));
        if let Some((&s, &e)) = self.runs.range(..id).next_back()
            && e == id
        {
            start = s;
            self.runs.remove(&s);
        }
        if let Some(e) = self.runs.remove(&end) {
            end = e;
        }
        if start == self.below {
            self.below = end;
        } else {
            self.runs.insert(start, end);
        }
    }
}
