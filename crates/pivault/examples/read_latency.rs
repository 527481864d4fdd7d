//! Single-subject read latency over HTTP against a running `pivault serve`.
//!
//! ```sh
//! cargo run --release -p pivault --example read_latency -- \
//!     http://127.0.0.1:8080 "$KEY" ../shared/data/zh_CN-10k/users.csv 5000
//! ```
//!
//! Resolves the first 500 accounts of `users.csv` to subject ids (`POST /v1/lookup`), then
//! sends `GET /v1/subjects/{id}/fields?purpose=service` one at a time over one keep-alive
//! connection, cycling through the subjects: 500 warm-up requests, then `N` measured ones.
//! Prints p50/p90/p99/max in milliseconds. Each read is a full decision: consent fold, DEK
//! (cached after the first read of a subject), decrypt, and one audited write transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() >= 4,
        "usage: read_latency BASE_URL API_KEY USERS_CSV [N]"
    );
    let (base, key, users) = (&args[1], &args[2], &args[3]);
    let n: usize = args.get(4).map_or(5000, |s| s.parse().unwrap());
    let http = reqwest::Client::new();
    let text = std::fs::read_to_string(users).unwrap();
    let mut subjects = Vec::new();
    for line in text.lines().skip(1).take(500) {
        let account = line.split(',').next().unwrap();
        let v: serde_json::Value = http
            .post(format!("{base}/v1/lookup"))
            .bearer_auth(key)
            .json(&serde_json::json!({"by": "account_id", "value": account, "purpose": "service"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(s) = v["subjects"][0].as_str() {
            subjects.push(s.to_string());
        }
    }
    assert!(
        !subjects.is_empty(),
        "no subject found: is the data imported?"
    );
    let mut lat = Vec::with_capacity(n);
    for i in 0..(500 + n) {
        let s = &subjects[i % subjects.len()];
        let t = Instant::now();
        let r = http
            .get(format!("{base}/v1/subjects/{s}/fields?purpose=service"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.unwrap();
        if i >= 500 {
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i]
    };
    println!(
        "{n} reads of {} subjects, one at a time: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        subjects.len(),
        q(0.50),
        q(0.90),
        q(0.99),
        lat[lat.len() - 1]
    );
}
