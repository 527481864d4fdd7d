//! `access.log`: nginx "combined" web-log lines (policy §2.1.2 web logs; Cybersecurity Law
//! Art. 21(3) keeps them at least six months). Each line linked to an account (its id as the
//! remote user, or in the path or query) becomes one record of that account's subject, sealed
//! under its DEK, so it appears in access packages and falls under erasure (restricted for its
//! legal minimum), and its request time starts its retention clock. Malformed lines are
//! rejected with their line numbers and the rest land.

use super::common::*;
use super::reader::*;
use super::records::{drive_records, RecordRow};
use crate::error::CoreError;
use crate::values::FieldValue;
use pivault_domain::weblog::{linked_account, parse_combined, WebLogReject};

/// The category web-log lines are stored under.
pub(crate) const WEBLOG_CATEGORY: &str = "user.behavior.web_log";

/// Checks one `access.log` line as the importer does and builds its record: `weblog:<id>`
/// (a keyed digest of the line, so a re-import skips it and no PI is in the id) with one
/// field, `line`, holding the line as logged.
///
/// # Errors
/// The line's [`Reject`]: `not_utf8`, `weblog_<reason>` from the parser (never the text),
/// or `no_account` when no account id is linked to it.
pub(crate) fn parse_weblog_line(
    l: u64,
    bytes: &[u8],
    record_id: impl Fn(&str) -> String,
) -> Result<RecordRow, Reject> {
    let s = std::str::from_utf8(bytes)
        .map_err(|_| reject(l, "", "not_utf8", "the line is not valid UTF-8"))?;
    let line = parse_combined(s).map_err(|e| reject(l, "", weblog_code(e), e.reason()))?;
    let account = linked_account(&line).ok_or_else(|| {
        reject(
            l,
            "remote_user",
            "no_account",
            "no account id is linked to the line",
        )
    })?;
    Ok(RecordRow {
        line: l,
        account,
        record: format!("weblog:{}", record_id(s)),
        fields: vec![(WEBLOG_CATEGORY, "line", FieldValue::Text(s.to_string()))],
        missing: Vec::new(),
        event_at: Some(line.at),
        activity_at: Some(line.at),
    })
}

/// The reject code of a parser reason: `weblog_` + the parser's stable code.
fn weblog_code(e: WebLogReject) -> &'static str {
    match e {
        WebLogReject::Empty => "weblog_empty",
        WebLogReject::TooLong => "weblog_too_long",
        WebLogReject::BadAddress => "weblog_bad_address",
        WebLogReject::BadLayout => "weblog_bad_layout",
        WebLogReject::Truncated => "weblog_truncated",
        WebLogReject::BadTime => "weblog_bad_time",
        WebLogReject::UnterminatedQuote => "weblog_unterminated_quote",
        WebLogReject::BadRequestLine => "weblog_bad_request_line",
        WebLogReject::BadStatus => "weblog_bad_status",
        WebLogReject::BadBytes => "weblog_bad_bytes",
        WebLogReject::TrailingData => "weblog_trailing_data",
    }
}

pub(crate) async fn import_weblog(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "access.log";
    ctx.check_categories(&[WEBLOG_CATEGORY])?;
    let mut b = JsonlBatches::open(&ctx.dir.join(FILE))?;
    let total = b.total;
    let keys = ctx.vault.sealer.keys_arc();
    // §2.1.2: web logs serve security and service improvement.
    drive_records(ctx, FILE, "security", total, move || {
        let (lines, mut bad) = b.next()?;
        let n = (lines.len() + bad.len()) as u64;
        let mut good = Vec::with_capacity(lines.len());
        let id = |s: &str| {
            let d = keys.blind_index("weblog_line", s);
            hex::encode(&d[..16])
        };
        for (l, bytes) in &lines {
            match parse_weblog_line(*l, bytes, id) {
                Ok(x) => good.push(x),
                Err(e) => bad.push(e),
            }
        }
        Ok((good, bad, n))
    })
    .await
}
