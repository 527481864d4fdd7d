//! pivault-store
