//! Principals: API-key authentication and role checks.

use crate::error::CoreError;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

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
        }
    }
}

/// How long an authenticated API key is trusted without asking the store again. A revoked key
/// stops working within this time.
pub const PRINCIPAL_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// API-key authentication, with a short cache of recent successful authentications (keyed by
/// the token's SHA-256), and role checks.
pub(crate) struct Principals {
    store: Store,
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl Principals {
    /// Principals authenticated against the API keys in `store`.
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
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

    /// Resolves a bearer token to its principal. Compares hashes in constant time.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed, unknown or revoked token.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Principal, CoreError> {
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
        if let Ok(cache) = self.cache.lock() {
            if let Some((p, at)) = cache.get(&h) {
                if at.elapsed() < PRINCIPAL_CACHE_TTL {
                    return Ok(p.clone());
                }
            }
        }
        let row = self
            .store
            .api_key(key_id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if !pivault_crypto::ct_eq(&h, &row.token_hash) || row.revoked_at.is_some() {
            return Err(CoreError::Unauthenticated);
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
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, (_, at)| at.elapsed() < PRINCIPAL_CACHE_TTL);
            }
            cache.insert(h, (p.clone(), std::time::Instant::now()));
        }
        Ok(p)
    }
}
