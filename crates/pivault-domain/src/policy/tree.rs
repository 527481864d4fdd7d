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
        let first = map.next_key::<KeySeed>()?;
        table_from(first, map)
    }
}

/// The rest of a table whose first key (if any) was already read.
fn table_from<'de, A: MapAccess<'de>>(
    mut key: Option<KeySeed>,
    mut map: A,
) -> Result<Node, A::Error> {
    let mut entries = Vec::new();
    while let Some(k) = key {
        if k.name == DATETIME_KEY {
            // The value is the datetime's text; the schema has no datetimes.
            let _ = map.next_value::<de::IgnoredAny>()?;
            return Ok(Node::Datetime);
        }
        let MaybeSpanned(span, value) = map.next_value::<MaybeSpanned>()?;
        // An implicit table (`[a.b]` with no `[a]`) has no span of its own: point at its key.
        let span = span.or_else(|| k.span.clone()).unwrap_or(0..0);
        entries.push(Entry {
            key: k.into_key(),
            value: Spanned::new(span, value),
        });
        key = map.next_key::<KeySeed>()?;
    }
    Ok(Node::Table(entries))
}

/// A table's value with its span when the deserializer has one. `toml` has none for an
/// implicit table (the `a` of a `[a.b]` header with no `[a]`), where `Spanned<Node>` would
/// fail with "expected a borrowed string".
struct MaybeSpanned(Option<Range<usize>>, Node);

impl<'de> Deserialize<'de> for MaybeSpanned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeSpanned;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<MaybeSpanned, E> {
                Ok(MaybeSpanned(None, Node::Boolean(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<MaybeSpanned, E> {
                Ok(MaybeSpanned(None, Node::Integer(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeSpanned, E> {
                NodeVisitor.visit_u64(v).map(|n| MaybeSpanned(None, n))
            }
            fn visit_f64<E>(self, v: f64) -> Result<MaybeSpanned, E> {
                Ok(MaybeSpanned(None, Node::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeSpanned, E> {
                Ok(MaybeSpanned(None, Node::String(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeSpanned, A::Error> {
                NodeVisitor.visit_seq(seq).map(|n| MaybeSpanned(None, n))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeSpanned, A::Error> {
                use serde_spanned::__unstable::START_FIELD;
                let first = map.next_key::<KeySeed>()?;
                if first.as_ref().is_some_and(|k| k.name == START_FIELD) {
                    // `toml`'s spanned form: start, end, value, in this order.
                    let start: usize = map.next_value()?;
                    let _ = map.next_key::<KeySeed>()?;
                    let end: usize = map.next_value()?;
                    let _ = map.next_key::<KeySeed>()?;
                    let value: Node = map.next_value()?;
                    return Ok(MaybeSpanned(Some(start..end), value));
                }
                table_from(first, map).map(|n| MaybeSpanned(None, n))
            }
        }
        use serde_spanned::__unstable::{END_FIELD, NAME, START_FIELD, VALUE_FIELD};
        d.deserialize_struct(NAME, &[START_FIELD, END_FIELD, VALUE_FIELD], V)
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
