//! Principals: API-key authentication and role checks.

use crate::error::CoreError;
use crate::services::key_watch::KeyWatch;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The API key was revoked (at `keys revoke`, or at a rotation without grace period).
pub const API_KEY_REVOKED: &str = "api_key_revoked";
/// The API key is past its expiry (or the grace period of its rotation has ended).
pub const API_KEY_EXPIRED: &str = "api_key_expired";

/// Role for application services: create, put, read, look up, record consent.
pub const ROLE_APP: &str = "app";

/// Operator roles whose reads also pass the Cedar staff policy (`policies/staff.cedar`,
/// §8.1, PIPL Art. 51(3)): support, dpo, security, admin. A key holding one of them reads PI
/// (with the `app` role) only as far as that policy allows.
pub const STAFF_ROLES: [&str; 4] = ["support", "dpo", "security", "admin"];

/// Role for the privacy office: administers API keys, erasure, the DSR queue and reports. It
/// is **not** a superset of the other roles: reading PI needs `app`, and then the staff
/// policy's `admin` rules narrow what is seen (masked contact data for `service` only).
pub const ROLE_ADMIN: &str = "admin";

/// The operator CLI's role (the holder of the master key, on the vault's machine). It holds
/// every role and is not narrowed by the staff policy; no API key can hold it
/// ([`Vault::create_api_key`](crate::Vault::create_api_key) refuses it).
pub const ROLE_OPERATOR: &str = "operator";

/// An authenticated caller: an application service (API key) or the operator CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Principal name (e.g. `billing`).
    pub name: String,
    /// Roles (`app`, `admin`).
    pub roles: Vec<String>,
    /// Purposes this principal may use (policy §8.1).
    pub purposes: Vec<String>,
    /// The API key it authenticated with (16 hex digits); `None` for the operator CLI. It is
    /// recorded (`key=<id>`) in the audit entry of every PI release, so an incident can be
    /// scoped to one compromised key (policy §8.3).
    pub key_id: Option<String>,
}

impl Principal {
    /// True if the principal holds `role` explicitly (roles are not nested: `admin` does not
    /// imply `app`). Only the CLI's [`ROLE_OPERATOR`] holds every role.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role || r == ROLE_OPERATOR)
    }

    /// The operator CLI: role `operator`, every purpose of the policy. Actor name
    /// `cli:<command>`.
    #[must_use]
    pub fn operator(command: &str, policy: &Policy) -> Self {
        Self {
            name: format!("cli:{command}"),
            roles: vec![ROLE_OPERATOR.into()],
            purposes: policy.purposes().iter().map(|p| p.id.clone()).collect(),
            key_id: None,
        }
    }
}

/// How long an authenticated API key is trusted without asking the store again, at most. A
/// revocation or rotation anywhere ends the trust sooner: every entry is stamped with the keys
/// epoch it was read under and is used only while the epoch is unchanged (see
/// [`crate::services::key_watch`]: every instance sees a revocation within 100 ms). An entry is
/// never used past the key's expiry.
pub const PRINCIPAL_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// One cached authentication.
struct Cached {
    principal: Principal,
    at: Instant,
    epoch: i64,
    expires_at: Option<i64>,
}

/// API-key authentication, with a short cache of recent successful authentications (keyed by
/// the token's SHA-256) invalidated by the keys epoch, and role checks.
pub(crate) struct Principals {
    store: Store,
    watch: Arc<KeyWatch>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl Principals {
    /// Principals authenticated against the API keys in `store`; `watch` tells revocations.
    pub(crate) fn new(store: Store, watch: Arc<KeyWatch>) -> Self {
        Self {
            store,
            watch,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every cached authentication (after this instance revoked or rotated a key; other
    /// instances forget when they see the keys epoch move).
    pub(crate) fn forget_all(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    /// `Ok` when `p` holds `role`.
    ///
    /// # Errors
    /// `Forbidden` (`role_required`) otherwise.
    pub(crate) fn require_role(p: &Principal, role: &str) -> Result<(), CoreError> {
        if p.has_role(role) {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                code: "role_required",
                message: "the API key lacks the role for this operation",
            })
        }
    }

    /// Resolves a bearer token to its principal at `now` (unix seconds). Compares hashes in
    /// constant time.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed or unknown token; `KeyRejected` (`api_key_revoked`,
    /// `api_key_expired`) for a token that matches a revoked or expired key.
    pub(crate) async fn authenticate(&self, token: &str, now: i64) -> Result<Principal, CoreError> {
        let mut parts = token.splitn(3, '.');
        let (Some("pvk"), Some(key_id), Some(_)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CoreError::Unauthenticated);
        };
        if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CoreError::Unauthenticated);
        }
        let h = pivault_crypto::token_hash(token);
        // Cache of recent successful authentications, keyed by the token's SHA-256: a lookup by
        // hash leaks nothing useful through timing (finding a match means a SHA-256 preimage).
        // The epoch is read before the row: an entry stamped with it is never newer than what
        // the database said when it was read.
        let epoch = self.watch.epoch();
        if let Ok(cache) = self.cache.lock() {
            if let Some(c) = cache.get(&h) {
                if epoch != i64::MIN
                    && c.epoch == epoch
                    && c.at.elapsed() < PRINCIPAL_CACHE_TTL
                    && c.expires_at.is_none_or(|x| now < x)
                {
                    return Ok(c.principal.clone());
                }
            }
        }
        let row = self
            .store
            .api_key(key_id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if !pivault_crypto::ct_eq(&h, &row.token_hash) {
            return Err(CoreError::Unauthenticated);
        }
        // Only the holder of the whole token learns why it is refused.
        if row.revoked_at.is_some() {
            return Err(CoreError::KeyRejected {
                code: API_KEY_REVOKED,
                message: "the API key was revoked",
            });
        }
        if row.expires_at.is_some_and(|x| now >= x) {
            return Err(CoreError::KeyRejected {
                code: API_KEY_EXPIRED,
                message: "the API key has expired",
            });
        }
        let split = |s: &str| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let p = Principal {
            name: row.principal,
            roles: split(&row.roles),
            purposes: split(&row.purposes),
            key_id: Some(row.key_id.clone()),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, c| c.at.elapsed() < PRINCIPAL_CACHE_TTL);
            }
            cache.insert(
                h,
                Cached {
                    principal: p.clone(),
                    at: Instant::now(),
                    epoch,
                    expires_at: row.expires_at,
                },
            );
        }
        Ok(p)
    }
}
