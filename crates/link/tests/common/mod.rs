//! Certificates for the link tests: a fresh authority and credentials valid from yesterday for a month.

use odc_link::{Authority, Credentials, Identity, Role};
use time::OffsetDateTime;

/// From a day ago to a month on.
pub fn valid() -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (
        now - time::Duration::days(1),
        now + time::Duration::days(30),
    )
}

/// A fresh constellation CA.
pub fn authority() -> Result<Authority, Box<dyn std::error::Error>> {
    let (a, b) = valid();
    Ok(Authority::generate("test", a, b)?)
}

/// Credentials for `who` under `ca`.
pub fn issue(ca: &Authority, who: &Identity) -> Result<Credentials, Box<dyn std::error::Error>> {
    let (a, b) = valid();
    Ok(ca.issue(who, a, b)?)
}

/// The ground's identity in these tests.
pub fn ground() -> Identity {
    Identity::new(Role::Ground, "gs").expect("valid id")
}
