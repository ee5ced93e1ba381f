//! The API contract against a running `odc ground`, by independent tools: `openapi-spec-validator` on the served
//! document and a bounded `schemathesis` run with every check, as a tenant and as the operator
//! (`scripts/api-contract.sh`, which installs the pinned Python tools on first use).

use std::process::Command;

#[test]
fn the_served_openapi_document_validates_and_the_server_keeps_to_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("bash")
        .arg(format!("{root}/scripts/api-contract.sh"))
        .arg(env!("CARGO_BIN_EXE_odc"))
        .arg(std::env::var("ODC_CONTRACT_EXAMPLES").unwrap_or_else(|_| "30".into()))
        .status()
        .expect("bash runs the contract script");
    assert!(
        status.success(),
        "the API contract check failed (see above)"
    );
}
