//! pivault-domain
