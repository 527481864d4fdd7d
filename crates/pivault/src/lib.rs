//! Nothing to use: `pivault` is a binary (`src/main.rs`). This empty library target exists so
//! that the crate's tests can turn on its `testing` feature through a self dev-dependency
//! (cargo lets a package depend on itself only through a library); see `Cargo.toml`.
