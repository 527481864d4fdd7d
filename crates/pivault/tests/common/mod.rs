//! Shared by the tests that drive the real `pivault` binary: the command with the repository's
//! policies, and `serve` on an ephemeral port. (Each test binary uses part of it.)
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

/// The repository's default policy file.
pub fn policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml")
}

/// `pivault` with the database, master key file, the repository's policy and staff policy,
/// and warnings-only logging.
pub fn pivault(url: &str, key_file: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pivault"));
    c.env("PIVAULT_DATABASE_URL", url)
        .env("PIVAULT_MASTER_KEY_FILE", key_file)
        .env("PIVAULT_POLICY", policy())
        .env(
            "PIVAULT_STAFF_POLICY",
            policy().with_file_name("staff.cedar"),
        )
        .env("RUST_LOG", "warn");
    c
}

/// A started `pivault serve`: the child, its base URL (`http://ADDR`), the stderr lines it
/// printed before listening, and the rest of its stderr (read it, or the child may block).
pub struct Started {
    pub child: Child,
    pub base: String,
    pub before: Vec<String>,
    pub rest: Lines<BufReader<ChildStderr>>,
}

/// Runs `cmd serve --bind 127.0.0.1:0` and waits for its `pivault listening on http://ADDR`
/// line on stderr.
pub fn start_serve(mut cmd: Command) -> Started {
    let mut child = cmd
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rest = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let base = loop {
        let Some(line) = rest.next() else {
            panic!("pivault serve exited before listening: {before:?}");
        };
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("pivault listening on ") {
            break addr.trim().to_string();
        }
        before.push(line);
    };
    Started {
        child,
        base,
        before,
        rest,
    }
}

/// A `pivault serve` killed when dropped.
pub struct Instance {
    pub child: Child,
    pub base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`start_serve`], draining the rest of stderr in a thread.
pub fn serve(cmd: Command) -> Instance {
    let s = start_serve(cmd);
    let rest = s.rest;
    std::thread::spawn(move || for _ in rest {});
    Instance {
        child: s.child,
        base: s.base,
    }
}
