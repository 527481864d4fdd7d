//! The error vocabulary ([`pivault_domain::Code`]) against the workspace: every code string
//! the sources return is in `Code::ALL`, and the README's error table is the generated one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_domain::code::{markdown_table, Code};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// The source without comment lines and without its `#[cfg(test)]` tail.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The string literal at the start of `s` (after whitespace), if any.
fn literal(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('"')?;
    let end = s.find('"')?;
    Some(&s[..end])
}

/// The text after the first comma at parenthesis depth 0.
fn after_first_arg(s: &str) -> Option<&str> {
    let mut depth = 0i32;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return None,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return Some(&s[i + 1..]),
            _ => {}
        }
    }
    None
}

/// `(file, code)` for every code string in a code position: `code: "…"`, `Conflict("…")`,
/// `invalid(<field>, "…", …)` (core's and the identifiers'), `=> "…"` in the decision
/// `Reason::as_str` and `StorageFault::code`, and the master key constants.
fn codes_in_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
    {
        rust_files(&krate.path().join("src"), &mut files);
    }
    assert!(files.len() > 20, "the workspace sources were not found");
    let mut out = Vec::new();
    for f in files {
        let name = f
            .strip_prefix(workspace())
            .unwrap_or(&f)
            .display()
            .to_string();
        // The notifier's codes stay in the log (a code that could not be sent) and the
        // importer's in its rejects file; neither is returned by the service.
        if name.contains("pivault-notify") || name.contains("pivault-core/src/import/") {
            continue;
        }
        let text = code_of(&std::fs::read_to_string(&f).unwrap());
        let mut push = |s: &str| {
            if s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.push((name.clone(), s.to_string()));
            }
        };
        // The store's own conflicts are not codes: core turns a store error into `internal`.
        let patterns: &[(&str, bool)] = if name.contains("pivault-store") {
            &[]
        } else {
            &[
                ("code:", false),
                ("Conflict(", false),
                ("CoreError::invalid(", true),
                ("invalid(", false),
            ]
        };
        for &(pat, first_arg) in patterns {
            for (i, _) in text.match_indices(pat) {
                // a bare `invalid(` is the identifiers' (code first), not `…::invalid(`
                let before = text[..i].chars().next_back().unwrap_or(' ');
                if pat == "invalid("
                    && (before == ':'
                        || before == '_'
                        || before.is_alphanumeric()
                        || text[..i].ends_with("fn "))
                {
                    continue;
                }
                let rest = &text[i + pat.len()..];
                let rest = if first_arg {
                    match after_first_arg(rest) {
                        Some(r) => r,
                        None => continue,
                    }
                } else {
                    rest
                };
                if let Some(l) = literal(rest) {
                    push(l);
                }
            }
        }
        for (marker, fn_name) in [
            ("impl Reason {", "fn as_str"),
            ("impl StorageFault {", "fn code"),
        ] {
            if let Some(i) = text.find(marker) {
                let body = &text[i..];
                let start = body.find(fn_name).unwrap();
                let body = &body[start..];
                let body = &body[..body.find("\n    }").unwrap()];
                for (j, _) in body.match_indices("=> ") {
                    if let Some(l) = literal(&body[j + 3..]) {
                        if l != "allowed" {
                            push(l);
                        }
                    }
                }
            }
        }
        for line in text.lines() {
            if line.contains("pub const MASTER_KEY_") {
                if let Some(l) = line.split('=').nth(1).and_then(literal) {
                    push(l);
                }
            }
        }
    }
    out
}

#[test]
fn every_code_in_the_sources_is_in_code_all() {
    let found = codes_in_sources();
    for must in [
        "fault_injected",
        "storage_busy",
        "master_key_mismatch",
        "consent_missing",
        "mobile_too_short",
        "role_required",
    ] {
        assert!(
            found.iter().any(|(_, c)| c == must),
            "the scan no longer finds {must}: fix the scan"
        );
    }
    let missing: Vec<String> = found
        .iter()
        .filter(|(_, c)| Code::parse(c).is_none())
        .map(|(f, c)| format!("{c} ({f})"))
        .collect();
    assert!(
        missing.is_empty(),
        "codes returned by the sources but missing from pivault_domain::Code \
         (add a variant in crates/pivault-domain/src/code.rs):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_readme_error_table_is_the_generated_one() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let (begin, end) = ("<!-- codes:begin -->\n", "<!-- codes:end -->");
    let start = readme.find(begin).expect("README has <!-- codes:begin -->") + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("README has <!-- codes:end -->")
        + start;
    let fresh = markdown_table();
    if readme[start..stop] != fresh {
        println!("paste this between the markers in README.md:\n{begin}{fresh}{end}");
        panic!("the README error table differs from pivault_domain::code::markdown_table()");
    }
}

#[test]
fn internal_codes_are_500_and_storage_codes_503() {
    for s in ["storage_full", "storage_unavailable", "storage_busy"] {
        assert_eq!(Code::parse(s).map(Code::status), Some(503), "{s}");
    }
    for s in ["fault_injected", "dsr_state_corrupt", "rng_unavailable"] {
        assert_eq!(Code::parse(s).map(Code::status), Some(500), "{s}");
    }
}
