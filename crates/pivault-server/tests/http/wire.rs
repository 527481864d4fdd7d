//! Issue 11, defects 7 and 9, and the schemathesis findings: every non-2xx answer is the JSON
//! error shape with a stable code (also for requests the router never sees), and a bad query
//! parameter is a 422, never a silent clamp or default. Each case runs on both backends
//! (`wire::sqlite::…`, `wire::postgres::…`).

use pivault_testkit::app::users;
use pivault_testkit::TestApp;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    invalid_percent_encoding_in_a_path_is_json_400_invalid_path,
    a_long_request_target_is_json_414_uri_too_long_at_every_length,
    requests_hyper_cannot_parse_get_json_errors,
    rejections_of_axum_are_json_with_stable_codes,
    dsr_list_limit_out_of_range_is_422_not_a_clamp,
    dsr_list_unknown_kind_is_422_not_an_empty_queue,
    empty_category_entries_and_backwards_windows_are_422,
    pi_typed_into_a_path_or_a_method_never_reaches_the_logs,
    the_request_id_is_always_the_servers_own,
);

/// Asserts `r` is the JSON error shape with `status` and `code`; returns the body.
async fn json_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    v
}

/// Sends `raw` on a new connection and returns (status, headers, body) of the answer.
async fn raw(app: &TestApp, raw: &[u8]) -> (u16, String, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = s.write_all(raw).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes");
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn assert_raw_json(answer: &(u16, String, String), status: u16, code: &str) {
    let (st, head, body) = answer;
    assert_eq!(*st, status, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["error"]["code"], code, "{v}");
}

pub async fn invalid_percent_encoding_in_a_path_is_json_400_invalid_path(app: TestApp) {
    for path in [
        "/v1/subjects/%FF%FE/fields?purpose=service",
        "/v1/subjects/%C3%28/consents",
        "/v1/dsr/%E2%82",
    ] {
        let r = app.get(path, &app.admin_key).await;
        let v = json_error(r, 400, "invalid_path").await;
        // The segment is not quoted back.
        assert!(!v.to_string().contains("%FF") && !v.to_string().contains('\u{fffd}'));
    }
}

pub async fn a_long_request_target_is_json_414_uri_too_long_at_every_length(app: TestApp) {
    // Over our limit (8 KiB): answered by the app, with a request id.
    let long = format!("/v1/subjects/{}/fields?purpose=service", "a".repeat(9_000));
    let r = app.get(&long, &app.app_key).await;
    assert!(r.headers().contains_key("x-request-id"));
    json_error(r, 414, "uri_too_long").await;
    // Over hyper's own limit (65,534 bytes): hyper answers before any router, and the
    // listener wrapper gives its empty 414 the JSON shape.
    let huge = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    assert_raw_json(&raw(&app, huge.as_bytes()).await, 414, "uri_too_long");
}

pub async fn requests_hyper_cannot_parse_get_json_errors(app: TestApp) {
    // A header line without a colon.
    let bad = b"GET /healthz HTTP/1.1\r\nhost: x\r\nthis is not a header\r\n\r\n";
    assert_raw_json(&raw(&app, bad).await, 400, "bad_request");
    // A head larger than hyper's buffer.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    assert_raw_json(&raw(&app, big.as_bytes()).await, 431, "headers_too_large");
    // A connection that keeps going after a normal answer still gets plain passthrough.
    let ok = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (st, _, body) = raw(&app, ok).await;
    assert_eq!((st, body.as_str()), (200, "ok"));
}

pub async fn rejections_of_axum_are_json_with_stable_codes(app: TestApp) {
    let url = |p: &str| format!("{}{p}", app.base);
    // No content type, a wrong one, and JSON with a charset.
    let r = app
        .http
        .post(url("/v1/lookup"))
        .bearer_auth(&app.app_key)
        .body(r#"{"by":"email","value":"x@example.com","purpose":"service"}"#)
        .send()
        .await
        .unwrap();
    json_error(r, 415, "unsupported_media_type").await;
    let r = app
        .http
        .post(url("/v1/lookup"))
        .bearer_auth(&app.app_key)
        .header("content-type", "application/jsonx")
        .body("{}")
        .send()
        .await
        .unwrap();
    json_error(r, 415, "unsupported_media_type").await;
    // OPTIONS and an unknown method on a known route, and an unknown route.
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, url("/v1/policy"))
        .send()
        .await
        .unwrap();
    json_error(r, 405, "method_not_allowed").await;
    let r = app
        .http
        .request(reqwest::Method::PATCH, url("/v1/dsr"))
        .send()
        .await
        .unwrap();
    json_error(r, 405, "method_not_allowed").await;
    json_error(
        app.get("/v1/nothing", &app.app_key).await,
        404,
        "route_not_found",
    )
    .await;
    // HEAD of a route with a key requirement: the status and the JSON content type, no body.
    let r = app.http.head(url("/v1/policy")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

pub async fn dsr_list_limit_out_of_range_is_422_not_a_clamp(app: TestApp) {
    for bad in ["-5", "0", "1001", "9223372036854775807"] {
        let r = app
            .get(&format!("/v1/dsr?limit={bad}"), &app.admin_key)
            .await;
        let v = json_error(r, 422, "invalid_parameter").await;
        assert_eq!(v["error"]["field"], "limit");
    }
    for good in ["1", "1000"] {
        let r = app
            .get(&format!("/v1/dsr?limit={good}"), &app.admin_key)
            .await;
        assert_eq!(r.status(), 200);
    }
    // Not a number at all: the query does not parse.
    json_error(
        app.get("/v1/dsr?limit=ten", &app.admin_key).await,
        400,
        "invalid_query",
    )
    .await;
}

pub async fn dsr_list_unknown_kind_is_422_not_an_empty_queue(app: TestApp) {
    json_error(
        app.get("/v1/dsr?kind=erasure", &app.admin_key).await,
        422,
        "dsr_kind_unknown",
    )
    .await;
    let r = app.get("/v1/dsr?kind=deletion", &app.admin_key).await;
    assert_eq!(r.status(), 200);
}

pub async fn empty_category_entries_and_backwards_windows_are_422(app: TestApp) {
    let s = app.subject_of(&users()[0]["account_id"]).await;
    for q in [
        "categories=",
        "categories=user.name,,user.contact.mobile",
        "categories=user.name,",
    ] {
        let r = app
            .get(
                &format!("/v1/subjects/{s}/fields?purpose=service&{q}"),
                &app.app_key,
            )
            .await;
        let v = json_error(r, 422, "invalid_parameter").await;
        assert_eq!(v["error"]["field"], "categories");
    }
    let r = app
        .get(
            &format!("/v1/subjects/{s}/fields?purpose=service&categories=user.name"),
            &app.app_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .get(
            "/v1/reports/disclosures?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            &app.admin_key,
        )
        .await;
    let v = json_error(r, 422, "invalid_parameter").await;
    assert_eq!(v["error"]["field"], "to");
}

/// Found by a new user: the access log carried the raw path, so a mobile typed where a subject
/// id goes (`/v1/subjects/<mobile>/fields`) or sent as the method landed in the log. The log
/// names the route template and a method label instead.
pub async fn pi_typed_into_a_path_or_a_method_never_reaches_the_logs(app: TestApp) {
    let logs = pivault_testkit::captured_logs();
    let mobile = users()[0]["mobile"].to_string();
    let email = users()[0]["email"].to_string();
    let r = app
        .get(
            &format!("/v1/subjects/{mobile}/fields?purpose=service&q={email}"),
            &app.app_key,
        )
        .await;
    assert!(matches!(r.status().as_u16(), 400 | 404), "{}", r.status());
    let method = format!("PI{}", mobile.replace('+', ""));
    let answer = raw(
        &app,
        format!("{method} /v1/lookup/{mobile} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(answer.0 == 404 || answer.0 == 405, "{answer:?}");
    logs.assert_absent(&[mobile.as_str(), email.as_str(), method.as_str()]);
    assert!(
        logs.contains("route=/v1/subjects/{id}/fields"),
        "the access line names the route"
    );
}

/// Break test, stop 30: a client's `x-request-id` was kept as sent, so a mobile number sent as
/// one went into the log and into audit entries, where erasure cannot reach it. The id is now
/// always the server's own: whatever a client sends, even a UUID (which can carry digits too).
pub async fn the_request_id_is_always_the_servers_own(app: TestApp) {
    let logs = pivault_testkit::captured_logs();
    let mobile = users()[0]["mobile"].to_string();
    let uuid_shaped = "00000000-0000-4000-8000-018765195768";
    for sent in [mobile.as_str(), "u100000", &"a".repeat(5_000), uuid_shaped] {
        let r = app
            .http
            .get(format!("{}/v1/dsr?limit=1", app.base))
            .bearer_auth(&app.admin_key)
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(id, sent);
        assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
    }
    logs.assert_absent(&[mobile.as_str(), "u100000", uuid_shaped]);
}
