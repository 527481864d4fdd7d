//! The importer's row parsers without a database, for fuzzing and tests.
//!
//! Each function runs exactly the check the importer runs on one row before anything is
//! looked up or written (identifiers parsed and normalized, dates, amounts, card and ID check
//! digits, base64 templates, JSON shapes). What needs the database (is the account known, was
//! it erased, is the row already there) is not part of it: [`parse_csv_row`] treats every
//! account id as known.
//!
//! Invariants: never panics, on any input; a [`RowReject`] holds only static text (the reject
//! file's column, code and reason), never a value from the row.

use super::consents::parse_consent;
use super::contacts::parse_contact;
use super::reader::{Cols, Row};
use super::records::{parse_face, parse_icp, parse_order, parse_ticket};
use super::users::parse_user;
use pivault_domain::policy::Policy;

/// A CSV file of the data set whose rows the importer parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvFile {
    /// `users.csv`: accounts.
    Users,
    /// `consent_events.csv`: the consent ledger.
    ConsentEvents,
    /// `orders.csv`: orders.
    Orders,
    /// `face_templates.csv`: face templates.
    FaceTemplates,
    /// `business_contacts.csv`: customers' business contacts.
    BusinessContacts,
    /// `icp_filings.csv`: ICP filings.
    IcpFilings,
}

impl CsvFile {
    /// Every file, in import order.
    pub const ALL: [CsvFile; 6] = [
        CsvFile::Users,
        CsvFile::ConsentEvents,
        CsvFile::Orders,
        CsvFile::FaceTemplates,
        CsvFile::BusinessContacts,
        CsvFile::IcpFilings,
    ];

    /// The file name, e.g. `users.csv`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CsvFile::Users => "users.csv",
            CsvFile::ConsentEvents => "consent_events.csv",
            CsvFile::Orders => "orders.csv",
            CsvFile::FaceTemplates => "face_templates.csv",
            CsvFile::BusinessContacts => "business_contacts.csv",
            CsvFile::IcpFilings => "icp_filings.csv",
        }
    }
}

/// Why a row was rejected: what its line in the reject file says. Never holds a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowReject {
    /// The column at fault (empty for the whole row).
    pub column: &'static str,
    /// Stable code, e.g. `mobile_too_short`.
    pub code: &'static str,
    /// Fixed reason.
    pub reason: &'static str,
}

impl From<super::reader::Reject> for RowReject {
    fn from(r: super::reader::Reject) -> Self {
        Self {
            column: r.column,
            code: r.code,
            reason: r.reason,
        }
    }
}

/// Parses one data row of `file` (`header` is the file's header record) as the importer does,
/// with every account id taken as known, and returns how many fields the row would write (a
/// consent event writes one ledger row, counted as 1). `policy` is needed for consent events
/// (the purpose must be declared).
///
/// # Errors
/// The [`RowReject`] the importer would write for this row.
pub fn parse_csv_row(
    file: CsvFile,
    header: &csv::StringRecord,
    row: &csv::StringRecord,
    policy: &Policy,
) -> Result<usize, RowReject> {
    let cols = Cols::from_header(header);
    let r = Row {
        line: 2,
        rec: row.clone(),
    };
    let n = match file {
        CsvFile::Users => parse_user(&cols, &r)?.fields.len(),
        CsvFile::ConsentEvents => {
            parse_consent(
                &cols,
                &r,
                policy,
                |_| Some("subject".to_owned()),
                |_| None,
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )?;
            1
        }
        CsvFile::Orders => parse_order(&cols, &r)?.fields.len(),
        CsvFile::FaceTemplates => parse_face(&cols, &r)?.fields.len(),
        CsvFile::BusinessContacts => parse_contact(&cols, &r)?.1.len(),
        CsvFile::IcpFilings => parse_icp(&cols, &r)?.fields.len(),
    };
    Ok(n)
}

/// Parses one `tickets.jsonl` line (without its line ending) as the importer does and returns
/// how many fields it would write.
///
/// # Errors
/// The [`RowReject`] the importer would write for this line.
pub fn parse_jsonl_row(line: &[u8]) -> Result<usize, RowReject> {
    Ok(parse_ticket(1, line)?.fields.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::PathBuf;

    fn data(file: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/zh_CN-10k")
            .join(file)
    }

    fn policy() -> Policy {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml");
        Policy::parse(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    /// The header and the first `n` records of a data-set file.
    fn head(file: CsvFile, n: usize) -> (csv::StringRecord, Vec<csv::StringRecord>) {
        let mut r = csv::Reader::from_path(data(file.name())).unwrap();
        let h = r.headers().unwrap().clone();
        (h, r.records().take(n).map(Result::unwrap).collect())
    }

    #[test]
    fn the_first_rows_of_every_data_set_file_parse() {
        let policy = policy();
        for file in CsvFile::ALL {
            let (h, rows) = head(file, 50);
            let ok = rows
                .iter()
                .filter(|r| parse_csv_row(file, &h, r, &policy).is_ok())
                .count();
            // The data set is clean except for a few deliberately dirty rows.
            assert!(ok >= 45, "{}: {ok} of 50 parsed", file.name());
        }
        let line = std::fs::read_to_string(data("tickets.jsonl")).unwrap();
        let first = line.lines().next().unwrap();
        assert_eq!(parse_jsonl_row(first.as_bytes()), Ok(2));
    }

    #[test]
    fn full_width_identifiers_and_invisible_names_in_a_users_row() {
        // Issue 11 defect 4, through the importer's own parser.
        let policy = policy();
        let (h, rows) = head(CsvFile::Users, 1);
        let row = |col: &str, v: &str| {
            let i = h.iter().position(|c| c == col).unwrap();
            let mut fields: Vec<String> = rows[0].iter().map(str::to_string).collect();
            fields[i] = v.to_string();
            csv::StringRecord::from(fields)
        };
        let wide = "１８７６５１９５７６８";
        assert!(parse_csv_row(CsvFile::Users, &h, &row("mobile", wide), &policy).is_ok());
        let bad = parse_csv_row(
            CsvFile::Users,
            &h,
            &row("mobile", "187\u{200B}65195768"),
            &policy,
        );
        assert_eq!(bad.map_err(|e| e.code), Err("mobile_bad_characters"));
        let blank = parse_csv_row(CsvFile::Users, &h, &row("name", "\u{200B}"), &policy);
        assert_eq!(
            blank.map_err(|e| (e.column, e.code)),
            Err(("name", "value_empty"))
        );
    }

    #[test]
    fn a_ticket_with_a_misspelt_created_at_key_is_kept_with_its_text() {
        // Found by the fuzz target import_jsonl_row (its assertion predated defect 10): a
        // line whose `created_at` key is garbled is a ticket without a creation time.
        let line = r#"{"ticket_id": "t000001", "account_id": "u107424", "created_$t": "2025-07-17T19:36:37Z", "text": "登录时一直收不到验证码"}"#;
        assert_eq!(parse_jsonl_row(line.as_bytes()), Ok(1));
        let bad_time = r#"{"ticket_id": "t1", "account_id": "u107424", "created_at": "2025-13-17", "text": "x"}"#;
        assert_eq!(
            parse_jsonl_row(bad_time.as_bytes()).map_err(|e| e.column),
            Err("created_at")
        );
    }

    #[test]
    fn a_row_with_missing_columns_is_a_reject_not_a_panic() {
        let policy = policy();
        let empty = csv::StringRecord::new();
        for file in CsvFile::ALL {
            let (h, _) = head(file, 0);
            assert!(parse_csv_row(file, &h, &empty, &policy).is_err());
            assert!(parse_csv_row(file, &empty, &empty, &policy).is_err());
        }
    }
}
