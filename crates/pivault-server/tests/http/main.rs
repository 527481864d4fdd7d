//! The HTTP suite, one test binary: every case runs against the app spawned on 127.0.0.1:0
//! (pivault-testkit) over its own copy of a slice of the real zh_CN data set, on SQLite
//! (`<module>::sqlite::<case>`) and on PostgreSQL (`<module>::postgres::<case>`).
//!
//! The PostgreSQL variants need `PIVAULT_TEST_DATABASE_URL` (a maintenance URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`): each clones, with `CREATE DATABASE …
//! TEMPLATE`, a database holding the imported slice and drops it afterwards. Without the
//! variable each prints `SKIPPED http::…::postgres::<case>: … did not run`; set but unreachable,
//! they fail. `.ci/run` always sets it and counts the `postgres::` cases.
//!
//! - [`api`]: lookups, reads, consents, erasure, retention, the audit chain, input, keys, no PI
//!   in clear;
//! - [`decisions`]: issue 4, the decision API, recipients, exceptions, the disclosure ledger,
//!   cross-border transfer, the combination rule;
//! - [`dsr`]: issue 5, data subject requests end to end;
//! - [`metrics`]: issue 11, `/metrics` without PI, and a tampered field that fails alone.
//! - [`defects`]: issue 11, the defects a new user found (lookup decisions, explicit roles,
//!   exact amounts, DSR intake floods and expiry, implausible consents, import leniency).
//! - [`unicode`]: issue 11 defect 4, full-width identifiers, zero-width and bidi characters.
//! - [`wire`]: issue 11, every error is JSON with a stable code, bad query parameters are 422.
//! - [`retention`]: issue 12, the sweep, anonymization, legal holds, k-anonymity, the report.
//! - [`incidents`]: issue 13, incidents, the outbox, announcements, signed erasure notices,
//!   misuse locks, cessation.
//! - [`audit`]: issue 15, the audit log's verifier key, signed checkpoints, inclusion and
//!   consistency proofs checked offline with `pivault-verify`, proofs in access packages.
//! - [`center`]: issue 14, the privacy center's pages: sign-in by code, the overview, consents,
//!   access history, requests and receipts, the cookie ledger with GPC, CSRF and headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Generates, for every case `name` of the calling module (an `async fn name(app: TestApp)`),
/// `sqlite::name` and `postgres::name` tests.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = pivault_testkit::spawn_on(pivault_testkit::Backend::Sqlite)
                        .await
                        .expect("SQLite always spawns");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) =
                        pivault_testkit::spawn_on(pivault_testkit::Backend::Postgres).await
                    else {
                        pivault_testkit::pg::print_skip(concat!(
                            module_path!(),
                            "::",
                            stringify!($name)
                        ));
                        return;
                    };
                    super::$name(app).await;
                }
            )*
        }
    };
}

mod api;
mod audit;
mod center;
mod decisions;
mod defects;
mod dsr;
mod incidents;
mod keys;
mod metrics;
mod retention;
mod unicode;
mod wire;
