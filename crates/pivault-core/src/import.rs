//! Import of the provider's existing PI (the `zh_CN` data set layout, documented in
//! `shared/tools/gen_dataset.py`): `users.csv`, `consent_events.csv`, `orders.csv`,
//! `face_templates.csv`, `business_contacts.csv`, `icp_filings.csv`, `tickets.jsonl` (support
//! tickets, JSON Lines).
//!
//! Invariants:
//! - A bad row never stops the import: it goes to `<rejects>/<file>.rejects.csv` with its line
//!   number, column, stable code and reason — never its values (they are PI, and a reject file
//!   is plain text); the source line number finds it again. Valid rows next to it still land.
//! - Importing twice creates no duplicates: accounts are matched by the account-id blind
//!   index, consent events by event id, records (orders, filings, tickets) by record id, business
//!   contacts by a blind index over (customer account, name, mobile).
//! - Rows land in batches; each batch is one transaction with one audit entry per row.

use crate::error::CoreError;
use crate::services::facts::DOB_CATEGORY;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::subjects::ERASED_ACCOUNT;
use crate::values::{parse_decimal, parse_timestamp, FieldValue};
use crate::vault::Vault;
use base64::Engine as _;
use pivault_domain::audit::AuditRecord;
use pivault_domain::identifiers::{AccountId, Email, IdCardNumber, IdentifierKind, Mobile};
use pivault_domain::policy::ValueType;
use pivault_store::{ConsentRow, FieldRow, KeyRow, SubjectRow};
use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per transaction.
const BATCH: usize = 2000;
const ACTOR: &str = "cli:import";

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
    /// All rows read (imported + rejected + skipped).
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.imported + f.rejected + f.skipped)
            .sum()
    }
}

struct Reject {
    line: u64,
    column: &'static str,
    code: &'static str,
    reason: &'static str,
}

fn reject(line: u64, column: &'static str, code: &'static str, reason: &'static str) -> Reject {
    Reject {
        line,
        column,
        code,
        reason,
    }
}

/// Reject file of one input file: rows are kept and written sorted by line at the end (a
/// batch finds CSV-level and row-level problems in different passes).
struct Rejects {
    path: PathBuf,
    rows: Vec<Reject>,
}

impl Rejects {
    fn new(dir: &Path, file: &str) -> Self {
        Self {
            path: dir.join(format!("{file}.rejects.csv")),
            rows: Vec::new(),
        }
    }
    #[allow(clippy::unnecessary_wraps)] // keeps call sites uniform with fallible writers
    fn write(&mut self, r: &Reject) -> Result<(), CoreError> {
        self.rows.push(Reject {
            line: r.line,
            column: r.column,
            code: r.code,
            reason: r.reason,
        });
        Ok(())
    }
    fn finish(mut self) -> Result<(), CoreError> {
        if self.rows.is_empty() {
            // A reject file from an earlier run would now be stale.
            if self.path.exists() {
                std::fs::remove_file(&self.path)?;
            }
            return Ok(());
        }
        if let Some(p) = self.path.parent() {
            std::fs::create_dir_all(p)?;
        }
        self.rows.sort_by_key(|r| r.line);
        let mut w = std::io::BufWriter::new(std::fs::File::create(&self.path)?);
        writeln!(w, "line,column,code,reason")?;
        for r in &self.rows {
            writeln!(w, "{},{},{},\"{}\"", r.line, r.column, r.code, r.reason)?;
        }
        w.flush()?;
        Ok(())
    }
}

/// A parsed CSV row: line number + named columns.
struct Row {
    line: u64,
    rec: csv::StringRecord,
}

struct Cols(HashMap<String, usize>);

impl Cols {
    fn get<'r>(&self, row: &'r Row, name: &str) -> &'r str {
        self.0.get(name).and_then(|&i| row.rec.get(i)).unwrap_or("")
    }
}

/// Reads a CSV file in batches of parsed rows; malformed CSV rows become rejects.
struct Batches {
    reader: csv::Reader<std::fs::File>,
    cols: Cols,
    newlines: Vec<u64>,
}

impl Batches {
    fn open(path: &Path, required: &[&str]) -> Result<Self, CoreError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_path(path)
            .map_err(|e| match e.into_kind() {
                csv::ErrorKind::Io(io) => CoreError::Io(io),
                _ => CoreError::invalid(
                    "header",
                    "csv_malformed",
                    "the header line is not valid CSV",
                ),
            })?;
        let headers = reader
            .headers()
            .map_err(|_| {
                CoreError::invalid(
                    "header",
                    "csv_malformed",
                    "the header line is not valid CSV",
                )
            })?
            .clone();
        let cols = Cols(
            headers
                .iter()
                .enumerate()
                .map(|(i, h)| (h.trim().to_string(), i))
                .collect(),
        );
        for r in required {
            if !cols.0.contains_key(*r) {
                return Err(CoreError::invalid(
                    format!(
                        "{} header",
                        path.file_name().and_then(|s| s.to_str()).unwrap_or("file")
                    ),
                    "missing_column",
                    "a required column is missing from the header",
                ));
            }
        }
        Ok(Self {
            reader,
            cols,
            newlines: newline_index(path),
        })
    }

    /// Physical 1-based line of the byte at `offset`.
    fn line_of(&self, offset: u64) -> u64 {
        // `<=`: on CRLF files a record's offset points at the `\n` left over from the previous
        // line's `\r\n`; that newline belongs before it.
        self.newlines.partition_point(|&p| p <= offset) as u64 + 1
    }

    /// Rows in the file (lines minus the header), for progress.
    fn total(&self) -> u64 {
        (self.newlines.len() as u64).saturating_sub(1)
    }

    /// Next batch: rows, plus rejects for malformed CSV lines. Empty rows vec + no rejects = EOF.
    fn next(&mut self) -> Result<(Vec<Row>, Vec<Reject>), CoreError> {
        let mut rows = Vec::with_capacity(BATCH);
        let mut rejects = Vec::new();
        let mut rec = csv::StringRecord::new();
        while rows.len() < BATCH {
            match self.reader.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(0, |p| self.line_of(p.byte()));
                    rows.push(Row {
                        line,
                        rec: rec.clone(),
                    });
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| self.line_of(p.byte()));
                    match e.kind() {
                        csv::ErrorKind::Io(_) => {
                            return Err(CoreError::invalid(
                                "file",
                                "io_error",
                                "the file could not be read",
                            ))
                        }
                        csv::ErrorKind::Utf8 { .. } => {
                            rejects.push(reject(
                                line,
                                "",
                                "not_utf8",
                                "the row is not valid UTF-8",
                            ));
                        }
                        _ => rejects.push(reject(
                            line,
                            "",
                            "csv_malformed",
                            "the row has the wrong number of columns",
                        )),
                    }
                }
            }
        }
        Ok((rows, rejects))
    }
}

/// Byte offsets of every `\n` in the file, read once in 64 KiB chunks (also the progress
/// total). Record positions are byte offsets; this maps them to physical line numbers, which
/// the csv crate's own line counter gets wrong on CRLF files (the data set is CRLF).
fn newline_index(path: &Path) -> Vec<u64> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let Ok(mut f) = std::fs::File::open(path) else {
        return out;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut base = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend(memchr::memchr_iter(b'\n', &buf[..n]).map(|i| base + i as u64));
                base += n as u64;
            }
        }
    }
    out
}

/// Longest JSON Lines line read whole (1 MiB: room for a 64 KiB text even fully `\u`-escaped);
/// a longer line is a reject, skipped without being held in memory.
const MAX_JSONL_LINE: usize = 1024 * 1024;

/// One JSON Lines line: physical 1-based line number, bytes without the line ending.
type JsonlLine = (u64, Vec<u8>);

/// Reads a JSON Lines file in batches of (physical 1-based line number, line without its `\n`
/// or `\r\n`). Blank lines are skipped (as the CSV reader skips empty lines); over-long lines
/// become rejects.
struct JsonlBatches {
    reader: std::io::BufReader<std::fs::File>,
    line: u64,
    total: u64,
}

impl JsonlBatches {
    fn open(path: &Path) -> Result<Self, CoreError> {
        let file = std::fs::File::open(path)?;
        Ok(Self {
            reader: std::io::BufReader::with_capacity(64 * 1024, file),
            line: 0,
            total: newline_index(path).len() as u64,
        })
    }

    /// Next batch: lines, plus rejects. Empty lines vec + no rejects = EOF.
    fn next(&mut self) -> Result<(Vec<JsonlLine>, Vec<Reject>), CoreError> {
        use std::io::{BufRead as _, Read as _};
        let mut lines = Vec::with_capacity(BATCH);
        let mut rejects = Vec::new();
        while lines.len() < BATCH {
            let mut buf = Vec::new();
            let limit = MAX_JSONL_LINE as u64 + 1;
            if (&mut self.reader).take(limit).read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            self.line += 1;
            if buf.last() != Some(&b'\n') && buf.len() > MAX_JSONL_LINE {
                // Drop the rest of the line in bounded chunks.
                loop {
                    buf.clear();
                    let n = (&mut self.reader).take(limit).read_until(b'\n', &mut buf)?;
                    if n == 0 || buf.last() == Some(&b'\n') {
                        break;
                    }
                }
                rejects.push(reject(
                    self.line,
                    "",
                    "line_too_long",
                    "the line is longer than 1 MiB",
                ));
                continue;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines.push((self.line, buf));
        }
        Ok((lines, rejects))
    }
}

struct Ctx<'a> {
    vault: &'a Vault,
    dir: &'a Path,
    rejects_dir: &'a Path,
    progress: &'a dyn Progress,
    now: i64,
}

type Fields = Vec<(&'static str, &'static str, FieldValue)>;

impl Ctx<'_> {
    fn audit(
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

    /// One batch of new subjects — rows, wrapped DEKs, sealed fields, blind-index entries and
    /// one audit entry per row — in one transaction.
    async fn write_new_subjects(
        &self,
        subjects: &[SubjectRow],
        keys: &[KeyRow],
        fields: &[FieldRow],
        idx: &[(&str, [u8; 32], &str)],
        audits: Vec<AuditRecord>,
    ) -> Result<(), CoreError> {
        let mut tx = self.vault.store.begin(self.now).await?;
        tx.insert_subjects(subjects).await?;
        tx.insert_keys(keys).await?;
        tx.upsert_fields(fields).await?;
        tx.insert_blind_index(idx).await?;
        for a in audits {
            tx.audit(a);
        }
        tx.commit().await?;
        Ok(())
    }

    /// account id → subject id for every account id in `ids` that exists.
    async fn subjects_by_account(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, CoreError> {
        let keys = self.vault.sealer.keys();
        let digests: Vec<[u8; 32]> = ids
            .iter()
            .map(|a| keys.blind_index("account_id", a))
            .collect();
        let by_digest: HashMap<Vec<u8>, String> = self
            .vault
            .store
            .lookup_many("account_id", &digests)
            .await?
            .into_iter()
            .collect();
        Ok(ids
            .iter()
            .zip(&digests)
            .filter_map(|(a, d)| by_digest.get(d.as_slice()).map(|s| (a.clone(), s.clone())))
            .collect())
    }

    fn check_categories(&self, cats: &[&str]) -> Result<(), CoreError> {
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

fn text(v: &str) -> Option<FieldValue> {
    let t = v.trim();
    (!t.is_empty()).then(|| FieldValue::Text(t.to_string()))
}

fn luhn_ok(digits: &str) -> bool {
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

fn date_of(s: &str) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt).ok()
}

struct UserRow {
    line: u64,
    account: String,
    fields: Fields,
    idents: Vec<(IdentifierKind, String)>,
}

fn parse_user(c: &Cols, r: &Row) -> Result<UserRow, Reject> {
    let l = r.line;
    let account = AccountId::parse(c.get(r, "account_id"))
        .map_err(|e| reject(l, "account_id", e.code, e.reason))?;
    let name =
        text(c.get(r, "name")).ok_or_else(|| reject(l, "name", "value_empty", "name is empty"))?;
    let idc = IdCardNumber::parse(c.get(r, "id_card_number"))
        .map_err(|e| reject(l, "id_card_number", e.code, e.reason))?;
    let birth = date_of(c.get(r, "birth_date"))
        .ok_or_else(|| reject(l, "birth_date", "date_malformed", "expected YYYY-MM-DD"))?;
    if birth != idc.birth_date() {
        return Err(reject(
            l,
            "birth_date",
            "birth_date_mismatch",
            "birth date differs from the one in the ID number",
        ));
    }
    let mobile =
        Mobile::parse(c.get(r, "mobile")).map_err(|e| reject(l, "mobile", e.code, e.reason))?;
    let email =
        Email::parse(c.get(r, "email")).map_err(|e| reject(l, "email", e.code, e.reason))?;
    let reg = parse_timestamp(c.get(r, "registered_at"))
        .map_err(|e| reject(l, "registered_at", e.code, e.reason))?;
    let ip = c.get(r, "last_login_ip").trim();
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(reject(
            l,
            "last_login_ip",
            "ip_malformed",
            "not an IPv4 or IPv6 address",
        ));
    }
    let card = c.get(r, "bank_card_number").trim().replace(' ', "");
    let card_ok = (12..=19).contains(&card.len())
        && card.bytes().all(|b| b.is_ascii_digit())
        && luhn_ok(&card);
    if !card.is_empty() && !card_ok {
        return Err(reject(
            l,
            "bank_card_number",
            "bank_card_check_digit",
            "not a 12-19 digit card number with a valid Luhn check digit",
        ));
    }
    let region = c.get(r, "residence_region").trim();
    if region.is_empty() || region.len() > 8 || !region.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(reject(
            l,
            "residence_region",
            "region_malformed",
            "region is a lower-case code such as cn",
        ));
    }
    let guardian_mobile = match c.get(r, "guardian_mobile").trim() {
        "" => None,
        g => Some(Mobile::parse(g).map_err(|e| reject(l, "guardian_mobile", e.code, e.reason))?),
    };
    let mut f: Fields = vec![
        (
            "user.account.id",
            "account_id",
            FieldValue::Text(account.as_str().into()),
        ),
        ("user.name", "name", name),
        (
            "user.government_id.id_card",
            "id_card_number",
            FieldValue::Text(idc.as_str().into()),
        ),
        (
            DOB_CATEGORY,
            "birth_date",
            FieldValue::Text(birth.to_string()),
        ),
        (
            "user.contact.mobile",
            "mobile",
            FieldValue::Text(mobile.e164().into()),
        ),
        (
            "user.contact.email",
            "email",
            FieldValue::Text(email.as_str().into()),
        ),
        (
            "user.account.registered_at",
            "registered_at",
            FieldValue::Timestamp(reg),
        ),
        (
            "user.location.region",
            "residence_region",
            FieldValue::Text(region.into()),
        ),
    ];
    let optional: [(&'static str, &'static str, &str); 8] = [
        ("user.contact.address", "address", c.get(r, "address")),
        ("user.contact.province", "province", c.get(r, "province")),
        ("user.network.ip", "last_login_ip", ip),
        ("user.device.os", "os", c.get(r, "os")),
        (
            "user.device.model",
            "device_model",
            c.get(r, "device_model"),
        ),
        ("user.device.id", "device_id", c.get(r, "device_id")),
        ("user.financial.bank_card", "bank_card_number", &card),
        (
            "user.guardian.name",
            "guardian_name",
            c.get(r, "guardian_name"),
        ),
    ];
    for (cat, name, v) in optional {
        if let Some(v) = text(v) {
            f.push((cat, name, v));
        }
    }
    if let Some(g) = guardian_mobile {
        f.push((
            "user.guardian.mobile",
            "guardian_mobile",
            FieldValue::Text(g.e164().into()),
        ));
    }
    let idents = vec![
        (IdentifierKind::AccountId, account.as_str().to_string()),
        (IdentifierKind::IdCard, idc.as_str().to_string()),
        (IdentifierKind::Mobile, mobile.e164().to_string()),
        (IdentifierKind::Email, email.as_str().to_string()),
    ];
    Ok(UserRow {
        line: l,
        account: account.as_str().to_string(),
        fields: f,
        idents,
    })
}

/// Imports every known file found in `dir`, writing reject files to `rejects_dir`.
///
/// # Errors
/// A file that cannot be read or lacks a required column; a policy that lacks a category the
/// importer maps to; store failures. Row-level problems are rejects, not errors.
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
    let ctx = Ctx {
        vault,
        dir,
        rejects_dir,
        progress,
        now: vault.now().unix_timestamp(),
    };
    let mut files = Vec::new();
    type Step = for<'c> fn(
        &'c Ctx<'c>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<FileReport, CoreError>> + Send + 'c>,
    >;
    let steps: [(&str, Step); 7] = [
        ("users.csv", |c| Box::pin(import_users(c))),
        ("consent_events.csv", |c| Box::pin(import_consents(c))),
        ("orders.csv", |c| Box::pin(import_orders(c))),
        ("face_templates.csv", |c| Box::pin(import_faces(c))),
        ("business_contacts.csv", |c| Box::pin(import_contacts(c))),
        ("icp_filings.csv", |c| Box::pin(import_icp(c))),
        ("tickets.jsonl", |c| Box::pin(import_tickets(c))),
    ];
    for (name, step) in steps {
        if dir.join(name).is_file() {
            let t = Instant::now();
            let mut rep = step(&ctx).await?;
            rep.elapsed = t.elapsed();
            files.push(rep);
        }
    }
    Ok(ImportReport {
        files,
        elapsed: started.elapsed(),
        rejects_dir: rejects_dir.to_path_buf(),
    })
}

async fn import_users(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "users.csv";
    let path = ctx.dir.join(FILE);
    ctx.check_categories(&[
        "user.account.id",
        "user.name",
        "user.government_id.id_card",
        DOB_CATEGORY,
        "user.contact.mobile",
        "user.contact.email",
        "user.account.registered_at",
        "user.location.region",
        "user.contact.address",
        "user.contact.province",
        "user.network.ip",
        "user.device.os",
        "user.device.model",
        "user.device.id",
        "user.financial.bank_card",
        "user.guardian.name",
        "user.guardian.mobile",
    ])?;
    let mut b = Batches::open(
        &path,
        &[
            "account_id",
            "name",
            "id_card_number",
            "birth_date",
            "mobile",
            "email",
            "registered_at",
            "residence_region",
        ],
    )?;
    let mut rej = Rejects::new(ctx.rejects_dir, FILE);
    let mut rep = FileReport {
        file: FILE.into(),
        ..FileReport::default()
    };
    ctx.progress.start(FILE, b.total());
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let (rows, bad) = b.next()?;
        if rows.is_empty() && bad.is_empty() {
            break;
        }
        let n = (rows.len() + bad.len()) as u64;
        for r in &bad {
            rej.write(r)?;
        }
        rep.rejected += bad.len() as u64;
        let mut good = Vec::with_capacity(rows.len());
        for r in &rows {
            match parse_user(&b.cols, r) {
                Ok(u) => good.push(u),
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
            }
        }
        let ids: Vec<String> = good.iter().map(|u| u.account.clone()).collect();
        let existing = ctx.subjects_by_account(&ids).await?;
        let erased: HashSet<Vec<u8>> = {
            let keys = ctx.vault.sealer.keys();
            let digests: Vec<[u8; 32]> = ids
                .iter()
                .map(|a| keys.blind_index(ERASED_ACCOUNT, a))
                .collect();
            ctx.vault
                .store
                .lookup_many(ERASED_ACCOUNT, &digests)
                .await?
                .into_iter()
                .map(|(d, _)| d)
                .collect()
        };
        let keys = ctx.vault.sealer.keys();
        let mut subjects = Vec::new();
        let mut key_rows: Vec<KeyRow> = Vec::new();
        let mut field_rows: Vec<FieldRow> = Vec::new();
        let mut idx_owned: Vec<(&'static str, [u8; 32], String)> = Vec::new();
        let mut audits = Vec::new();
        for u in good {
            if erased.contains(keys.blind_index(ERASED_ACCOUNT, &u.account).as_slice()) {
                rej.write(&reject(
                    u.line,
                    "account_id",
                    "account_erased",
                    "this account was erased; it is not imported again",
                ))?;
                rep.rejected += 1;
                continue;
            }
            if existing.contains_key(&u.account) {
                rep.skipped += 1;
                continue;
            }
            if !seen.insert(u.account.clone()) {
                rej.write(&reject(
                    u.line,
                    "account_id",
                    "duplicate_in_file",
                    "the same account id appears earlier in this file",
                ))?;
                rep.rejected += 1;
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let (dek, kr) = ctx.vault.sealer.new_dek(&id, SCOPE_PRIMARY, ctx.now);
            for (cat, name, v) in &u.fields {
                field_rows.push(Sealer::seal_row(
                    &dek, &id, "profile", name, cat, v, None, ctx.now,
                ));
            }
            ctx.vault
                .sealer
                .cache_dek(&id, SCOPE_PRIMARY, Arc::new(dek));
            for (k, v) in &u.idents {
                idx_owned.push((k.as_str(), keys.blind_index(k.as_str(), v), id.clone()));
            }
            audits.push(ctx.audit(
                "subject.create",
                &id,
                "service",
                &u.fields,
                format!("source={FILE} line={}", u.line),
            ));
            subjects.push(SubjectRow {
                id,
                kind: "account".into(),
                status: "active".into(),
                created_at: ctx.now,
                erased_at: None,
                home_region: None,
            });
            key_rows.push(kr);
            rep.imported += 1;
        }
        if !subjects.is_empty() {
            let idx: Vec<(&str, [u8; 32], &str)> = idx_owned
                .iter()
                .map(|(k, d, s)| (*k, *d, s.as_str()))
                .collect();
            ctx.write_new_subjects(&subjects, &key_rows, &field_rows, &idx, audits)
                .await?;
        }
        ctx.progress.advance(n);
    }
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

async fn import_consents(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "consent_events.csv";
    let path = ctx.dir.join(FILE);
    let mut b = Batches::open(
        &path,
        &[
            "event_id",
            "account_id",
            "purpose",
            "action",
            "at",
            "policy_version",
            "method",
            "given_by",
        ],
    )?;
    let mut rej = Rejects::new(ctx.rejects_dir, FILE);
    let mut rep = FileReport {
        file: FILE.into(),
        ..FileReport::default()
    };
    ctx.progress.start(FILE, b.total());
    let policy = ctx.vault.policy();
    loop {
        let (rows, bad) = b.next()?;
        if rows.is_empty() && bad.is_empty() {
            break;
        }
        let n = (rows.len() + bad.len()) as u64;
        for r in &bad {
            rej.write(r)?;
        }
        rep.rejected += bad.len() as u64;
        let accounts: Vec<String> = rows
            .iter()
            .map(|r| b.cols.get(r, "account_id").trim().to_string())
            .collect();
        let subjects = ctx.subjects_by_account(&accounts).await?;
        let refs: Vec<&str> = rows
            .iter()
            .map(|r| b.cols.get(r, "event_id").trim())
            .collect();
        let existing: HashSet<String> = ctx
            .vault
            .store
            .existing_consent_refs(&refs)
            .await?
            .into_iter()
            .collect();
        let mut out = Vec::new();
        let mut audits = Vec::new();
        let mut seen = HashSet::new();
        for r in &rows {
            let c = &b.cols;
            let l = r.line;
            let parsed = (|| {
                let ev = c.get(r, "event_id").trim();
                if ev.is_empty()
                    || ev.len() > 64
                    || !ev
                        .bytes()
                        .all(|x| x.is_ascii_alphanumeric() || x == b'_' || x == b'-')
                {
                    return Err(reject(
                        l,
                        "event_id",
                        "event_id_malformed",
                        "event id is 1-64 characters of A-Z a-z 0-9 _ -",
                    ));
                }
                let subject = subjects.get(c.get(r, "account_id").trim()).ok_or_else(|| {
                    reject(
                        l,
                        "account_id",
                        "unknown_account",
                        "no imported account has this account id",
                    )
                })?;
                let purpose = policy.purpose(c.get(r, "purpose").trim()).ok_or_else(|| {
                    reject(
                        l,
                        "purpose",
                        "unknown_purpose",
                        "purpose is not declared in the policy",
                    )
                })?;
                let action =
                    pivault_domain::consent::ConsentAction::parse(c.get(r, "action").trim())
                        .ok_or_else(|| {
                            reject(l, "action", "unknown_action", "action is grant or withdraw")
                        })?;
                let given_by = pivault_domain::consent::GivenBy::parse(c.get(r, "given_by").trim())
                    .ok_or_else(|| {
                        reject(
                            l,
                            "given_by",
                            "unknown_given_by",
                            "given_by is self or guardian",
                        )
                    })?;
                let at = parse_timestamp(c.get(r, "at"))
                    .map_err(|e| reject(l, "at", e.code, e.reason))?;
                let method = c.get(r, "method").trim();
                if method.is_empty() || method.len() > 32 {
                    return Err(reject(
                        l,
                        "method",
                        "method_malformed",
                        "method is 1-32 characters",
                    ));
                }
                let pv = c.get(r, "policy_version").trim();
                if pv.is_empty() || pv.len() > 32 {
                    return Err(reject(
                        l,
                        "policy_version",
                        "policy_version_malformed",
                        "policy version is 1-32 characters",
                    ));
                }
                Ok(ConsentRow {
                    seq: 0,
                    event_ref: ev.to_string(),
                    subject_id: subject.clone(),
                    purpose: purpose.id.clone(),
                    action: action.as_str().into(),
                    at,
                    given_by: given_by.as_str().into(),
                    method: method.into(),
                    separate: purpose.separate_consent,
                    policy_version: pv.into(),
                    recorded_at: ctx.now,
                    recipient: None,
                })
            })();
            match parsed {
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
                Ok(row) => {
                    if existing.contains(&row.event_ref) || !seen.insert(row.event_ref.clone()) {
                        rep.skipped += 1;
                        continue;
                    }
                    let mut a = ctx.vault.auditor.base(
                        ACTOR,
                        &format!("consent.{}", row.action),
                        ctx.now,
                        None,
                    );
                    a.subject_id = Some(row.subject_id.clone());
                    a.purpose = Some(row.purpose.clone());
                    a.detail = Some(format!(
                        "source={FILE} line={l} given_by={} method={}",
                        row.given_by, row.method
                    ));
                    audits.push(a);
                    out.push(row);
                    rep.imported += 1;
                }
            }
        }
        if !out.is_empty() {
            let mut tx = ctx.vault.store.begin(ctx.now).await?;
            tx.insert_consents(&out).await?;
            for a in audits {
                tx.audit(a);
            }
            tx.bump_facts_epoch().await?;
            tx.commit().await?;
        }
        ctx.progress.advance(n);
    }
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

/// A parsed record row: subject account, record id, fields.
struct RecordRow {
    line: u64,
    account: String,
    record: String,
    fields: Fields,
}

/// One batch from a record file: parsed rows, rejects (malformed or invalid rows), and how
/// many source rows it covered (0 = end of file).
type RecordBatch = (Vec<RecordRow>, Vec<Reject>, u64);

/// Shared driver for CSV files whose rows become one record of an existing account's subject.
async fn import_records(
    ctx: &Ctx<'_>,
    file: &'static str,
    required: &[&str],
    categories: &[&str],
    purpose: &'static str,
    parse: fn(&Cols, &Row) -> Result<RecordRow, Reject>,
) -> Result<FileReport, CoreError> {
    ctx.check_categories(categories)?;
    let mut b = Batches::open(&ctx.dir.join(file), required)?;
    let total = b.total();
    drive_records(ctx, file, purpose, total, move || {
        let (rows, mut bad) = b.next()?;
        let n = (rows.len() + bad.len()) as u64;
        let mut good = Vec::with_capacity(rows.len());
        for r in &rows {
            match parse(&b.cols, r) {
                Ok(x) => good.push(x),
                Err(e) => bad.push(e),
            }
        }
        Ok((good, bad, n))
    })
    .await
}

/// Lands record rows batch by batch (from CSV or JSON Lines): unknown accounts and erased
/// subjects are rejects, records already present (or earlier in the file) are skipped, the
/// rest are sealed under the subject's DEK in one transaction per batch.
async fn drive_records(
    ctx: &Ctx<'_>,
    file: &'static str,
    purpose: &'static str,
    total: u64,
    mut next_batch: impl FnMut() -> Result<RecordBatch, CoreError> + Send,
) -> Result<FileReport, CoreError> {
    let mut rej = Rejects::new(ctx.rejects_dir, file);
    let mut rep = FileReport {
        file: file.into(),
        ..FileReport::default()
    };
    ctx.progress.start(file, total);
    loop {
        let (good, bad, n) = next_batch()?;
        if n == 0 {
            break;
        }
        for r in &bad {
            rej.write(r)?;
        }
        rep.rejected += bad.len() as u64;
        let accounts: Vec<String> = good.iter().map(|g| g.account.clone()).collect();
        let subjects = ctx.subjects_by_account(&accounts).await?;
        let pairs: Vec<(&str, &str)> = good
            .iter()
            .filter_map(|g| {
                subjects
                    .get(&g.account)
                    .map(|s| (s.as_str(), g.record.as_str()))
            })
            .collect();
        let existing: HashSet<(String, String)> = ctx
            .vault
            .store
            .existing_records(&pairs)
            .await?
            .into_iter()
            .collect();
        let subject_ids: Vec<&str> = subjects.values().map(String::as_str).collect();
        let deks = ctx
            .vault
            .sealer
            .deks_many(&subject_ids, SCOPE_PRIMARY)
            .await?;
        let mut field_rows = Vec::new();
        let mut audits = Vec::new();
        let mut seen = HashSet::new();
        for g in good {
            let Some(subject) = subjects.get(&g.account) else {
                rej.write(&reject(
                    g.line,
                    "account_id",
                    "unknown_account",
                    "no imported account has this account id",
                ))?;
                rep.rejected += 1;
                continue;
            };
            if existing.contains(&(subject.clone(), g.record.clone()))
                || !seen.insert((subject.clone(), g.record.clone()))
            {
                rep.skipped += 1;
                continue;
            }
            let Some(dek) = deks.get(subject) else {
                rej.write(&reject(
                    g.line,
                    "account_id",
                    "subject_erased",
                    "the account was erased",
                ))?;
                rep.rejected += 1;
                continue;
            };
            for (cat, name, v) in &g.fields {
                field_rows.push(Sealer::seal_row(
                    dek, subject, &g.record, name, cat, v, None, ctx.now,
                ));
            }
            audits.push(ctx.audit(
                "fields.put",
                subject,
                purpose,
                &g.fields,
                format!("source={file} line={} record={}", g.line, g.record),
            ));
            rep.imported += 1;
        }
        if !field_rows.is_empty() {
            let mut tx = ctx.vault.store.begin(ctx.now).await?;
            tx.insert_fields_if_absent(&field_rows).await?;
            for a in audits {
                tx.audit(a);
            }
            tx.commit().await?;
        }
        ctx.progress.advance(n);
    }
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

fn record_id(v: &str, l: u64, col: &'static str) -> Result<String, Reject> {
    let t = v.trim();
    if t.is_empty()
        || t.len() > 64
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(reject(
            l,
            col,
            "record_id_malformed",
            "id is 1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    Ok(t.to_string())
}

fn account_of(c: &Cols, r: &Row) -> Result<String, Reject> {
    AccountId::parse(c.get(r, "account_id"))
        .map(|a| a.as_str().to_string())
        .map_err(|e| reject(r.line, "account_id", e.code, e.reason))
}

async fn import_orders(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    import_records(
        ctx,
        "orders.csv",
        &["order_id", "account_id", "product", "amount_cny", "paid_at"],
        &[
            "user.transaction.order",
            "user.transaction.amount",
            "user.transaction.paid_at",
            "user.transaction.invoice",
        ],
        "legal_obligation",
        |c, r| {
            let l = r.line;
            let id = record_id(c.get(r, "order_id"), l, "order_id")?;
            let account = account_of(c, r)?;
            let product = text(c.get(r, "product"))
                .ok_or_else(|| reject(l, "product", "value_empty", "product is empty"))?;
            let amount = parse_decimal(c.get(r, "amount_cny"))
                .map_err(|e| reject(l, "amount_cny", e.code, e.reason))?;
            let paid = parse_timestamp(c.get(r, "paid_at"))
                .map_err(|e| reject(l, "paid_at", e.code, e.reason))?;
            let mut fields: Fields = vec![
                ("user.transaction.order", "product", product),
                (
                    "user.transaction.amount",
                    "amount_cny",
                    FieldValue::Number(amount),
                ),
                (
                    "user.transaction.paid_at",
                    "paid_at",
                    FieldValue::Timestamp(paid),
                ),
            ];
            if let Some(v) = text(c.get(r, "invoice_title")) {
                fields.push(("user.transaction.invoice", "invoice_title", v));
            }
            if let Some(v) = text(c.get(r, "invoice_tax_id")) {
                fields.push(("user.transaction.invoice", "invoice_tax_id", v));
            }
            Ok(RecordRow {
                line: l,
                account,
                record: format!("order:{id}"),
                fields,
            })
        },
    )
    .await
}

async fn import_faces(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    import_records(
        ctx,
        "face_templates.csv",
        &["account_id", "enrolled_at", "template_f32x128_b64"],
        &["user.biometric.face"],
        "biometric_login",
        |c, r| {
            let l = r.line;
            let account = account_of(c, r)?;
            let at = parse_timestamp(c.get(r, "enrolled_at"))
                .map_err(|e| reject(l, "enrolled_at", e.code, e.reason))?;
            let t = base64::engine::general_purpose::STANDARD
                .decode(c.get(r, "template_f32x128_b64").trim())
                .map_err(|_| {
                    reject(
                        l,
                        "template_f32x128_b64",
                        "binary_malformed",
                        "not standard base64",
                    )
                })?;
            if t.len() != 512 {
                return Err(reject(
                    l,
                    "template_f32x128_b64",
                    "template_size",
                    "a face template is 128 float32 values (512 bytes)",
                ));
            }
            Ok(RecordRow {
                line: l,
                account,
                record: "face".into(),
                fields: vec![
                    ("user.biometric.face", "template", FieldValue::Binary(t)),
                    (
                        "user.biometric.face",
                        "enrolled_at",
                        FieldValue::Timestamp(at),
                    ),
                ],
            })
        },
    )
    .await
}

async fn import_icp(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    import_records(
        ctx,
        "icp_filings.csv",
        &[
            "filing_id",
            "account_id",
            "entity_name",
            "person_in_charge",
            "person_id_card_number",
            "person_mobile",
            "domain",
            "submitted_at",
        ],
        &[
            "user.icp.filing",
            "user.name",
            "user.government_id.id_card",
            "user.contact.mobile",
        ],
        "icp_filing",
        |c, r| {
            let l = r.line;
            let id = record_id(c.get(r, "filing_id"), l, "filing_id")?;
            let account = account_of(c, r)?;
            let entity = text(c.get(r, "entity_name"))
                .ok_or_else(|| reject(l, "entity_name", "value_empty", "entity name is empty"))?;
            let person = text(c.get(r, "person_in_charge")).ok_or_else(|| {
                reject(
                    l,
                    "person_in_charge",
                    "value_empty",
                    "person in charge is empty",
                )
            })?;
            let idc = IdCardNumber::parse(c.get(r, "person_id_card_number"))
                .map_err(|e| reject(l, "person_id_card_number", e.code, e.reason))?;
            let mobile = Mobile::parse(c.get(r, "person_mobile"))
                .map_err(|e| reject(l, "person_mobile", e.code, e.reason))?;
            let domain = c.get(r, "domain").trim().to_ascii_lowercase();
            if domain.is_empty()
                || domain.len() > 253
                || !domain.contains('.')
                || !domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(reject(l, "domain", "domain_malformed", "not a domain name"));
            }
            let at = parse_timestamp(c.get(r, "submitted_at"))
                .map_err(|e| reject(l, "submitted_at", e.code, e.reason))?;
            Ok(RecordRow {
                line: l,
                account,
                record: format!("icp:{id}"),
                fields: vec![
                    ("user.icp.filing", "entity_name", entity),
                    ("user.name", "person_in_charge", person),
                    (
                        "user.government_id.id_card",
                        "person_id_card_number",
                        FieldValue::Text(idc.as_str().into()),
                    ),
                    (
                        "user.contact.mobile",
                        "person_mobile",
                        FieldValue::Text(mobile.e164().into()),
                    ),
                    ("user.icp.filing", "domain", FieldValue::Text(domain)),
                    ("user.icp.filing", "submitted_at", FieldValue::Timestamp(at)),
                ],
            })
        },
    )
    .await
}

const TICKET_CATEGORY: &str = "user.support.ticket";

/// One `tickets.jsonl` line: `{"ticket_id", "account_id", "created_at", "text", "spans"}`.
///
/// The text is sealed whole (it is free text and may hold any PI); `created_at` goes in the
/// same record and category, as a face template's `enrolled_at` and a filing's `submitted_at`
/// do (tickets carry no retention period that would need a timestamp category of their own,
/// as `user.transaction.paid_at` does). `spans` is dropped: code-point offsets and PI-kind
/// labels of the generator's ground truth, not PI about the subject, and no policy category
/// fits them.
fn parse_ticket(l: u64, bytes: &[u8]) -> Result<RecordRow, Reject> {
    use serde_json::Value as J;
    let s = std::str::from_utf8(bytes)
        .map_err(|_| reject(l, "", "not_utf8", "the row is not valid UTF-8"))?;
    let v: J = serde_json::from_str(s)
        .map_err(|_| reject(l, "", "json_malformed", "the line is not valid JSON"))?;
    let J::Object(o) = v else {
        return Err(reject(
            l,
            "",
            "json_not_object",
            "the line is not a JSON object",
        ));
    };
    let field = |name: &'static str| {
        o.get(name)
            .ok_or_else(|| reject(l, name, "field_missing", "a required field is missing"))
    };
    let string = |name: &'static str| {
        field(name)?.as_str().ok_or_else(|| {
            reject(
                l,
                name,
                "value_wrong_type",
                "the field is not a JSON string",
            )
        })
    };
    let id = record_id(string("ticket_id")?, l, "ticket_id")?;
    let account = AccountId::parse(string("account_id")?)
        .map(|a| a.as_str().to_string())
        .map_err(|e| reject(l, "account_id", e.code, e.reason))?;
    let at = parse_timestamp(string("created_at")?)
        .map_err(|e| reject(l, "created_at", e.code, e.reason))?;
    // The vault's own rule for a text value: a string, not blank, at most 64 KiB.
    let text = FieldValue::from_json(field("text")?, ValueType::Text)
        .map_err(|e| reject(l, "text", e.code, e.reason))?;
    Ok(RecordRow {
        line: l,
        account,
        record: format!("ticket:{id}"),
        fields: vec![
            (TICKET_CATEGORY, "text", text),
            (TICKET_CATEGORY, "created_at", FieldValue::Timestamp(at)),
        ],
    })
}

async fn import_tickets(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "tickets.jsonl";
    ctx.check_categories(&[TICKET_CATEGORY])?;
    let mut b = JsonlBatches::open(&ctx.dir.join(FILE))?;
    let total = b.total;
    // §2.1.4: support records serve responding to and improving the service.
    drive_records(ctx, FILE, "maintenance", total, move || {
        let (lines, mut bad) = b.next()?;
        let n = (lines.len() + bad.len()) as u64;
        let mut good = Vec::with_capacity(lines.len());
        for (l, bytes) in &lines {
            match parse_ticket(*l, bytes) {
                Ok(x) => good.push(x),
                Err(e) => bad.push(e),
            }
        }
        Ok((good, bad, n))
    })
    .await
}

async fn import_contacts(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "business_contacts.csv";
    const REF_KIND: &str = "business_contact_ref";
    let path = ctx.dir.join(FILE);
    ctx.check_categories(&[
        "user.business_contact.name",
        "user.business_contact.title",
        "user.business_contact.mobile",
        "user.business_contact.email",
        "user.business_contact.organization",
    ])?;
    let mut b = Batches::open(
        &path,
        &[
            "customer_org",
            "contact_name",
            "title",
            "mobile",
            "email",
            "account_id",
        ],
    )?;
    let mut rej = Rejects::new(ctx.rejects_dir, FILE);
    let mut rep = FileReport {
        file: FILE.into(),
        ..FileReport::default()
    };
    ctx.progress.start(FILE, b.total());
    let keys = ctx.vault.sealer.keys();
    loop {
        let (rows, bad) = b.next()?;
        if rows.is_empty() && bad.is_empty() {
            break;
        }
        let n = (rows.len() + bad.len()) as u64;
        for r in &bad {
            rej.write(r)?;
        }
        rep.rejected += bad.len() as u64;
        let mut good: Vec<(u64, [u8; 32], Fields)> = Vec::new();
        for r in &rows {
            let c = &b.cols;
            let l = r.line;
            let parsed = (|| {
                let account = account_of(c, r)?;
                let name = text(c.get(r, "contact_name")).ok_or_else(|| {
                    reject(l, "contact_name", "value_empty", "contact name is empty")
                })?;
                let mobile = Mobile::parse(c.get(r, "mobile"))
                    .map_err(|e| reject(l, "mobile", e.code, e.reason))?;
                let email = Email::parse(c.get(r, "email"))
                    .map_err(|e| reject(l, "email", e.code, e.reason))?;
                let org = text(c.get(r, "customer_org")).ok_or_else(|| {
                    reject(l, "customer_org", "value_empty", "organization is empty")
                })?;
                let FieldValue::Text(name_s) = &name else {
                    unreachable_text()
                };
                let digest = keys.blind_index(
                    REF_KIND,
                    &format!("{account}\u{1f}{name_s}\u{1f}{}", mobile.e164()),
                );
                let mut f: Fields = vec![
                    ("user.business_contact.name", "contact_name", name.clone()),
                    (
                        "user.business_contact.mobile",
                        "mobile",
                        FieldValue::Text(mobile.e164().into()),
                    ),
                    (
                        "user.business_contact.email",
                        "email",
                        FieldValue::Text(email.as_str().into()),
                    ),
                    ("user.business_contact.organization", "customer_org", org),
                    (
                        "user.business_contact.organization",
                        "customer_account_id",
                        FieldValue::Text(account),
                    ),
                ];
                if let Some(t) = text(c.get(r, "title")) {
                    f.push(("user.business_contact.title", "title", t));
                }
                Ok((l, digest, f))
            })();
            match parsed {
                Ok(g) => good.push(g),
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
            }
        }
        let digests: Vec<[u8; 32]> = good.iter().map(|g| g.1).collect();
        let existing: HashSet<Vec<u8>> = ctx
            .vault
            .store
            .lookup_many(REF_KIND, &digests)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let mut seen = HashSet::new();
        let mut subjects = Vec::new();
        let mut key_rows = Vec::new();
        let mut field_rows = Vec::new();
        let mut idx_owned: Vec<([u8; 32], String)> = Vec::new();
        let mut audits = Vec::new();
        for (l, digest, f) in good {
            if existing.contains(digest.as_slice()) || !seen.insert(digest) {
                rep.skipped += 1;
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let (dek, kr) = ctx.vault.sealer.new_dek(&id, SCOPE_PRIMARY, ctx.now);
            for (cat, name, v) in &f {
                field_rows.push(Sealer::seal_row(
                    &dek, &id, "profile", name, cat, v, None, ctx.now,
                ));
            }
            audits.push(ctx.audit(
                "subject.create",
                &id,
                "maintenance",
                &f,
                format!("source={FILE} line={l}"),
            ));
            idx_owned.push((digest, id.clone()));
            subjects.push(SubjectRow {
                id,
                kind: "business_contact".into(),
                status: "active".into(),
                created_at: ctx.now,
                erased_at: None,
                home_region: None,
            });
            key_rows.push(kr);
            rep.imported += 1;
        }
        if !subjects.is_empty() {
            let idx: Vec<(&str, [u8; 32], &str)> = idx_owned
                .iter()
                .map(|(d, s)| (REF_KIND, *d, s.as_str()))
                .collect();
            ctx.write_new_subjects(&subjects, &key_rows, &field_rows, &idx, audits)
                .await?;
        }
        ctx.progress.advance(n);
    }
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

fn unreachable_text() -> ! {
    // `text()` only ever builds FieldValue::Text.
    panic!("text() returned a non-text value")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const GOOD: &str = r#"{"ticket_id": "t000001", "account_id": "u104951", "created_at": "2025-12-12T06:16:44Z", "text": "我的手机号是150 2803 4213，谢谢", "spans": [[6, 19, "PHONE_NUMBER"]]}"#;

    fn code(line: &str) -> &'static str {
        parse_ticket(9, line.as_bytes()).err().map_or("ok", |r| {
            assert_eq!(r.line, 9);
            r.code
        })
    }

    #[test]
    fn a_ticket_line_becomes_one_sealed_text_and_its_creation_time() {
        let r = parse_ticket(3, GOOD.as_bytes()).ok().unwrap();
        assert_eq!((r.line, r.account.as_str()), (3, "u104951"));
        assert_eq!(r.record, "ticket:t000001");
        let names: Vec<(&str, &str)> = r.fields.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(
            names,
            [
                ("user.support.ticket", "text"),
                ("user.support.ticket", "created_at")
            ]
        );
        assert_eq!(r.fields[1].2, FieldValue::Timestamp(1_765_520_204));
        // spans are not required
        assert_eq!(
            code(&GOOD.replace(r#", "spans": [[6, 19, "PHONE_NUMBER"]]"#, "")),
            "ok"
        );
    }

    #[test]
    fn bad_ticket_lines_get_stable_codes() {
        assert_eq!(code(r#"{"ticket_id": "t1", "#), "json_malformed");
        assert_eq!(code("[1, 2]"), "json_not_object");
        assert_eq!(
            code(&GOOD.replace(r#""account_id": "u104951", "#, "")),
            "field_missing"
        );
        assert_eq!(code(&GOOD.replace(r#""t000001""#, "1")), "value_wrong_type");
        assert_eq!(
            code(&GOOD.replace("t000001", "t/../1")),
            "record_id_malformed"
        );
        assert_eq!(
            code(&GOOD.replace("2025-12-12T06:16:44Z", "2025-13-12 06:16")),
            "timestamp_malformed"
        );
        let long = "长".repeat(crate::values::MAX_VALUE_BYTES / 3 + 1);
        assert_eq!(
            code(&GOOD.replace("我的手机号是150 2803 4213，谢谢", &long)),
            "value_too_long"
        );
        assert_eq!(
            code(&GOOD.replace("我的手机号是150 2803 4213，谢谢", "  ")),
            "value_empty"
        );
        assert_eq!(
            parse_ticket(1, b"{\"text\": \"\xff\"}").err().unwrap().code,
            "not_utf8"
        );
    }

    #[test]
    fn jsonl_lines_are_physical_lines_with_lf_or_crlf_endings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let long = format!("{{\"text\": \"{}\"}}", "x".repeat(MAX_JSONL_LINE + 10));
        let body = format!("a\r\n\r\nb\n{long}\r\nc\n  \nd");
        std::fs::write(&path, body).unwrap();
        let mut b = JsonlBatches::open(&path).unwrap();
        assert_eq!(b.total, 6);
        let (lines, rejects) = b.next().unwrap();
        let got: Vec<(u64, &[u8])> = lines.iter().map(|(l, s)| (*l, s.as_slice())).collect();
        assert_eq!(
            got,
            [
                (1, &b"a"[..]),
                (3, &b"b"[..]),
                (5, &b"c"[..]),
                (7, &b"d"[..])
            ]
        );
        let bad: Vec<(u64, &str)> = rejects.iter().map(|r| (r.line, r.code)).collect();
        assert_eq!(bad, [(4, "line_too_long")]);
        let (lines, rejects) = b.next().unwrap();
        assert!(lines.is_empty() && rejects.is_empty());
    }
}
