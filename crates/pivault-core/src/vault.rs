//! The [`Vault`]: a composition of the services (sealer, facts, auditor, principals) that
//! the use-case rooms (subjects, reads, consents, erasure, API keys, decisions, provisions,
//! DSR) work through.

use crate::error::CoreError;
use crate::Principal;
use pivault_crypto::{DekCache, KeyRing};
use pivault_domain::clock::Clock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::sync::Arc;
use time::OffsetDateTime;

/// The PI vault: store + key ring + policy + clock.
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) cache: DekCache,
    pub(crate) policy: Arc<Policy>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: crate::services::audit_writer::AuditWriter,
    pub(crate) facts: Arc<crate::services::facts_cache::FactsCache>,
    pub(crate) staff: Option<Arc<pivault_staff::StaffPolicy>>,
    pub(crate) principals:
        std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, std::time::Instant)>>,
    pub(crate) sender: Option<Arc<dyn crate::ports::CodeSender>>,
    pub(crate) fault: std::sync::Mutex<Option<crate::fault::Fault>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("policy", &self.policy.version())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Builds a vault: checks the master key against the database first (see
    /// [`crate::keycheck::establish`]; nothing is written when it does not match), then
    /// records the policy version in the store.
    ///
    /// # Errors
    /// [`CoreError::KeyRefused`] for a master key that is not the database's; store failure.
    pub async fn new(
        store: Store,
        keys: KeyRing,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        crate::keycheck::establish(
            &store,
            &keys,
            policy.version(),
            clock.now().unix_timestamp(),
        )
        .await?;
        store
            .record_policy_version(policy.version(), policy.hash())
            .await?;
        Ok(Self {
            audit: crate::services::audit_writer::AuditWriter::spawn(store.clone()),
            facts: crate::services::facts_cache::FactsCache::spawn(store.clone()),
            staff: None,
            store,
            keys: Arc::new(keys),
            cache: DekCache::new(100_000),
            policy: Arc::new(policy),
            clock,
            principals: std::sync::Mutex::new(std::collections::HashMap::new()),
            sender: None,
            fault: std::sync::Mutex::new(None),
        })
    }

    /// Puts operator reads under a Cedar staff policy (policy §8.1; see `pivault-staff`).
    #[must_use]
    pub fn with_staff_policy(mut self, staff: pivault_staff::StaffPolicy) -> Self {
        self.staff = Some(Arc::new(staff));
        self
    }

    /// Sends data subject requests' one-time codes and notices through `sender` (policy §7.2).
    #[must_use]
    pub fn with_code_sender(mut self, sender: Arc<dyn crate::ports::CodeSender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// Injects (or clears) a fault into request execution (tests and drills; see
    /// [`crate::fault::Fault`]).
    pub fn inject_fault(&self, fault: Option<crate::fault::Fault>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }

    pub(crate) fn fault(&self) -> Option<crate::fault::Fault> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    pub(crate) fn code_sender(&self) -> Option<&Arc<dyn crate::ports::CodeSender>> {
        self.sender.as_ref()
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key ring.
    #[must_use]
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Current instant from the vault's clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
