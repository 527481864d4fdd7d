//! pivault-core
