//! Identifier normalization and the other input checks: every `IdentifierKind::normalize`,
//! the typed parsers, NFKC folding, blank detection, names, decimals, timestamps and text
//! values.
//!
//! Asserts: never panics; a normalized identifier is ASCII, non-empty and a fixed point
//! (normalizing it again returns it); NFKC is idempotent; a name that `valid_name` accepts is
//! ASCII; an accepted decimal parses again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pivault_core::values::{parse_decimal, parse_timestamp, valid_name, FieldValue};
use pivault_domain::identifiers::{IdCardNumber, IdentifierKind, Mobile};
use pivault_domain::policy::ValueType;
use pivault_domain::text::{is_blank, nfkc};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for kind in IdentifierKind::ALL {
        if let Ok(once) = kind.normalize(s) {
            assert!(once.is_ascii() && !once.is_empty(), "{kind}");
            assert_eq!(
                kind.normalize(&once).as_deref(),
                Ok(once.as_str()),
                "{kind}"
            );
        }
    }
    if let Ok(m) = Mobile::parse(s) {
        assert!(m.e164().starts_with('+'));
    }
    if let Ok(id) = IdCardNumber::parse(s) {
        assert_eq!(id.as_str().len(), 18);
    }
    let folded = nfkc(s);
    assert_eq!(nfkc(&folded), folded);
    let _ = is_blank(s);
    if valid_name(s) {
        assert!(s.is_ascii());
    }
    if let Ok(d) = parse_decimal(s) {
        assert_eq!(parse_decimal(&d), Ok(d.clone()));
    }
    let _ = parse_timestamp(s);
    let v = serde_json::Value::String(s.to_owned());
    for ty in [
        ValueType::Text,
        ValueType::Number,
        ValueType::Timestamp,
        ValueType::Binary,
    ] {
        if let Ok(fv) = FieldValue::from_json(&v, ty) {
            assert_eq!(FieldValue::decode(&fv.encode()), Ok(fv.clone()));
        }
    }
});
