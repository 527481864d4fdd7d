//! The OpenAPI document (issue 11): the checked-in `docs/openapi.json` is the generated one,
//! every route of the router is in it and every operation in it is served, every error
//! response names its stable codes, and the schema mirrors of core's DSR types match them.
//!
//! Regenerate the checked-in file with
//! `PIVAULT_BLESS=1 cargo test -p pivault-server --test openapi`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_domain::Code;
use pivault_server::openapi;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn doc() -> Value {
    serde_json::from_str(openapi::json()).unwrap()
}

/// (method, path) of every operation of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            if METHODS.contains(&m.as_str()) {
                out.insert((m.clone(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let file = repo_root().join("docs/openapi.json");
    let generated = openapi::json();
    if std::env::var_os("PIVAULT_BLESS").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, generated).unwrap();
        eprintln!("wrote {}", file.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from the document the server generates (or is missing).\n\
         Regenerate it with: PIVAULT_BLESS=1 cargo test -p pivault-server --test openapi\n\
         and commit the result."
    );
}

#[test]
fn it_is_openapi_3_1_with_its_security_schemes() {
    let d = doc();
    assert_eq!(d["openapi"], "3.1.0");
    let schemes = &d["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["dsr_token"]["name"], "X-Dsr-Token");
    // A keyed route names the bearer scheme; the requester's routes name the DSR token.
    let sec = |m: &str, p: &str| d["paths"][p][m]["security"].to_string();
    assert!(sec("get", "/v1/policy").contains("bearer"));
    assert!(sec("post", "/v1/dsr/{id}/verify").contains("dsr_token"));
    assert_eq!(d["paths"]["/v1/dsr"]["post"]["security"], json!([{}]));
    assert_eq!(d["paths"]["/openapi.json"]["get"]["security"], json!([{}]));
}

/// No route is added around the documented list: every route goes through
/// `OpenApiRouter::routes(routes!(…))`, which documents it.
#[test]
fn no_route_bypasses_the_document() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    let mut stack = vec![src];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for bypass in [
            ".route(",
            ".route_service(",
            ".nest_service(",
            "Router::new()",
            "axum::routing::",
        ] {
            // `OpenApiRouter::new()` is the documented way; a bare `Router::new()` is not.
            let bare = text.match_indices(bypass).any(|(at, _)| {
                !text[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            assert!(
                !bare,
                "{} uses `{bypass}`: add routes with OpenApiRouter::routes(routes!(handler)) \
                 and a #[utoipa::path] on the handler, so they are in the OpenAPI document",
                f.display()
            );
        }
    }
}

/// Every documented operation is served (not 404 `route_not_found` nor 405), and every
/// method the document does not list on a documented path is 405: the router and the
/// document have the same routes.
#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    let app = pivault_testkit::spawn_on(pivault_testkit::Backend::Sqlite)
        .await
        .unwrap();
    let d = doc();
    let ops = operations(&d);
    assert!(ops.len() >= 25, "{ops:?}");
    for path in d["paths"].as_object().unwrap().keys() {
        let concrete = path.replace("{id}", "doc-probe");
        for m in METHODS {
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let r = app
                .http
                .request(method, format!("{}{concrete}", app.base))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or("");
            if ops.contains(&(m.to_string(), path.clone())) {
                assert!(
                    status != 405 && code != "route_not_found" && code != "method_not_allowed",
                    "{m} {path} is documented but answers {status} {code}"
                );
            } else {
                assert_eq!(
                    (status, code),
                    (405, "method_not_allowed"),
                    "{m} {path} is served but not documented"
                );
            }
        }
    }
    // The document served is the one checked in.
    let r = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), openapi::json());
}

#[test]
fn every_error_response_names_its_stable_codes() {
    let d = doc();
    let mut seen = BTreeSet::new();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{m} {path}: no success response"
            );
            for (status, resp) in responses {
                let status: u16 = status.parse().unwrap();
                if status < 400 {
                    continue;
                }
                let codes = openapi::codes_for(status);
                assert!(!codes.is_empty(), "{m} {path} {status}: no codes");
                let desc = resp["description"].as_str().unwrap();
                for c in &codes {
                    assert!(desc.contains(&format!("`{c}`")), "{m} {path} {status}: {c}");
                    seen.insert(*c);
                }
                let schema_ref = resp["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap();
                let name = schema_ref.rsplit('/').next().unwrap();
                assert_eq!(name, format!("Error{status}"));
                let schema = &d["components"]["schemas"][name];
                let listed: Vec<&str> = schema["properties"]["error"]["properties"]["code"]["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let want: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                assert_eq!(listed, want, "{name}");
                if status == 503 {
                    assert!(resp["headers"]["Retry-After"].is_object());
                }
            }
        }
    }
    // The codes an operation can answer, and where the others are documented.
    for c in Code::ALL {
        if c.status() < 400 || seen.contains(c) {
            continue;
        }
        let s = c.as_str();
        let documented = d["info"]["description"]
            .as_str()
            .unwrap()
            .contains(&format!("`{s}`"))
            || c.description().starts_with("Decision reason:")
            || matches!(
                s,
                "csv_malformed"
                    | "io_error"
                    | "not_a_directory"
                    | "master_key_mismatch"
                    | "master_key_missing"
                    | "master_key_unreadable"
                    | "master_key_unverifiable"
            );
        assert!(
            documented,
            "{s} is in no operation and not documented elsewhere"
        );
    }
}

fn props(d: &Value, schema: &str) -> BTreeSet<String> {
    d["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {schema}"))
        .keys()
        .cloned()
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The schema-only mirrors of core's DSR types have the same fields as the types.
#[test]
fn dsr_schemas_match_the_core_types() {
    use pivault_core::dsr::{CreatedDsr, DsrInput, DsrView, Rejection};
    let d = doc();
    let view = DsrView {
        id: "r".into(),
        kind: "deletion".into(),
        article: "PIPL Art. 47",
        state: "completed".into(),
        subject_id: Some("s".into()),
        rejection: Some(Rejection {
            code: "trade_secret".into(),
            explanation: "x",
            source: "y",
        }),
        failed_step: Some("shred".into()),
        jurisdiction: "cn".into(),
        received_at: "t".into(),
        due_at: "t".into(),
        extended: false,
        overdue: false,
        duplicate_of: Some("q".into()),
        steps_done: vec![],
        steps: vec![],
        receipt: Some(json!({})),
        completed_at: Some("t".into()),
    };
    let v = serde_json::to_value(&view).unwrap();
    assert_eq!(keys(&v), props(&d, "DsrView"));
    assert_eq!(keys(&v["rejection"]), props(&d, "Rejection"));
    let created = CreatedDsr {
        id: "r".into(),
        token: "t".into(),
        state: "identity_unverified",
        due_at: "t".into(),
    };
    assert_eq!(
        keys(&serde_json::to_value(&created).unwrap()),
        props(&d, "CreatedDsr")
    );
    // Every property of the input schemas is accepted by core's `deny_unknown_fields` types.
    let mut input = serde_json::Map::new();
    for p in props(&d, "DsrInput") {
        let value = match p.as_str() {
            "purposes" => json!([]),
            "corrections" => {
                let mut c = serde_json::Map::new();
                for q in props(&d, "CorrectionInput") {
                    c.insert(q, json!("x"));
                }
                json!([c])
            }
            _ => json!("x"),
        };
        input.insert(p, value);
    }
    let parsed: DsrInput = serde_json::from_value(Value::Object(input)).unwrap();
    assert_eq!(parsed.corrections.len(), 1);
}

/// The schema-only mirrors of `pivault_verify`'s bundles have the same fields as the types,
/// and the audit log's key and latest checkpoint are the keyless routes.
#[test]
fn audit_schemas_match_the_verify_types() {
    use pivault_verify::{ConsistencyBundle, InclusionBundle, ShardProof};
    let d = doc();
    let inclusion = InclusionBundle {
        leaf: String::new(),
        shard: 0,
        index: 0,
        proof: vec![],
        checkpoint: String::new(),
    };
    assert_eq!(
        keys(&serde_json::to_value(&inclusion).unwrap()),
        props(&d, "InclusionBundle")
    );
    let consistency = ConsistencyBundle {
        old: String::new(),
        new: String::new(),
        proofs: vec![ShardProof {
            shard: 0,
            proof: vec![],
        }],
    };
    let v = serde_json::to_value(&consistency).unwrap();
    assert_eq!(keys(&v), props(&d, "ConsistencyBundle"));
    assert_eq!(keys(&v["proofs"][0]), props(&d, "ShardProof"));
    for p in ["/v1/audit/key", "/v1/audit/checkpoints/latest"] {
        assert_eq!(d["paths"][p]["get"]["security"], json!([{}]), "{p}");
    }
    for (m, p) in [
        ("post", "/v1/audit/checkpoints"),
        ("get", "/v1/audit/entries/{seq}/proof"),
        ("get", "/v1/audit/consistency"),
    ] {
        assert!(
            d["paths"][p][m]["security"].to_string().contains("bearer"),
            "{p}"
        );
    }
}
