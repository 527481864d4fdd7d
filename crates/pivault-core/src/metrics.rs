//! The vault's metrics: the families the use cases and services count into, kept per vault
//! (no process-wide state) and exported as Prometheus text by `pivault-server` (`GET /metrics`).
//!
//! **No PI in a label.** Every label value is an enum of the code or of the policy: decision
//! actions, outcomes and reason codes (`pivault_domain::decision`), the importer's file names,
//! result kinds, "doors" (`read`, `provision`, `dsr_package`), and category keys declared in the
//! policy (a category string that the policy does not declare, e.g. from a tampered row, is
//! counted as `unknown`). Never a value, a subject id, a request id or key material: labels
//! are visible to anyone who can scrape (GB/T 35273-2020 §6.3, minimum exposure; PIPL Art. 51).

use pivault_domain::decision::Decision;
use pivault_domain::policy::Policy;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

/// Labels of `pivault_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    /// `use`, `collect`, `share`, … (`pivault_domain::decision::Action::as_str`).
    action: &'static str,
    /// `allow` or `deny`.
    outcome: &'static str,
    /// The decision's reason code (`pivault_domain::decision::Reason::as_str`).
    reason: &'static str,
}

/// Labels of `pivault_dek_cache_lookups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    /// `hit` or `miss`.
    result: &'static str,
}

/// Labels of `pivault_import_rows_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImportLabels {
    /// One of the importer's file names (`users.csv`, …), else `other`.
    file: &'static str,
    /// `processed` (counted as rows go by), `imported`, `rejected` or `skipped` (at the end of
    /// each file).
    result: &'static str,
}

/// Labels of `pivault_field_integrity_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntegrityLabels {
    /// Where the field was opened: `read`, `provision`, `dsr_package` or `erasure`.
    door: &'static str,
    /// The field's category key, when the policy declares it; else `unknown`.
    category: String,
}

/// Labels of `pivault_outbox_messages_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    /// The message kind (`incident_notice`, …), else `other`.
    kind: &'static str,
    /// The state after processing (`delivered`, `pending`, …), else `other`.
    state: &'static str,
}

/// Labels of the retention gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetentionLabels {
    /// A category key declared by the policy.
    category: String,
    /// `held` (records and restricted fields stored), `due_30d` (due within 30 days) or
    /// `on_hold` (kept by a legal hold).
    state: &'static str,
}

/// The file names the importer reads (the only values of the `file` label).
const IMPORT_FILES: [&str; 8] = [
    "users.csv",
    "consent_events.csv",
    "orders.csv",
    "face_templates.csv",
    "business_contacts.csv",
    "icp_filings.csv",
    "tickets.jsonl",
    "access.log",
];

/// Where a field is opened for release, for `pivault_field_integrity_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// `GET /v1/subjects/{id}/fields`.
    Read,
    /// `POST /v1/provisions` (share, transfer, disclosure).
    Provision,
    /// The access package of a data subject request (PIPL Art. 45).
    DsrPackage,
    /// Re-sealing a retained field during erasure (`restrict_retained`).
    Erasure,
}

impl Door {
    /// `read`, `provision`, `dsr_package` or `erasure`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Read => "read",
            Door::Provision => "provision",
            Door::DsrPackage => "dsr_package",
            Door::Erasure => "erasure",
        }
    }
}

/// The vault's metric families (cheap to clone: every family is shared).
///
/// | family | type | labels |
/// |---|---|---|
/// | `pivault_decisions_total` | counter | `action`, `outcome`, `reason` |
/// | `pivault_audit_append_seconds` | histogram | — (wait of one request for its group commit) |
/// | `pivault_audit_commit_seconds` | histogram | — (one group-commit transaction) |
/// | `pivault_audit_batch_entries` | histogram | — (entries per group commit) |
/// | `pivault_dsr_step_group_steps` | histogram | — (request steps committed per group commit, `dsr::group`) |
/// | `pivault_dek_cache_lookups_total` | counter | `result` = `hit`/`miss` |
/// | `pivault_import_rows_total` | counter | `file`, `result` |
/// | `pivault_sweep_rows_total` | counter | — (fields deleted by the retention sweep) |
/// | `pivault_field_integrity_failures_total` | counter | `door`, `category` |
/// | `pivault_retention_items` | gauge | `category`, `state` = `held`/`due_30d`/`on_hold` (as of the last retention report or sweep) |
/// | `pivault_outbox_messages_total` | counter | `kind`, `state` (outcome of each processed outbox message) |
/// | `pivault_incident_reports_overdue` | gauge | — (incidents past a reporting deadline and not reported) |
#[derive(Clone, Debug)]
pub struct Metrics {
    decisions: Family<DecisionLabels, Counter>,
    audit_append: Histogram,
    audit_commit: Histogram,
    audit_batch: Histogram,
    step_group: Histogram,
    dek_cache: Family<CacheLabels, Counter>,
    import_rows: Family<ImportLabels, Counter>,
    sweep_rows: Counter,
    integrity: Family<IntegrityLabels, Counter>,
    retention: Family<RetentionLabels, Gauge>,
    outbox: Family<OutboxLabels, Counter>,
    reports_overdue: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty families. Latency buckets run from 0.5 ms to about 8 s (×2); batch-size buckets
    /// from 1 to 2,048 entries (×2; the group commit takes at most 2,000).
    #[must_use]
    pub fn new() -> Self {
        Self {
            decisions: Family::default(),
            audit_append: Histogram::new(exponential_buckets(0.000_5, 2.0, 15)),
            audit_commit: Histogram::new(exponential_buckets(0.000_5, 2.0, 15)),
            audit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            step_group: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            dek_cache: Family::default(),
            import_rows: Family::default(),
            sweep_rows: Counter::default(),
            integrity: Family::default(),
            retention: Family::default(),
            outbox: Family::default(),
            reports_overdue: Gauge::default(),
        }
    }

    /// Registers every family (sharing it, not copying it) into `registry`, for an exporter.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "pivault_decisions",
            "Access decisions by action, outcome and reason code",
            self.decisions.clone(),
        );
        registry.register_with_unit(
            "pivault_audit_append",
            "Time a request waits for its audit entries to be group-committed",
            Unit::Seconds,
            self.audit_append.clone(),
        );
        registry.register_with_unit(
            "pivault_audit_commit",
            "Duration of one audit group-commit transaction",
            Unit::Seconds,
            self.audit_commit.clone(),
        );
        registry.register(
            "pivault_audit_batch_entries",
            "Audit entries appended per group commit",
            self.audit_batch.clone(),
        );
        registry.register(
            "pivault_dsr_step_group_steps",
            "Data subject request steps committed per group commit",
            self.step_group.clone(),
        );
        registry.register(
            "pivault_dek_cache_lookups",
            "DEK cache lookups by result (hit, miss)",
            self.dek_cache.clone(),
        );
        registry.register(
            "pivault_import_rows",
            "Import rows by file and result (processed, imported, rejected, skipped)",
            self.import_rows.clone(),
        );
        registry.register(
            "pivault_sweep_rows",
            "Fields deleted by the retention sweep",
            self.sweep_rows.clone(),
        );
        registry.register(
            "pivault_retention_items",
            "Retention by category: stored (held), due within 30 days (due_30d), kept by a legal hold (on_hold)",
            self.retention.clone(),
        );
        registry.register(
            "pivault_outbox_messages",
            "Outbox messages processed, by kind and resulting state (delivered, pending, letter, announced, failed)",
            self.outbox.clone(),
        );
        registry.register(
            "pivault_incident_reports_overdue",
            "Incidents past a regulator-reporting deadline and not yet reported (policy §8.4)",
            self.reports_overdue.clone(),
        );
        registry.register(
            "pivault_field_integrity_failures",
            "Sealed fields that failed authentication when opened, by door and category",
            self.integrity.clone(),
        );
    }

    /// Counts one decision (its action, outcome and reason code).
    pub fn decision(&self, d: &Decision<'_>) {
        self.decisions
            .get_or_create(&DecisionLabels {
                action: d.action.as_str(),
                outcome: if d.allowed { "allow" } else { "deny" },
                reason: d.reason.as_str(),
            })
            .inc();
    }

    /// One request's wait for its audit entries' group commit.
    pub(crate) fn audit_append(&self, waited: Duration) {
        self.audit_append.observe(waited.as_secs_f64());
    }

    /// One group commit: its duration and how many entries it appended.
    #[allow(clippy::cast_precision_loss)] // at most 2,000 entries
    pub(crate) fn audit_commit(&self, took: Duration, entries: usize) {
        self.audit_commit.observe(took.as_secs_f64());
        self.audit_batch.observe(entries as f64);
    }

    /// One group commit of request steps and how many steps it staged.
    #[allow(clippy::cast_precision_loss)] // at most `dsr::group::MAX_GROUP`
    pub(crate) fn step_group(&self, steps: usize) {
        self.step_group.observe(steps as f64);
    }

    /// One DEK cache lookup.
    pub(crate) fn dek_cache(&self, hit: bool) {
        self.dek_cache
            .get_or_create(&CacheLabels {
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    fn import_file(file: &str) -> &'static str {
        IMPORT_FILES
            .iter()
            .find(|f| **f == file)
            .copied()
            .unwrap_or("other")
    }

    /// Import rows of `file`: `result` is `processed`, `imported`, `rejected` or `skipped`.
    pub(crate) fn import_rows(&self, file: &str, result: &'static str, n: u64) {
        self.import_rows
            .get_or_create(&ImportLabels {
                file: Self::import_file(file),
                result,
            })
            .inc_by(n);
    }

    /// Sets the retention gauges of `category` (a policy key: never PI).
    pub(crate) fn retention(&self, category: &str, held: i64, due_30d: i64, on_hold: i64) {
        for (state, v) in [("held", held), ("due_30d", due_30d), ("on_hold", on_hold)] {
            self.retention
                .get_or_create(&RetentionLabels {
                    category: category.to_string(),
                    state,
                })
                .set(v);
        }
    }

    /// One processed outbox message: its kind and resulting state (fixed vocabularies, mapped
    /// to `other` otherwise).
    pub(crate) fn outbox_outcome(&self, kind: &str, state: &str) {
        const KINDS: [&str; 8] = [
            "dsr_code",
            "dsr_notice",
            "incident_notice",
            "erasure_notice",
            "cross_border_notice",
            "cessation_notice",
            "misuse_notice",
            "policy_change_notice",
        ];
        const STATES: [&str; 5] = ["pending", "delivered", "letter", "announced", "failed"];
        let pick = |list: &[&'static str], v: &str| -> &'static str {
            list.iter().find(|k| **k == v).copied().unwrap_or("other")
        };
        self.outbox
            .get_or_create(&OutboxLabels {
                kind: pick(&KINDS, kind),
                state: pick(&STATES, state),
            })
            .inc();
    }

    /// Sets the number of incidents whose regulator report is overdue.
    pub fn incident_reports_overdue(&self, n: usize) {
        self.reports_overdue
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Fields deleted by the retention sweep.
    pub(crate) fn swept(&self, n: u64) {
        self.sweep_rows.inc_by(n);
    }

    /// One field that failed authentication at `door`; `category` is labelled only when the
    /// policy declares it.
    pub(crate) fn integrity_failure(&self, door: Door, category: &str, policy: &Policy) {
        let category = if policy.category(category).is_some() {
            category.to_string()
        } else {
            "unknown".to_string()
        };
        self.integrity
            .get_or_create(&IntegrityLabels {
                door: door.as_str(),
                category,
            })
            .inc();
    }
}

/// Import progress that also counts processed rows into [`Metrics`] (per file), then passes
/// everything on to the caller's progress.
pub(crate) struct CountingProgress<'a> {
    pub(crate) inner: &'a dyn crate::import::Progress,
    pub(crate) metrics: &'a Metrics,
    pub(crate) file: std::sync::Mutex<&'static str>,
}

impl crate::import::Progress for CountingProgress<'_> {
    fn start(&self, file: &str, total: u64) {
        if let Ok(mut f) = self.file.lock() {
            *f = Metrics::import_file(file);
        }
        self.inner.start(file, total);
    }

    fn advance(&self, n: u64) {
        let file = self.file.lock().map_or("other", |f| *f);
        self.metrics.import_rows(file, "processed", n);
        self.inner.advance(n);
    }

    fn finish(&self) {
        self.inner.finish();
    }
}

impl crate::Vault {
    /// Data subject requests per state, every [`DsrState`](pivault_domain::dsr::DsrState) listed
    /// (0 when none), read from the store: the `pivault_dsr_requests` gauge at scrape time. A
    /// stored state this version does not know is counted as `unknown`.
    ///
    /// # Errors
    /// Store failure.
    pub async fn dsr_queue_by_state(&self) -> Result<Vec<(&'static str, i64)>, crate::CoreError> {
        use pivault_domain::dsr::DsrState;
        let mut out: Vec<(&'static str, i64)> =
            DsrState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (state, n) in self.store.dsr_state_counts().await? {
            let name = state
                .parse::<DsrState>()
                .map_or("unknown", DsrState::as_str);
            match out.iter_mut().find(|(s, _)| *s == name) {
                Some(e) => e.1 += n,
                None => out.push((name, n)),
            }
        }
        Ok(out)
    }
}
