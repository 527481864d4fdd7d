//! What every importer shares: the report types, the import context and value helpers.

use crate::error::CoreError;
use crate::values::FieldValue;
use crate::vault::Vault;
use pivault_domain::audit::AuditRecord;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Rows per transaction.
pub(crate) const BATCH: usize = 2000;

pub(crate) const ACTOR: &str = "cli:import";

/// Progress reporting (a terminal progress bar in the CLI; nothing in tests).
pub trait Progress: Send + Sync {
    /// A file starts; `total` rows (approximate: lines minus header).
    fn start(&self, file: &str, total: u64);
    /// `n` more rows done.
    fn advance(&self, n: u64);
    /// The file is done.
    fn finish(&self);
}

/// No progress output.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Counts for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// File name.
    pub file: String,
    /// Rows written.
    pub imported: u64,
    /// Rows rejected (see the reject file).
    pub rejected: u64,
    /// Rows already present (skipped).
    pub skipped: u64,
    /// Optional fields missing from imported rows (kept; see `<file>.warnings.csv`).
    pub warnings: u64,
    /// Wall time for this file.
    pub elapsed: Duration,
}

/// Counts for the whole import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Per file, in import order.
    pub files: Vec<FileReport>,
    /// Wall time.
    pub elapsed: Duration,
    /// Where reject files were written.
    pub rejects_dir: PathBuf,
}

impl ImportReport {
    /// Rows rejected in all files.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.files.iter().map(|f| f.rejected).sum()
    }

    /// Optional fields missing from imported rows in all files.
    #[must_use]
    pub fn warnings(&self) -> u64 {
        self.files.iter().map(|f| f.warnings).sum()
    }

    /// Where to look after the run, for the summary line: the rejects folder only when
    /// something was rejected or kept with a warning (`; no rejects` otherwise).
    #[must_use]
    pub fn rejects_note(&self) -> String {
        match (self.rejected(), self.warnings()) {
            (0, 0) => "no rejects".to_string(),
            (r, 0) => format!("{r} rejects in {}", self.rejects_dir.display()),
            (0, w) => format!(
                "no rejects; {w} missing optional fields (rows kept) in {}/*.warnings.csv",
                self.rejects_dir.display()
            ),
            (r, w) => format!(
                "{r} rejects and {w} missing optional fields (rows kept) in {}",
                self.rejects_dir.display()
            ),
        }
    }

    /// All rows read (imported + rejected + skipped).
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.imported + f.rejected + f.skipped)
            .sum()
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) vault: &'a Vault,
    pub(crate) dir: &'a Path,
    pub(crate) rejects_dir: &'a Path,
    pub(crate) progress: &'a dyn Progress,
    pub(crate) now: i64,
}

pub(crate) type Fields = Vec<(&'static str, &'static str, FieldValue)>;

impl Ctx<'_> {
    pub(crate) fn audit(
        &self,
        action: &str,
        subject: &str,
        purpose: &str,
        cats: &Fields,
        detail: String,
    ) -> AuditRecord {
        let mut rec = self.vault.auditor.base(ACTOR, action, self.now, None);
        rec.subject_id = Some(subject.to_string());
        rec.purpose = Some(purpose.to_string());
        rec.outcome = "allow".into();
        rec.categories = AuditRecord::join_categories(cats.iter().map(|c| c.0));
        rec.detail = Some(detail);
        rec
    }

    /// account id → subject id for every account id in `ids` that exists.
    pub(crate) async fn subjects_by_account(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, CoreError> {
        let keys = self.vault.sealer.keys();
        // Every blind-index generation lookups consult (a key rotation may be under way).
        let per_account: Vec<Vec<[u8; 32]>> = ids
            .iter()
            .map(|a| keys.blind_indexes("account_id", a))
            .collect();
        let digests: Vec<[u8; 32]> = per_account.iter().flatten().copied().collect();
        let by_digest: HashMap<Vec<u8>, String> = self
            .vault
            .store
            .lookup_many("account_id", &digests)
            .await?
            .into_iter()
            .collect();
        Ok(ids
            .iter()
            .zip(&per_account)
            .filter_map(|(a, ds)| {
                ds.iter()
                    .find_map(|d| by_digest.get(d.as_slice()))
                    .map(|s| (a.clone(), s.clone()))
            })
            .collect())
    }

    pub(crate) fn check_categories(&self, cats: &[&str]) -> Result<(), CoreError> {
        for c in cats {
            if self.vault.policy().category(c).is_none() {
                return Err(CoreError::invalid(
                    format!("policy category {c}"),
                    "policy_missing_category",
                    "the policy does not declare a category the importer needs",
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn text(v: &str) -> Option<FieldValue> {
    let t = v.trim();
    // A cell that shows nothing (white space, zero-width or bidi characters) is empty.
    (!pivault_domain::text::is_blank(t)).then(|| FieldValue::Text(t.to_string()))
}

pub(crate) fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

pub(crate) fn date_of(s: &str) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt).ok()
}

pub(crate) fn unreachable_text() -> ! {
    // `text()` only ever builds FieldValue::Text.
    panic!("text() returned a non-text value")
}
