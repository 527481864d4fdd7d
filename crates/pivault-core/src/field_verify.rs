//! `pivault audit verify --fields`: every sealed field's authentication, over the whole vault.
//!
//! Each field row is opened under the DEK its `key_id` names among its subject's wrapped DEKs
//! (`primary` or `restricted`), with the associated data (subject ‖ category ‖ field ‖ key id)
//! that sealing bound to it. A field fails when its ciphertext does not authenticate (tampered,
//! or moved from another field or subject), when no DEK of its subject has its key id, when
//! that DEK does not unwrap under the KEK, or when the opened bytes are not a value. Nothing is
//! written and no value leaves this module: failures are named by subject id and field path.

use crate::error::CoreError;
use crate::services::sealer::{Sealer, SCOPE_PRIMARY, SCOPE_RESTRICTED};
use crate::vault::Vault;
use pivault_crypto::Dek;
use std::collections::HashMap;

/// Rows opened per page.
const PAGE: i64 = 2_000;

/// Failures named in the report (the count goes on past them).
const NAMED: usize = 100;

/// Result of [`Vault::verify_fields`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldVerifyReport {
    /// Fields checked.
    pub checked: u64,
    /// Fields that failed authentication.
    pub failed: u64,
    /// The first failures (at most 100): subject id and `record/name` (ids, never values).
    pub first_failures: Vec<(String, String)>,
}

impl FieldVerifyReport {
    /// Whether every field authenticated.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

impl Vault {
    /// Opens every sealed field of every subject to check its authentication (see the module
    /// doc); `progress(done, total)` is called after each page.
    ///
    /// # Errors
    /// Store failure. Fields that fail are counted in the report, not errors.
    pub async fn verify_fields(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<FieldVerifyReport, CoreError> {
        let total = u64::try_from(self.store.count_fields().await?).unwrap_or(0);
        let mut rep = FieldVerifyReport::default();
        let mut after: Option<(String, String, String)> = None;
        loop {
            let page = self
                .store
                .fields_page(
                    after
                        .as_ref()
                        .map(|(s, r, n)| (s.as_str(), r.as_str(), n.as_str())),
                    PAGE,
                )
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some((
                last.subject_id.clone(),
                last.record.clone(),
                last.name.clone(),
            ));
            let mut subjects: Vec<&str> = page.iter().map(|r| r.subject_id.as_str()).collect();
            subjects.dedup();
            // DEKs by (subject, key id); a key row that does not unwrap is left out, so its
            // fields fail.
            let mut deks: HashMap<(String, String), Dek> = HashMap::new();
            for scope in [SCOPE_PRIMARY, SCOPE_RESTRICTED] {
                for k in self.store.subject_keys_many(&subjects, scope).await? {
                    if let Ok(d) = self.sealer.unwrap_row(&k) {
                        deks.insert((k.subject_id.clone(), k.key_id.clone()), d);
                    }
                }
            }
            for r in &page {
                rep.checked += 1;
                let ok = deks
                    .get(&(r.subject_id.clone(), r.key_id.clone()))
                    .is_some_and(|d| Sealer::open_row(d, r).is_ok());
                if !ok {
                    rep.failed += 1;
                    if rep.first_failures.len() < NAMED {
                        rep.first_failures
                            .push((r.subject_id.clone(), format!("{}/{}", r.record, r.name)));
                    }
                }
            }
            progress(rep.checked, total.max(rep.checked));
            if i64::try_from(page.len()).unwrap_or(PAGE) < PAGE {
                break;
            }
        }
        Ok(rep)
    }
}
