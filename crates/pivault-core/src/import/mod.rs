//! Import of the provider's existing PI (the `zh_CN` data set layout, documented in
//! `shared/tools/gen_dataset.py`): `users.csv`, `consent_events.csv`, `orders.csv`,
//! `face_templates.csv`, `business_contacts.csv`, `icp_filings.csv`, `tickets.jsonl` (support
//! tickets, JSON Lines), `access.log` (nginx combined web logs, policy §2.1.2).
//!
//! Invariants:
//! - A bad row never stops the import: it goes to `<rejects>/<file>.rejects.csv` with its line
//!   number, column, stable code and reason — never its values (they are PI, and a reject file
//!   is plain text); the source line number finds it again. Valid rows next to it still land.
//! - Importing twice creates no duplicates: accounts are matched by the account-id blind
//!   index, consent events by event id, records (orders, filings, tickets) by record id, business
//!   contacts by a blind index over (customer account, name, mobile).
//! - Rows land in batches; each batch is one transaction with one audit entry per row.
//! - Each row is checked by a pure function before any database work; [`parse_csv_row`] and
//!   [`parse_jsonl_row`] expose them (the fuzz targets `import_csv_row`, `import_jsonl_row`).

mod common;
mod consents;
pub(crate) mod contacts;
mod pipeline;
mod reader;
mod records;
mod rows;
#[cfg(test)]
mod tests;
mod users;
mod weblog;

use crate::error::CoreError;
use crate::vault::Vault;
use common::*;
pub use common::{FileReport, ImportReport, NoProgress, Progress};
use consents::*;
use contacts::*;
use records::*;
pub use rows::{parse_csv_row, parse_jsonl_row, CsvFile, RowReject};
use std::path::Path;
use std::time::Instant;
use users::*;
use weblog::import_weblog;

/// Imports every known file found in `dir`, writing reject files to `rejects_dir`.
///
/// # Errors
/// A file that cannot be read or lacks a required column; a policy that lacks a category the
/// importer maps to; `Conflict` (`service_ceased`) once a cessation has started; store failures.
/// Row-level problems are rejects, not errors.
pub async fn import_dir(
    vault: &Vault,
    dir: &Path,
    rejects_dir: &Path,
    progress: &dyn Progress,
) -> Result<ImportReport, CoreError> {
    let started = Instant::now();
    if !dir.is_dir() {
        return Err(CoreError::invalid(
            "directory",
            "not_a_directory",
            "the import path is not a directory",
        ));
    }
    // Nothing is collected once a service cessation has started (policy §8.6); each batch's
    // transaction checks again under the lock.
    if vault.store.cessation().await?.state != "none" {
        return Err(CoreError::Conflict("service_ceased"));
    }
    // Rows processed are counted into the vault's metrics as they go by (per file).
    let counting = crate::metrics::CountingProgress {
        inner: progress,
        metrics: &vault.metrics,
        file: std::sync::Mutex::new("other"),
    };
    let ctx = Ctx {
        vault,
        dir,
        rejects_dir,
        progress: &counting,
        now: vault.now().unix_timestamp(),
    };
    let mut files = Vec::new();
    type Step = for<'c> fn(
        &'c Ctx<'c>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<FileReport, CoreError>> + Send + 'c>,
    >;
    let steps: [(&str, Step); 8] = [
        ("users.csv", |c| Box::pin(import_users(c))),
        ("consent_events.csv", |c| Box::pin(import_consents(c))),
        ("orders.csv", |c| Box::pin(import_orders(c))),
        ("face_templates.csv", |c| Box::pin(import_faces(c))),
        ("business_contacts.csv", |c| Box::pin(import_contacts(c))),
        ("icp_filings.csv", |c| Box::pin(import_icp(c))),
        ("tickets.jsonl", |c| Box::pin(import_tickets(c))),
        ("access.log", |c| Box::pin(import_weblog(c))),
    ];
    for (name, step) in steps {
        if dir.join(name).is_file() {
            let t = Instant::now();
            let mut rep = step(&ctx).await?;
            rep.elapsed = t.elapsed();
            for (result, n) in [
                ("imported", rep.imported),
                ("rejected", rep.rejected),
                ("skipped", rep.skipped),
            ] {
                vault.metrics.import_rows(name, result, n);
            }
            files.push(rep);
        }
    }
    Ok(ImportReport {
        files,
        elapsed: started.elapsed(),
        rejects_dir: rejects_dir.to_path_buf(),
    })
}
