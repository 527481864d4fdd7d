//! Anonymization of records kept past their identifiable period, and the k-anonymity measure
//! that says whether a set of anonymized rows is anonymous enough.
//!
//! Rules:
//! - **PIPL Art. 73(4)**: anonymization is processing after which personal information
//!   *cannot identify a specific natural person and cannot be restored*; anonymized
//!   information is not personal information (PIPL Art. 4), so it may be kept after the
//!   retention period (policy §VI, §8.2: "delete or anonymize").
//! - **GB/T 35273-2020 §3.14** (anonymization) versus **§3.15** (de-identification): a keyed,
//!   reversible pseudonym (`pivault_crypto::Pseudonymizer`) is *not* anonymization.
//! - **k-anonymity** (L. Sweeney, "k-anonymity: a model for protecting privacy", Int. J.
//!   Uncertainty, Fuzziness and Knowledge-Based Systems 10(5), 2002): a released table is
//!   k-anonymous over a set of quasi-identifiers when every combination of their values
//!   that occurs is shared by at least k rows. [`k_anonymity`] measures it; [`suppress_below`]
//!   enforces it by suppressing (dropping) the rows of smaller classes.
//!
//! Pure computation: no IO, no clock, no panics on input.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::weblog::AnonWebLog;

/// An anonymized order (E-Commerce Law Art. 31 keeps transaction records ≥ 3 years; past
/// that, policy §8.2 anonymizes): no order id, no account, no invoice title or tax id, the
/// payment time coarsened to the month.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnonOrder {
    /// UTC month of payment, `YYYY-MM` (e.g. `2024-07`).
    pub month: String,
    /// Product code as stored (e.g. `ECS`).
    pub product: String,
    /// Amount in CNY, the exact decimal text as stored (e.g. `6130.06`); never through a
    /// float.
    pub amount: String,
}

/// Anonymizes one order: keeps `product` and `amount` as given (the amount's text is copied,
/// never parsed into a float) and coarsens `paid_at` (unix seconds) to its UTC month.
/// Everything else of the order (id, account, invoice title and tax id) is simply not
/// passed in. PIPL Art. 73(4); policy §8.2.
///
/// ```
/// use pivault_domain::anonymize::anonymize_order;
/// let o = anonymize_order("ECS", "6130.06", 1_722_125_400); // 2024-07-28T00:10:00Z
/// assert_eq!((o.month.as_str(), o.product.as_str(), o.amount.as_str()), ("2024-07", "ECS", "6130.06"));
/// ```
pub fn anonymize_order(product: &str, amount: &str, paid_at: i64) -> AnonOrder {
    AnonOrder {
        month: utc_month(paid_at),
        product: product.to_owned(),
        amount: amount.to_owned(),
    }
}

/// `YYYY-MM` of the UTC instant `secs` (unix seconds), proleptic Gregorian calendar, for any
/// `i64` (years beyond 9999 get more digits, years before 0 a `-` sign).
///
/// Civil-from-days of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms".
pub fn utc_month(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

// ---------------------------------------------------------------------------
// k-anonymity

/// The k-anonymity of a set of rows over some quasi-identifiers (Sweeney 2002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KReport {
    /// Rows measured.
    pub rows: usize,
    /// Equivalence classes: distinct quasi-identifier values among the rows.
    pub classes: usize,
    /// Size of the smallest equivalence class (the set is k-anonymous for this k); 0 when
    /// there are no rows.
    pub k: usize,
    /// Rows in classes smaller than the `k_min` asked: what [`suppress_below`] would drop.
    pub rows_below: usize,
}

/// Size of each equivalence class, by quasi-identifier value.
fn class_sizes<'a, K: Eq + Hash + 'a>(keys: impl Iterator<Item = K>) -> HashMap<K, usize> {
    let mut sizes = HashMap::new();
    for key in keys {
        *sizes.entry(key).or_insert(0usize) += 1;
    }
    sizes
}

/// Measures the k-anonymity of `rows` over the quasi-identifier value `qi` gives each row
/// (Sweeney 2002): the number of rows and of equivalence classes, the size `k` of the
/// smallest class (0 for no rows), and how many rows are in classes smaller than `k_min`.
///
/// ```
/// use pivault_domain::anonymize::k_anonymity;
/// let rows = ["a", "a", "b", "b", "b", "c"];
/// let r = k_anonymity(&rows, 2, |s| *s);
/// assert_eq!((r.rows, r.classes, r.k, r.rows_below), (6, 3, 1, 1));
/// ```
pub fn k_anonymity<R, K: Eq + Hash>(rows: &[R], k_min: usize, qi: impl Fn(&R) -> K) -> KReport {
    let sizes = class_sizes(rows.iter().map(qi));
    KReport {
        rows: rows.len(),
        classes: sizes.len(),
        k: sizes.values().copied().min().unwrap_or(0),
        rows_below: sizes.values().filter(|&&n| n < k_min).sum(),
    }
}

/// Suppresses (drops) every row whose equivalence class over `qi` has fewer than `k_min`
/// rows, keeping the others in their order; returns them and the number dropped. Whole
/// classes go, so every class kept keeps its size: what remains is k-anonymous with
/// k ≥ `k_min`, or empty (Sweeney 2002, suppression). `k_min` of 0 or 1 drops nothing.
///
/// ```
/// use pivault_domain::anonymize::{k_anonymity, suppress_below};
/// let (kept, dropped) = suppress_below(vec!["a", "a", "b", "b", "b", "c"], 2, |s| *s);
/// assert_eq!((kept.len(), dropped), (5, 1));
/// assert_eq!(k_anonymity(&kept, 2, |s| *s).k, 2);
/// ```
pub fn suppress_below<R, K: Eq + Hash>(
    rows: Vec<R>,
    k_min: usize,
    qi: impl Fn(&R) -> K,
) -> (Vec<R>, usize) {
    let keys: Vec<K> = rows.iter().map(qi).collect();
    let keep: Vec<bool> = {
        let sizes = class_sizes(keys.iter());
        keys.iter()
            .map(|k| sizes.get(k).copied().unwrap_or(0) >= k_min)
            .collect()
    };
    let before = rows.len();
    let kept: Vec<R> = rows
        .into_iter()
        .zip(keep)
        .filter_map(|(row, keep)| keep.then_some(row))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

// ---------------------------------------------------------------------------
// Kinds and quasi-identifiers

/// A kind of anonymized record, as named in policy files and jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonKind {
    /// `weblog`: [`AnonWebLog`], from the web log (policy §2.1.2).
    Weblog,
    /// `order`: [`AnonOrder`], from orders (E-Commerce Law Art. 31).
    Order,
}

/// Quasi-identifier columns of [`AnonKind::Weblog`].
const WEBLOG_QI: &[&str] = &[
    "hour",
    "client_net",
    "ua_family",
    "ua_major",
    "path",
    "status",
];
/// Quasi-identifier columns of [`AnonKind::Order`].
const ORDER_QI: &[&str] = &["month", "product", "amount"];

impl AnonKind {
    /// Every kind, in declaration order.
    pub const ALL: [AnonKind; 2] = [AnonKind::Weblog, AnonKind::Order];

    /// The stable name: `weblog` or `order`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnonKind::Weblog => "weblog",
            AnonKind::Order => "order",
        }
    }

    /// The kind named `s` (exactly as [`as_str`](Self::as_str) spells it), if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The columns that may serve as quasi-identifiers for this kind, i.e. the names
    /// [`qi_value_weblog`] / [`qi_value_order`] answer for:
    /// weblog `hour`, `client_net`, `ua_family`, `ua_major`, `path`, `status`;
    /// order `month`, `product`, `amount`.
    pub fn quasi_identifier_names(self) -> &'static [&'static str] {
        match self {
            AnonKind::Weblog => WEBLOG_QI,
            AnonKind::Order => ORDER_QI,
        }
    }
}

impl fmt::Display for AnonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of quasi-identifier column `name` of an anonymized web-log row, as text: `hour`
/// (unix seconds, decimal), `client_net`, `ua_family`, `ua_major` (decimal, empty when
/// unknown), `path`, `status` (decimal). `None` for any other name (see
/// [`AnonKind::quasi_identifier_names`]).
pub fn qi_value_weblog(row: &AnonWebLog, name: &str) -> Option<String> {
    Some(match name {
        "hour" => row.hour.to_string(),
        "client_net" => row.client_net.clone(),
        "ua_family" => row.ua_family.clone(),
        "ua_major" => row.ua_major.map_or_else(String::new, |m| m.to_string()),
        "path" => row.path.clone(),
        "status" => row.status.to_string(),
        _ => return None,
    })
}

/// The value of quasi-identifier column `name` of an anonymized order: `month`, `product`,
/// `amount` (the stored text). `None` for any other name (see
/// [`AnonKind::quasi_identifier_names`]).
pub fn qi_value_order(row: &AnonOrder, name: &str) -> Option<String> {
    Some(match name {
        "month" => row.month.clone(),
        "product" => row.product.clone(),
        "amount" => row.amount.clone(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
