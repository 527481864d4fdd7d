//! A TOML document as a tree in which every key and value keeps its byte span.
//!
//! `toml`'s typed deserialisation stops at the first error; reading into this
//! tree first lets the validator walk the whole document and report every
//! problem with its position.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

/// One TOML value with its children's spans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime,
    Array(Vec<Spanned<Node>>),
    /// Keys in document order.
    Table(Vec<Entry>),
}

/// One `key = value` of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: Key,
    pub value: Spanned<Node>,
}

/// A table key: its text and, when the deserialiser gave one, its span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub span: Option<Range<usize>>,
}

impl Node {
    /// The TOML type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::String(_) => "string",
            Node::Integer(_) => "integer",
            Node::Float(_) => "float",
            Node::Boolean(_) => "boolean",
            Node::Datetime => "datetime",
            Node::Array(_) => "array",
            Node::Table(_) => "table",
        }
    }
}

/// `toml` hands datetimes over as a one-entry map under this key.
const DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<KeySeed>()? {
            if key.name == DATETIME_KEY {
                // The value is the datetime's text; the schema has no datetimes.
                let _ = map.next_value::<de::IgnoredAny>()?;
                return Ok(Node::Datetime);
            }
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push(Entry {
                key: key.into_key(),
                value,
            });
        }
        Ok(Node::Table(entries))
    }
}

/// A map key that accepts both a spanned key (table keys) and a bare string
/// (the datetime marker), so neither aborts the whole parse.
struct KeySeed {
    name: String,
    span: Option<Range<usize>>,
}

impl KeySeed {
    fn into_key(self) -> Key {
        Key {
            name: self.name,
            span: self.span,
        }
    }
}

impl<'de> Deserialize<'de> for KeySeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeySeed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeySeed, E> {
                Ok(KeySeed {
                    name: v.to_owned(),
                    span: None,
                })
            }
            fn visit_string<E>(self, v: String) -> Result<KeySeed, E> {
                Ok(KeySeed {
                    name: v,
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeySeed, A::Error> {
                let spanned: Spanned<String> =
                    Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let span = spanned.span();
                Ok(KeySeed {
                    name: spanned.into_inner(),
                    span: Some(span),
                })
            }
        }
        use serde_spanned::__unstable::{END_FIELD, NAME, START_FIELD, VALUE_FIELD};
        // Asking for the `Spanned` struct is how `toml` is told to hand over the
        // span; deserialisers without one (the datetime marker) fall back to a
        // plain string.
        d.deserialize_struct(NAME, &[START_FIELD, END_FIELD, VALUE_FIELD], V)
    }
}
