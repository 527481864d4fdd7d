//! Web access logs (policy §2.1.2): parse nginx "combined" lines, link a line to the
//! account it belongs to, and anonymize it for long-term keeping.
//!
//! Rules this module implements:
//! - **Policy §2.1.2** lists what the web log holds: "the content of your search query, IP
//!   address, browser type, … date and time of access, and the history of the web pages you
//!   visit". §2.1.3: combined with other information it is personal information. §VI and
//!   §8.2: when no longer needed, PI is deleted or anonymized.
//! - **Cybersecurity Law Art. 21(3)**: network operators keep web logs for *no less than six
//!   months*. Keeping them longer than needed for a purpose is only lawful once they are no
//!   longer personal information.
//! - **PIPL Art. 73(4)**: anonymization is processing after which the information *cannot
//!   identify a specific natural person and cannot be restored*. Anonymized information is
//!   not personal information (PIPL Art. 4). [`anonymize`] therefore keeps no identifier
//!   (address, account, referer, exact time, PI in the URL), only coarse groups; whether the
//!   groups are large enough is measured with [`crate::anonymize::k_anonymity`].
//!
//! Invariants: nothing here panics on input or does IO. [`WebLogReject`] (and its `Display`
//! and `Debug`) never holds any part of the line, which is PI.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

use crate::identifiers::{AccountId, Email, IdCardNumber, Mobile};
use crate::text::nfkc;

/// Longest line [`parse_combined`] accepts: 16 KiB (16,384 bytes, not counting a trailing
/// `\n`/`\r\n`). nginx's own request-line limit (`large_client_header_buffers`, 8 KiB by
/// default) keeps real lines well below it.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// One line of an nginx access log in the `combined` format (policy §2.1.2 web log).
///
/// Every field is PI or may be (the address, the account, the searched text in `target`,
/// the referer), so this type lives only between reading a log and [`anonymize`] or
/// [`linked_account`]; do not log its `Debug` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLogLine {
    /// `$remote_addr`: the client address (IPv4 or IPv6).
    pub client: IpAddr,
    /// `$remote_user` (HTTP basic-auth user, or the account an upstream put there); `None`
    /// for `-`.
    pub remote_user: Option<String>,
    /// `$time_local` converted to UTC: unix seconds.
    pub at: i64,
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target as logged: path and query, still percent-encoded.
    pub target: String,
    /// Protocol, e.g. `HTTP/1.1`.
    pub protocol: String,
    /// `$status`: 100–599.
    pub status: u16,
    /// `$body_bytes_sent` (Apache's `-` for none reads as 0).
    pub bytes: u64,
    /// `$http_referer`; `None` for `-` or empty.
    pub referer: Option<String>,
    /// `$http_user_agent`; empty for `-`.
    pub user_agent: String,
}

/// Why [`parse_combined`] refused a line. A closed set; [`code`](Self::code) is stable.
///
/// Carries no part of the line (it is PI), so it is safe in logs, reject files and
/// metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebLogReject {
    /// `empty`: nothing but white space.
    Empty,
    /// `too_long`: longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// `bad_address`: `$remote_addr` is not an IPv4 or IPv6 address.
    BadAddress,
    /// `bad_layout`: a separator of the format (` - `, ` [`, `] `, `"`, a space between
    /// fields) is not where the format puts it.
    BadLayout,
    /// `truncated`: the line ends before a field or separator it needs.
    Truncated,
    /// `bad_time`: `$time_local` is not `dd/Mon/yyyy:HH:MM:SS ±hhmm` naming a real instant.
    BadTime,
    /// `unterminated_quote`: a quoted field has no closing `"`.
    UnterminatedQuote,
    /// `bad_request_line`: `$request` is not `METHOD target HTTP/x` (nginx logs garbage,
    /// e.g. a TLS handshake sent to a plain port, as is).
    BadRequestLine,
    /// `bad_status`: `$status` is not three digits from 100 to 599.
    BadStatus,
    /// `bad_bytes`: `$body_bytes_sent` is not a decimal `u64` (or `-`).
    BadBytes,
    /// `trailing_data`: something follows the user agent.
    TrailingData,
}

impl WebLogReject {
    /// Every reason, in declaration order.
    pub const ALL: [WebLogReject; 11] = [
        WebLogReject::Empty,
        WebLogReject::TooLong,
        WebLogReject::BadAddress,
        WebLogReject::BadLayout,
        WebLogReject::Truncated,
        WebLogReject::BadTime,
        WebLogReject::UnterminatedQuote,
        WebLogReject::BadRequestLine,
        WebLogReject::BadStatus,
        WebLogReject::BadBytes,
        WebLogReject::TrailingData,
    ];

    /// The stable `snake_case` reason: `empty`, `too_long`, `bad_address`, `bad_layout`,
    /// `truncated`, `bad_time`, `unterminated_quote`, `bad_request_line`, `bad_status`,
    /// `bad_bytes` or `trailing_data`.
    pub fn code(self) -> &'static str {
        match self {
            WebLogReject::Empty => "empty",
            WebLogReject::TooLong => "too_long",
            WebLogReject::BadAddress => "bad_address",
            WebLogReject::BadLayout => "bad_layout",
            WebLogReject::Truncated => "truncated",
            WebLogReject::BadTime => "bad_time",
            WebLogReject::UnterminatedQuote => "unterminated_quote",
            WebLogReject::BadRequestLine => "bad_request_line",
            WebLogReject::BadStatus => "bad_status",
            WebLogReject::BadBytes => "bad_bytes",
            WebLogReject::TrailingData => "trailing_data",
        }
    }

    /// A fixed English sentence for the reason (no part of the line).
    pub fn reason(self) -> &'static str {
        match self {
            WebLogReject::Empty => "the line is empty",
            WebLogReject::TooLong => "the line is longer than 16 KiB",
            WebLogReject::BadAddress => "the client address is not an IP address",
            WebLogReject::BadLayout => "the line does not have the nginx combined layout",
            WebLogReject::Truncated => "the line ends before its last field",
            WebLogReject::BadTime => "the time is not dd/Mon/yyyy:HH:MM:SS +hhmm",
            WebLogReject::UnterminatedQuote => "a quoted field has no closing quote",
            WebLogReject::BadRequestLine => "the request is not METHOD target HTTP/x",
            WebLogReject::BadStatus => "the status is not a number from 100 to 599",
            WebLogReject::BadBytes => "the byte count is not a number",
            WebLogReject::TrailingData => "something follows the user agent",
        }
    }
}

impl fmt::Display for WebLogReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for WebLogReject {}

// ---------------------------------------------------------------------------
// Parsing

/// A position in the line being parsed.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// Consumes `lit`: [`WebLogReject::Truncated`] if the line ends first,
    /// [`WebLogReject::BadLayout`] if something else is there.
    fn expect(&mut self, lit: &str) -> Result<(), WebLogReject> {
        if let Some(after) = self.rest.strip_prefix(lit) {
            self.rest = after;
            Ok(())
        } else if lit.starts_with(self.rest) {
            Err(WebLogReject::Truncated)
        } else {
            Err(WebLogReject::BadLayout)
        }
    }

    /// Everything up to (not including) `sep`, consumed with `sep`; `None` (nothing
    /// consumed) if `sep` does not occur.
    fn until(&mut self, sep: &str) -> Option<&'a str> {
        let at = self.rest.find(sep)?;
        let field = &self.rest[..at];
        self.rest = &self.rest[at + sep.len()..];
        Some(field)
    }

    /// An unquoted field: everything up to the next space (or the end), not consuming the
    /// space.
    fn token(&mut self) -> &'a str {
        let at = self.rest.find(' ').unwrap_or(self.rest.len());
        let field = &self.rest[..at];
        self.rest = &self.rest[at..];
        field
    }

    /// A `"…"` field, with nginx's (`\xHH`) and Apache's (`\"`, `\\`) escapes decoded.
    /// Bytes that do not decode to UTF-8 become U+FFFD.
    fn quoted(&mut self) -> Result<String, WebLogReject> {
        self.expect("\"")?;
        let bytes = self.rest.as_bytes();
        let mut out = Vec::with_capacity(bytes.len().min(256));
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => match bytes.get(i + 1) {
                    None => return Err(WebLogReject::UnterminatedQuote),
                    Some(b'"') => {
                        out.push(b'"');
                        i += 2;
                    }
                    Some(b'\\') => {
                        out.push(b'\\');
                        i += 2;
                    }
                    Some(b'x') => match (
                        bytes.get(i + 2).copied().and_then(hex_value),
                        bytes.get(i + 3).copied().and_then(hex_value),
                    ) {
                        (Some(hi), Some(lo)) => {
                            out.push((hi << 4) | lo);
                            i += 4;
                        }
                        _ => {
                            out.push(b'\\');
                            i += 1;
                        }
                    },
                    Some(_) => {
                        out.push(b'\\');
                        i += 1;
                    }
                },
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        Err(WebLogReject::UnterminatedQuote)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `n` ASCII digits of `b` as a number; `None` unless all are digits.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, &d| acc * 10 + u32::from(d - b'0')))
}

fn month_of(b: &[u8]) -> Option<Month> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let i = NAMES.iter().position(|n| n.eq_ignore_ascii_case(b))?;
    Month::try_from(u8::try_from(i + 1).ok()?).ok()
}

/// `$time_local`, `dd/Mon/yyyy:HH:MM:SS ±hhmm` (e.g. `02/Oct/2026:04:24:02 +0800`), as unix
/// seconds UTC. Month names in English, any case. `None` unless it names a real instant.
fn parse_time_local(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return None;
    }
    let day = u8::try_from(digits(&b[0..2])?).ok()?;
    let month = month_of(&b[3..6])?;
    let year = i32::try_from(digits(&b[7..11])?).ok()?;
    let hour = u8::try_from(digits(&b[12..14])?).ok()?;
    let minute = u8::try_from(digits(&b[15..17])?).ok()?;
    let second = u8::try_from(digits(&b[18..20])?).ok()?;
    let sign: i8 = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off_h = i8::try_from(digits(&b[22..24])?).ok()?;
    let off_m = i8::try_from(digits(&b[24..26])?).ok()?;
    if off_m >= 60 {
        return None;
    }
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    let offset = UtcOffset::from_hms(sign * off_h, sign * off_m, 0).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp(),
    )
}

/// `tchar` of RFC 9110 §5.6.2: the characters of a method token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `$request`: `METHOD target HTTP/x`, exactly three parts separated by single spaces.
fn parse_request(request: &str) -> Option<(String, String, String)> {
    let mut parts = request.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let protocol = parts.next()?;
    let ok = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(is_tchar)
        && !target.is_empty()
        && !target.chars().any(char::is_control)
        && protocol.len() > 5
        && protocol.starts_with("HTTP/")
        && protocol[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| (method.to_owned(), target.to_owned(), protocol.to_owned()))
}

/// Parses one line of nginx's `combined` log format:
///
/// ```text
/// $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
/// ```
///
/// `-` stands for an absent `$remote_user` or referer (and an empty user agent). The time,
/// `dd/Mon/yyyy:HH:MM:SS ±hhmm`, may carry any offset and is converted to UTC unix seconds.
/// Quoted fields may hold `\"` and `\\` (Apache) or `\xHH` (nginx) escapes, which are
/// decoded. One trailing `\n`, `\r\n` or `\r` is ignored. A remote user may not contain
/// ` [`.
///
/// ```
/// use pivault_domain::weblog::parse_combined;
/// let line = parse_combined(
///     r#"29.46.159.63 - u106057 [02/Oct/2026:12:24:02 +0800] "GET /pricing HTTP/1.1" 200 23029 "-" "curl/8.5.0""#,
/// ).unwrap();
/// assert_eq!(line.at, 1_790_915_042); // 2026-10-02T04:24:02Z
/// assert_eq!(line.remote_user.as_deref(), Some("u106057"));
/// assert_eq!(line.target, "/pricing");
/// ```
///
/// # Errors
/// A [`WebLogReject`]: `too_long` (over [`MAX_LINE_BYTES`]), `empty`, `bad_address`,
/// `bad_layout`, `truncated`, `bad_time`, `unterminated_quote`, `bad_request_line`,
/// `bad_status`, `bad_bytes`, `trailing_data`. It holds no part of the line.
pub fn parse_combined(line: &str) -> Result<WebLogLine, WebLogReject> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > MAX_LINE_BYTES {
        return Err(WebLogReject::TooLong);
    }
    if line.trim().is_empty() {
        return Err(WebLogReject::Empty);
    }
    let mut c = Cursor { rest: line };

    let addr = c.token();
    let client: IpAddr = addr.parse().map_err(|_| WebLogReject::BadAddress)?;
    c.expect(" - ")?;
    let user = c.until(" [").ok_or(WebLogReject::Truncated)?;
    let remote_user = (!user.is_empty() && user != "-").then(|| user.to_owned());
    let time = c.until("]").ok_or(if c.rest.contains('"') {
        WebLogReject::BadLayout
    } else {
        WebLogReject::Truncated
    })?;
    c.expect(" ")?;
    let at = parse_time_local(time).ok_or(WebLogReject::BadTime)?;
    let request = c.quoted()?;
    let (method, target, protocol) = parse_request(&request).ok_or(WebLogReject::BadRequestLine)?;
    c.expect(" ")?;
    let status = c.token();
    if status.is_empty() && c.rest.is_empty() {
        return Err(WebLogReject::Truncated);
    }
    let status = match digits(status.as_bytes()) {
        Some(s @ 100..=599) if status.len() == 3 => s as u16,
        _ => return Err(WebLogReject::BadStatus),
    };
    c.expect(" ")?;
    let bytes = c.token();
    if bytes.is_empty() && c.rest.is_empty() {
        return Err(WebLogReject::Truncated);
    }
    let bytes = if bytes == "-" {
        0
    } else if !bytes.is_empty() && bytes.bytes().all(|b| b.is_ascii_digit()) {
        bytes.parse::<u64>().map_err(|_| WebLogReject::BadBytes)?
    } else {
        return Err(WebLogReject::BadBytes);
    };
    c.expect(" ")?;
    let referer = c.quoted()?;
    let referer = (!referer.is_empty() && referer != "-").then_some(referer);
    c.expect(" ")?;
    let mut user_agent = c.quoted()?;
    if user_agent == "-" {
        user_agent.clear();
    }
    if !c.rest.trim_end_matches([' ', '\t']).is_empty() {
        return Err(WebLogReject::TrailingData);
    }
    Ok(WebLogLine {
        client,
        remote_user,
        at,
        method,
        target,
        protocol,
        status,
        bytes,
        referer,
        user_agent,
    })
}

// ---------------------------------------------------------------------------
// URLs and the PI they may hold

/// `path`, `query` (without the `?`) of a request target.
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Percent-decodes `s` (RFC 3986 §2.1); with `plus`, `+` is a space as well
/// (`application/x-www-form-urlencoded`, as query strings are written). A `%` not followed
/// by two hex digits stays as is; bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str, plus: bool) -> Cow<'_, str> {
    if !(s.contains('%') || (plus && s.contains('+'))) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match (
                b.get(i + 1).copied().and_then(hex_value),
                b.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            x => {
                out.push(x);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The account id `s` is, if it is exactly one in the directory's form: `u` followed by at
/// least six digits (`u106057`), after [`AccountId::parse`] (NFKC folding, so a full-width
/// `ｕ１０６０５７` counts, and trimming). A capital `U` is accepted and returned lower-case.
fn account_id_exact(s: &str) -> Option<String> {
    let id = AccountId::parse(s).ok()?;
    let id = id.as_str();
    let digits = id.strip_prefix(['u', 'U'])?;
    (digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| format!("u{digits}"))
}

/// Whether an account id (`u` + 6 or more digits) starts anywhere in `s` at a word start
/// (not right after an ASCII letter or digit).
fn has_account_id(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        matches!(b[i], b'u' | b'U')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count() >= 6
    })
}

/// Characters that end an e-mail candidate on either side of its `@`.
fn ends_email(c: char) -> bool {
    c.is_whitespace() || "<>()[]{},;:\"'/\\?&=#|".contains(c)
}

/// Whether an e-mail address appears anywhere in `s`: around each `@`, the longest run of
/// non-delimiting characters is tried with [`Email::parse`]; a run that fails it still
/// counts when it is shaped `local@label.label` (internationalized addresses, RFC 6531, that
/// the ASCII parser refuses).
fn has_email(s: &str) -> bool {
    s.match_indices('@').any(|(at, _)| {
        let before = &s[..at];
        let after = &s[at + 1..];
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| ends_email(c) || c == '@')
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = after
            .char_indices()
            .find(|&(_, c)| ends_email(c) || c == '@')
            .map_or(after.len(), |(i, _)| i);
        let local = &before[start..];
        let domain = after[..end].trim_end_matches(['.', '-']);
        if local.is_empty() || domain.is_empty() {
            return false;
        }
        let candidate = format!("{local}@{domain}");
        Email::parse(&candidate).is_ok() || {
            let labels: Vec<&str> = domain.split('.').collect();
            labels.len() >= 2 && labels.iter().all(|l| !l.is_empty())
        }
    })
}

/// Characters people put between the digits of a phone number.
fn is_digit_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')') || c.is_whitespace()
}

/// Longest run of digit groups tried together: `+86 (155) 6317 0669` has 4.
const MAX_GROUPS: usize = 8;

/// Whether a mobile number or a resident ID number appears anywhere in `s`.
///
/// `s` is cut into runs of digits, `+`, separators (space, `-`, `.`, `(`, `)`) and an
/// `X`/`x` right after a digit; within a run, every span of up to [`MAX_GROUPS`] consecutive
/// digit groups is tried with [`Mobile::parse`] and [`IdCardNumber::parse`] (with and
/// without a trailing `x`). So `call 13816908250`, `+86 155-6317-0669` and
/// `11010519491231002X号` are found, a 20-digit order number is not.
fn has_phone_or_id(s: &str) -> bool {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        // Start of a run: a digit or '+'.
        if !(chars[i].1.is_ascii_digit() || chars[i].1 == '+') {
            i += 1;
            continue;
        }
        // Collect groups (byte ranges in `s`) until the run ends.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut j = i;
        let mut group_start: Option<usize> = None;
        while j < chars.len() {
            let (at, c) = chars[j];
            let prev_digit = j > 0 && chars[j - 1].1.is_ascii_digit();
            let in_group = c.is_ascii_digit() || c == '+' || (matches!(c, 'x' | 'X') && prev_digit);
            if in_group {
                if group_start.is_none() {
                    group_start = Some(at);
                }
            } else {
                if let Some(g) = group_start.take() {
                    groups.push((g, at));
                }
                if !is_digit_separator(c) {
                    break;
                }
            }
            j += 1;
        }
        if let Some(g) = group_start.take() {
            groups.push((g, chars.get(j).map_or(s.len(), |&(at, _)| at)));
        }
        for first in 0..groups.len() {
            let mut digit_count = 0;
            for last in first..groups.len().min(first + MAX_GROUPS) {
                let (gs, ge) = groups[last];
                digit_count += s[gs..ge].bytes().filter(u8::is_ascii_digit).count();
                if digit_count > 19 {
                    break;
                }
                if digit_count < 8 {
                    continue;
                }
                let candidate = &s[groups[first].0..ge];
                let trimmed = candidate.trim_end_matches(['x', 'X']);
                if Mobile::parse(candidate).is_ok()
                    || IdCardNumber::parse(candidate).is_ok()
                    || (trimmed.len() != candidate.len() && Mobile::parse(trimmed).is_ok())
                {
                    return true;
                }
            }
        }
        i = j.max(i + 1);
    }
    false
}

/// Whether `s` holds personal information anywhere inside it: a mobile number, an e-mail
/// address, a resident ID number (checked with the parsers of [`crate::identifiers`] on
/// candidate substrings) or an account id (`u` + 6 or more digits at a word start).
/// `s` is folded to NFKC first, so full-width forms (`１３８…`, `ｕ１０６…`, `＠`) count.
///
/// ```
/// use pivault_domain::weblog::contains_pi;
/// assert!(contains_pi("call 13816908250"));
/// assert!(contains_pi("+86 155-6317-0669"));
/// assert!(contains_pi("mail ＭＦ＠example.net please"));
/// assert!(contains_pi("id 11010519491231002X"));
/// assert!(contains_pi("for u106057"));
/// assert!(!contains_pi("icp filing"));
/// assert!(!contains_pi("云服务器"));
/// ```
pub fn contains_pi(s: &str) -> bool {
    let folded = nfkc(s);
    has_account_id(&folded) || has_email(&folded) || has_phone_or_id(&folded)
}

/// [`contains_pi`] of a URL component as logged, percent-decoded once and twice (`+` as a
/// space), and as logged (a `+86` typed in a query string is logged as `+86`, which form
/// decoding turns into a space).
fn component_has_pi(raw: &str, plus: bool) -> bool {
    if contains_pi(raw) {
        return true;
    }
    let once = percent_decode(raw, plus);
    if matches!(once, Cow::Borrowed(_)) {
        return false;
    }
    contains_pi(&once) || (once.contains('%') && contains_pi(&percent_decode(&once, plus)))
}

/// The account a web-log line belongs to, for linking it to a subject (access and erasure
/// requests, PIPL Art. 45 and 47): the account id in `$remote_user`; else the first path
/// segment that, percent-decoded, is exactly an account id (`/users/u106057/orders`); else
/// the first query value (or bare query word) that, percent- and `+`-decoded, is exactly one
/// (`?account=u106057`).
///
/// An account id here is [`AccountId::parse`]'s (NFKC-folded, trimmed) in the form the
/// user directory issues: `u` followed by at least six digits. A capital `U` is accepted;
/// the id is returned as `u…`.
///
/// ```
/// use pivault_domain::weblog::{linked_account, parse_combined};
/// let l = parse_combined(r#"1.2.3.4 - - [02/Oct/2026:04:24:02 +0000] "GET /console?acct=u106057 HTTP/1.1" 200 1 "-" "-""#).unwrap();
/// assert_eq!(linked_account(&l).as_deref(), Some("u106057"));
/// ```
pub fn linked_account(line: &WebLogLine) -> Option<String> {
    if let Some(id) = line.remote_user.as_deref().and_then(account_id_exact) {
        return Some(id);
    }
    let (path, query) = split_target(&line.target);
    if let Some(id) = path
        .split('/')
        .find_map(|seg| account_id_exact(&percent_decode(seg, false)))
    {
        return Some(id);
    }
    query?.split('&').find_map(|pair| {
        let value = pair.split_once('=').map_or(pair, |(_, v)| v);
        account_id_exact(&percent_decode(value, true))
    })
}

// ---------------------------------------------------------------------------
// Anonymization

/// An anonymized web-log line (PIPL Art. 73(4)): what remains of a [`WebLogLine`] after
/// [`anonymize`]. Holds no address, account, referer, exact time or PI found in the URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnonWebLog {
    /// Start of the UTC hour of the request: unix seconds, a multiple of 3,600.
    pub hour: i64,
    /// The client's network: IPv4 `/24` (`29.46.159.0/24`), IPv6 `/48`
    /// (`2001:db8:1234::/48`).
    pub client_net: String,
    /// Request method: one of [`KNOWN_METHODS`] as logged, else `OTHER`.
    pub method: String,
    /// Request path and query as logged, less PI: an account-id segment is `:account`,
    /// another segment holding PI is `:pi`, a query parameter holding PI is removed.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Response body bytes.
    pub bytes: u64,
    /// Browser family, see [`user_agent_family`].
    pub ua_family: String,
    /// Major version of the browser, if the user agent names one.
    pub ua_major: Option<u32>,
}

/// Methods [`anonymize`] keeps as logged: those of RFC 9110 §9 and `PATCH` (RFC 5789).
/// Any other token (rare, so identifying, and free text a client chose) becomes `OTHER`.
pub const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Path placeholder for a segment that is an account id.
pub const ACCOUNT_SEGMENT: &str = ":account";
/// Path placeholder for a segment that holds other PI (mobile, e-mail, ID number, an
/// embedded account id).
pub const PI_SEGMENT: &str = ":pi";

/// Anonymizes one web-log line for keeping past its identifiable period (policy §2.1.2
/// web logs, §8.2; Cybersecurity Law Art. 21(3) asks ≥ 6 months of logs; PIPL Art. 73(4)
/// anonymization: cannot identify a person and cannot be restored):
///
/// - **time** coarsened to the start of its UTC hour;
/// - **client address** truncated to its `/24` (IPv4) or `/48` (IPv6) network. An
///   IPv4-mapped (`::ffff:a.b.c.d`) or 6to4 (`2002:aabb:ccdd::/48`, whose /48 *is* the IPv4
///   address) IPv6 address is treated as its IPv4 address;
/// - **remote user** and **referer** dropped;
/// - **path**: a segment that is exactly an account id ([`linked_account`]'s form) becomes
///   `:account`, another segment holding PI ([`contains_pi`], percent-decoded) becomes
///   `:pi`; a query parameter whose name or value holds PI (decoded as a form: `%XX` and
///   `+`) is removed entirely, name included; every other parameter is kept as logged;
/// - **user agent** reduced to family and major version ([`user_agent_family`]);
/// - **method** kept if it is one of [`KNOWN_METHODS`], else `OTHER`;
/// - status and byte count kept.
///
/// Whether the result is anonymous also depends on the other rows: measure it with
/// [`crate::anonymize::k_anonymity`] over chosen quasi-identifiers and suppress small
/// classes with [`crate::anonymize::suppress_below`].
///
/// ```
/// use pivault_domain::weblog::{anonymize, parse_combined};
/// let l = parse_combined(r#"29.46.159.63 - u106057 [02/Oct/2026:04:24:02 +0000] "GET /search?q=call+13816908250&page=2 HTTP/1.1" 200 512 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36""#).unwrap();
/// let a = anonymize(&l);
/// assert_eq!(a.client_net, "29.46.159.0/24");
/// assert_eq!(a.hour, 1_790_913_600);
/// assert_eq!(a.path, "/search?page=2");
/// assert_eq!((a.ua_family.as_str(), a.ua_major), ("Chrome", Some(120)));
/// ```
pub fn anonymize(line: &WebLogLine) -> AnonWebLog {
    let (ua_family, ua_major) = user_agent_family(&line.user_agent);
    AnonWebLog {
        hour: line.at - line.at.rem_euclid(3600),
        client_net: client_net(line.client),
        method: if KNOWN_METHODS.contains(&line.method.as_str()) {
            line.method.clone()
        } else {
            "OTHER".to_owned()
        },
        path: anonymize_target(&line.target),
        status: line.status,
        bytes: line.bytes,
        ua_family: ua_family.to_owned(),
        ua_major,
    }
}

/// The `/24` of an IPv4 address, the `/48` of an IPv6 one (IPv4-mapped and 6to4 addresses
/// as IPv4), as `network/prefix` text: `29.46.159.0/24`, `2001:db8:1234::/48`.
pub fn client_net(ip: IpAddr) -> String {
    fn v4(a: Ipv4Addr) -> String {
        let [x, y, z, _] = a.octets();
        format!("{x}.{y}.{z}.0/24")
    }
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            if let Some(mapped) = a.to_ipv4_mapped() {
                return v4(mapped);
            }
            let s = a.segments();
            if s[0] == 0x2002 {
                // RFC 3056 6to4: bits 16..48 are the site's IPv4 address.
                let [a1, a2] = s[1].to_be_bytes();
                let [a3, a4] = s[2].to_be_bytes();
                return v4(Ipv4Addr::new(a1, a2, a3, a4));
            }
            let net = Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

/// The target with PI removed, see [`anonymize`].
fn anonymize_target(target: &str) -> String {
    let (path, query) = split_target(target);
    let mut out = String::with_capacity(target.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if account_id_exact(&percent_decode(seg, false)).is_some() {
            out.push_str(ACCOUNT_SEGMENT);
        } else if component_has_pi(seg, false) {
            out.push_str(PI_SEGMENT);
        } else {
            out.push_str(seg);
        }
    }
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                !component_has_pi(name, true) && !component_has_pi(value, true)
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// User agents

/// The major version right after `token` in `ua` (`Chrome/120.0` → 120), `None` if no
/// digits follow; the outer `None` if `token` does not occur.
fn major_after(ua: &str, token: &str) -> Option<Option<u32>> {
    let at = ua.find(token)?;
    let rest = &ua[at + token.len()..];
    let end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(rest[..end].parse().ok())
}

/// `(family, major)` if any of `tokens` occurs in `ua` (the first that does gives the
/// version).
fn first_of(
    ua: &str,
    family: &'static str,
    tokens: &[&str],
) -> Option<(&'static str, Option<u32>)> {
    tokens
        .iter()
        .find_map(|t| major_after(ua, t))
        .map(|major| (family, major))
}

/// Markers of automated clients (search engines, crawlers, link previews, monitors),
/// lower-case.
const BOT_MARKERS: &[&str] = &[
    "bot/",
    "bot;",
    "bot)",
    "spider",
    "crawler",
    "slurp",
    "facebookexternalhit",
    "+http",
    "headlesschrome",
];

/// Command-line and library HTTP clients: prefix (lower-case) and family.
const TOOLS: &[(&str, &str)] = &[
    ("curl/", "curl"),
    ("wget/", "Wget"),
    ("python-requests/", "python-requests"),
    ("python-urllib/", "Python-urllib"),
    ("go-http-client/", "Go-http-client"),
    ("okhttp/", "okhttp"),
    ("java/", "Java"),
    ("apache-httpclient/", "Apache-HttpClient"),
    ("postmanruntime/", "PostmanRuntime"),
];

/// Reduces a user agent to its browser family and major version (policy §2.1.2 keeps the
/// "browser type"; the full string, with OS build, device model and locale, is a
/// fingerprint and is not kept).
///
/// Families, checked in this order (each UA names several engines; the most specific
/// wins): `Bot` (crawlers; no version); command-line clients (`curl`, `Wget`,
/// `python-requests`, `Go-http-client`, `okhttp`, …); in-app and regional browsers
/// (`WeChat`, `QQ Browser`, `UC Browser`, `Samsung Internet`, `Yandex Browser`); `Edge`
/// (`Edg/`, `EdgA/`, `EdgiOS/`, `Edge/`); `Opera` (`OPR/`, `OPiOS/`, `Opera` with
/// `Version/`); `Firefox` (`Firefox/`, `FxiOS/`); `Chrome` (`Chrome/`, `CriOS/`);
/// `Chromium`; `IE` (`MSIE n`, or `Trident/` with `rv:n`); `Android Browser`
/// (`Android` + `Version/`, no Chrome); `Safari` (`Safari/`, major from `Version/`);
/// `Other` (anything else, and an empty or `-` agent).
///
/// ```
/// use pivault_domain::weblog::user_agent_family;
/// assert_eq!(user_agent_family("curl/8.5.0"), ("curl", Some(8)));
/// assert_eq!(user_agent_family("Mozilla/5.0 (compatible; MSIE 7.0; Windows NT 5.1; Trident/5.0)"), ("IE", Some(7)));
/// assert_eq!(user_agent_family("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), ("Bot", None));
/// ```
pub fn user_agent_family(ua: &str) -> (&'static str, Option<u32>) {
    let ua = ua.trim();
    if ua.is_empty() || ua == "-" {
        return ("Other", None);
    }
    let lower = ua.to_ascii_lowercase();
    if BOT_MARKERS.iter().any(|m| lower.contains(m)) {
        return ("Bot", None);
    }
    if let Some((prefix, family)) = TOOLS.iter().find(|(p, _)| lower.starts_with(p)) {
        return (*family, major_after(&lower, prefix).flatten());
    }
    let found = first_of(ua, "WeChat", &["MicroMessenger/"])
        .or_else(|| first_of(ua, "QQ Browser", &["MQQBrowser/", "QQBrowser/"]))
        .or_else(|| first_of(ua, "UC Browser", &["UCBrowser/", "UCWEB/"]))
        .or_else(|| first_of(ua, "Samsung Internet", &["SamsungBrowser/"]))
        .or_else(|| first_of(ua, "Yandex Browser", &["YaBrowser/"]))
        .or_else(|| first_of(ua, "Edge", &["Edg/", "EdgA/", "EdgiOS/", "Edge/"]))
        .or_else(|| first_of(ua, "Opera", &["OPR/", "OPiOS/"]))
        .or_else(|| {
            ua.contains("Opera").then(|| {
                let major = major_after(ua, "Version/")
                    .or_else(|| major_after(ua, "Opera/"))
                    .or_else(|| major_after(ua, "Opera "))
                    .flatten();
                ("Opera", major)
            })
        })
        .or_else(|| first_of(ua, "Firefox", &["Firefox/", "FxiOS/"]))
        .or_else(|| first_of(ua, "Chrome", &["Chrome/", "CriOS/"]))
        .or_else(|| first_of(ua, "Chromium", &["Chromium/"]))
        .or_else(|| first_of(ua, "IE", &["MSIE "]))
        .or_else(|| {
            ua.contains("Trident/")
                .then(|| ("IE", major_after(ua, "rv:").flatten()))
        })
        .or_else(|| {
            (ua.contains("Android") && ua.contains("Version/"))
                .then(|| ("Android Browser", major_after(ua, "Version/").flatten()))
        })
        .or_else(|| {
            ua.contains("Safari/")
                .then(|| ("Safari", major_after(ua, "Version/").flatten()))
        });
    found.unwrap_or(("Other", None))
}

#[cfg(test)]
mod tests;
