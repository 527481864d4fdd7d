//! Keys for tests: master secrets, key rings and master-key files; API keys with roles.

use pivault_crypto::{KeyRing, MasterSecret, Suite};
use std::path::Path;

/// A master secret of 32 bytes `seed` (deterministic: one seed, one key).
#[must_use]
pub fn master_secret(seed: u8) -> MasterSecret {
    MasterSecret::from_bytes([seed; 32])
}

/// A key ring (AES-256-GCM) over [`master_secret`]`(seed)`.
#[must_use]
pub fn key_ring(seed: u8) -> KeyRing {
    KeyRing::new(master_secret(seed), Suite::Aes256Gcm)
}

/// A key ring (AES-256-GCM) over the master key file at `path`, which must exist.
#[must_use]
pub fn key_ring_from_file(path: &Path) -> KeyRing {
    let (master, created) = MasterSecret::load_or_create(path).unwrap();
    assert!(!created, "no master key at {}", path.display());
    KeyRing::new(master, Suite::Aes256Gcm)
}

/// Writes a master key file (hex, as `pivault` reads it) holding 32 bytes `seed`.
pub fn write_master_key(path: &Path, seed: u8) {
    std::fs::write(path, format!("{}\n", hex::encode([seed; 32]))).unwrap();
}

/// Creates an API key on `vault` for `principal` with `roles` and `purposes` (actor `test`)
/// and returns the key.
#[cfg(feature = "app")]
pub async fn api_key(
    vault: &pivault_core::Vault,
    principal: &str,
    roles: &[&str],
    purposes: &[&str],
) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_string()).collect();
    let purposes: Vec<String> = purposes.iter().map(|p| (*p).to_string()).collect();
    vault
        .create_api_key("test", principal, &roles, &purposes)
        .await
        .unwrap()
}

/// [`api_key`] with every purpose of the vault's policy.
#[cfg(feature = "app")]
pub async fn api_key_all_purposes(
    vault: &pivault_core::Vault,
    principal: &str,
    roles: &[&str],
) -> String {
    let all: Vec<String> = vault
        .policy()
        .purposes()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_string()).collect();
    vault
        .create_api_key("test", principal, &roles, &all)
        .await
        .unwrap()
}
