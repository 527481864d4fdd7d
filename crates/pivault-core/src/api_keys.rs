//! API keys: creating keys for application services and operators.

use crate::error::CoreError;
use crate::values::valid_name;
use crate::vault::Vault;
use crate::ROLE_ADMIN;
use crate::ROLE_APP;
use crate::STAFF_ROLES;
use pivault_store::ApiKeyRow;

impl Vault {
    /// Creates an API key for `principal` with `roles` and `purposes`; returns the token, shown
    /// once. Only its SHA-256 is stored.
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
        if !valid_name(principal) {
            return Err(CoreError::invalid(
                "principal",
                "principal_malformed",
                "1-128 characters of A-Z a-z 0-9 _ . : -",
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
        let key_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8]);
        let secret = pivault_crypto::new_api_token();
        let token = format!("pvk.{key_id}.{secret}");
        let now = self.clock.now().unix_timestamp();
        let row = ApiKeyRow {
            key_id: key_id.clone(),
            principal: principal.into(),
            roles: roles.join(","),
            purposes: purposes.join(","),
            token_hash: pivault_crypto::token_hash(&token).to_vec(),
            created_at: now,
            revoked_at: None,
        };
        let mut tx = self.store.begin(now).await?;
        tx.insert_api_key(&row).await?;
        let mut rec = self.auditor.base(actor, "apikey.create", now, None);
        rec.detail = Some(format!(
            "key_id={key_id} principal={principal} roles={} purposes={}",
            row.roles, row.purposes
        ));
        tx.audit(rec);
        tx.commit().await?;
        Ok(token)
    }
}
