//! Exports of the anonymized sets (`anon_weblog`, `anon_orders`) as CSV, refused when the
//! k-anonymity over the policy's quasi-identifiers is below its `k_min` (PIPL Art. 73(4):
//! anonymized means the person cannot be identified; GB/T 35273-2020 §3.14; Sweeney 2002).
//! With `suppress`, the rows of classes smaller than `k_min` are left out instead, and the
//! report says how many.

use pivault_domain::anonymize::AnonOrder;
use pivault_domain::anonymize::{k_anonymity, qi_value_order, qi_value_weblog, suppress_below};
use pivault_domain::policy::AnonymizedSet;
use pivault_domain::weblog::AnonWebLog;

use crate::error::CoreError;
use crate::vault::Vault;

/// What an anonymized export wrote, and the k it reached.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnonExportReport {
    /// `weblog` or `order`.
    pub set: &'static str,
    /// The quasi-identifiers k was measured over (from the policy).
    pub quasi_identifiers: Vec<String>,
    /// The policy's minimum.
    pub k_min: u32,
    /// The smallest equivalence class of the rows held (0 when there are none).
    pub k_held: usize,
    /// The smallest equivalence class of the rows written.
    pub k_written: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows left out because their class was smaller than `k_min` (only with `suppress`).
    pub suppressed: usize,
}

/// An export refused for its k: what was measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KRefusal {
    /// The k reached.
    pub k: usize,
    /// The policy's minimum.
    pub k_min: u32,
    /// Rows in classes below it.
    pub rows_below: usize,
}

impl Vault {
    /// Writes the anonymized `set` as CSV to `out` (header first).
    ///
    /// # Errors
    /// `Conflict("k_anonymity_too_low")` when k < `k_min`, `suppress` is false and the set is
    /// not empty (nothing is written; [`Vault::anon_k`] gives the figures); `Invalid` when the
    /// policy has no rule for the set; store or IO failure.
    pub async fn export_anonymized(
        &self,
        set: AnonymizedSet,
        suppress: bool,
        actor: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<AnonExportReport, CoreError> {
        let rule = self.policy.anonymization(set).ok_or_else(|| {
            CoreError::invalid(
                "kind",
                "invalid_parameter",
                "the policy has no [[anonymization]] rule for this set",
            )
        })?;
        let k_min = rule.k_min as usize;
        let qi = rule.quasi_identifiers.clone();
        let mut w = csv::Writer::from_writer(out);
        let report = match set {
            AnonymizedSet::Weblog => {
                let rows = self.all_anon_weblog().await?;
                let key = |r: &AnonWebLog| -> Vec<Option<String>> {
                    qi.iter().map(|q| qi_value_weblog(r, q)).collect()
                };
                let held = k_anonymity(&rows, k_min, key);
                // An empty set re-identifies nobody: it is written as the header alone.
                if held.k < k_min && !suppress && !rows.is_empty() {
                    return Err(CoreError::Conflict("k_anonymity_too_low"));
                }
                let (kept, suppressed) = suppress_below(rows, k_min, key);
                let written = k_anonymity(&kept, k_min, key);
                w.write_record([
                    "hour",
                    "client_net",
                    "method",
                    "path",
                    "status",
                    "bytes",
                    "ua_family",
                    "ua_major",
                ])
                .map_err(csv_err)?;
                for r in &kept {
                    w.write_record([
                        crate::values::format_timestamp(r.hour),
                        r.client_net.clone(),
                        r.method.clone(),
                        r.path.clone(),
                        r.status.to_string(),
                        r.bytes.to_string(),
                        r.ua_family.clone(),
                        r.ua_major.map(|m| m.to_string()).unwrap_or_default(),
                    ])
                    .map_err(csv_err)?;
                }
                AnonExportReport {
                    set: set.as_str(),
                    quasi_identifiers: qi.clone(),
                    k_min: rule.k_min,
                    k_held: held.k,
                    k_written: written.k,
                    rows: kept.len(),
                    suppressed,
                }
            }
            AnonymizedSet::Order => {
                let rows = self.all_anon_orders().await?;
                let key = |r: &AnonOrder| -> Vec<Option<String>> {
                    qi.iter().map(|q| qi_value_order(r, q)).collect()
                };
                let held = k_anonymity(&rows, k_min, key);
                // An empty set re-identifies nobody: it is written as the header alone.
                if held.k < k_min && !suppress && !rows.is_empty() {
                    return Err(CoreError::Conflict("k_anonymity_too_low"));
                }
                let (kept, suppressed) = suppress_below(rows, k_min, key);
                let written = k_anonymity(&kept, k_min, key);
                w.write_record(["month", "product", "amount_cny"])
                    .map_err(csv_err)?;
                for r in &kept {
                    w.write_record([r.month.as_str(), r.product.as_str(), r.amount.as_str()])
                        .map_err(csv_err)?;
                }
                AnonExportReport {
                    set: set.as_str(),
                    quasi_identifiers: qi.clone(),
                    k_min: rule.k_min,
                    k_held: held.k,
                    k_written: written.k,
                    rows: kept.len(),
                    suppressed,
                }
            }
        };
        w.flush()?;
        let now = self.now().unix_timestamp();
        let mut rec = self.auditor.base(actor, "export.anonymized", now, None);
        rec.detail = Some(format!(
            "set={} rows={} k={} k_min={} suppressed={}",
            report.set, report.rows, report.k_written, report.k_min, report.suppressed
        ));
        self.auditor.append(vec![rec]).await?;
        Ok(report)
    }

    /// The k-anonymity of the anonymized `set` as held, over the policy's quasi-identifiers.
    ///
    /// # Errors
    /// `Invalid` when the policy has no rule for the set; store failure.
    pub async fn anon_k(&self, set: AnonymizedSet) -> Result<KRefusal, CoreError> {
        let rule = self.policy.anonymization(set).ok_or_else(|| {
            CoreError::invalid(
                "kind",
                "invalid_parameter",
                "the policy has no [[anonymization]] rule for this set",
            )
        })?;
        let k_min = rule.k_min as usize;
        let qi = &rule.quasi_identifiers;
        let r = match set {
            AnonymizedSet::Weblog => k_anonymity(&self.all_anon_weblog().await?, k_min, |r| {
                qi.iter().map(|q| qi_value_weblog(r, q)).collect::<Vec<_>>()
            }),
            AnonymizedSet::Order => k_anonymity(&self.all_anon_orders().await?, k_min, |r| {
                qi.iter().map(|q| qi_value_order(r, q)).collect::<Vec<_>>()
            }),
        };
        Ok(KRefusal {
            k: r.k,
            k_min: rule.k_min,
            rows_below: r.rows_below,
        })
    }

    async fn all_anon_weblog(&self) -> Result<Vec<AnonWebLog>, CoreError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.anon_weblog_page(after, 10_000).await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            out.extend(page.into_iter().map(|(_, r)| AnonWebLog {
                hour: r.hour,
                client_net: r.client_net,
                method: r.method,
                path: r.path,
                status: u16::try_from(r.status).unwrap_or(0),
                bytes: u64::try_from(r.bytes).unwrap_or(0),
                ua_family: r.ua_family,
                ua_major: r.ua_major.and_then(|m| u32::try_from(m).ok()),
            }));
        }
        Ok(out)
    }

    async fn all_anon_orders(&self) -> Result<Vec<AnonOrder>, CoreError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.anon_orders_page(after, 10_000).await?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            out.extend(page.into_iter().map(|(_, r)| AnonOrder {
                month: r.month,
                product: r.product,
                amount: r.amount,
            }));
        }
        Ok(out)
    }
}

fn csv_err(e: csv::Error) -> CoreError {
    CoreError::Io(std::io::Error::other(e.to_string()))
}
