//! The constellation's certificate authority: one CA signs a certificate per node, station and ground service,
//! and each certificate binds exactly one identity (a DNS name `<id>.<role>.odc`), so a peer proves who it is
//! by the TLS handshake itself, not by anything it says afterwards.
//!
//! Keys are ECDSA P-256. Private keys are written with owner-only permissions.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What a certificate holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A satellite's flight node.
    Node,
    /// A ground station front end.
    Station,
    /// The ground control plane.
    Ground,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Station => "station",
            Role::Ground => "ground",
        }
    }
}

/// Who a certificate speaks for: a role and an id, written as the DNS name `<id>.<role>.odc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    role: Role,
    id: String,
}

impl Identity {
    /// An identity; the id must be a DNS label (1–63 letters, digits or hyphens, not starting or ending with one).
    pub fn new(role: Role, id: &str) -> Result<Identity, PkiError> {
        let ok = !id.is_empty()
            && id.len() <= 63
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if !ok {
            return Err(PkiError::BadId(id.to_string()));
        }
        Ok(Identity {
            role,
            id: id.to_ascii_lowercase(),
        })
    }

    /// A flight node's identity.
    pub fn node(id: &str) -> Result<Identity, PkiError> {
        Identity::new(Role::Node, id)
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The DNS name the certificate carries.
    pub fn dns_name(&self) -> String {
        format!("{}.{}.odc", self.id, self.role.label())
    }

    /// Parses `<id>.<role>.odc`.
    pub fn from_dns_name(name: &str) -> Result<Identity, PkiError> {
        let bad = || PkiError::BadId(name.to_string());
        let rest = name.strip_suffix(".odc").ok_or_else(bad)?;
        let (id, role) = rest.rsplit_once('.').ok_or_else(bad)?;
        let role = match role {
            "node" => Role::Node,
            "station" => Role::Station,
            "ground" => Role::Ground,
            _ => return Err(bad()),
        };
        Identity::new(role, id)
    }

    /// The file stem for this identity's credentials (`node-7`).
    pub fn file_stem(&self) -> String {
        format!("{}-{}", self.role.label(), self.id)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role.label(), self.id)
    }
}

/// What can go wrong with certificates and their files.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// An id that cannot be a DNS label.
    #[error("`{0}` is not a valid identity (use 1-63 letters, digits or hyphens)")]
    BadId(String),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that does not hold what it should.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Refusing to overwrite existing credentials.
    #[error("{0} already exists; remove it first if you mean to replace it")]
    Exists(PathBuf),
}

/// A certificate authority: its certificate and signing key.
pub struct Authority {
    cert_pem: String,
    key: KeyPair,
}

/// One holder's credentials: certificate chain (leaf first) and private key, both PEM.
#[derive(Clone)]
pub struct Credentials {
    /// Whose these are.
    pub identity: Identity,
    /// PEM: the leaf certificate, then the CA's.
    pub chain_pem: String,
    /// PEM: the private key.
    pub key_pem: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The certificate chain in DER.
    pub fn chain(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        let certs: Result<Vec<_>, _> =
            CertificateDer::pem_slice_iter(self.chain_pem.as_bytes()).collect();
        let certs = certs.map_err(|e| invalid("certificate chain", e))?;
        if certs.is_empty() {
            return Err(invalid("certificate chain", "no certificate"));
        }
        Ok(certs)
    }

    /// The private key in DER.
    pub fn key(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid("private key", e))
    }

    /// Loads `<stem>.pem` and `<stem>.key` from a directory.
    pub fn load(dir: &Path, identity: Identity) -> Result<Credentials, PkiError> {
        let stem = identity.file_stem();
        let creds = Credentials {
            chain_pem: read(&dir.join(format!("{stem}.pem")))?,
            key_pem: read(&dir.join(format!("{stem}.key")))?,
            identity,
        };
        creds
            .chain()
            .map_err(|e| in_file(dir.join(format!("{stem}.pem")), e))?;
        creds
            .key()
            .map_err(|e| in_file(dir.join(format!("{stem}.key")), e))?;
        Ok(creds)
    }

    /// Writes `<stem>.pem` and `<stem>.key` (owner-only) into a directory; refuses to overwrite.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PkiError> {
        let stem = self.identity.file_stem();
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        write_new(&key, &self.key_pem, true)?;
        write_new(&cert, &self.chain_pem, false)?;
        Ok((cert, key))
    }
}

/// The CA certificate every peer trusts, in DER.
pub fn load_trust(path: &Path) -> Result<CertificateDer<'static>, PkiError> {
    let pem = read(path)?;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Invalid {
        path: path.to_path_buf(),
        what: format!("not a PEM certificate ({e})"),
    })
}

impl Authority {
    /// A new authority named `name`, valid from `not_before` to `not_after`.
    pub fn generate(
        name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Authority, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{name} constellation CA"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| invalid("CA certificate", e))
    }

    /// Credentials for one identity, valid from `not_before` to `not_after`, usable as TLS client and server.
    pub fn issue(
        &self,
        identity: &Identity,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Credentials, PkiError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![identity.dns_name()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity.dns_name());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Credentials {
            identity: identity.clone(),
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for the HTTPS API, naming the hosts clients reach it by (DNS names or IP addresses),
    /// written as `api.pem` (chain) and `api.key` (owner-only) into `dir`; refuses to overwrite.
    pub fn issue_api(
        &self,
        hosts: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        dir: &Path,
    ) -> Result<(PathBuf, PathBuf), PkiError> {
        if hosts.is_empty() {
            return Err(PkiError::BadId(
                "no host named for the API certificate".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let key = KeyPair::generate()?;
        // Strings that parse as IP addresses become IP SANs, the rest DNS names.
        let mut params = CertificateParams::new(hosts.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, hosts[0].clone());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &issuer)?;
        let cert_path = dir.join("api.pem");
        let key_path = dir.join("api.key");
        write_new(&key_path, &key.serialize_pem(), true)?;
        write_new(
            &cert_path,
            &format!("{}{}", cert.pem(), self.cert_pem),
            false,
        )?;
        Ok((cert_path, key_path))
    }

    /// Writes `ca.pem` and `ca.key` (owner-only) into a directory, creating it; refuses to overwrite.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PkiError> {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cert = dir.join("ca.pem");
        let key = dir.join("ca.key");
        write_new(&key, &self.key.serialize_pem(), true)?;
        write_new(&cert, &self.cert_pem, false)?;
        Ok((cert, key))
    }

    /// Loads `ca.pem` and `ca.key` from a directory.
    pub fn load(dir: &Path) -> Result<Authority, PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let cert_pem = read(&cert_path)?;
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| PkiError::Invalid {
            path: key_path,
            what: format!("not a private key ({e})"),
        })?;
        Issuer::from_ca_cert_pem(&cert_pem, &key).map_err(|e| PkiError::Invalid {
            path: cert_path,
            what: format!("not a CA certificate ({e})"),
        })?;
        Ok(Authority { cert_pem, key })
    }
}

fn invalid(what: &str, e: impl fmt::Display) -> PkiError {
    PkiError::Invalid {
        path: PathBuf::from(what),
        what: e.to_string(),
    }
}

fn in_file(path: PathBuf, e: PkiError) -> PkiError {
    match e {
        PkiError::Invalid { what, .. } => PkiError::Invalid { path, what },
        other => other,
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_new(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    use std::io::Write as _;
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Created owner-only, never widened afterwards: no window in which another user could read the key.
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::Exists(path.to_path_buf())
        } else {
            io(e)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> (OffsetDateTime, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        (now, now + time::Duration::days(1))
    }

    #[test]
    fn node_and_station_names_are_exactly_the_identities_a_certificate_can_carry() {
        use odc_model::id::{NodeId, StationId};
        for name in [
            "n60101",
            "sat-1",
            "gs-svalbard",
            "a",
            "sat_1",
            "sat.1",
            "-sat",
            "sat-",
            "",
            "Sat-1",
            &"x".repeat(63),
            &"x".repeat(64),
        ] {
            let node = NodeId::new(name).is_ok();
            let station = StationId::new(name).is_ok();
            assert_eq!(node, station, "{name:?}");
            if node {
                assert!(
                    Identity::node(name).is_ok(),
                    "{name:?} is a node id but cannot link"
                );
            } else if name == name.to_ascii_lowercase() {
                assert!(
                    Identity::node(name).is_err(),
                    "{name:?} links but is not a node id"
                );
            }
        }
        let err = NodeId::new("sat_1").expect_err("underscore");
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[test]
    fn identities_are_dns_labels() {
        assert!(Identity::node("sat-7").is_ok());
        for bad in ["", "-x", "x-", "a.b", "a b", &"x".repeat(64)] {
            assert!(
                matches!(Identity::node(bad), Err(PkiError::BadId(_))),
                "{bad:?}"
            );
        }
        let id = Identity::new(Role::Station, "Svalbard-1").expect("valid");
        assert_eq!(id.dns_name(), "svalbard-1.station.odc");
        assert_eq!(Identity::from_dns_name(&id.dns_name()).ok(), Some(id));
        assert!(Identity::from_dns_name("x.satellite.odc").is_err());
    }

    #[test]
    fn files_round_trip_with_owner_only_keys_and_no_overwrite()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("odc-pki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, b) = window();
        let ca = Authority::generate("test", a, b)?;
        let (_, ca_key) = ca.save(&dir)?;
        assert!(matches!(ca.save(&dir), Err(PkiError::Exists(_))));
        let loaded = Authority::load(&dir)?;
        let node = Identity::node("n1")?;
        let creds = loaded.issue(&node, a, b)?;
        let (_, key) = creds.save(&dir)?;
        let back = Credentials::load(&dir, node)?;
        assert_eq!(back.chain()?.len(), 2);
        #[cfg(unix)]
        for secret in [ca_key, key] {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&secret)?.permissions().mode() & 0o777,
                0o600,
                "{}",
                secret.display()
            );
        }
        std::fs::write(dir.join("node-bad.pem"), "not a certificate")?;
        std::fs::write(dir.join("node-bad.key"), "not a key")?;
        let err = Credentials::load(&dir, Identity::node("bad")?).map(|_| ());
        assert!(matches!(err, Err(PkiError::Invalid { .. })), "{err:?}");
        assert!(load_trust(&dir.join("missing.pem")).is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
