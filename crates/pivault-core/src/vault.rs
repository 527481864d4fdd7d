//! The [`Vault`]: a composition of the services (sealer, facts, auditor, principals) that
//! the use-case rooms (subjects, reads, consents, erasure, API keys, decisions, provisions,
//! DSR) work through.

use crate::error::CoreError;
use crate::services::auditor::Auditor;
use crate::services::facts::Facts;
use crate::services::key_watch::KeyWatch;
use crate::services::principals::Principals;
use crate::services::sealer::Sealer;
use crate::Principal;
use pivault_crypto::KeyRing;
use pivault_domain::clock::Clock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::sync::Arc;
use time::OffsetDateTime;

/// The PI vault: a composition of services (see `ARCHITECTURE.md`): the [`Sealer`] (key ring,
/// DEK cache), [`Facts`] (what decisions know of a subject), the [`Auditor`] (audit entries,
/// group commit) and [`Principals`] (API keys, roles), over one store, policy and clock.
/// The use cases live in their own modules (`subjects`, `reads`, `consents`, `erasure`,
/// `api_keys`, `decisions`, `provisions`, `dsr`), all releasing PI through `access`.
pub struct Vault {
    pub(crate) store: Store,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) facts: Facts,
    pub(crate) auditor: Auditor,
    pub(crate) principals: Principals,
    pub(crate) policy: Arc<Policy>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) staff: Option<Arc<pivault_staff::StaffPolicy>>,
    pub(crate) sender: Option<Arc<dyn crate::ports::CodeSender>>,
    pub(crate) fault: std::sync::Mutex<Option<crate::fault::Fault>>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Rate limits of the keyless DSR intake (in this process; see `dsr::limits`).
    pub(crate) intake_limits: crate::dsr::limits::IntakeLimits,
    /// When unverified requests were last expired from the intake (unix seconds).
    pub(crate) last_expiry_sweep: std::sync::atomic::AtomicI64,
    /// Woken after a commit that enqueued outbox messages (the delivery workers wait on it).
    pub(crate) outbox_kick: Arc<tokio::sync::Notify>,
    /// This vault's name as an outbox lease holder (`w-` + 32 hex digits).
    pub(crate) outbox_holder: String,
    /// Request steps waiting for their group commit (`dsr::group`).
    pub(crate) steps: crate::dsr::StepQueue,
}

/// The public deletion-receipt key: its id and its 32 Ed25519 public-key bytes (RFC 8032).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptKey {
    /// Key id, as named in receipts.
    pub key_id: String,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
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
    /// records the policy version in the store, and the policy's version history with the
    /// policy-change notices a newly recorded material change causes (policy §X; see
    /// `policy_changes`).
    ///
    /// # Errors
    /// [`CoreError::KeyRefused`] for a master key that is not the database's;
    /// `Conflict` (`policy_version_rewritten`) when the database records a published policy
    /// version with other contents than the policy gives it; store failure.
    pub async fn new(
        store: Store,
        keys: KeyRing,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        // The key generations the database records (issue 11), before the key check records
        // the KEK ids in use.
        crate::services::key_watch::install(&keys, &store.key_generations().await?);
        crate::keycheck::establish(
            &store,
            &keys,
            policy.version(),
            clock.now().unix_timestamp(),
        )
        .await?;
        // Issue 15: the audit shards asked for, and the Merkle trees of entries written before
        // (the linear chain, now shard 0's prefix) or by a process that died mid-catch-up.
        store
            .ensure_audit_shards(store.wanted_audit_shards())
            .await?;
        let added = store
            .build_audit_trees(clock.now().unix_timestamp())
            .await?;
        if added > 0 {
            tracing::info!(entries = added, "audit Merkle trees brought up to date");
        }
        store
            .record_policy_version(
                policy.version(),
                policy.hash(),
                clock.now().unix_timestamp(),
            )
            .await?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let chain_key = keys.audit_chain_key();
        let sealer = Arc::new(Sealer::new(keys, store.clone(), Arc::clone(&metrics)));
        let watch = KeyWatch::spawn(store.clone(), sealer.keys_arc());
        let vault = Self {
            facts: Facts::new(store.clone(), Arc::clone(&sealer)),
            auditor: Auditor::new(
                store.clone(),
                Some(chain_key),
                policy.version(),
                Arc::clone(&metrics),
            ),
            principals: Principals::new(store.clone(), watch),
            sealer,
            store,
            policy: Arc::new(policy),
            clock,
            staff: None,
            sender: None,
            fault: std::sync::Mutex::new(None),
            metrics,
            intake_limits: crate::dsr::limits::IntakeLimits::new(),
            last_expiry_sweep: std::sync::atomic::AtomicI64::new(i64::MIN),
            outbox_kick: Arc::new(tokio::sync::Notify::new()),
            outbox_holder: format!("w-{}", uuid::Uuid::new_v4().simple()),
            steps: crate::dsr::StepQueue::default(),
        };
        // Policy §X: the version history, and the notices a new material change causes.
        vault.record_policy_history().await?;
        Ok(vault)
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
    /// [`crate::fault::Fault`]). Only with the `testing` feature: a release build has no way to
    /// inject one.
    #[cfg(feature = "testing")]
    pub fn inject_fault(&self, fault: Option<crate::fault::Fault>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }

    pub(crate) fn fault(&self) -> Option<crate::fault::Fault> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    /// Waits until a commit enqueues outbox messages or `timeout` passes (delivery workers).
    pub async fn outbox_wait(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.outbox_kick.notified()).await;
    }

    pub(crate) fn code_sender(&self) -> Option<&Arc<dyn crate::ports::CodeSender>> {
        self.sender.as_ref()
    }

    /// The vault's metric families (decisions, audit group commit, DEK cache, import, sweep,
    /// field integrity), for an exporter to register (`pivault-server`'s `GET /metrics`).
    #[must_use]
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The public half of the deletion-receipt signing key (Ed25519, RFC 8032), for
    /// `pivault dsr verify-receipt` and `GET /v1/dsr/receipt-key`.
    #[must_use]
    pub fn receipt_key(&self) -> ReceiptKey {
        let signer = self.sealer.keys().receipt_signer();
        ReceiptKey {
            key_id: signer.key_id().to_string(),
            public_key: signer.public_key(),
        }
    }

    /// Whether writes are being stored (see `pivault_store::Store::write_readiness`).
    ///
    /// # Errors
    /// The storage fault while writes fail.
    pub async fn write_readiness(&self) -> Result<(), pivault_store::StorageFault> {
        self.store
            .write_readiness(self.clock.now().unix_timestamp())
            .await
    }

    /// Authenticates a bearer token (see [`Principals`]).
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed or unknown token; `KeyRejected`
    /// (`api_key_revoked`, `api_key_expired`); store failures.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, CoreError> {
        self.principals
            .authenticate(token, self.clock.now().unix_timestamp())
            .await
    }

    /// Current instant from the vault's clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// [`crate::audit_verify::verify_audit`] on this vault's store with its key.
    ///
    /// # Errors
    /// As [`crate::audit_verify::verify_audit`].
    pub async fn verify_audit(&self) -> Result<crate::AuditVerifyReport, CoreError> {
        crate::audit_verify::verify_audit(&self.store, self.sealer.keys()).await
    }
}
