//! End-to-end tests over HTTP on PostgreSQL: every case of `api_cases` (the same bodies the
//! SQLite binary `api` runs) against a server over its own database, cloned with
//! `CREATE DATABASE … TEMPLATE` from one holding the imported slice, dropped afterwards.
//!
//! Needs `PIVAULT_TEST_DATABASE_URL` (a maintenance URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it every test prints a `SKIPPED`
//! line and returns. `.ci/run` always sets it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_cases;
mod support;

macro_rules! postgres_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(app) = support::spawn_on(support::Backend::Postgres).await else {
                    pivault_store::testing::print_skip(concat!("api_postgres::", stringify!($name)));
                    return;
                };
                api_cases::$name(app).await;
            }
        )*
    };
}

api_cases::for_each_case!(postgres_tests);
