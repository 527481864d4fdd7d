//! The OpenAPI 3.1 description of the HTTP API, generated from the wire types (`utoipa`).
//!
//! [`api`] is the one list of routes: the router ([`crate::router`]) and the document
//! ([`document`]) are both split from it, so a route cannot be served without being described.
//! The document is served at `GET /openapi.json` (no key) and checked in as
//! `docs/openapi.json`; `tests/openapi.rs` fails when they differ
//! (`PIVAULT_BLESS=1 cargo test -p pivault-server --test openapi` rewrites the file).
//!
//! Error responses: every operation lists, per status, the stable codes it may answer in
//! `error.code` (an `enum` on the `Error<status>` schema and the response's description). The
//! lists come from [`pivault_domain::Code::ALL`] and [`Code::status`], so they cannot drift from
//! the codes; the statuses of an operation are the ones its annotation names plus those implied
//! by its shape (a key → 401/403, a body → 400/413/415/422, query parameters → 400/422, path
//! parameters → 400/404, storage → 500/503), and 413 on every operation (the body size check).

use crate::AppState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pivault_domain::Code;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pivault",
        description = "A personal-information (PI) vault and privacy-operations service. Every use of PI is decided for a declared purpose, audited and encrypted at rest.\n\nEvery error, including those answered before routing, is `{\"error\": {\"code\", \"message\", …}}` with a stable `code` (the README lists them all). Answered before routing, on any path: 400 `bad_request` (an unparsable request line or header), 404 `route_not_found`, 405 `method_not_allowed`, 414 `uri_too_long`, 431 `headers_too_large`.",
        license(name = "Apache-2.0"),
    ),
    tags(
        (name = "subjects", description = "PI subjects: create, erase, look up"),
        (name = "fields", description = "Fields of a subject: write, decided read"),
        (name = "consents", description = "The consent ledger"),
        (name = "decisions", description = "Decisions, outbound disclosures and their ledger"),
        (name = "reports", description = "Reports for the privacy office"),
        (name = "policy", description = "The policy in force"),
        (name = "dsr", description = "Data subject requests (PIPL Art. 44-50)"),
        (name = "holds", description = "Legal holds: keep data past retention and erasure (PIPL Art. 47 para. 2)"),
        (name = "audit", description = "The audit log as a transparency log: signed checkpoints, inclusion and consistency proofs, checked offline with `pivault-verify`"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// Every route, with its documentation: the router and the document are split from this.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/v1", crate::routes::v1())
        .merge(crate::routes::health::routes())
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(openapi_json))
}

/// The finished document: the generated one with the security schemes and the error
/// responses of every operation.
#[must_use]
pub fn document() -> Value {
    let (_, doc) = api().split_for_parts();
    finish(serde_json::to_value(&doc).unwrap_or(Value::Null))
}

/// [`document`] as pretty JSON with a final newline: the bytes of `GET /openapi.json` and of
/// `docs/openapi.json`. Built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
        s.push('\n');
        s
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API",
        content_type = "application/json", body = Object)),
    security(()))]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}

/// Codes that are never the answer of one operation: answered before routing (documented in
/// `info`), or produced by the command line only.
const NOT_PER_OPERATION: &[Code] = &[
    Code::RouteNotFound,
    Code::MethodNotAllowed,
    Code::BadRequest,
    Code::UriTooLong,
    Code::HeadersTooLarge,
    Code::CsvMalformed,
    Code::IoError,
    Code::NotADirectory,
    Code::MasterKeyMismatch,
    Code::MasterKeyMissing,
    Code::MasterKeyUnreadable,
    Code::MasterKeyUnverifiable,
];

/// A code that only travels as the `reason` of a `decision_denied` or of a withheld category.
fn is_reason_only(c: Code) -> bool {
    c.description().starts_with("Decision reason:")
}

/// The codes an operation may answer with `status` in `error.code`.
#[must_use]
pub fn codes_for(status: u16) -> Vec<Code> {
    Code::ALL
        .iter()
        .copied()
        .filter(|c| c.status() == status && !is_reason_only(*c) && !NOT_PER_OPERATION.contains(c))
        .collect()
}

fn quoted(codes: impl IntoIterator<Item = Code>) -> String {
    codes
        .into_iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn default_description(status: u16) -> &'static str {
    match status {
        400 => "The request is malformed",
        401 => "No valid credentials",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflicts with the current state",
        413 => "The body is larger than 1 MiB",
        415 => "The body is not `application/json`",
        422 => "Invalid input",
        429 => "Too many requests; retry after `Retry-After` seconds",
        500 => "A broken invariant; the cause is logged under `request_id`",
        503 => "A storage fault; nothing was saved; retry after `Retry-After` seconds",
        _ => "Error",
    }
}

/// The `Error<status>` schema: the error shape with `code` limited to the status's codes.
fn error_schema(status: u16) -> Value {
    let codes: Vec<&str> = codes_for(status).iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "description": format!("The error shape of HTTP {status}."),
        "required": ["error"],
        "properties": { "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "string", "enum": codes, "description": "Stable code (see the README's error table)." },
                "message": { "type": "string", "description": "A fixed sentence; never an input value." },
                "request_id": { "type": "string", "description": "500 only: the id the cause is logged under." },
                "field": { "type": "string", "description": "The input the error is about (a field or parameter name, never its value)." },
                "reason": { "type": "string", "description": "`decision_denied`: the decision reason code." },
                "article": { "description": "`decision_denied`: the PIPL article." },
                "clause": { "description": "`decision_denied`: the policy clause." },
                "withheld": { "type": "array", "description": "`decision_denied`: withheld categories with their reasons.",
                    "items": { "$ref": "#/components/schemas/WithheldOut" } },
            },
        }},
    })
}

/// Adds the security schemes, the `Error<status>` schemas and the error responses of each
/// operation to the generated document.
fn finish(mut doc: Value) -> Value {
    let mut used = BTreeSet::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                if let Some(op) = op.as_object_mut() {
                    add_errors(path, op, &mut used);
                }
            }
        }
    }
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(Value::Object(c)) = components {
        let schemas = c.entry("schemas").or_insert_with(|| json!({}));
        if let Value::Object(schemas) = schemas {
            for status in &used {
                schemas.insert(format!("Error{status}"), error_schema(*status));
            }
        }
        c.insert(
            "securitySchemes".into(),
            json!({
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "An API key, `Authorization: Bearer <key>` (`pivault keys create`). Roles: app, admin, support, dpo, security." },
                "api_key": { "type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "The same API key in `X-API-Key`." },
                "dsr_token": { "type": "apiKey", "in": "header", "name": "X-Dsr-Token",
                    "description": "The requester's token of one data subject request, returned once at filing (`POST /v1/dsr`)." },
            }),
        );
    }
    doc
}

/// The error statuses of one operation: those it names, plus those its shape implies.
fn add_errors(path: &str, op: &mut Map<String, Value>, used: &mut BTreeSet<u16>) {
    let mut statuses: BTreeSet<u16> = op
        .get("responses")
        .and_then(Value::as_object)
        .map(|r| {
            r.keys()
                .filter_map(|k| k.parse::<u16>().ok())
                .filter(|s| *s >= 400)
                .collect()
        })
        .unwrap_or_default();
    let needs_key = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|reqs| {
            reqs.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        });
    if needs_key {
        statuses.extend([401, 403]);
    }
    if op.contains_key("requestBody") {
        statuses.extend([400, 413, 415, 422]);
    }
    let params = op.get("parameters").and_then(Value::as_array);
    let has_in = |place: &str| params.is_some_and(|ps| ps.iter().any(|p| p["in"] == place));
    if has_in("query") {
        statuses.extend([400, 422]);
    }
    if has_in("path") {
        statuses.extend([400, 404]);
    }
    // Every request passes the body size check before its handler: a declared body over 1 MiB
    // is 413 whatever the operation (a target over 8 KiB, 414, is answered before routing and
    // documented in `info`).
    statuses.insert(413);
    if !matches!(path, "/healthz" | "/openapi.json") {
        statuses.extend([500, 503]);
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for status in statuses {
        used.insert(status);
        let given = responses
            .get(&status.to_string())
            .and_then(|r| r["description"].as_str())
            .filter(|d| !d.is_empty())
            .unwrap_or(default_description(status))
            .to_string();
        let mut description = format!(
            "{given}. `error.code` is one of: {}.",
            quoted(codes_for(status))
        );
        if status == 403 {
            description.push_str(&format!(
                " A `decision_denied` carries `reason` (a decision reason: {} or one of the codes above), `article`, `clause` and `withheld`.",
                quoted(Code::ALL.iter().copied().filter(|c| is_reason_only(*c)))
            ));
        }
        let mut response = json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/Error{status}") } } },
        });
        if status == 503 {
            response["headers"] = json!({ "Retry-After": {
                "description": "Seconds to wait before sending the same request again.",
                "schema": { "type": "integer" },
            }});
        }
        responses.insert(status.to_string(), response);
    }
}
