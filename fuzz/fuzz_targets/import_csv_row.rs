//! The CSV import row parsers: `pivault_core::import::parse_csv_row` for each data-set file.
//!
//! First byte: which file (mod 6) and, if bit 3 is set, whether the input's first record is
//! the header (otherwise the data set's real header is used). The rest is CSV; every record is
//! parsed. Asserts: never panics; an accepted row writes at least one field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pivault_core::import::{parse_csv_row, CsvFile};
use pivault_domain::policy::Policy;
use std::sync::OnceLock;

fn policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        Policy::parse(include_str!("../../policies/default.toml"))
            .unwrap_or_else(|e| panic!("policies/default.toml: {e:?}"))
    })
}

/// The header line of each data-set file (`shared/data/zh_CN-10k`, or `PIVAULT_FUZZ_DATA`),
/// read once, in the order of [`CsvFile::ALL`].
fn headers() -> &'static [csv::StringRecord] {
    static H: OnceLock<Vec<csv::StringRecord>> = OnceLock::new();
    H.get_or_init(|| {
        let dir = std::env::var_os("PIVAULT_FUZZ_DATA").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/zh_CN-10k"),
            std::path::PathBuf::from,
        );
        CsvFile::ALL
            .iter()
            .map(|f| {
                let path = dir.join(f.name());
                let mut r = csv::Reader::from_path(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                r.headers()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .clone()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(sel) % CsvFile::ALL.len();
    let file = CsvFile::ALL[n];
    let own_header = sel & 0x08 != 0;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(own_header)
        .flexible(true)
        .from_reader(rest);
    let head = if own_header {
        match reader.headers() {
            Ok(h) => h.clone(),
            Err(_) => return,
        }
    } else {
        headers()[n].clone()
    };
    for rec in reader.records().take(64) {
        let Ok(rec) = rec else { continue };
        if let Ok(n) = parse_csv_row(file, &head, &rec, policy()) {
            assert!(n >= 1);
        }
    }
});
