//! The master secret and OS randomness.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use rand::TryRngCore;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Length of the master secret in bytes (256 bits).
pub const MASTER_SECRET_LEN: usize = 32;

/// Fills `buf` from the operating system's CSPRNG (`getrandom(2)` on Linux).
///
/// Used for long-lived secrets (master secret, DEKs, API tokens, key ids). Per-field
/// nonces use the thread-local CSPRNG instead (see [`Dek::seal`](crate::Dek::seal)).
///
/// # Panics
/// If the OS refuses to provide randomness. There is no safe way to continue without it.
pub(crate) fn os_random(buf: &mut [u8]) {
    if rand::rngs::OsRng.try_fill_bytes(buf).is_err() {
        panic!("the operating system random number generator failed");
    }
}

/// The 32-byte (256-bit) root secret from which the [`KeyRing`](crate::KeyRing) derives the
/// key-encryption key and the blind-index key (HKDF-SHA256, RFC 5869).
///
/// Deliberately has no `Clone`, `Debug`, `Display` or serde impls, so it cannot be copied
/// around or printed by accident. The bytes live in a [`Zeroizing`] buffer and are wiped
/// when the value is dropped.
///
/// On disk it is 64 hex characters, optionally followed by a newline.
pub struct MasterSecret(Zeroizing<[u8; MASTER_SECRET_LEN]>);

impl MasterSecret {
    /// Wraps 32 raw bytes. The caller should zeroize its own copy.
    pub fn from_bytes(b: [u8; MASTER_SECRET_LEN]) -> Self {
        MasterSecret(Zeroizing::new(b))
    }

    /// A fresh random secret from the OS CSPRNG.
    ///
    /// # Panics
    /// If the OS random number generator fails.
    pub fn generate() -> Self {
        let mut b = Zeroizing::new([0u8; MASTER_SECRET_LEN]);
        os_random(&mut b[..]);
        MasterSecret(b)
    }

    pub(crate) fn bytes(&self) -> &[u8; MASTER_SECRET_LEN] {
        &self.0
    }

    /// Reads a secret stored as exactly 64 hex characters (either case), optionally
    /// followed by `\n` or `\r\n`, from `path`.
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] naming `path` if the file cannot be read or does not have
    /// that shape. The message never contains file contents.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let mut file = fs::File::open(path).map_err(|e| key_file_err(path, "cannot open", &e))?;
        // 64 hex + "\r\n" is 66 bytes; read one more to detect oversize files.
        let mut buf = Zeroizing::new(Vec::with_capacity(68));
        Read::by_ref(&mut file)
            .take(67)
            .read_to_end(&mut buf)
            .map_err(|e| key_file_err(path, "cannot read", &e))?;
        let body: &[u8] = match buf.as_slice() {
            [body @ .., b'\r', b'\n'] | [body @ .., b'\n'] => body,
            body => body,
        };
        if body.len() != 2 * MASTER_SECRET_LEN {
            return Err(CryptoError::KeyFile(format!(
                "{}: expected {} hex characters and an optional trailing newline",
                path.display(),
                2 * MASTER_SECRET_LEN
            )));
        }
        let mut out = Zeroizing::new([0u8; MASTER_SECRET_LEN]);
        hex::decode_to_slice(body, &mut out[..]).map_err(|_| {
            CryptoError::KeyFile(format!("{}: contains non-hex characters", path.display()))
        })?;
        Ok(MasterSecret(out))
    }

    /// Development convenience: loads the secret at `path` if the file exists; otherwise
    /// generates one and writes it there as 64 hex characters plus `\n`.
    ///
    /// The file is created with `create_new` (never overwrites; safe against a
    /// concurrent creator, which then wins and is loaded) and, on Unix, mode `0600`; the
    /// permissions are set again explicitly before any secret byte is written. If writing
    /// fails the half-written file is removed. The parent directory must exist.
    ///
    /// Returns the secret and `true` if it was created by this call.
    ///
    /// # Errors
    /// [`CryptoError::KeyFile`] naming `path` for any I/O or format problem.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = match opts.open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Self::load(path).map(|s| (s, false));
            }
            Err(e) => return Err(key_file_err(path, "cannot create", &e)),
        };
        let secret = Self::generate();
        let write = (|| -> io::Result<()> {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
            }
            let mut text = Zeroizing::new([0u8; 2 * MASTER_SECRET_LEN + 1]);
            hex::encode_to_slice(secret.bytes(), &mut text[..2 * MASTER_SECRET_LEN])
                .map_err(|_| io::Error::other("hex encoding failed"))?;
            text[2 * MASTER_SECRET_LEN] = b'\n';
            file.write_all(&text[..])?;
            file.sync_all()
        })();
        if let Err(e) = write {
            drop(file);
            let _ = fs::remove_file(path);
            return Err(key_file_err(path, "cannot write", &e));
        }
        Ok((secret, true))
    }
}

fn key_file_err(path: &Path, what: &str, e: &io::Error) -> CryptoError {
    CryptoError::KeyFile(format!("{}: {what}: {e}", path.display()))
}
