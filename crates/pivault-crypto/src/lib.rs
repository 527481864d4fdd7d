//! pivault-crypto
