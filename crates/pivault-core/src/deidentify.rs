//! De-identification (pseudonymization; GB/T 35273-2020 §3.15, PIPL Art. 73(3)): an
//! identifier is replaced by a keyed, deterministic token (`pz1.…`), so records can still be
//! joined without the identifier. It is **not** anonymization: the key holder can reverse it,
//! so a pseudonymized value is still personal information and is reported as such
//! ([`DEIDENTIFIED_CLASSIFICATION`]). Anonymization is the sweep's irreversible operation
//! (`retention`, PIPL Art. 73(4)).
//!
//! Tokens come from the master key (`KeyRing::pseudonymizer`, HKDF). Pseudonymizing is a use
//! of the identifier's category for the caller's purpose, decided and audited like a lookup;
//! reversing is for the key holder only (the CLI operator), audited.

use pivault_domain::identifiers::IdentifierKind;

use crate::error::CoreError;
use crate::services::principals::{Principal, Principals, ROLE_APP, ROLE_OPERATOR};
use crate::vault::Vault;

/// How every de-identified value is classified: still personal information.
pub const DEIDENTIFIED_CLASSIFICATION: &str = "personal_information";

/// The operation's name, as reported with its output.
pub const DEIDENTIFICATION: &str = "de-identification (pseudonymization, GB/T 35273-2020 §3.15): reversible by the key holder; not anonymization";

/// At most this many values per call.
pub const MAX_VALUES: usize = 1_000;

impl Vault {
    /// Pseudonymizes identifiers of `kind` (normalized first, so every spelling of one mobile
    /// gives one token). The caller must hold the `app` role and be allowed `purpose`, and the
    /// purpose must cover the identifier's category (decided and audited as a use of it).
    ///
    /// # Errors
    /// `Forbidden`/`Denied` as a lookup; `Invalid` for an empty list, more than
    /// [`MAX_VALUES`], or a value that is not a valid identifier of the kind (its index, never
    /// the value); store failure.
    pub async fn pseudonymize(
        &self,
        p: &Principal,
        kind: IdentifierKind,
        purpose: &str,
        values: &[String],
        request_id: Option<&str>,
    ) -> Result<Vec<String>, CoreError> {
        Principals::require_role(p, ROLE_APP)?;
        if values.is_empty() || values.len() > MAX_VALUES {
            return Err(CoreError::invalid(
                "values",
                "invalid_parameter",
                "between 1 and 1,000 values",
            ));
        }
        let mut norm = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match kind.normalize(v) {
                Ok(n) => norm.push(n),
                Err(e) => return Err(CoreError::invalid(format!("values[{i}]"), e.code, e.reason)),
            }
        }
        // The same policy-level decision a lookup by this identifier gets (§8.1, PIPL Art. 6).
        let allowed = self
            .decide_identifier_use(p, kind, purpose, "deidentify", request_id)
            .await?;
        let now = self.now().unix_timestamp();
        let mut rec = self.auditor.base(&p.name, "deidentify", now, request_id);
        rec.purpose = Some(purpose.to_string());
        rec.categories = allowed.category;
        rec.outcome = "allow".into();
        rec.reason = Some(allowed.reason.into());
        rec.legal_basis = allowed.legal_basis.map(str::to_string);
        rec.detail = Some(format!("kind={} count={}", kind.as_str(), norm.len()));
        self.auditor.append(vec![rec]).await?;
        let ps = self.sealer.keys().pseudonymizer();
        Ok(norm
            .iter()
            .map(|n| ps.pseudonymize(kind.as_str(), n))
            .collect())
    }

    /// Reverses tokens made by [`Vault::pseudonymize`] (the key holder only: the CLI operator).
    /// Audited with the count, never the values.
    ///
    /// # Errors
    /// `Forbidden` for anyone but the operator; `Invalid` (`token_invalid`, with the index)
    /// for a token this key did not make for this kind.
    pub async fn reidentify(
        &self,
        p: &Principal,
        kind: IdentifierKind,
        tokens: &[String],
    ) -> Result<Vec<String>, CoreError> {
        if !p.roles.iter().any(|r| r == ROLE_OPERATOR) {
            return Err(CoreError::Forbidden {
                code: "role_required",
                message: "only the key holder (the CLI operator) may re-identify",
            });
        }
        let ps = self.sealer.keys().pseudonymizer();
        let mut out = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            out.push(ps.reidentify(kind.as_str(), t.trim()).map_err(|_| {
                CoreError::invalid(
                    format!("tokens[{i}]"),
                    "token_invalid",
                    "not a token this key made for this kind",
                )
            })?);
        }
        let now = self.now().unix_timestamp();
        let mut rec = self.auditor.base(&p.name, "deidentify.reverse", now, None);
        rec.detail = Some(format!("kind={} count={}", kind.as_str(), tokens.len()));
        self.auditor.append(vec![rec]).await?;
        Ok(out)
    }
}
