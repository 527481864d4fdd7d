//! Unit tests of the importer's parsers.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::reader::*;
use super::records::*;
use crate::values::FieldValue;

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
    assert_eq!(code(&GOOD.replace("谢谢", "\\u202e谢谢")), "text_malformed");
}

#[test]
fn csv_rows_with_control_or_bidi_characters_are_rejected_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(
        &path,
        "account_id,name\r\nu1,陈鹏\r\nu2,陈\u{202E}鹏\r\nu3,\"多行\n地址\"\r\nu4,王\u{7}芳\r\nu5,李\u{200D}娜\r\n",
    )
    .unwrap();
    let mut b = Batches::open(&path, &["account_id", "name"]).unwrap();
    let (rows, rejects) = b.next().unwrap();
    let kept: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(
        kept,
        [2, 4, 7],
        "a line break in a quoted cell and a joiner are kept"
    );
    let bad: Vec<(u64, &str, &str)> = rejects.iter().map(|r| (r.line, r.column, r.code)).collect();
    assert_eq!(
        bad,
        [(3, "name", "text_malformed"), (6, "name", "text_malformed")]
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

#[test]
fn a_ticket_without_created_at_is_kept_and_the_gap_recorded() {
    // Issue 11 defect 10: a missing optional field is no reason to drop the row.
    for line in [
        GOOD.replace(r#""created_at": "2025-12-12T06:16:44Z", "#, ""),
        GOOD.replace(r#""2025-12-12T06:16:44Z""#, "null"),
    ] {
        let r = parse_ticket(4, line.as_bytes()).ok().unwrap();
        let names: Vec<&str> = r.fields.iter().map(|f| f.1).collect();
        assert_eq!(names, ["text"]);
        assert_eq!(r.missing, ["created_at"]);
    }
    assert!(parse_ticket(4, GOOD.as_bytes())
        .ok()
        .unwrap()
        .missing
        .is_empty());
    // Present but malformed is still a reject.
    assert_eq!(
        code(&GOOD.replace(r#""2025-12-12T06:16:44Z""#, "12")),
        "value_wrong_type"
    );
}
