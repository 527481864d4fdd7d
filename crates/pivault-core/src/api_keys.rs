//! API keys: creating, listing, revoking and rotating the keys of application services and
//! operators, with an optional expiry (issue 11).
//!
//! Only the SHA-256 of a token is stored; the token is shown once, at creation or rotation.
//! Every change commits with its audit entry and bumps the keys epoch in the same transaction,
//! so every instance stops trusting its cached authentications within 100 ms (see
//! `services/key_watch.rs`). Administering keys needs the `admin` role.

use crate::error::CoreError;
use crate::services::principals::Principals;
use crate::values::{parse_timestamp, valid_name};
use crate::vault::Vault;
use crate::Principal;
use crate::ROLE_ADMIN;
use crate::ROLE_APP;
use crate::STAFF_ROLES;
use pivault_store::ApiKeyRow;

/// Longest expiry accepted: 10 years, in seconds.
pub const MAX_EXPIRY_SECS: i64 = 10 * 366 * 86_400;

/// Longest grace period of a rotation, during which the old token still works: 30 days.
pub const MAX_GRACE_SECS: i64 = 30 * 86_400;

/// An API key as listed: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Public key id (16 hex characters, the middle part of the token).
    pub key_id: String,
    /// Principal name.
    pub principal: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Purposes it may use (policy §8.1).
    pub purposes: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it is refused.
    pub expires_at: Option<i64>,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// The key that replaced it at a rotation.
    pub replaced_by: Option<String>,
    /// `active`, `revoked` or `expired` at the vault's clock.
    pub state: &'static str,
}

impl ApiKeyInfo {
    fn of(row: ApiKeyRow, now: i64) -> Self {
        let split = |s: &str| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let state = if row.revoked_at.is_some() {
            "revoked"
        } else if row.expires_at.is_some_and(|x| now >= x) {
            "expired"
        } else {
            "active"
        };
        Self {
            roles: split(&row.roles),
            purposes: split(&row.purposes),
            key_id: row.key_id,
            principal: row.principal,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            replaced_by: row.replaced_by,
            state,
        }
    }
}

/// A key just created or rotated: its description and the token, shown once.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key.
    pub info: ApiKeyInfo,
    /// `pvk.<key_id>.<secret>`; only its SHA-256 is stored.
    pub token: String,
}

/// When a key expires, as the operator gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never.
    Never,
    /// This many seconds after creation.
    In(i64),
    /// At this instant (unix seconds).
    At(i64),
}

fn bad_expiry(field: &str) -> CoreError {
    CoreError::invalid(
        field,
        "expiry_invalid",
        "a number and s, m, h or d (e.g. 90d), or an RFC 3339 instant; in the future and at \
         most 10 years away",
    )
}

impl Expiry {
    /// Parses `--expires-in` / `expires_in`: a positive integer followed by `s`, `m`, `h` or
    /// `d` (e.g. `90d`), at most 10 years.
    ///
    /// # Errors
    /// `Invalid` (`expiry_invalid`) otherwise.
    pub fn parse_in(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        let Some((at, _)) = s.char_indices().last() else {
            return Err(bad_expiry("expires_in"));
        };
        let (n, unit) = s.split_at(at);
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(bad_expiry("expires_in")),
        };
        if n.is_empty() || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_expiry("expires_in"));
        }
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n: &i64| *n > 0)
            .ok_or_else(|| bad_expiry("expires_in"))?;
        let secs = n
            .checked_mul(mult)
            .filter(|x| *x <= MAX_EXPIRY_SECS)
            .ok_or_else(|| bad_expiry("expires_in"))?;
        Ok(Self::In(secs))
    }

    /// Parses `--expires-at` / `expires_at`: an RFC 3339 instant.
    ///
    /// # Errors
    /// `Invalid` (`expiry_invalid`) for anything else.
    pub fn parse_at(s: &str) -> Result<Self, CoreError> {
        parse_timestamp(s)
            .map(Self::At)
            .map_err(|_| bad_expiry("expires_at"))
    }

    /// From the two optional fields of a request; both at once is refused.
    ///
    /// # Errors
    /// `Invalid` (`expiry_invalid`) for a malformed value or both given.
    pub fn from_fields(
        expires_in: Option<&str>,
        expires_at: Option<&str>,
    ) -> Result<Self, CoreError> {
        match (expires_in, expires_at) {
            (None, None) => Ok(Self::Never),
            (Some(i), None) => Self::parse_in(i),
            (None, Some(a)) => Self::parse_at(a),
            (Some(_), Some(_)) => Err(bad_expiry("expires_at")),
        }
    }

    /// The absolute expiry for a key created at `now`.
    ///
    /// # Errors
    /// `Invalid` (`expiry_invalid`) for an instant not after `now` or more than 10 years away.
    pub fn resolve(self, now: i64) -> Result<Option<i64>, CoreError> {
        match self {
            Self::Never => Ok(None),
            Self::In(s) => Ok(Some(now.saturating_add(s))),
            Self::At(t) if t > now && t - now <= MAX_EXPIRY_SECS => Ok(Some(t)),
            Self::At(_) => Err(bad_expiry("expires_at")),
        }
    }
}

fn new_token() -> (String, String) {
    let key_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8]);
    let secret = pivault_crypto::new_api_token();
    let token = format!("pvk.{key_id}.{secret}");
    (key_id, token)
}

impl Vault {
    /// Creates an API key for `principal` with `roles` and `purposes`, without expiry; returns
    /// the token, shown once. Only its SHA-256 is stored. See [`Vault::create_api_key_with`].
    ///
    /// # Errors
    /// `Invalid` for an unknown role or purpose or a malformed principal name.
    pub async fn create_api_key(
        &self,
        actor: &str,
        principal: &str,
        roles: &[String],
        purposes: &[String],
    ) -> Result<String, CoreError> {
        Ok(self
            .create_api_key_with(actor, principal, roles, purposes, Expiry::Never)
            .await?
            .token)
    }

    /// Creates an API key for `principal` with `roles`, `purposes` and `expiry`; the token is
    /// shown once. The key row and its audit entry (`apikey.create`) commit together. `actor`
    /// is the audit actor (an admin key's principal, or `cli:keys`).
    ///
    /// # Errors
    /// `Invalid` for no role (`roles_empty`), an unknown role or purpose, a malformed
    /// principal name or a bad expiry.
    pub async fn create_api_key_with(
        &self,
        actor: &str,
        principal: &str,
        roles: &[String],
        purposes: &[String],
        expiry: Expiry,
    ) -> Result<NewApiKey, CoreError> {
        if !valid_name(principal) {
            return Err(CoreError::invalid(
                "principal",
                "principal_malformed",
                "1-128 characters of A-Z a-z 0-9 _ . : -",
            ));
        }
        // The principal is the actor of every audit entry the key writes.
        crate::values::refuse_pi_in_name("principal", principal)?;
        if roles.is_empty() {
            return Err(CoreError::invalid(
                "roles",
                "roles_empty",
                "a key needs at least one of the roles app, admin, support, dpo and security",
            ));
        }
        for r in roles {
            if r != ROLE_APP && r != ROLE_ADMIN && !STAFF_ROLES.contains(&r.as_str()) {
                return Err(CoreError::invalid(
                    "roles",
                    "unknown_role",
                    "roles are app, admin, support, dpo and security",
                ));
            }
        }
        for p in purposes {
            if self.policy.purpose(p).is_none() {
                return Err(CoreError::invalid(
                    "purposes",
                    "unknown_purpose",
                    "purpose is not declared in the policy",
                ));
            }
        }
        // Each role and purpose once, in the order given.
        let dedup = |xs: &[String]| {
            let mut out: Vec<String> = Vec::with_capacity(xs.len());
            for x in xs {
                if !out.contains(x) {
                    out.push(x.clone());
                }
            }
            out
        };
        let (roles, purposes) = (dedup(roles), dedup(purposes));
        let now = self.clock.now().unix_timestamp();
        let expires_at = expiry.resolve(now)?;
        let (key_id, token) = new_token();
        let row = ApiKeyRow {
            key_id: key_id.clone(),
            principal: principal.into(),
            roles: roles.join(","),
            purposes: purposes.join(","),
            token_hash: pivault_crypto::token_hash(&token).to_vec(),
            created_at: now,
            revoked_at: None,
            expires_at,
            replaced_by: None,
        };
        let mut tx = self.store.begin(now).await?;
        tx.insert_api_key(&row).await?;
        let mut rec = self.auditor.base(actor, "apikey.create", now, None);
        rec.detail = Some(format!(
            "key_id={key_id} principal={principal} roles={} purposes={} expires_at={}",
            row.roles,
            row.purposes,
            expires_at.map_or_else(|| "never".to_string(), |x| x.to_string())
        ));
        tx.audit(rec);
        tx.commit().await?;
        Ok(NewApiKey {
            info: ApiKeyInfo::of(row, now),
            token,
        })
    }

    /// [`Vault::create_api_key_with`] on behalf of the API key `p`, which must hold the admin
    /// role (`POST /v1/keys`).
    ///
    /// # Errors
    /// `Forbidden` (`role_required`) without the admin role; as [`Vault::create_api_key_with`].
    pub async fn create_api_key_as(
        &self,
        p: &Principal,
        principal: &str,
        roles: &[String],
        purposes: &[String],
        expiry: Expiry,
    ) -> Result<NewApiKey, CoreError> {
        Principals::require_role(p, ROLE_ADMIN)?;
        self.create_api_key_with(&p.name, principal, roles, purposes, expiry)
            .await
    }

    /// Every API key (never a token or its hash), oldest first. Admin only.
    ///
    /// # Errors
    /// `Forbidden` (`role_required`) without the admin role; store failures.
    pub async fn list_api_keys(&self, p: &Principal) -> Result<Vec<ApiKeyInfo>, CoreError> {
        Principals::require_role(p, ROLE_ADMIN)?;
        let now = self.clock.now().unix_timestamp();
        Ok(self
            .store
            .api_keys()
            .await?
            .into_iter()
            .map(|r| ApiKeyInfo::of(r, now))
            .collect())
    }

    /// Revokes the key `key_id`: from the commit on, it is refused (401 `api_key_revoked`) by
    /// this instance at once and by every other within 100 ms, whatever their caches hold.
    /// Revoking a revoked key changes nothing and answers the same. Admin only; audited
    /// (`apikey.revoke`) in the same transaction.
    ///
    /// # Errors
    /// `Forbidden` without the admin role; `NotFound("api_key")`; store failures.
    pub async fn revoke_api_key(
        &self,
        p: &Principal,
        key_id: &str,
        request_id: Option<&str>,
    ) -> Result<ApiKeyInfo, CoreError> {
        Principals::require_role(p, ROLE_ADMIN)?;
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut row = tx
            .api_key(key_id)
            .await?
            .ok_or(CoreError::NotFound("api_key"))?;
        if row.revoked_at.is_some() {
            return Ok(ApiKeyInfo::of(row, now));
        }
        row.revoked_at = Some(now);
        tx.set_api_key_lifecycle(
            key_id,
            row.revoked_at,
            row.expires_at,
            row.replaced_by.as_deref(),
        )
        .await?;
        tx.bump_keys_epoch().await?;
        let mut rec = self.auditor.base(&p.name, "apikey.revoke", now, request_id);
        rec.detail = Some(format!("key_id={key_id} principal={}", row.principal));
        tx.audit(rec);
        tx.commit().await?;
        self.principals.forget_all();
        Ok(ApiKeyInfo::of(row, now))
    }

    /// Rotates the key `key_id`: a new token for the same principal, roles and purposes (shown
    /// once), and the old key revoked — at once, or after `grace_secs` (at most 30 days) during
    /// which both work. The new key's expiry is `expiry`, or, for [`Expiry::Never`] on a key that
    /// had one, the old key's lifetime again from now. Admin only; audited (`apikey.rotate`) in
    /// the same transaction.
    ///
    /// # Errors
    /// `Forbidden` without the admin role; `NotFound("api_key")`; `Conflict`
    /// (`api_key_inactive`) for a revoked or expired key, or one already rotated; `Invalid` (`expiry_invalid`) for a bad
    /// expiry or grace period; store failures.
    pub async fn rotate_api_key(
        &self,
        p: &Principal,
        key_id: &str,
        grace_secs: i64,
        expiry: Expiry,
        request_id: Option<&str>,
    ) -> Result<NewApiKey, CoreError> {
        Principals::require_role(p, ROLE_ADMIN)?;
        if !(0..=MAX_GRACE_SECS).contains(&grace_secs) {
            return Err(CoreError::invalid(
                "grace",
                "expiry_invalid",
                "the grace period is 0 to 30 days",
            ));
        }
        let now = self.clock.now().unix_timestamp();
        let new_expiry = expiry.resolve(now)?;
        let mut tx = self.store.begin(now).await?;
        let old = tx
            .api_key(key_id)
            .await?
            .ok_or(CoreError::NotFound("api_key"))?;
        // A key already rotated is on its way out (its grace period, if any, is its new
        // expiry): rotating it again would fork the lineage and give the second successor the
        // grace period as its lifetime. Rotate its successor instead.
        if old.revoked_at.is_some()
            || old.expires_at.is_some_and(|x| now >= x)
            || old.replaced_by.is_some()
        {
            return Err(CoreError::Conflict("api_key_inactive"));
        }
        let expires_at = match (expiry, new_expiry, old.expires_at) {
            (Expiry::Never, _, Some(x)) => Some(now.saturating_add(x - old.created_at)),
            (_, e, _) => e,
        };
        let (new_id, token) = new_token();
        let row = ApiKeyRow {
            key_id: new_id.clone(),
            principal: old.principal.clone(),
            roles: old.roles.clone(),
            purposes: old.purposes.clone(),
            token_hash: pivault_crypto::token_hash(&token).to_vec(),
            created_at: now,
            revoked_at: None,
            expires_at,
            replaced_by: None,
        };
        tx.insert_api_key(&row).await?;
        let (revoked_at, old_expires) = if grace_secs == 0 {
            (Some(now), old.expires_at)
        } else {
            let end = now + grace_secs;
            (None, Some(old.expires_at.map_or(end, |x| x.min(end))))
        };
        tx.set_api_key_lifecycle(key_id, revoked_at, old_expires, Some(&new_id))
            .await?;
        tx.bump_keys_epoch().await?;
        let mut rec = self.auditor.base(&p.name, "apikey.rotate", now, request_id);
        rec.detail = Some(format!(
            "new_key_id={new_id} key_id={key_id} principal={} grace_secs={grace_secs}",
            old.principal
        ));
        tx.audit(rec);
        tx.commit().await?;
        self.principals.forget_all();
        Ok(NewApiKey {
            info: ApiKeyInfo::of(row, now),
            token,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Expiry;

    #[test]
    fn expiry_durations_parse_and_bad_ones_are_refused_without_panicking() {
        assert_eq!(Expiry::parse_in("90d").unwrap(), Expiry::In(90 * 86_400));
        assert_eq!(Expiry::parse_in(" 1h ").unwrap(), Expiry::In(3_600));
        assert_eq!(Expiry::parse_in("15m").unwrap(), Expiry::In(900));
        assert_eq!(Expiry::parse_in("30s").unwrap(), Expiry::In(30));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "+1d",
            "90",
            "90 days",
            "9日",
            "日",
            "1.5h",
            "99999d",
            "99999999999999999999d",
        ] {
            assert!(Expiry::parse_in(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Expiry::parse_in("3660d").unwrap(),
            Expiry::In(3_660 * 86_400)
        );
        assert!(Expiry::parse_at("2026-01-01T00:00:00Z").is_ok());
        assert!(Expiry::parse_at("tomorrow").is_err());
        assert!(Expiry::from_fields(Some("1d"), Some("2026-01-01T00:00:00Z")).is_err());
        assert_eq!(Expiry::from_fields(None, None).unwrap(), Expiry::Never);
        // resolve: relative to now; absolute must be in the future and within 10 years
        assert_eq!(Expiry::In(10).resolve(100).unwrap(), Some(110));
        assert!(Expiry::At(100).resolve(100).is_err());
        assert_eq!(Expiry::At(101).resolve(100).unwrap(), Some(101));
        assert!(Expiry::At(100 + 11 * 366 * 86_400).resolve(100).is_err());
        assert_eq!(Expiry::Never.resolve(100).unwrap(), None);
    }
}
