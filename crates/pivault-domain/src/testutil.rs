//! Helpers for unit tests of the wire vocabulary.

use serde::{Deserialize, Serialize};

/// The serde form of a unit-variant enum value, which must be a string.
pub(crate) fn serde_name<T: Serialize>(value: T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        other => panic!("not a string: {other:?}"),
    }
}

/// The value whose serde form is the string `name`, if any.
pub(crate) fn from_serde_name<'de, T: Deserialize<'de>>(name: &'de str) -> Option<T> {
    let d = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name);
    T::deserialize(d).ok()
}

/// A file of the seed data set `zh_CN-10k` (`shared/` sits beside the repository clone).
pub(crate) fn dataset(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/zh_CN-10k")
        .join(name)
}
