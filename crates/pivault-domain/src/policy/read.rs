//! Reading one TOML table of a policy file: the problems found so far
//! ([`Ctx`]), typed fields with their spans ([`Table`], [`At`]), and the shapes
//! of keys and ids.

use std::ops::Range;

use super::diagnostics::diagnostics;
use super::tree::{Entry, Node};
use super::PolicyErrors;

/// Problems found so far, at byte offsets into the source.
#[derive(Default)]
pub(super) struct Ctx {
    pub(super) errors: Vec<(usize, String)>,
    pub(super) warnings: Vec<(usize, String)>,
}

impl Ctx {
    pub(super) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push((span.start, message.into()));
    }

    pub(super) fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.warnings.push((span.start, message.into()));
    }

    pub(super) fn into_errors(self, source: &str) -> PolicyErrors {
        PolicyErrors(diagnostics(source, self.errors))
    }
}

/// A value with the byte span it came from.
#[derive(Debug, Clone)]
pub(super) struct At<T> {
    pub(super) value: T,
    pub(super) span: Range<usize>,
}

/// One TOML table being read: reports unknown keys once, then hands out typed
/// fields, reporting missing or mistyped ones.
pub(super) struct Table<'a> {
    entries: &'a [Entry],
    pub(super) span: Range<usize>,
    pub(super) what: &'static str,
}

impl<'a> Table<'a> {
    pub(super) fn open(
        ctx: &mut Ctx,
        node: &'a serde_spanned::Spanned<Node>,
        what: &'static str,
        allowed: &[&str],
    ) -> Option<Self> {
        let Node::Table(entries) = node.get_ref() else {
            ctx.error(
                node.span(),
                format!(
                    "{what} must be a table, found {}",
                    node.get_ref().type_name()
                ),
            );
            return None;
        };
        for entry in entries {
            if !allowed.contains(&entry.key.name.as_str()) {
                ctx.error(
                    entry.key.span.clone().unwrap_or_else(|| entry.value.span()),
                    format!(
                        "unknown field `{}` in {what}, expected one of: {}",
                        entry.key.name,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Table {
            entries,
            span: node.span(),
            what,
        })
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a serde_spanned::Spanned<Node>> {
        self.entries
            .iter()
            .find(|e| e.key.name == name)
            .map(|e| &e.value)
    }

    pub(super) fn missing(&self, ctx: &mut Ctx, name: &str) {
        ctx.error(
            self.span.clone(),
            format!("missing field `{name}` in {}", self.what),
        );
    }

    pub(super) fn wrong_type(&self, ctx: &mut Ctx, name: &str, expected: &str, found: &Node) {
        let hint = if matches!(found, Node::Datetime) && expected == "a string" {
            " (quote it)"
        } else {
            ""
        };
        let found = found.type_name();
        ctx.error(
            self.get(name)
                .map_or(self.span.clone(), serde_spanned::Spanned::span),
            format!(
                "`{name}` in {} must be {expected}, found {found}{hint}",
                self.what
            ),
        );
    }

    pub(super) fn opt_string(&self, ctx: &mut Ctx, name: &str) -> Option<At<String>> {
        let node = self.get(name)?;
        match node.get_ref() {
            Node::String(s) if s.trim().is_empty() => {
                ctx.error(
                    node.span(),
                    format!("`{name}` in {} must not be empty", self.what),
                );
                None
            }
            Node::String(s) => Some(At {
                value: s.clone(),
                span: node.span(),
            }),
            other => {
                self.wrong_type(ctx, name, "a string", other);
                None
            }
        }
    }

    pub(super) fn string(&self, ctx: &mut Ctx, name: &str) -> Option<At<String>> {
        if self.get(name).is_none() {
            self.missing(ctx, name);
            return None;
        }
        self.opt_string(ctx, name)
    }

    /// A required integer in `range`.
    pub(super) fn integer(&self, ctx: &mut Ctx, name: &str, range: Range<i64>) -> Option<At<i64>> {
        if self.get(name).is_none() {
            self.missing(ctx, name);
            return None;
        }
        self.opt_integer(ctx, name, range)
    }

    /// An optional integer in `range`.
    pub(super) fn opt_integer(
        &self,
        ctx: &mut Ctx,
        name: &str,
        range: Range<i64>,
    ) -> Option<At<i64>> {
        let node = self.get(name)?;
        match node.get_ref() {
            Node::Integer(n) if range.contains(n) => Some(At {
                value: *n,
                span: node.span(),
            }),
            Node::Integer(_) => {
                ctx.error(
                    node.span(),
                    format!(
                        "`{name}` in {} must be between {} and {}",
                        self.what,
                        range.start,
                        range.end - 1
                    ),
                );
                None
            }
            other => {
                self.wrong_type(ctx, name, "an integer", other);
                None
            }
        }
    }

    pub(super) fn opt_bool(&self, ctx: &mut Ctx, name: &str) -> Option<At<bool>> {
        let node = self.get(name)?;
        match node.get_ref() {
            Node::Boolean(b) => Some(At {
                value: *b,
                span: node.span(),
            }),
            other => {
                self.wrong_type(ctx, name, "true or false", other);
                None
            }
        }
    }

    /// An optional string naming one of `choices`.
    pub(super) fn opt_enum<T: Copy>(
        &self,
        ctx: &mut Ctx,
        name: &str,
        choices: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Option<At<T>> {
        let at = self.opt_string(ctx, name)?;
        match choices.iter().copied().find(|&c| as_str(c) == at.value) {
            Some(value) => Some(At {
                value,
                span: at.span,
            }),
            None => {
                let names: Vec<&str> = choices.iter().map(|&c| as_str(c)).collect();
                ctx.error(
                    at.span,
                    format!(
                        "unknown {name} `{}` in {}, expected one of: {}",
                        at.value,
                        self.what,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub(super) fn enumeration<T: Copy>(
        &self,
        ctx: &mut Ctx,
        name: &str,
        choices: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Option<At<T>> {
        if self.get(name).is_none() {
            self.missing(ctx, name);
            return None;
        }
        self.opt_enum(ctx, name, choices, as_str)
    }
}

/// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`: fideslang-style dotted keys.
pub(super) fn is_dotted_key(s: &str) -> bool {
    s.split('.').all(is_segment)
}

/// `^[a-z][a-z0-9_]*$`.
pub(super) fn is_segment(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `^[a-z][a-z0-9_-]*$` for the policy id (`inspur-cloud`).
pub(super) fn is_slug(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
