//! The real `pivault` binary. Its path exists only in the binary crate's tests
//! (`env!("CARGO_BIN_EXE_pivault")`), so the caller passes it: `PivaultBin::new(env!(…))`.

use crate::data::{policy_path, staff_policy_path};
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

/// The `pivault` executable under test.
#[derive(Debug, Clone)]
pub struct PivaultBin {
    path: PathBuf,
}

impl PivaultBin {
    /// The binary at `path` (pass `env!("CARGO_BIN_EXE_pivault")`).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The executable's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `pivault` with the repository's policy and staff policy and warnings-only logging; no
    /// database or key chosen.
    #[must_use]
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.env("PIVAULT_POLICY", policy_path())
            .env("PIVAULT_STAFF_POLICY", staff_policy_path())
            .env("RUST_LOG", "warn");
        c
    }

    /// [`Self::command`] on the database `url` with the master key file `key_file`.
    #[must_use]
    pub fn with_db(&self, url: &str, key_file: &Path) -> Command {
        let mut c = self.command();
        c.env("PIVAULT_DATABASE_URL", url)
            .env("PIVAULT_MASTER_KEY_FILE", key_file);
        c
    }

    /// Creates an API key with `pivault keys create` on the database `url` (master key
    /// `key_file`) for `principal` with `roles` and `purposes`; returns the key it printed.
    #[must_use]
    pub fn api_key(
        &self,
        url: &str,
        key_file: &Path,
        principal: &str,
        roles: &[&str],
        purposes: &[&str],
    ) -> String {
        let out = self
            .with_db(url, key_file)
            .args(["keys", "create", "--principal", principal])
            .args([
                "--roles",
                &roles.join(","),
                "--purposes",
                &purposes.join(","),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// [`Self::api_key`] with every purpose of the repository's default policy.
    #[must_use]
    pub fn api_key_all_purposes(
        &self,
        url: &str,
        key_file: &Path,
        principal: &str,
        roles: &[&str],
    ) -> String {
        let all = crate::data::all_purposes();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.api_key(url, key_file, principal, roles, &all)
    }

    /// [`Self::command`] run in `dir` with the default database and key (`./data/` there):
    /// `PIVAULT_DATABASE_URL` removed, as a user would run it.
    #[must_use]
    pub fn in_dir(&self, dir: &Path) -> Command {
        let mut c = self.command();
        c.current_dir(dir).env_remove("PIVAULT_DATABASE_URL");
        c
    }
}

/// A started `pivault serve`: the child, its base URL (`http://ADDR`), the stderr lines it
/// printed before listening, and the rest of its stderr (read it, or the child may block).
pub struct Started {
    /// The process.
    pub child: Child,
    /// `http://ADDR`.
    pub base: String,
    /// Stderr lines before the listening line.
    pub before: Vec<String>,
    /// The rest of stderr.
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
            let _ = child.wait();
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
    /// The process.
    pub child: Child,
    /// `http://ADDR`.
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
