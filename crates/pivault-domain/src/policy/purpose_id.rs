//! [`PurposeId`]: the id of a purpose of processing, as a type.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::read::is_segment;
use crate::identifiers::InvalidValue;

/// The id of a [`Purpose`](super::Purpose), e.g. `marketing`: `^[a-z][a-z0-9_]*$`,
/// the rule [`Policy::parse`](super::Policy::parse) applies to `[[purpose]]`
/// ids, so every declared purpose's id parses. A well-formed id need not be
/// declared: look it up with [`Policy::purpose`](super::Policy::purpose).
///
/// Processing is lawful only for explicit, specific purposes (PIPL Art. 6;
/// policy §II, §8.2), so every consent, decision and disclosure names one.
/// Serde goes through [`parse`](Self::parse): a deserialised id is well-formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PurposeId(String);

impl PurposeId {
    /// The id `s`, if it is `^[a-z][a-z0-9_]*$`.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `purpose_malformed` otherwise.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if is_segment(s) {
            Ok(PurposeId(s.to_owned()))
        } else {
            Err(InvalidValue {
                code: "purpose_malformed",
                reason: "a purpose id is a lower-case letter then lower-case letters, digits or _",
            })
        }
    }

    /// The id as text, e.g. `marketing`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PurposeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PurposeId {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for PurposeId {
    type Error = InvalidValue;
    fn try_from(s: &str) -> Result<Self, InvalidValue> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PurposeId {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        if is_segment(&s) {
            Ok(PurposeId(s))
        } else {
            Self::parse(&s)
        }
    }
}

impl From<PurposeId> for String {
    fn from(id: PurposeId) -> String {
        id.0
    }
}

impl AsRef<str> for PurposeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets a `HashMap<PurposeId, _>` be looked up by `&str`.
impl Borrow<str> for PurposeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PurposeId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PurposeId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{from_serde_name, serde_name};

    #[test]
    fn well_formed_ids_parse_and_round_trip() {
        for s in ["marketing", "service", "a", "risk_control2", "x_1_y"] {
            let id = PurposeId::parse(s).unwrap();
            assert_eq!(id.as_str(), s);
            assert_eq!(id, s);
            assert_eq!(id.to_string(), s);
            assert_eq!(s.parse::<PurposeId>().unwrap(), id);
            assert_eq!(PurposeId::try_from(s.to_owned()).unwrap(), id);
            assert_eq!(String::from(id.clone()), s);
            assert_eq!(serde_name(id.clone()), s);
            assert_eq!(from_serde_name::<PurposeId>(s), Some(id));
        }
    }

    #[test]
    fn malformed_ids_are_rejected_everywhere() {
        for s in [
            "",
            "Marketing",
            "1st",
            "_x",
            "user.contact",
            "ads-x",
            " ads",
            "ads ",
            "营销",
        ] {
            assert_eq!(PurposeId::parse(s).unwrap_err().code, "purpose_malformed");
            assert!(s.parse::<PurposeId>().is_err());
            assert!(PurposeId::try_from(s.to_owned()).is_err());
            assert_eq!(from_serde_name::<PurposeId>(s), None, "{s:?}");
        }
    }

    #[test]
    fn a_map_keyed_by_id_is_looked_up_by_str() {
        let mut m = std::collections::HashMap::new();
        m.insert(PurposeId::parse("ads").unwrap(), 1);
        assert_eq!(m.get("ads"), Some(&1));
    }

    #[test]
    fn every_purpose_of_the_default_policy_has_a_well_formed_id() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../policies/default.toml");
        let source = std::fs::read_to_string(path).unwrap();
        let policy = super::super::Policy::parse(&source).unwrap();
        for p in policy.purposes() {
            let id = PurposeId::parse(&p.id).unwrap();
            assert!(policy.purpose(id.as_str()).is_some());
        }
    }
}
