//! Reading the input files: CSV batches with line numbers, JSON Lines, and reject files.

use crate::error::CoreError;
use crate::import::BATCH;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub(crate) struct Reject {
    pub(crate) line: u64,
    pub(crate) column: &'static str,
    pub(crate) code: &'static str,
    pub(crate) reason: &'static str,
}

pub(crate) fn reject(
    line: u64,
    column: &'static str,
    code: &'static str,
    reason: &'static str,
) -> Reject {
    Reject {
        line,
        column,
        code,
        reason,
    }
}

/// Reject file of one input file: rows are kept and written sorted by line at the end (a
/// batch finds CSV-level and row-level problems in different passes).
pub(crate) struct Rejects {
    pub(crate) path: PathBuf,
    pub(crate) rows: Vec<Reject>,
}

impl Rejects {
    pub(crate) fn new(dir: &Path, file: &str) -> Self {
        Self {
            path: dir.join(format!("{file}.rejects.csv")),
            rows: Vec::new(),
        }
    }
    /// The warnings of `file` (rows kept, with something missing): `<file>.warnings.csv`,
    /// same columns as a reject file.
    pub(crate) fn warnings(dir: &Path, file: &str) -> Self {
        Self {
            path: dir.join(format!("{file}.warnings.csv")),
            rows: Vec::new(),
        }
    }
    #[allow(clippy::unnecessary_wraps)] // keeps call sites uniform with fallible writers
    pub(crate) fn write(&mut self, r: &Reject) -> Result<(), CoreError> {
        self.rows.push(Reject {
            line: r.line,
            column: r.column,
            code: r.code,
            reason: r.reason,
        });
        Ok(())
    }
    pub(crate) fn finish(mut self) -> Result<(), CoreError> {
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
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) rec: csv::StringRecord,
}

#[derive(Clone)]
pub(crate) struct Cols(HashMap<String, usize>);

impl Cols {
    /// The column index of each (trimmed) header name.
    pub(crate) fn from_header(headers: &csv::StringRecord) -> Self {
        Cols(
            headers
                .iter()
                .enumerate()
                .map(|(i, h)| (h.trim().to_string(), i))
                .collect(),
        )
    }

    /// The name of column `i` for a reject row, when it is one the importer reads (a reject
    /// names the column, never quotes the cell); `""` otherwise.
    pub(crate) fn name_of(&self, i: usize) -> &'static str {
        self.0
            .iter()
            .find(|(_, &j)| j == i)
            .and_then(|(h, _)| KNOWN_COLUMNS.iter().find(|k| **k == h.as_str()))
            .copied()
            .unwrap_or("")
    }

    pub(crate) fn get<'r>(&self, row: &'r Row, name: &str) -> &'r str {
        self.0.get(name).and_then(|&i| row.rec.get(i)).unwrap_or("")
    }
}

/// Every column of the CSV files the importer reads (the data set's headers), so a reject can
/// name one with a `&'static str`.
const KNOWN_COLUMNS: &[&str] = &[
    "account_id",
    "action",
    "address",
    "amount_cny",
    "at",
    "bank_card_number",
    "birth_date",
    "contact_name",
    "customer_org",
    "device_id",
    "device_model",
    "domain",
    "email",
    "enrolled_at",
    "entity_name",
    "event_id",
    "filing_id",
    "given_by",
    "guardian_mobile",
    "guardian_name",
    "id_card_number",
    "invoice_tax_id",
    "invoice_title",
    "last_login_ip",
    "method",
    "mobile",
    "name",
    "order_id",
    "os",
    "paid_at",
    "person_id_card_number",
    "person_in_charge",
    "person_mobile",
    "policy_version",
    "product",
    "province",
    "purpose",
    "registered_at",
    "residence_region",
    "submitted_at",
    "template_f32x128_b64",
    "title",
];

/// Reads a CSV file in batches of parsed rows; malformed CSV rows become rejects.
pub(crate) struct Batches {
    pub(crate) reader: csv::Reader<std::fs::File>,
    pub(crate) cols: Cols,
    pub(crate) newlines: Vec<u64>,
}

impl Batches {
    pub(crate) fn open(path: &Path, required: &[&str]) -> Result<Self, CoreError> {
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
        let cols = Cols::from_header(&headers);
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
    pub(crate) fn line_of(&self, offset: u64) -> u64 {
        // `<=`: on CRLF files a record's offset points at the `\n` left over from the previous
        // line's `\r\n`; that newline belongs before it.
        self.newlines.partition_point(|&p| p <= offset) as u64 + 1
    }

    /// Rows in the file (lines minus the header), for progress.
    pub(crate) fn total(&self) -> u64 {
        (self.newlines.len() as u64).saturating_sub(1)
    }

    /// Next batch: rows, plus rejects for malformed CSV lines. Empty rows vec + no rejects = EOF.
    pub(crate) fn next(&mut self) -> Result<(Vec<Row>, Vec<Reject>), CoreError> {
        let mut rows = Vec::with_capacity(BATCH);
        let mut rejects = Vec::new();
        let mut rec = csv::StringRecord::new();
        while rows.len() < BATCH {
            match self.reader.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(0, |p| self.line_of(p.byte()));
                    if let Some(i) = rec.iter().position(has_forbidden_char) {
                        rejects.push(reject(
                            line,
                            self.cols.name_of(i),
                            "text_malformed",
                            "a cell has a control, invisible format or bidirectional formatting character",
                        ));
                        continue;
                    }
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

/// Whether a cell holds a character no stored text may hold
/// ([`pivault_domain::text::is_forbidden_in_text`]: controls but tab and line breaks, invisible
/// format characters, bidi formatting). Bytes first: each such character is an ASCII control or
/// starts with 0xC2, 0xD8, 0xE1, 0xE2 or 0xEF in UTF-8, so most cells are passed without
/// decoding.
fn has_forbidden_char(cell: &str) -> bool {
    cell.bytes()
        .any(|b| b < 0x20 || b == 0x7f || matches!(b, 0xC2 | 0xD8 | 0xE1 | 0xE2 | 0xEF))
        && cell.chars().any(pivault_domain::text::is_forbidden_in_text)
}

/// Byte offsets of every `\n` in the file, read once in 64 KiB chunks (also the progress
/// total). Record positions are byte offsets; this maps them to physical line numbers, which
/// the csv crate's own line counter gets wrong on CRLF files (the data set is CRLF).
pub(crate) fn newline_index(path: &Path) -> Vec<u64> {
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
pub(crate) const MAX_JSONL_LINE: usize = 1024 * 1024;

/// One JSON Lines line: physical 1-based line number, bytes without the line ending.
pub(crate) type JsonlLine = (u64, Vec<u8>);

/// Reads a JSON Lines file in batches of (physical 1-based line number, line without its `\n`
/// or `\r\n`). Blank lines are skipped (as the CSV reader skips empty lines); over-long lines
/// become rejects.
pub(crate) struct JsonlBatches {
    pub(crate) reader: std::io::BufReader<std::fs::File>,
    pub(crate) line: u64,
    pub(crate) total: u64,
}

impl JsonlBatches {
    pub(crate) fn open(path: &Path) -> Result<Self, CoreError> {
        let file = std::fs::File::open(path)?;
        Ok(Self {
            reader: std::io::BufReader::with_capacity(64 * 1024, file),
            line: 0,
            total: newline_index(path).len() as u64,
        })
    }

    /// Next batch: lines, plus rejects. Empty lines vec + no rejects = EOF.
    pub(crate) fn next(&mut self) -> Result<(Vec<JsonlLine>, Vec<Reject>), CoreError> {
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
