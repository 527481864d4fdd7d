//! Identifiers of PI subjects: parse, don't validate.
//!
//! Owns the newtypes for the four identifier kinds that get a blind index
//! ([`AccountId`], [`Mobile`], [`Email`], [`IdCardNumber`]) and the one
//! normalisation used for blind indexing ([`IdentifierKind::normalize`]).
//!
//! Invariants:
//! - A value of any of these types is valid and in canonical form; the only
//!   way to build one is its `parse`. Two spellings of one identifier
//!   (`+86 155-6317-0669`, `15563170669`) parse to equal values, so their blind
//!   index entries are equal.
//! - Normalisation is idempotent: parsing a canonical form returns it unchanged.
//! - Every `parse` first folds its input to Unicode NFKC ([`crate::text::nfkc`]), so the
//!   full-width digits and letters that Chinese input methods type (`１５５６３１７０６６９`)
//!   parse to the ASCII identifier. Zero-width and bidi control characters survive
//!   folding and are refused by each kind's character check.
//! - Parsing never panics, on any input.
//! - Nothing here leaks the value: [`InvalidValue`] carries only a stable code and
//!   a fixed reason, and `Debug` of every newtype prints `<redacted>`. The value is
//!   reached only through an explicit accessor (`e164`, `as_str`).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::text::nfkc;

/// Why a value was rejected.
///
/// `code` is stable and machine-readable (`mobile_too_short`, …); `reason` is a
/// fixed English sentence. NEVER contains the value itself (it's PI), so it is
/// safe in logs, error bodies and metrics labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidValue {
    /// Stable code, `snake_case`, prefixed with the identifier kind.
    pub code: &'static str,
    /// Fixed human-readable reason; contains no part of the input.
    pub reason: &'static str,
}

const fn invalid(code: &'static str, reason: &'static str) -> InvalidValue {
    InvalidValue { code, reason }
}

/// Writes `Name(<redacted>)`: identifier values are PI and must not reach logs
/// through `{:?}`.
macro_rules! redacted_debug {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($ty), "(<redacted>)"))
            }
        }
    };
}

/// String conversions shared by the newtypes: `TryFrom<String>`/`TryFrom<&str>`
/// through `parse`, `From<T> for String`, and serde via those (so a
/// deserialised value is always parsed).
macro_rules! string_newtype {
    ($ty:ident) => {
        redacted_debug!($ty);

        impl TryFrom<&str> for $ty {
            type Error = InvalidValue;
            fn try_from(raw: &str) -> Result<Self, InvalidValue> {
                Self::parse(raw)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidValue;
            fn try_from(raw: String) -> Result<Self, InvalidValue> {
                Self::parse(&raw)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Mobile

/// A mobile phone number in ITU-T E.164 form: `+`, country code, subscriber
/// number, 8–15 digits in all, no separators (e.g. `+8615563170669`).
///
/// Mainland China numbers are always `+86` followed by 11 digits matching
/// `1[3-9]\d{9}` (MIIT numbering plan for mobile networks).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);
string_newtype!(Mobile);

/// Characters people put between digits; dropped before anything else.
fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')') || c.is_whitespace()
}

fn is_mainland_mobile(national: &str) -> bool {
    let b = national.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// Checks a national significant number after `+86` (or with no prefix at all).
fn mainland(national: &str) -> Result<Mobile, InvalidValue> {
    match national.len() {
        0..=10 => Err(invalid(
            "mobile_too_short",
            "a mainland China mobile number has 11 digits",
        )),
        11 if is_mainland_mobile(national) => Ok(Mobile(format!("+86{national}"))),
        11 => Err(invalid(
            "mobile_bad_prefix",
            "a mainland China mobile number starts with 13 to 19",
        )),
        _ => Err(invalid(
            "mobile_too_long",
            "a mainland China mobile number has 11 digits",
        )),
    }
}

impl Mobile {
    /// Parses a phone number as people type it and normalises it to E.164.
    ///
    /// The input is folded to NFKC first (full-width `１５５…` is `155…`). Spaces, `-`, `.`,
    /// `(` and `)` are ignored. Accepted shapes (after that):
    /// - `1[3-9]` + 9 digits: a mainland mobile, becomes `+86…`;
    /// - `+86`, `0086` or `86` + such 11 digits: the same number;
    /// - `+<country code><number>` or `00<country code><number>` (`00` is the
    ///   international call prefix dialled from China), 8–15 digits in all, country
    ///   code not starting with 0: any other E.164 number (ITU-T E.164 §6).
    ///
    /// ```
    /// use pivault_domain::identifiers::Mobile;
    /// for raw in ["+86 155-6317-0669", "(+86)15563170669", "155 6317 0669", "008615563170669"] {
    ///     assert_eq!(Mobile::parse(raw).unwrap().e164(), "+8615563170669");
    /// }
    /// assert_eq!(Mobile::parse("+65 6123 4567").unwrap().e164(), "+6561234567");
    /// assert_eq!(Mobile::parse("１５６９８６９４１１１").unwrap().e164(), "+8615698694111");
    /// assert!(Mobile::parse("155\u{200B}63170669").is_err());
    /// ```
    ///
    /// # Errors
    /// [`InvalidValue`] with code `mobile_bad_characters` (anything but digits,
    /// separators and one leading `+`, after NFKC: zero-width and bidi control characters
    /// are refused here), `mobile_too_short`, `mobile_too_long`, or
    /// `mobile_bad_prefix` (a mainland number not starting with 13–19, or a country
    /// code starting with 0).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let compact: String = nfkc(raw)
            .chars()
            .filter(|&c| !is_phone_separator(c))
            .collect();
        let (international, digits) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => match compact.strip_prefix("00") {
                Some(rest) => (true, rest),
                None => (false, compact.as_str()),
            },
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "mobile_bad_characters",
                "a mobile number holds only digits, an optional leading '+' and separators",
            ));
        }
        if digits.is_empty() {
            return Err(invalid("mobile_too_short", "the mobile number is empty"));
        }
        if international {
            if let Some(national) = digits.strip_prefix("86") {
                return mainland(national);
            }
            if digits.starts_with('0') {
                return Err(invalid(
                    "mobile_bad_prefix",
                    "an E.164 country code does not start with 0",
                ));
            }
            return match digits.len() {
                0..=7 => Err(invalid(
                    "mobile_too_short",
                    "an international number has at least 8 digits",
                )),
                8..=15 => Ok(Mobile(format!("+{digits}"))),
                _ => Err(invalid(
                    "mobile_too_long",
                    "an E.164 number has at most 15 digits",
                )),
            };
        }
        // No international prefix: a mainland number, maybe with the country
        // code typed without '+' (13 digits, "86" + 11).
        if digits.len() == 13 {
            if let Some(national) = digits.strip_prefix("86") {
                return mainland(national);
            }
        }
        mainland(digits)
    }

    /// The number in E.164 form, e.g. `+8615563170669`. This is PI.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// Whether this is a mainland China number (`+86`).
    pub fn is_mainland(&self) -> bool {
        self.0.starts_with("+86")
    }
}

// ---------------------------------------------------------------------------
// Email

/// An e-mail address, trimmed and lower-cased, e.g. `mchang@example.net`.
///
/// The whole address is lower-cased, local part included. RFC 5321 §2.4 lets a
/// server treat local parts case-sensitively, but the mail providers this
/// service's users have (QQ, 163/126, Sina, Aliyun, Gmail, Outlook…) all treat
/// them case-insensitively, and users type them in any case (3% of the seed data
/// carry odd case). One blind-index key per mailbox matters more than the
/// theoretical distinction.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_newtype!(Email);

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle
/// brackets, so an address is at most 254.
const EMAIL_MAX: usize = 254;
/// RFC 5321 §4.5.3.1.1.
const LOCAL_PART_MAX: usize = 64;
/// RFC 1035 §2.3.4.
const LABEL_MAX: usize = 63;

/// `atext` of RFC 5322 §3.2.3 (the dot-atom form; quoted local parts are not
/// accepted: no mainstream provider issues them).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(is_atext))
}

/// A DNS host name in A-label form (RFC 1035 §2.3.1, RFC 5890): at least two
/// labels of letters, digits and inner hyphens; the last not all digits.
fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= LABEL_MAX
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

impl Email {
    /// Parses an address: folds it to NFKC (full-width `ＭＦ＠…` is `MF@…`), trims
    /// surrounding whitespace, lower-cases it, checks its shape.
    ///
    /// Shape: exactly one `@`; a non-empty dot-atom local part (RFC 5322 §3.2.3) of
    /// at most 64 octets; a domain of at least two DNS labels in ASCII (IDNs in
    /// punycode); at most 254 octets in all (RFC 5321 §4.5.3.1).
    ///
    /// ```
    /// use pivault_domain::identifiers::Email;
    /// assert_eq!(Email::parse(" MingFan@Example.NET ").unwrap().as_str(), "mingfan@example.net");
    /// assert_eq!(Email::parse("no-at-sign").unwrap_err().code, "email_malformed");
    /// ```
    ///
    /// # Errors
    /// [`InvalidValue`] with code `email_too_long` (over 254 octets, or a local
    /// part over 64) or `email_malformed` (anything else).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        const MALFORMED: InvalidValue = invalid(
            "email_malformed",
            "an e-mail address is local-part@domain.tld in ASCII",
        );
        let folded = nfkc(raw);
        let trimmed = folded.trim();
        if trimmed.len() > EMAIL_MAX {
            return Err(invalid(
                "email_too_long",
                "an e-mail address is at most 254 characters",
            ));
        }
        let (local, domain) = trimmed.split_once('@').ok_or(MALFORMED)?;
        if local.len() > LOCAL_PART_MAX {
            return Err(invalid(
                "email_too_long",
                "the part before '@' is at most 64 characters",
            ));
        }
        if !is_dot_atom(local) || !is_domain(domain) {
            // Also catches a second '@', which is not atext nor a label char.
            return Err(MALFORMED);
        }
        Ok(Email(trimmed.to_ascii_lowercase()))
    }

    /// The address, lower-cased. This is PI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

// ---------------------------------------------------------------------------
// ID card

/// A PRC resident identity card number (GB 11643-1999 citizen identification
/// number): 17 digits and a check character, the check character `X` upper-case,
/// e.g. `11010519491231002X`.
///
/// Positions 1–6 are the administrative division code (GB/T 2260; not checked
/// against the table, which changes yearly), 7–14 the birth date `YYYYMMDD`,
/// 15–17 a sequence number (odd for men), 18 the ISO 7064 MOD 11-2 check.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdCardNumber(String, Date);

impl fmt::Debug for IdCardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdCardNumber(<redacted>)")
    }
}

impl TryFrom<&str> for IdCardNumber {
    type Error = InvalidValue;
    fn try_from(raw: &str) -> Result<Self, InvalidValue> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for IdCardNumber {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl From<IdCardNumber> for String {
    fn from(value: IdCardNumber) -> String {
        value.0
    }
}

/// GB 11643-1999 §6.2 weights, 2^(17-i) mod 11 for positions 1..=17.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const ID_CHECK: &[u8; 11] = b"10X98765432";
/// Earliest plausible birth year; guards against digit-shift typos.
const ID_MIN_YEAR: i32 = 1800;

impl IdCardNumber {
    /// Parses an 18-character ID-card number, folding it to NFKC (full-width digits and
    /// `Ｘ`), trimming surrounding whitespace and upper-casing a final `x`.
    ///
    /// Checks, in this order: length (GB 11643-1999 §4), characters (17 digits then
    /// a digit or `X`), the ISO 7064 MOD 11-2 check character (weights
    /// 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2; sum mod 11 indexes `10X98765432`), and
    /// that positions 7–14 are a real calendar date from year 1800 on. The
    /// 15-digit first-generation numbers (expired since 2013) are not accepted.
    ///
    /// ```
    /// use pivault_domain::identifiers::IdCardNumber;
    /// let id = IdCardNumber::parse("11010519491231002x").unwrap();
    /// assert_eq!(id.as_str(), "11010519491231002X");
    /// assert_eq!(id.birth_date().to_string(), "1949-12-31");
    /// ```
    ///
    /// # Errors
    /// [`InvalidValue`] with code `id_card_length`, `id_card_bad_characters`,
    /// `id_card_check_digit` or `id_card_birth_date`.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let folded = nfkc(raw);
        let trimmed = folded.trim();
        if trimmed.chars().count() != 18 {
            return Err(invalid(
                "id_card_length",
                "an ID-card number has 18 characters",
            ));
        }
        let mut bytes = trimmed.as_bytes().to_vec();
        // 18 chars and 18 bytes: ASCII is checked next, byte for byte.
        if bytes.len() != 18
            || !bytes[..17].iter().all(u8::is_ascii_digit)
            || !(bytes[17].is_ascii_digit() || bytes[17] == b'X' || bytes[17] == b'x')
        {
            return Err(invalid(
                "id_card_bad_characters",
                "an ID-card number is 17 digits followed by a digit or X",
            ));
        }
        bytes[17] = bytes[17].to_ascii_uppercase();
        let sum: u32 = bytes[..17]
            .iter()
            .zip(ID_WEIGHTS)
            .map(|(&d, w)| u32::from(d - b'0') * w)
            .sum();
        if ID_CHECK[(sum % 11) as usize] != bytes[17] {
            return Err(invalid(
                "id_card_check_digit",
                "the ID-card check character does not match (GB 11643-1999)",
            ));
        }
        let birth = birth_date_of(&bytes[6..14]).ok_or(invalid(
            "id_card_birth_date",
            "positions 7-14 of an ID-card number are not a valid birth date",
        ))?;
        // Every byte is ASCII, so this is valid UTF-8.
        let canonical = String::from_utf8(bytes).map_err(|_| {
            invalid(
                "id_card_bad_characters",
                "an ID-card number is 17 digits followed by a digit or X",
            )
        })?;
        Ok(IdCardNumber(canonical, birth))
    }

    /// The 18-character number with an upper-case check character. This is PI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The birth date encoded in positions 7–14 (GB 11643-1999 §5.2). This is PI.
    pub fn birth_date(&self) -> Date {
        self.1
    }
}

/// `YYYYMMDD` (8 ASCII digits) → a calendar date from [`ID_MIN_YEAR`] on.
fn birth_date_of(digits: &[u8]) -> Option<Date> {
    let num = |range: std::ops::Range<usize>| -> u32 {
        digits[range]
            .iter()
            .fold(0, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(num(0..4)).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)).ok()?).ok()?;
    let day = u8::try_from(num(6..8)).ok()?;
    if year < ID_MIN_YEAR {
        return None;
    }
    Date::from_calendar_date(year, month, day).ok()
}

// ---------------------------------------------------------------------------
// Account id

/// An account id of the provider's user directory, e.g. `u100000`: 1–64
/// characters of `[A-Za-z0-9_.-]`, case preserved (ids are issued by the
/// system, not typed by people).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);
string_newtype!(AccountId);

/// Longest account id accepted.
const ACCOUNT_ID_MAX: usize = 64;

impl AccountId {
    /// Parses an account id, folding it to NFKC and trimming surrounding whitespace.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `account_id_malformed` when empty, longer than 64
    /// characters, or holding anything but ASCII letters, digits, `_`, `.`, `-`.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let folded = nfkc(raw);
        let trimmed = folded.trim();
        let ok = !trimmed.is_empty()
            && trimmed.len() <= ACCOUNT_ID_MAX
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(AccountId(trimmed.to_owned()))
        } else {
            Err(invalid(
                "account_id_malformed",
                "an account id is 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-'",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------
// Kinds

/// The identifier kinds that get a blind index (exact lookup without
/// decrypting). A policy category names at most one of these in its
/// `identifier` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// [`AccountId`], `account_id`.
    AccountId,
    /// [`Mobile`], `mobile`.
    Mobile,
    /// [`Email`], `email`.
    Email,
    /// [`IdCardNumber`], `id_card`.
    IdCard,
    /// A minor's guardian's [`Mobile`], `guardian_mobile`: a mobile of its own kind, so the
    /// guardian's number finds the minors they act for (policy §IX; PIPL Art. 31) and never
    /// the guardian's own account.
    GuardianMobile,
}

impl IdentifierKind {
    /// Every kind, in declaration order.
    pub const ALL: [IdentifierKind; 5] = [
        IdentifierKind::AccountId,
        IdentifierKind::Mobile,
        IdentifierKind::Email,
        IdentifierKind::IdCard,
        IdentifierKind::GuardianMobile,
    ];

    /// The stable name: `account_id`, `mobile`, `email`, `id_card` or `guardian_mobile` (as in
    /// policy files, URLs and blind-index rows).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::AccountId => "account_id",
            IdentifierKind::Mobile => "mobile",
            IdentifierKind::Email => "email",
            IdentifierKind::IdCard => "id_card",
            IdentifierKind::GuardianMobile => "guardian_mobile",
        }
    }

    /// The kind named `s` (exactly as [`as_str`](Self::as_str) spells it), if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Normalises `raw` to the canonical string fed to the blind index: NFKC first (so a
    /// full-width spelling finds the ASCII one), then E.164 for
    /// mobiles (a guardian's too), trimmed lower-case for e-mail, upper-case check character for ID
    /// cards, trimmed for account ids. Idempotent.
    ///
    /// ```
    /// use pivault_domain::identifiers::IdentifierKind;
    /// assert_eq!(IdentifierKind::Mobile.normalize("155 6317 0669").unwrap(), "+8615563170669");
    /// ```
    ///
    /// # Errors
    /// The [`InvalidValue`] of the kind's `parse`.
    pub fn normalize(self, raw: &str) -> Result<String, InvalidValue> {
        Ok(match self {
            IdentifierKind::AccountId => AccountId::parse(raw)?.0,
            IdentifierKind::Mobile | IdentifierKind::GuardianMobile => Mobile::parse(raw)?.0,
            IdentifierKind::Email => Email::parse(raw)?.0,
            IdentifierKind::IdCard => IdCardNumber::parse(raw)?.0,
        })
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
