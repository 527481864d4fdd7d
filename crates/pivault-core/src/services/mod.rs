//! The services the use cases are built from. None of them names `Vault`.

pub(crate) mod audit_writer;
pub(crate) mod auditor;
pub(crate) mod facts;
pub(crate) mod facts_cache;
pub(crate) mod key_watch;
pub(crate) mod principals;
pub(crate) mod sealer;
