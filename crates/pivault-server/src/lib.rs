//! pivault-server
