//! Signed command frames and the gate that admits them.
//!
//! Frame: `b"oc"`, version 1, sequence number (u64, big-endian), body length (u32, big-endian), body, and an
//! ed25519 signature (64 bytes) over `"odc-command-v1" ‖ everything before the signature`. The prefix keeps a
//! signature made for anything else from ever verifying as a command.

use crate::replay::{ReplayError, ReplayWindow};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

const MAGIC: [u8; 2] = *b"oc";
const VERSION: u8 = 1;
const HEADER: usize = 2 + 1 + 8 + 4;
const SIGNATURE: usize = 64;
const DOMAIN: &[u8] = b"odc-command-v1";

/// Largest command body accepted, bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// A frame that is not a well-formed command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than a header and a signature.
    #[error("command frame of {0} bytes is too short")]
    Truncated(usize),
    /// Not a command frame.
    #[error("not a command frame")]
    BadMagic,
    /// A version this side does not speak.
    #[error("command frame version {0} is not supported (this side speaks 1)")]
    Version(u8),
    /// The declared body length is not what the frame holds, or exceeds the limit.
    #[error(
        "declared body of {declared} bytes does not fit the frame ({available} available, limit {MAX_BODY})"
    )]
    Length {
        /// Declared.
        declared: usize,
        /// Bytes actually between header and signature.
        available: usize,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The frame is malformed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The signature does not verify with the sender's key: forged or tampered.
    #[error("signature does not verify: forged or tampered command")]
    BadSignature,
    /// The sequence number was refused by the anti-replay window.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The advanced window could not be persisted, so the command was not executed.
    #[error("anti-replay window not persisted ({0}); command not executed")]
    NotPersisted(String),
}

/// A decoded command frame (not yet authenticated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommand<'a> {
    /// Sequence number.
    pub seq: u64,
    /// The command's bytes (opaque here).
    pub body: &'a [u8],
    signed: &'a [u8],
    signature: [u8; SIGNATURE],
}

impl<'a> SignedCommand<'a> {
    /// Encodes and signs a command.
    pub fn sign(key: &SigningKey, seq: u64, body: &[u8]) -> Result<Vec<u8>, FrameError> {
        if body.len() > MAX_BODY {
            return Err(FrameError::Length {
                declared: body.len(),
                available: body.len(),
            });
        }
        let mut frame = Vec::with_capacity(HEADER + body.len() + SIGNATURE);
        frame.extend_from_slice(&MAGIC);
        frame.push(VERSION);
        frame.extend_from_slice(&seq.to_be_bytes());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(body);
        let signature = key.sign(&[DOMAIN, &frame].concat());
        frame.extend_from_slice(&signature.to_bytes());
        Ok(frame)
    }

    /// Parses a frame without allocating; every length is checked against the frame.
    pub fn decode(frame: &'a [u8]) -> Result<SignedCommand<'a>, FrameError> {
        if frame.len() < HEADER + SIGNATURE {
            return Err(FrameError::Truncated(frame.len()));
        }
        if frame[..2] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if frame[2] != VERSION {
            return Err(FrameError::Version(frame[2]));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&frame[3..11]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&frame[11..15]);
        let declared = u32::from_be_bytes(len) as usize;
        let available = frame.len() - HEADER - SIGNATURE;
        if declared != available || declared > MAX_BODY {
            return Err(FrameError::Length {
                declared,
                available,
            });
        }
        let split = frame.len() - SIGNATURE;
        let mut signature = [0u8; SIGNATURE];
        signature.copy_from_slice(&frame[split..]);
        Ok(SignedCommand {
            seq: u64::from_be_bytes(seq),
            body: &frame[HEADER..split],
            signed: &frame[..split],
            signature,
        })
    }
}

/// Admits commands from one sender: its verifying key and the persisted anti-replay window.
#[derive(Debug, Clone)]
pub struct CommandGate {
    key: VerifyingKey,
    window: ReplayWindow,
}

impl CommandGate {
    /// A gate for a sender's key, starting from a persisted window.
    pub fn new(key: VerifyingKey, window: ReplayWindow) -> Self {
        CommandGate { key, window }
    }

    /// The current window.
    pub fn window(&self) -> ReplayWindow {
        self.window
    }

    /// Verifies, checks the window, persists the advanced window with `persist`, and only then returns the body
    /// to execute. On any failure nothing moves and nothing may be executed.
    pub fn admit<'a, E: std::fmt::Display>(
        &mut self,
        frame: &'a [u8],
        persist: impl FnOnce(&ReplayWindow) -> Result<(), E>,
    ) -> Result<(u64, &'a [u8]), AuthError> {
        let command = SignedCommand::decode(frame)?;
        let signature = Signature::from_bytes(&command.signature);
        self.key
            .verify_strict(&[DOMAIN, command.signed].concat(), &signature)
            .map_err(|_| AuthError::BadSignature)?;
        self.window.check(command.seq)?;
        let next = self.window.advanced(command.seq);
        persist(&next).map_err(|e| AuthError::NotPersisted(e.to_string()))?;
        self.window = next;
        Ok((command.seq, command.body))
    }
}
