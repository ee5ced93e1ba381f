//! End-to-end seals on relayed frames ([`RelaySeal`]).
//!
//! A frame relayed over ISLs is authenticated hop by hop by the links it crosses, but every neighbour on the way
//! holds it in the clear and could forge or alter it. Its origin therefore seals it, and its destination checks the
//! seal against the sender the frame names before acting on it. Two implementations:
//!
//! - [`PkiSeal`], for the services: the origin signs with its own link key (ECDSA P-256, the key its certificate
//!   binds) and attaches its leaf certificate; the destination checks that the certificate chains to the
//!   constellation CA, is valid now, and binds the claimed identity (`<node>.node.odc` for a node, the ground's
//!   name for the ground), then checks the signature. No key beyond those `odc pki` already issues.
//! - [`Keyring`], for the digital twin: ed25519 keys drawn from a seed, one per sender, with every public key known
//!   to every holder (keys distributed in advance). Deterministic, so the same seed makes the same run.
//!
//! Seal layout (PKI): version 1 (u8), leaf length (u16, big-endian), leaf DER, signature (DER). Keyring: version 2
//! (u8), signature (64 bytes). Both sign `"odc-relay-v1" ‖ BLAKE3(frame)`, so no signature made for anything else
//! verifies.

use crate::pki::{Credentials, Identity, PkiError, Role};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use odc_model::wire::{RelaySeal, Sender};
use rustls::SignatureScheme;
use rustls::sign::Signer;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::collections::HashMap;
use std::sync::Arc;

const DOMAIN: &[u8] = b"odc-relay-v1";
const PKI_VERSION: u8 = 1;
const KEYRING_VERSION: u8 = 2;

/// What is signed: the domain and the frame's BLAKE3 digest. Hashing once with BLAKE3 instead of letting the
/// signature hash the whole frame (ed25519 hashes it twice with SHA-512) makes sealing a 64 KiB input about ten times
/// cheaper, which the twin's 90,000 relayed inputs a day show.
fn signed(frame: &[u8]) -> Vec<u8> {
    [DOMAIN, blake3::hash(frame).as_bytes()].concat()
}

/// A sender as messages name it.
fn who(sender: &Sender) -> String {
    match sender {
        Sender::Ground => "the ground".into(),
        Sender::Node(n) => format!("node {n}"),
    }
}

/// Seals with this holder's link key and certificate; verifies others' against the constellation CA.
pub struct PkiSeal {
    leaf: Vec<u8>,
    signer: Box<dyn Signer>,
    /// The constellation CA, parsed once.
    anchor: TrustAnchor<'static>,
    ground: Identity,
}

impl std::fmt::Debug for PkiSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiSeal")
            .field("ground", &self.ground)
            .finish_non_exhaustive()
    }
}

impl PkiSeal {
    /// A seal for the holder of `credentials` (ECDSA P-256, as `odc pki` issues them), trusting `ca`, with
    /// `ground` the identity whose certificate speaks for the ground.
    pub fn new(
        credentials: &Credentials,
        ca: CertificateDer<'static>,
        ground: Identity,
    ) -> Result<PkiSeal, PkiError> {
        let bad = |what: String| PkiError::Invalid {
            path: std::path::PathBuf::from(credentials.identity.file_stem()),
            what,
        };
        if ground.role() != Role::Ground {
            return Err(bad(format!("{ground} is not a ground identity")));
        }
        let chain = credentials.chain()?;
        let leaf = chain.first().map(|c| c.to_vec()).unwrap_or_default();
        if leaf.len() > usize::from(u16::MAX) {
            return Err(bad("the leaf certificate is over 64 KiB".into()));
        }
        let key = rustls::crypto::ring::sign::any_ecdsa_type(&credentials.key()?)
            .map_err(|e| bad(format!("the private key cannot sign seals: {e}")))?;
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .ok_or_else(|| bad("the private key is not ECDSA P-256".into()))?;
        let anchor = webpki::anchor_from_trusted_cert(&ca)
            .map_err(|e| bad(format!("the constellation CA is not usable: {e}")))?
            .to_owned();
        Ok(PkiSeal {
            leaf,
            signer,
            anchor,
            ground,
        })
    }

    fn expected(&self, sender: &Sender) -> Result<Identity, String> {
        match sender {
            Sender::Ground => Ok(self.ground.clone()),
            Sender::Node(n) => Identity::node(n.as_str()).map_err(|e| e.to_string()),
        }
    }
}

impl RelaySeal for PkiSeal {
    fn seal(&self, frame: &[u8]) -> Vec<u8> {
        // Signing with a well-formed ECDSA key does not fail; an empty signature would simply not verify.
        let signature = self.signer.sign(&signed(frame)).unwrap_or_default();
        let mut out = Vec::with_capacity(3 + self.leaf.len() + signature.len());
        out.push(PKI_VERSION);
        out.extend_from_slice(&(self.leaf.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.leaf);
        out.extend_from_slice(&signature);
        out
    }

    fn verify(&self, sender: &Sender, frame: &[u8], seal: &[u8]) -> Result<(), String> {
        let (&version, rest) = seal.split_first().ok_or("no seal")?;
        if version != PKI_VERSION {
            return Err(format!("seal version {version} is not a certificate seal"));
        }
        if rest.len() < 2 {
            return Err("seal truncated".into());
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if rest.len() < len {
            return Err("seal truncated".into());
        }
        let (leaf, signature) = rest.split_at(len);
        let leaf = CertificateDer::from(leaf);
        let cert = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| format!("the seal's certificate does not parse: {e}"))?;
        cert.verify_for_usage(
            &[webpki::ring::ECDSA_P256_SHA256],
            std::slice::from_ref(&self.anchor),
            &[],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| {
            format!("the seal's certificate is not valid under the constellation CA: {e}")
        })?;
        let identity = self.expected(sender)?;
        let name = ServerName::try_from(identity.dns_name()).map_err(|e| e.to_string())?;
        cert.verify_is_valid_for_subject_name(&name)
            .map_err(|_| format!("the seal's certificate does not belong to {identity}"))?;
        cert.verify_signature(webpki::ring::ECDSA_P256_SHA256, &signed(frame), signature)
            .map_err(|_| format!("the seal does not verify: the frame is not {identity}'s as sent"))
    }
}

/// ed25519 public keys of every sender, known to all in advance (the digital twin's way of distributing keys).
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Arc<HashMap<Sender, VerifyingKey>>,
    secrets: Arc<HashMap<Sender, SigningKey>>,
}

impl Keyring {
    /// One key per sender, each drawn from `seed` and the sender's name: the same seed gives the same keys.
    pub fn from_seed(seed: u64, senders: impl IntoIterator<Item = Sender>) -> Keyring {
        let mut secrets = HashMap::new();
        for s in senders {
            let name = match &s {
                Sender::Ground => "ground".to_string(),
                Sender::Node(n) => format!("node:{n}"),
            };
            let mut hasher = blake3::Hasher::new_derive_key("odc keyring v1");
            hasher.update(&seed.to_le_bytes());
            hasher.update(name.as_bytes());
            secrets.insert(s, SigningKey::from_bytes(hasher.finalize().as_bytes()));
        }
        let keys = secrets
            .iter()
            .map(|(s, k)| (s.clone(), k.verifying_key()))
            .collect();
        Keyring {
            keys: Arc::new(keys),
            secrets: Arc::new(secrets),
        }
    }

    /// The seal `sender` holds: its own signing key and everyone's public keys. None for a sender not in the ring.
    pub fn seal_for(&self, sender: &Sender) -> Option<KeyringSeal> {
        Some(KeyringSeal {
            me: self.secrets.get(sender)?.clone(),
            keys: self.keys.clone(),
        })
    }
}

/// One sender's seal from a [`Keyring`].
#[derive(Clone)]
pub struct KeyringSeal {
    me: SigningKey,
    keys: Arc<HashMap<Sender, VerifyingKey>>,
}

impl std::fmt::Debug for KeyringSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringSeal")
            .field("senders", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl RelaySeal for KeyringSeal {
    fn seal(&self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(65);
        out.push(KEYRING_VERSION);
        out.extend_from_slice(&self.me.sign(&signed(frame)).to_bytes());
        out
    }

    fn verify(&self, sender: &Sender, frame: &[u8], seal: &[u8]) -> Result<(), String> {
        let (&version, rest) = seal.split_first().ok_or("no seal")?;
        if version != KEYRING_VERSION {
            return Err(format!("seal version {version} is not a keyring seal"));
        }
        let bytes: [u8; 64] = rest
            .try_into()
            .map_err(|_| format!("a keyring seal has 64 signature bytes, not {}", rest.len()))?;
        let key = self
            .keys
            .get(sender)
            .ok_or_else(|| format!("no key for {}", who(sender)))?;
        key.verify_strict(&signed(frame), &Signature::from_bytes(&bytes))
            .map_err(|_| {
                format!(
                    "the seal does not verify: the frame is not {}'s as sent",
                    who(sender)
                )
            })
    }
}
