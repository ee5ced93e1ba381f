//! Named operator accounts with roles: an admin creates them (`POST /v1/ops/operators`), lists them and replaces
//! their tokens; each token is shown once and kept only as its hash; the account and its audit entry are stored
//! together before the token works. Every operator action is audited under the operator's name.

use super::{ApiError, Body, Ground, Operator, Principal, new_token, parse_object, token_hash};
use crate::store::{AuditEntry, OperatorRecord, Role, Store};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, PoisonError};

/// An operator account to create.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    /// Its name: 1-64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// An operator account as admins see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorView {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// An operator account with its bearer token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorToken {
    /// The account.
    pub operator: OperatorView,
    /// Its token.
    pub token: String,
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

impl<S: Store> Ground<S> {
    /// Operators known now, by name: the bootstrap admin and the stored accounts.
    fn operator_named(&self, name: &str) -> Option<Operator> {
        self.principals
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .find_map(|p| match p {
                Principal::Operator(o) if &*o.name == name => Some(o.clone()),
                _ => None,
            })
    }

    /// Stores an account with its audit entry, then lets its token in (and the old one, if any, no more).
    async fn put_operator(
        &self,
        operator: Operator,
        audit: AuditEntry,
    ) -> Result<OperatorToken, ApiError> {
        let token = new_token();
        let record = OperatorRecord {
            name: operator.name.to_string(),
            role: operator.role,
            token_hash: token_hash(&token),
        };
        self.store
            .put_operator(&record, &[audit])
            .await
            .map_err(ApiError::store)?;
        {
            let mut p = self
                .principals
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            p.retain(|_, who| !matches!(who, Principal::Operator(o) if o.name == operator.name));
            p.insert(record.token_hash, Principal::Operator(operator.clone()));
        }
        Ok(OperatorToken {
            operator: OperatorView {
                name: record.name,
                role: record.role,
            },
            token,
        })
    }
}

fn audit(who: &Operator, at: odc_model::time::Instant, action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        at,
        who: format!("operator:{}", who.name),
        action: action.into(),
        target: target.into(),
    }
}

#[utoipa::path(post, path = "/v1/ops/operators", tag = "operator", request_body = NewOperator, security(("bearer" = [])), responses((status = 201, description = "The account and its token, shown this once", body = OperatorToken), (status = 409, description = "An operator of that name exists", body = ApiError)))]
pub(super) async fn create_operator<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<(StatusCode, Json<OperatorToken>), ApiError> {
    let who = g.operator_with(&headers, Role::Admin)?;
    let req: NewOperator = parse_object(&body)
        .map_err(|e| super::bad_request(format!("the body is not an operator account: {e}")))?;
    if !valid_name(&req.name) {
        return Err(super::bad_request(
            "`name`: 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    let _one_change = g.tenant_admin.lock().await;
    if g.operator_named(&req.name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "an operator named {} exists; replace its token instead",
                req.name
            ),
        ));
    }
    let now = g.clock.now();
    let operator = Operator {
        name: req.name.as_str().into(),
        role: req.role,
    };
    let entry = audit(
        &who,
        now,
        &format!("operator.create:{}", req.role.name()),
        &req.name,
    );
    let created = g.put_operator(operator, entry).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/v1/ops/operators", tag = "operator", security(("bearer" = [])), responses((status = 200, description = "Every operator account, by name", body = Vec<OperatorView>)))]
pub(super) async fn list_operators<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
) -> Result<Json<Vec<OperatorView>>, ApiError> {
    g.operator_with(&headers, Role::Admin)?;
    let mut all: Vec<OperatorView> = g
        .principals
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .filter_map(|p| match p {
            Principal::Operator(o) => Some(OperatorView {
                name: o.name.to_string(),
                role: o.role,
            }),
            Principal::Tenant(_) => None,
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all.dedup();
    Ok(Json(all))
}

#[utoipa::path(post, path = "/v1/ops/operators/{name}/token", tag = "operator", params(("name" = String, Path, description = "Operator name")), security(("bearer" = [])), responses((status = 200, description = "A new token, shown this once; the old one is refused from now on", body = OperatorToken), (status = 404, body = ApiError), (status = 409, description = "The bootstrap admin: its token is the operator token file", body = ApiError)))]
pub(super) async fn rotate_operator_token<S: Store>(
    State(g): State<Arc<Ground<S>>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<OperatorToken>, ApiError> {
    let who = g.operator_with(&headers, Role::Admin)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such operator");
    let _one_change = g.tenant_admin.lock().await;
    let operator = g.operator_named(&name).ok_or_else(not_found)?;
    if &*operator.name == super::BOOTSTRAP_OPERATOR {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the bootstrap admin's token is the service's operator token file; replace that file and restart",
        ));
    }
    let entry = audit(&who, g.clock.now(), "operator.token_rotate", &name);
    Ok(Json(g.put_operator(operator, entry).await?))
}
