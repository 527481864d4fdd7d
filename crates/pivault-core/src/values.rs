//! Typed field values and their sealed byte form.
//!
//! A plaintext is `[type tag][payload]`, so a value comes back with its type whatever the
//! category says: text (UTF-8), number (canonical decimal text, so amounts never pass through
//! binary floating point), timestamp (unix seconds, UTC), binary (raw bytes).

use base64::Engine as _;
use pivault_domain::policy::ValueType;
pub use serde_json::value::RawValue;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// A field value.
#[derive(Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// UTF-8 text.
    Text(String),
    /// A finite decimal number in canonical text form (e.g. `6130.06`).
    Number(String),
    /// An instant, UTC unix seconds.
    Timestamp(i64),
    /// Raw bytes.
    Binary(Vec<u8>),
}

impl std::fmt::Debug for FieldValue {
    // PI: never print the value itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(s) => write!(f, "Text(<{} bytes>)", s.len()),
            Self::Number(_) => f.write_str("Number(<redacted>)"),
            Self::Timestamp(_) => f.write_str("Timestamp(<redacted>)"),
            Self::Binary(b) => write!(f, "Binary(<{} bytes>)", b.len()),
        }
    }
}

/// Why a value could not be taken; never contains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueError {
    /// Stable code.
    pub code: &'static str,
    /// Human reason.
    pub reason: &'static str,
}

/// Largest accepted text or binary value, in bytes (64 KiB).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

fn wrong_type() -> ValueError {
    ValueError {
        code: "value_wrong_type",
        reason: "value has the wrong JSON type for this category",
    }
}

fn too_long() -> ValueError {
    ValueError {
        code: "value_too_long",
        reason: "value is longer than 64 KiB",
    }
}

/// Checks that `s` is a finite decimal (optional sign, digits, optional fraction, no exponent)
/// and returns it trimmed.
///
/// # Errors
/// `number_malformed`.
pub fn parse_decimal(s: &str) -> Result<String, ValueError> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.len() <= 30
        && frac.len() <= 18
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    if ok {
        Ok(t.to_string())
    } else {
        Err(ValueError {
            code: "number_malformed",
            reason: "not a finite decimal number",
        })
    }
}

/// Parses an RFC 3339 timestamp to unix seconds.
///
/// # Errors
/// `timestamp_malformed`.
pub fn parse_timestamp(s: &str) -> Result<i64, ValueError> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| ValueError {
            code: "timestamp_malformed",
            reason: "not an RFC 3339 timestamp",
        })
}

/// Formats unix seconds as RFC 3339 UTC.
#[must_use]
pub fn format_timestamp(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

impl FieldValue {
    /// Takes a JSON value **as it was sent** (unparsed, so a number keeps every digit) as the
    /// category's declared type. A JSON number literal is taken digit for digit as a decimal
    /// (`9007199254740993.01` stays exactly that; it never passes through `f64`); anything
    /// else is read as in [`FieldValue::from_json`].
    ///
    /// # Errors
    /// `number_malformed` for a number with an exponent or more than 30 integer or 18
    /// fraction digits; `value_wrong_type` for a number given to a non-number category; the
    /// errors of [`FieldValue::from_json`]. Never contains the value.
    pub fn from_raw(v: &RawValue, ty: ValueType) -> Result<Self, ValueError> {
        let t = v.get().trim();
        if t.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return match ty {
                ValueType::Number => parse_decimal(t).map(Self::Number),
                _ => Err(wrong_type()),
            };
        }
        let j: serde_json::Value = serde_json::from_str(t).map_err(|_| {
            if t.starts_with('"') {
                // The body parsed as JSON, so the string's escapes are what failed: an unpaired
                // surrogate (`"\ud800"`) encodes no character at all.
                ValueError {
                    code: "text_malformed",
                    reason: "the string has an escape that encodes no character (an unpaired surrogate)",
                }
            } else {
                wrong_type()
            }
        })?;
        Self::from_json(&j, ty)
    }

    /// Takes a JSON value as the category's declared type.
    ///
    /// Text takes a string; number a JSON number or a decimal string; timestamp an RFC 3339
    /// string; binary a standard base64 string.
    ///
    /// # Errors
    /// A [`ValueError`] naming what is wrong, never the value.
    pub fn from_json(v: &serde_json::Value, ty: ValueType) -> Result<Self, ValueError> {
        use serde_json::Value as J;
        match (ty, v) {
            (ValueType::Text, J::String(s)) => {
                if s.len() > MAX_VALUE_BYTES {
                    return Err(too_long());
                }
                // A value that shows nothing (only white space, zero-width or bidi control
                // characters: a name that is one U+200B) is empty (issue 11 defect 4).
                if pivault_domain::text::is_blank(s) {
                    return Err(ValueError {
                        code: "value_empty",
                        reason: "value is empty or shows no visible character",
                    });
                }
                if s.chars().any(pivault_domain::text::is_forbidden_in_text) {
                    return Err(ValueError {
                        code: "text_malformed",
                        reason: "value has a control, invisible format or bidirectional formatting character",
                    });
                }
                Ok(Self::Text(s.clone()))
            }
            (ValueType::Number, J::Number(n)) => parse_decimal(&n.to_string()).map(Self::Number),
            (ValueType::Number, J::String(s)) => parse_decimal(s).map(Self::Number),
            (ValueType::Timestamp, J::String(s)) => parse_timestamp(s).map(Self::Timestamp),
            (ValueType::Binary, J::String(s)) => {
                let b = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|_| ValueError {
                        code: "binary_malformed",
                        reason: "not standard base64",
                    })?;
                if b.len() > MAX_VALUE_BYTES {
                    return Err(too_long());
                }
                Ok(Self::Binary(b))
            }
            _ => Err(wrong_type()),
        }
    }

    /// JSON form for responses: text as given; a number as a JSON **string** holding the exact
    /// decimal as stored (`"9007199254740993.01"`), because a JSON number is read as an IEEE
    /// 754 double by most clients and would lose digits; timestamp as RFC 3339; binary as
    /// base64.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Text(s) | Self::Number(s) => serde_json::Value::String(s.clone()),
            Self::Timestamp(t) => serde_json::Value::String(format_timestamp(*t)),
            Self::Binary(b) => {
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    /// Wire name of the type.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Number(_) => "number",
            Self::Timestamp(_) => "timestamp",
            Self::Binary(_) => "binary",
        }
    }

    /// Tagged plaintext for sealing.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, &[u8]) = match self {
            Self::Text(s) => (b't', s.as_bytes()),
            Self::Number(n) => (b'n', n.as_bytes()),
            Self::Timestamp(t) => return [&[b's'][..], &t.to_be_bytes()].concat(),
            Self::Binary(b) => (b'b', b),
        };
        let mut v = Vec::with_capacity(1 + body.len());
        v.push(tag);
        v.extend_from_slice(body);
        v
    }

    /// Inverse of [`FieldValue::encode`].
    ///
    /// # Errors
    /// `plaintext_malformed` when the tag or payload is not valid.
    pub fn decode(b: &[u8]) -> Result<Self, ValueError> {
        let bad = ValueError {
            code: "plaintext_malformed",
            reason: "stored plaintext is malformed",
        };
        let (tag, body) = b.split_first().ok_or(bad)?;
        match tag {
            b't' => String::from_utf8(body.to_vec())
                .map(Self::Text)
                .map_err(|_| bad),
            b'n' => String::from_utf8(body.to_vec())
                .map(Self::Number)
                .map_err(|_| bad),
            b's' => <[u8; 8]>::try_from(body)
                .map(|a| Self::Timestamp(i64::from_be_bytes(a)))
                .map_err(|_| bad),
            b'b' => Ok(Self::Binary(body.to_vec())),
            _ => Err(bad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_sealed_form() {
        for v in [
            FieldValue::Text("陈鹏".into()),
            FieldValue::Number("6130.06".into()),
            FieldValue::Timestamp(1_700_000_000),
            FieldValue::Binary(vec![0, 1, 2, 255]),
        ] {
            assert_eq!(FieldValue::decode(&v.encode()).ok(), Some(v));
        }
    }

    #[test]
    fn decimals_reject_exponents_and_garbage() {
        assert!(parse_decimal("1e5").is_err());
        assert!(parse_decimal("12.").is_err());
        assert!(parse_decimal("abc").is_err());
        assert_eq!(
            parse_decimal(" 13881.60 ").ok().as_deref(),
            Some("13881.60")
        );
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn decimals_keep_every_digit_from_json_to_json() {
        // Issue 11 defect 3: 2^53 + 1 and a 30-digit amount went through f64.
        for lit in [
            "9007199254740993.01",
            "123456789012345678901234567890",
            "-0.000000000000000001",
        ] {
            let v = FieldValue::from_raw(&raw(lit), ValueType::Number).unwrap();
            assert_eq!(v, FieldValue::Number(lit.into()));
            assert_eq!(v.to_json(), serde_json::Value::String(lit.into()));
            let s = FieldValue::from_raw(&raw(&format!("\"{lit}\"")), ValueType::Number).unwrap();
            assert_eq!(s, v);
        }
        let e = FieldValue::from_raw(&raw("1e5"), ValueType::Number).unwrap_err();
        assert_eq!(e.code, "number_malformed");
        let e = FieldValue::from_raw(&raw("12"), ValueType::Text).unwrap_err();
        assert_eq!(e.code, "value_wrong_type");
        let e = FieldValue::from_raw(&raw("true"), ValueType::Number).unwrap_err();
        assert_eq!(e.code, "value_wrong_type");
        assert_eq!(
            FieldValue::from_raw(&raw("\"陈鹏\""), ValueType::Text).unwrap(),
            FieldValue::Text("陈鹏".into())
        );
    }

    #[test]
    fn a_text_that_shows_nothing_is_empty() {
        // Issue 11 defect 4: a name that is one U+200B was accepted.
        for blank in [
            "\u{200B}",
            " \u{FEFF}\u{200E} ",
            "\u{202E}\u{2066}\u{00AD}",
            "\u{3000}",
        ] {
            let v = serde_json::Value::String(blank.into());
            assert_eq!(
                FieldValue::from_json(&v, ValueType::Text).map_err(|e| e.code),
                Err("value_empty")
            );
        }
        // Joiners inside real text stay (emoji sequences, Persian names).
        let v = serde_json::Value::String("陈\u{200D}鹏".into());
        assert!(FieldValue::from_json(&v, ValueType::Text).is_ok());
    }

    #[test]
    fn debug_never_prints_the_value() {
        let s = format!("{:?}", FieldValue::Text("15563170669".into()));
        assert!(!s.contains("15563170669"));
    }
}

/// A record or field name, or a principal name: 1-128 characters of `A-Z a-z 0-9 _ . : -`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Refuses a name of a thing (a record or field name, a principal, a consent's `event_ref`, a
/// legal hold's reference) that holds a person's identifier: a mobile or resident ID number,
/// however its digits are grouped (`_ . : / -` join groups here, as they do in case numbers).
/// These names are stored in clear and written into audit entries, which erasure never
/// reaches (GB/T 35273 §6.3; policy §8).
///
/// # Errors
/// `Invalid` (`text_holds_pi`) on `field`; the message never quotes the value.
pub(crate) fn refuse_pi_in_name(field: &str, s: &str) -> Result<(), crate::CoreError> {
    // Neither a mobile (11 digits) nor an ID number (17 digits and a check character) fits
    // in fewer than 11 digits: most names are passed on this count alone.
    if s.bytes().filter(u8::is_ascii_digit).count() < 11 {
        return Ok(());
    }
    if crate::incidents::holds_pi(&s.replace(['_', '.', ':', '/'], "-")) {
        return Err(crate::CoreError::invalid(
            field,
            "text_holds_pi",
            "it names a thing, never a person: no mobile or ID numbers (it is stored in clear and audited)",
        ));
    }
    Ok(())
}

/// The string a raw JSON value holds, if it is a JSON string.
pub(crate) fn raw_str(v: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(v.get()).ok()
}

/// A calendar date as `YYYY-MM-DD` (surrounding spaces ignored).
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &fmt).ok()
}

/// One field to write: a category-tagged value.
#[derive(Debug, Clone)]
pub struct FieldInput {
    /// Category key from the policy.
    pub category: String,
    /// Field name within the record; defaults to the category key.
    pub name: Option<String>,
    /// Record within the subject; defaults to `profile`.
    pub record: Option<String>,
    /// The value as sent (unparsed JSON, so numbers keep every digit), interpreted by the
    /// category's value type ([`FieldValue::from_raw`]).
    pub value: Box<RawValue>,
}

/// One field returned by a read.
#[derive(Debug, Clone)]
pub struct FieldOutput {
    /// Record.
    pub record: String,
    /// Field name.
    pub name: String,
    /// Category key.
    pub category: String,
    /// Decrypted value.
    pub value: FieldValue,
    /// Unix seconds until which a restricted field is retained, if restricted.
    pub restricted_until: Option<i64>,
}

/// The code of a sealed field that failed authentication when opened (the AEAD tag did not
/// verify under its DEK and associated data, its key id is not its subject's, or the opened
/// bytes are not a value): reported in place of the value, never with it.
pub const FIELD_INTEGRITY_FAILED: &str = "field_integrity_failed";

/// A field that could not be released because its ciphertext failed authentication (e.g. a
/// ciphertext moved from another field: the associated data binds subject, category, field and
/// key id, NIST SP 800-38D §5.2.2). The other fields are still released; each failure is
/// audited (`field.integrity_failed`) and counted (`pivault_field_integrity_failures_total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedField {
    /// Record.
    pub record: String,
    /// Field name.
    pub name: String,
    /// Category key.
    pub category: String,
    /// Always [`FIELD_INTEGRITY_FAILED`].
    pub code: &'static str,
}
