//! Master-secret files, DEK cache, API tokens and the audit chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pivault_crypto::{
    chain_hash, ct_eq, new_api_token, token_hash, CryptoError, Dek, DekCache, KeyRing,
    MasterSecret, Suite, GENESIS,
};

/// A fresh empty directory under the system temp dir (removed by the guard).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pivault-crypto-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_or_create_writes_mode_0600_and_loads_the_same_secret_back() {
    let dir = TempDir::new();
    let path = dir.0.join("master.key");
    let (a, created) = MasterSecret::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));

    let (b, created) = MasterSecret::load_or_create(&path).unwrap();
    assert!(!created);
    let c = MasterSecret::load(&path).unwrap();
    // Same secret ⇔ same derived KEK id and blind index.
    let (ra, rb, rc) = (
        KeyRing::new(a, Suite::Aes256Gcm),
        KeyRing::new(b, Suite::Aes256Gcm),
        KeyRing::new(c, Suite::Aes256Gcm),
    );
    assert_eq!(ra.kek_id(), rb.kek_id());
    assert_eq!(ra.kek_id(), rc.kek_id());
    assert_eq!(ra.blind_index("e", "v"), rc.blind_index("e", "v"));
}

#[test]
fn load_accepts_hex_with_or_without_newline() {
    let dir = TempDir::new();
    let hex = "42".repeat(32);
    let expected = KeyRing::new(MasterSecret::from_bytes([0x42; 32]), Suite::Aes256Gcm);
    for (i, body) in [
        hex.clone(),
        format!("{hex}\n"),
        format!("{hex}\r\n"),
        hex.to_uppercase(),
    ]
    .iter()
    .enumerate()
    {
        let p = dir.0.join(format!("k{i}"));
        std::fs::write(&p, body).unwrap();
        let ring = KeyRing::new(MasterSecret::load(&p).unwrap(), Suite::Aes256Gcm);
        assert_eq!(ring.kek_id(), expected.kek_id());
    }
}

#[test]
fn load_rejects_bad_files_naming_the_path_but_not_the_contents() {
    let dir = TempDir::new();
    let bad = [
        "42".repeat(31),
        "42".repeat(33),
        format!("{}zz", "42".repeat(31)),
        format!("{}\n\n", "42".repeat(32)),
        format!(" {}", "42".repeat(32)),
    ];
    for (i, body) in bad.iter().enumerate() {
        let p = dir.0.join(format!("bad{i}"));
        std::fs::write(&p, body).unwrap();
        let err = MasterSecret::load(&p).err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, CryptoError::KeyFile(_)), "{i}");
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(!msg.contains("4242"), "{msg}");
    }
    let missing = dir.0.join("missing");
    assert!(matches!(
        MasterSecret::load(&missing),
        Err(CryptoError::KeyFile(m)) if m.contains("missing")
    ));
}

#[test]
fn load_or_create_in_a_missing_directory_fails_with_the_path() {
    let dir = TempDir::new();
    let p = dir.0.join("no/such/dir/master.key");
    let err = MasterSecret::load_or_create(&p).err().unwrap();
    assert!(matches!(&err, CryptoError::KeyFile(m) if m.contains("no/such/dir")));
}

fn dek(id: &str) -> Arc<Dek> {
    Arc::new(Dek::from_bytes(id, Suite::Aes256Gcm, [3u8; 32]))
}

#[test]
fn dek_cache_is_bounded_and_evicts_least_recently_used() {
    let c = DekCache::new(2);
    assert!(c.is_empty());
    c.insert("a/primary".into(), dek("a"));
    c.insert("b/primary".into(), dek("b"));
    assert_eq!(c.get("a/primary").unwrap().key_id(), "a"); // a is now most recent
    c.insert("c/primary".into(), dek("c"));
    assert_eq!(c.len(), 2);
    assert!(c.get("b/primary").is_none());
    assert!(c.get("a/primary").is_some());
    assert!(c.get("c/primary").is_some());
}

#[test]
fn dek_cache_evict_prefix_removes_only_that_subject() {
    let c = DekCache::new(10);
    c.insert("s1/primary".into(), dek("1p"));
    c.insert("s1/restricted".into(), dek("1r"));
    c.insert("s10/primary".into(), dek("10p"));
    c.insert("s2/primary".into(), dek("2p"));
    c.evict_prefix("s1/");
    assert_eq!(c.len(), 2);
    assert!(c.get("s1/primary").is_none());
    assert!(c.get("s10/primary").is_some());
    c.clear();
    assert_eq!(c.len(), 0);
    assert_eq!(c.capacity(), 10);
}

#[test]
fn dek_cache_drops_evicted_keys() {
    let c = DekCache::new(1);
    let d = dek("x");
    let weak = Arc::downgrade(&d);
    c.insert("x".into(), d);
    assert!(weak.upgrade().is_some());
    c.insert("y".into(), dek("y"));
    assert!(weak.upgrade().is_none(), "evicted DEK must be dropped");
}

#[test]
fn api_tokens_are_prefixed_random_and_hash_to_sha256() {
    let a = new_api_token();
    let b = new_api_token();
    assert_ne!(a, b);
    assert!(a.starts_with("pv_"));
    assert_eq!(a.len(), 3 + 64);
    // Expected from Python: hashlib.sha256(b"pv_test").hexdigest()
    assert_eq!(
        hex::encode(token_hash("pv_test")),
        "d3e9a0d57a0ab1f5e7c342e0c05fce290aca5592ee5531fce0f8a115b8bb9c92"
    );
    assert!(ct_eq(&token_hash(&a), &token_hash(&a)));
    assert!(!ct_eq(&token_hash(&a), &token_hash(&b)));
}

#[test]
fn ct_eq_compares_contents_and_lengths() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
}

#[test]
fn chain_hash_matches_known_answers() {
    // Expected values from Python:
    //   h1 = sha256(bytes(32) + struct.pack(">Q", 3) + b"abc")
    //   h2 = sha256(h1 + struct.pack(">Q", 0))
    assert_eq!(GENESIS, [0u8; 32]);
    let h1 = chain_hash(&GENESIS, b"abc");
    assert_eq!(
        hex::encode(h1),
        "8a295b0cbf1f5a594280696ad7707164e2b8beb0e614ad52bc7d78ff8ac12a82"
    );
    let h2 = chain_hash(&h1, b"");
    assert_eq!(
        hex::encode(h2),
        "4b82225c8e15fc425ffe3fd143253705c457bf1c6d8ad8fe81ca31fe46d04020"
    );
}

#[test]
fn chain_hash_depends_on_previous_link_and_entry_boundaries() {
    let a = chain_hash(&chain_hash(&GENESIS, b"ab"), b"c");
    let b = chain_hash(&chain_hash(&GENESIS, b"a"), b"bc");
    assert_ne!(a, b);
    assert_ne!(chain_hash(&GENESIS, b"x"), chain_hash(&[1u8; 32], b"x"));
}
