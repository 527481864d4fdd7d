//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the `migrations/`
//! folder at compile time, and without this Cargo does not know the folder is an input (a new
//! migration file would be missed by an incremental build; sqlx's documented build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
