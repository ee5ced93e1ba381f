//! The OpenAPI document as the server behaves: every response described, and on every operation the refusals
//! the guards in front of the handlers give (no or bad token, wrong kind of caller, a bad or too large or too slow
//! body, the server too busy), so a client or a contract checker meets no status the document does not name.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// Refusals the guards may give on any authenticated operation, with what they mean.
const GUARDED: &[(u16, &str)] = &[
    (
        400,
        "Bad request: a malformed query or body, or more than one Authorization header",
    ),
    (401, "No token, or not a valid one"),
    (
        403,
        "A valid token of the wrong kind of caller for this route",
    ),
    (408, "The request or its body took too long"),
    (
        503,
        "The server is too busy (overloaded) or cannot store changes now; retry shortly",
    ),
];

/// Refusals of operations that take a body.
const WITH_BODY: &[(u16, &str)] = &[
    (
        413,
        "The body is larger than this route takes (the limit is named)",
    ),
    (415, "The body is not of a content type this route takes"),
    (
        422,
        "The body is understood but refused for what it says (the code and message say why)",
    ),
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ApiError" } } }
    })
}

/// Completes `doc` (the document utoipa derives) in place.
pub fn complete(doc: &mut Value) {
    // The plan is `null` before the first one.
    if let Some(schema) =
        doc.pointer_mut("/paths/~1v1~1ops~1plan/get/responses/200/content/application~1json/schema")
    {
        *schema = json!({ "type": ["object", "null"] });
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let public = path == "/console" || path == "/openapi.json";
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let has_body = op.contains_key("requestBody") || method == "post" || method == "patch";
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (code, response) in responses.iter_mut() {
                if let Some(r) = response.as_object_mut()
                    && !r.contains_key("description")
                {
                    let reason = code
                        .parse::<u16>()
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Response");
                    r.insert("description".into(), Value::String(reason.into()));
                }
            }
            if public {
                continue;
            }
            let extra = GUARDED.iter().chain(if has_body { WITH_BODY } else { &[] });
            for (code, description) in extra {
                responses
                    .entry(code.to_string())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}
