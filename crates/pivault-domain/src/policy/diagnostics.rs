//! Problems in a policy file, at 1-based lines and columns: [`Diagnostic`],
//! [`PolicyErrors`], and the byte-offset → line/column mapping.

use std::fmt;
use std::ops::Range;

/// One problem in a policy file, at a 1-based line and column (the column counts
/// characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl Diagnostic {
    /// `path:line:col: level: message`, the format compilers use, so editors can
    /// jump to it. `level` is e.g. `error` or `warning`.
    pub fn render(&self, path: &str, level: &str) -> String {
        format!(
            "{path}:{}:{}: {level}: {}",
            self.line, self.column, self.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Every problem found in a policy file, ordered by position; never empty.
/// `Display` writes one `line:col: message` per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct PolicyErrors(pub Vec<Diagnostic>);

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl PolicyErrors {
    /// `path:line:col: error: message`, one line each, newline-terminated: the
    /// output of `pivault policy check FILE`.
    pub fn render(&self, path: &str) -> String {
        self.0
            .iter()
            .map(|d| d.render(path, "error") + "\n")
            .collect()
    }
}

/// Byte offsets → sorted 1-based line/column (in characters) diagnostics.
pub(super) fn diagnostics(source: &str, found: Vec<(usize, String)>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = found
        .into_iter()
        .map(|(offset, message)| {
            let (line, column) = line_column(source, offset);
            Diagnostic {
                line,
                column,
                message,
            }
        })
        .collect();
    out.sort_by_key(|d| (d.line, d.column));
    out.dedup();
    out
}

pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

pub(super) fn line_of(source: &str, span: &Range<usize>) -> usize {
    line_column(source, span.start).0
}
