//! The repository's policies and the zh_CN data set, and slices of it.
//!
//! The data set lives next to the checkout, in `../shared/data/zh_CN-10k`. It is found by
//! walking up from the running test's `CARGO_MANIFEST_DIR` (and from this crate's) to the
//! first ancestor holding `shared/data/zh_CN-10k`, so it is found from any crate of the
//! workspace, from a git worktree placed beside the main checkout, and from the checkout's own
//! parent; `PIVAULT_TEST_DATA_DIR` overrides the search.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the data set's folder under `shared/data`.
pub const DATA_SET: &str = "zh_CN-10k";

/// Environment variable overriding where the data set is.
pub const DATA_DIR_VAR: &str = "PIVAULT_TEST_DATA_DIR";

/// The data set's files keyed by `account_id` (besides `users.csv` and `tickets.jsonl`).
pub const ACCOUNT_FILES: [&str; 5] = [
    "consent_events.csv",
    "orders.csv",
    "face_templates.csv",
    "business_contacts.csv",
    "icp_filings.csv",
];

/// The support tickets (JSON lines with an `account_id`).
pub const TICKETS: &str = "tickets.jsonl";

/// The nginx web log (combined format; the account id is the remote user, third field).
pub const WEBLOG: &str = "access.log";

/// The workspace root (the directory holding `policies/`).
#[must_use]
pub fn repo_root() -> PathBuf {
    // This crate is crates/pivault-testkit of the workspace.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn search_starts() -> Vec<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(d) = std::env::var("CARGO_MANIFEST_DIR") {
        starts.push(PathBuf::from(d));
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    starts
}

/// The zh_CN data set folder (`…/shared/data/zh_CN-10k`). Panics, naming where it looked, if
/// it is nowhere.
#[must_use]
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(DATA_DIR_VAR).filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        assert!(
            d.join("users.csv").is_file(),
            "{DATA_DIR_VAR}={} holds no users.csv",
            d.display()
        );
        return d;
    }
    let mut looked = Vec::new();
    for start in search_starts() {
        let start = start.canonicalize().unwrap_or(start);
        for dir in start.ancestors() {
            let p = dir.join("shared/data").join(DATA_SET);
            if p.join("users.csv").is_file() {
                return p;
            }
            looked.push(p);
        }
    }
    panic!(
        "the shared data set {DATA_SET} is missing: looked for shared/data/{DATA_SET} in every \
         ancestor of the crate ({}); put it beside the checkout (../shared/data/{DATA_SET}) or \
         set {DATA_DIR_VAR}",
        looked
            .first()
            .map_or_else(String::new, |p| p.display().to_string())
    );
}

/// The repository's default policy file (`policies/default.toml`).
#[must_use]
pub fn policy_path() -> PathBuf {
    repo_root().join("policies/default.toml")
}

/// The repository's Cedar staff policy (`policies/staff.cedar`).
#[must_use]
pub fn staff_policy_path() -> PathBuf {
    repo_root().join("policies/staff.cedar")
}

/// The repository's default policy, parsed.
#[must_use]
pub fn load_policy() -> pivault_domain::policy::Policy {
    pivault_domain::policy::Policy::parse(&std::fs::read_to_string(policy_path()).unwrap()).unwrap()
}

/// Every purpose the default policy declares, in order.
#[must_use]
pub fn all_purposes() -> Vec<String> {
    load_policy()
        .purposes()
        .iter()
        .map(|p| p.id.clone())
        .collect()
}

/// One CSV file as rows of (column → value).
#[must_use]
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Writes into `out` (created) a slice of the data set: the first `users` rows of
/// `users.csv` and, of each of `files` (names from [`ACCOUNT_FILES`] and/or [`TICKETS`]), the
/// rows about those accounts, headers kept. Returns `out`.
pub fn write_slice(out: &Path, users: usize, files: &[&str]) -> PathBuf {
    let src = data_dir();
    std::fs::create_dir_all(out).unwrap();
    let mut r = csv::Reader::from_path(src.join("users.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "account_id").unwrap();
    let mut w = csv::Writer::from_path(out.join("users.csv")).unwrap();
    w.write_record(&headers).unwrap();
    let mut accounts = HashSet::new();
    for rec in r.records().take(users) {
        let rec = rec.unwrap();
        accounts.insert(rec[col].to_string());
        w.write_record(&rec).unwrap();
    }
    w.flush().unwrap();
    for &name in files {
        if name == WEBLOG {
            let log = std::fs::read_to_string(src.join(name)).unwrap();
            let mut f = std::fs::File::create(out.join(name)).unwrap();
            for l in log.lines() {
                if l.split(' ').nth(2).is_some_and(|a| accounts.contains(a)) {
                    writeln!(f, "{l}").unwrap();
                }
            }
            continue;
        }
        if name == TICKETS {
            let tickets = std::fs::read_to_string(src.join(name)).unwrap();
            let mut f = std::fs::File::create(out.join(name)).unwrap();
            for l in tickets.lines() {
                let t: serde_json::Value = serde_json::from_str(l).unwrap();
                if t["account_id"]
                    .as_str()
                    .is_some_and(|a| accounts.contains(a))
                {
                    writeln!(f, "{l}").unwrap();
                }
            }
            continue;
        }
        let mut r = csv::Reader::from_path(src.join(name)).unwrap();
        let headers = r.headers().unwrap().clone();
        let col = headers
            .iter()
            .position(|h| h == "account_id")
            .unwrap_or_else(|| panic!("{name} has no account_id column"));
        let mut w = csv::Writer::from_path(out.join(name)).unwrap();
        w.write_record(&headers).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            if accounts.contains(&rec[col]) {
                w.write_record(&rec).unwrap();
            }
        }
        w.flush().unwrap();
    }
    out.to_path_buf()
}

/// A slice written once per test process into the temp directory: the first `users` accounts
/// and every file about them ([`ACCOUNT_FILES`], [`TICKETS`] and [`WEBLOG`]).
#[derive(Debug, Clone)]
pub struct Slice {
    dir: PathBuf,
}

impl Slice {
    /// Writes the slice of the first `users` accounts to a per-process folder named `name`.
    #[must_use]
    pub fn write(name: &str, users: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let mut files: Vec<&str> = ACCOUNT_FILES.to_vec();
        files.push(TICKETS);
        files.push(WEBLOG);
        write_slice(&dir, users, &files);
        Self { dir }
    }

    /// The slice's folder (what `pivault import` takes).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rows of one of its CSV files.
    #[must_use]
    pub fn rows(&self, file: &str) -> Vec<HashMap<String, String>> {
        read_csv(&self.dir.join(file))
    }

    /// Rows of `users.csv`.
    #[must_use]
    pub fn users(&self) -> Vec<HashMap<String, String>> {
        self.rows("users.csv")
    }

    /// Rows of `consent_events.csv`.
    #[must_use]
    pub fn consents(&self) -> Vec<HashMap<String, String>> {
        self.rows("consent_events.csv")
    }

    /// Rows of `orders.csv`.
    #[must_use]
    pub fn orders(&self) -> Vec<HashMap<String, String>> {
        self.rows("orders.csv")
    }

    /// The lines of the slice's `access.log`.
    #[must_use]
    pub fn weblog_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(WEBLOG))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The latest consent action (`grant` / `withdraw`) of `account` for `purpose` in the
    /// ledger, if any.
    #[must_use]
    pub fn latest_consent(&self, account: &str, purpose: &str) -> Option<String> {
        self.consents()
            .into_iter()
            .filter(|c| c["account_id"] == account && c["purpose"] == purpose)
            .max_by(|a, b| a["at"].cmp(&b["at"]))
            .map(|c| c["action"].clone())
    }
}

/// The version of the fixture policy written by [`write_material_change_policy`].
pub const MATERIAL_CHANGE_VERSION: &str = "2025-06-01";

/// The summary of the material change of [`MATERIAL_CHANGE_VERSION`] (purpose `marketing`).
pub const MATERIAL_CHANGE_SUMMARY: &str =
    "Product promotion now also by SMS to the mobile number, and by partners on our behalf";

/// Writes into `dir` (created) a test fixture: the repository's default policy published as a
/// new version [`MATERIAL_CHANGE_VERSION`] (its `[policy] version` and one more
/// `[[policy_version]]` entry) whose one change, [`MATERIAL_CHANGE_SUMMARY`], is material for
/// the purpose `marketing` (policy §X; PIPL Art. 14 para. 2), with the policy's `text/`
/// directory copied beside it. Derived from `policies/default.toml` each time, so it cannot
/// drift from it. Returns the policy file's path (`dir/policy.toml`).
pub fn write_material_change_policy(dir: &Path) -> PathBuf {
    let root = repo_root().join("policies");
    let src = std::fs::read_to_string(root.join("default.toml")).unwrap();
    let header = "\nversion = \"2024-12-04\"";
    assert!(
        src.contains(header),
        "default.toml's [policy] version moved"
    );
    let mut out = src.replacen(
        header,
        &format!("\nversion = \"{MATERIAL_CHANGE_VERSION}\""),
        1,
    );
    out.push_str(&format!(
        "\n[[policy_version]]\nversion = \"{MATERIAL_CHANGE_VERSION}\"\npublished = \"{MATERIAL_CHANGE_VERSION}\"\n\n\
         [[policy_version.change]]\nsummary = \"{MATERIAL_CHANGE_SUMMARY}\"\nmaterial = true\npurposes = [\"marketing\"]\n"
    ));
    std::fs::create_dir_all(dir.join("text")).unwrap();
    for e in std::fs::read_dir(root.join("text")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("text").join(e.file_name())).unwrap();
    }
    let path = dir.join("policy.toml");
    std::fs::write(&path, out).unwrap();
    path
}
