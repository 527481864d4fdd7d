//! The JSON bodies of every route, through the real router in process.
//!
//! Once per process: a SQLite vault in a temporary directory (under /dev/shm when it exists),
//! with the default policy, the Cedar staff policy, a slice of the data set imported (20
//! accounts with their consents and orders), API keys for `app`, `admin` and `dpo`, and one
//! data subject request. Then, per input:
//! - byte 0 picks the route (mod the table below), byte 1 the key (app, admin, dpo, none), and
//!   whether to send `content-type: application/json` and the request's `X-Dsr-Token`;
//! - the rest is the body (JSON routes) or the query string (GET routes);
//! - the body is also deserialized directly into the route's wire type.
//!
//! Asserts: no 500 (a 503 storage fault is allowed); every 4xx/5xx is the JSON error shape
//! `{"error": {"code": …}}`; the response never contains a PI-shaped string the input sent
//! as `value`, `email` or `mobile`.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use pivault_core::Vault;
use pivault_domain::policy::Policy;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    keys: [Option<String>; 4],
    subject: String,
    dsr: String,
    dsr_token: String,
    _dir: tempfile::TempDir,
}

/// (method, path; `{S}` a subject, `{D}` a request, `?` takes the input as query string).
const ROUTES: [(&str, &str); 11] = [
    ("POST", "/v1/subjects"),
    ("PUT", "/v1/subjects/{S}/fields"),
    ("POST", "/v1/subjects/{S}/consents"),
    ("POST", "/v1/decisions"),
    ("POST", "/v1/subjects/{S}/disclosures"),
    ("POST", "/v1/lookup"),
    ("POST", "/v1/dsr"),
    ("POST", "/v1/dsr/{D}/verify"),
    ("POST", "/v1/dsr/{D}/reject"),
    ("GET", "/v1/subjects/{S}/fields?"),
    ("GET", "/v1/dsr?"),
];

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The first `n` accounts of the data set, with their rows of `consent_events.csv` and
/// `orders.csv`, written to `out`.
fn write_slice(out: &Path, n: usize) -> Vec<(String, String)> {
    let data = std::env::var_os("PIVAULT_FUZZ_DATA").map_or_else(
        || repo().join("../shared/data/zh_CN-10k"),
        std::path::PathBuf::from,
    );
    let users = std::fs::read_to_string(data.join("users.csv")).expect("the data set's users.csv");
    let mut lines = users.lines();
    let head = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.take(n).collect();
    std::fs::write(
        out.join("users.csv"),
        format!("{head}\n{}\n", rows.join("\n")),
    )
    .unwrap();
    let accounts: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let cols: Vec<&str> = r.split(',').collect();
            (cols[0].to_string(), cols[5].to_string())
        })
        .collect();
    for file in ["consent_events.csv", "orders.csv"] {
        let text = std::fs::read_to_string(data.join(file)).unwrap();
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default();
        let keep: Vec<&str> = lines
            .filter(|l| {
                let account = l.split(',').nth(1).unwrap_or_default();
                accounts.iter().any(|(a, _)| a == account)
            })
            .collect();
        std::fs::write(out.join(file), format!("{head}\n{}\n", keep.join("\n"))).unwrap();
    }
    accounts
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (router, keys, subject, dsr, dsr_token) = rt.block_on(async {
            let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
            let store = pivault_store::Store::connect(&url).await.unwrap();
            let policy = Policy::parse(include_str!("../../policies/default.toml")).unwrap();
            let staff = pivault_staff::StaffPolicy::load(
                include_str!("../../policies/staff.cedar"),
                "staff.cedar",
                &policy,
            )
            .unwrap();
            let keys = pivault_crypto::KeyRing::new(
                pivault_crypto::MasterSecret::from_bytes([7; 32]),
                pivault_crypto::Suite::Aes256Gcm,
            );
            let vault = Vault::new(
                store,
                keys,
                policy,
                Arc::new(pivault_domain::clock::SystemClock),
            )
            .await
            .unwrap()
            .with_staff_policy(staff);
            let slice = dir.path().join("slice");
            std::fs::create_dir_all(&slice).unwrap();
            let accounts = write_slice(&slice, 20);
            pivault_core::import::import_dir(
                &vault,
                &slice,
                &dir.path().join("rejects"),
                &pivault_core::import::NoProgress,
            )
            .await
            .unwrap();
            let purposes: Vec<String> = vault
                .policy()
                .purposes()
                .iter()
                .map(|p| p.id.clone())
                .collect();
            let mut k = Vec::new();
            for role in ["app", "admin", "dpo"] {
                k.push(Some(
                    vault
                        .create_api_key(
                            "fuzz",
                            &format!("fuzz-{role}"),
                            &[role.to_string()],
                            &purposes,
                        )
                        .await
                        .unwrap(),
                ));
            }
            k.push(None);
            let found = vault
                .lookup(
                    &vault.authenticate(k[0].as_deref().unwrap()).await.unwrap(),
                    "account_id",
                    &accounts[0].0,
                    "service",
                    None,
                )
                .await
                .unwrap();
            let subject = found.subjects[0].clone();
            let created = vault
                .dsr_create(&pivault_core::dsr::DsrInput {
                    kind: "access".into(),
                    email: Some(accounts[0].1.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            let router = pivault_server::router(pivault_server::AppState {
                vault: Arc::new(vault),
            });
            (
                router,
                [k[0].clone(), k[1].clone(), k[2].clone(), None],
                subject,
                created[0].id.clone(),
                created[0].token.clone(),
            )
        });
        Harness {
            rt,
            router,
            keys,
            subject,
            dsr,
            dsr_token,
            _dir: dir,
        }
    })
}

/// Deserializes `body` into the wire type of route `i` (the extractor does it too; this
/// reaches serde's paths directly, without the router).
fn wire_types(i: usize, body: &[u8]) {
    use pivault_server::routes as r;
    match i {
        0 => drop(serde_json::from_slice::<r::subjects::CreateSubject>(body)),
        1 => drop(serde_json::from_slice::<r::fields::PutFields>(body)),
        2 => drop(serde_json::from_slice::<r::consents::ConsentIn>(body)),
        3 | 4 => drop(serde_json::from_slice::<r::decisions::DecisionIn>(body)),
        5 => drop(serde_json::from_slice::<r::lookup::Lookup>(body)),
        6 => drop(serde_json::from_slice::<pivault_core::dsr::DsrInput>(body)),
        7 => drop(serde_json::from_slice::<r::dsr::VerifyBody>(body)),
        8 => drop(serde_json::from_slice::<r::dsr::RejectBody>(body)),
        _ => {}
    }
}

/// PI-shaped strings the input sends as `value`, `email` or `mobile`: 8+ characters with at
/// least three digits or an `@`, and not only hex digits and dashes (a subject id's pieces).
fn pi_values(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let (true, Value::String(s)) =
                    (matches!(k.as_str(), "value" | "email" | "mobile"), x)
                {
                    let t = s.trim();
                    let digits = t.chars().filter(char::is_ascii_digit).count();
                    if t.chars().count() >= 8
                        && (digits >= 3 || t.contains('@'))
                        && !t.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
                    {
                        out.push(t.to_string());
                    }
                }
                pi_values(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| pi_values(x, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [sel, opts, body @ ..] = data else {
        return;
    };
    let h = harness();
    let i = usize::from(*sel) % ROUTES.len();
    wire_types(i, body);
    let (method, template) = ROUTES[i];
    let mut path = template.replace("{S}", &h.subject).replace("{D}", &h.dsr);
    let mut req_body = Body::from(body.to_vec());
    if path.ends_with('?') {
        let Ok(q) = std::str::from_utf8(body) else {
            return;
        };
        path.push_str(q);
        req_body = Body::empty();
        if path.parse::<axum::http::Uri>().is_err() {
            return;
        }
    }
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(&path);
    if let Some(key) = &h.keys[usize::from(opts & 3)] {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    if opts & 4 == 0 {
        req = req.header("content-type", "application/json");
    }
    if opts & 8 != 0 {
        req = req.header("x-dsr-token", &h.dsr_token);
    }
    let Ok(req) = req.body(req_body) else {
        return;
    };
    let (status, bytes) = h.rt.block_on(async {
        let resp = h.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, bytes)
    });
    assert_ne!(status.as_u16(), 500, "{method} {template}: 500");
    let text = String::from_utf8_lossy(&bytes);
    if status.is_client_error() || status.is_server_error() {
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {template}: {status} body is not JSON"));
        assert!(
            v["error"]["code"].is_string(),
            "{method} {template}: {status} without an error code"
        );
    }
    if let Ok(input) = serde_json::from_slice::<Value>(body) {
        let mut sent = Vec::new();
        pi_values(&input, &mut sent);
        for s in sent {
            assert!(
                !text.contains(&s),
                "{method} {template}: {status} echoes a submitted value"
            );
        }
    }
});
