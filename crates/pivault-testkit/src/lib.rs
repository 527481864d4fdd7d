//! One test kit for pivault's tests, replacing the harnesses each test binary used to carry.
//!
//! - [`data`]: the repository's policies and the zh_CN data set (`../shared/data/zh_CN-10k`),
//!   and slices of it (the first N accounts and every row about them);
//! - [`keys`]: master keys, key rings and key files; API keys with roles (feature `app`);
//! - [`clock`]: the fixed clock the tests run at;
//! - [`logs`]: a process-wide tracing subscriber capturing every log line, to assert that no PI
//!   reaches the logs;
//! - [`pg`]: a fresh throwaway PostgreSQL database per test, dropped on drop;
//! - [`bin`]: the real `pivault` binary (its path comes from the caller's
//!   `env!("CARGO_BIN_EXE_pivault")`), `serve` on an ephemeral port;
//! - [`app`] (feature `app`, on by default): the pivault-server router over a vault on
//!   127.0.0.1:0, on SQLite or PostgreSQL, over a copy of the imported slice.
//!
//! Every helper panics on failure with a message: it is for tests only (`publish = false`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "app")]
pub mod app;
pub mod bin;
pub mod clock;
pub mod data;
pub mod keys;
pub mod logs;
pub mod pg;

#[cfg(feature = "app")]
pub use app::{spawn_on, Backend, TestApp};
pub use clock::{fixed_clock, FixedClock, TEST_NOW};
pub use data::{
    data_dir, policy_path, read_csv, repo_root, staff_policy_path, write_material_change_policy,
    write_slice, MATERIAL_CHANGE_SUMMARY, MATERIAL_CHANGE_VERSION,
};
pub use logs::{captured_logs, LogCapture};
pub use pg::{test_database_url, TestDatabase, TEST_DATABASE_URL_VAR};
