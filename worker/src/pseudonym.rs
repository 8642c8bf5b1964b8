//! Keyed-hash pseudonyms: the only form in which a patient id leaves the
//! worker.
//!
//! pseudonym = `<center>-` + the first 16 hex digits (64 bits) of
//! HMAC-SHA256(site key, patient id). Without the key, which stays at the
//! site, a pseudonym cannot be linked back to the id or recomputed from a
//! guessed id. The same key gives the same pseudonyms in every study; a site
//! that does not want studies linked uses one key per study.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Smallest accepted key, in bytes (the HMAC-SHA256 block output size).
pub const MIN_KEY_BYTES: usize = 32;

/// Errors while reading or creating a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error(
        "cannot access pseudonym key file {path}; create one with `radstudy-worker keygen --out {path}` if the site has none"
    )]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold a long enough hex key.
    #[error(
        "invalid pseudonym key file {path}: {problem}; create one with `radstudy-worker keygen --out {path}`"
    )]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// The problem with its content.
        problem: String,
    },
    /// `keygen` found a key file already in place.
    #[error(
        "pseudonym key file {path} already exists and was not overwritten, because a new key would give every patient a new pseudonym; keep it, or write the new key to another path"
    )]
    Exists {
        /// The key file.
        path: PathBuf,
    },
}

/// The site's secret pseudonym key.
#[derive(Clone)]
pub struct PseudonymKey {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never print it.
        f.write_str("PseudonymKey(<redacted>)")
    }
}

impl PseudonymKey {
    /// Reads a key file that contains the key as hex digits (whitespace ignored).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let hex_digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let invalid = |problem: String| KeyError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let bytes =
            hex::decode(&hex_digits).map_err(|error| invalid(format!("not hex: {error}")))?;
        Self::from_bytes(bytes).map_err(invalid)
    }

    /// Creates a key from raw bytes; at least [`MIN_KEY_BYTES`] long.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "key has {} bytes, at least {MIN_KEY_BYTES} are needed",
                bytes.len()
            ));
        }
        Ok(PseudonymKey { bytes })
    }

    /// Writes a new random 32-byte key as hex to `path`, failing if the file
    /// exists so that an existing key is never overwritten.
    pub fn generate(path: &Path) -> Result<Self, KeyError> {
        let mut bytes = vec![0u8; MIN_KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);

        let io_error = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                io_error(source)
            }
        })?;
        std::io::Write::write_all(&mut file, format!("{}\n", hex::encode(&bytes)).as_bytes())
            .map_err(io_error)?;
        Ok(PseudonymKey { bytes })
    }

    /// Returns the pseudonym of `patient_id` at `center_id`.
    pub fn pseudonym(&self, center_id: &str, patient_id: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.bytes) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
        };
        mac.update(patient_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{center_id}-{}", hex::encode(&digest[..8]))
    }

    /// Returns an identifier of this key that does not reveal it: the hex
    /// HMAC-SHA256 of a fixed tag under the key. The result cache keys on
    /// it, so that entries made under another key are never reused.
    pub fn identity(&self) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.bytes) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
        };
        // The NUL byte keeps the tag apart from any manifest patient id.
        mac.update(b"\0radstudy-pseudonym-key-identity-v1");
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PseudonymKey {
        PseudonymKey::from_bytes(vec![byte; 32]).expect("32 bytes is long enough")
    }

    #[test]
    fn pseudonym_matches_hmac_sha256_reference() {
        // Expected value from Python 3.11:
        // hmac.new(bytes([7]) * 32, b"STS_001", hashlib.sha256).hexdigest()[:16]
        assert_eq!(key(7).pseudonym("A", "STS_001"), "A-d708a63e2f137a47");
    }

    #[test]
    fn pseudonym_depends_on_key_and_id() {
        assert_ne!(key(1).pseudonym("A", "P1"), key(2).pseudonym("A", "P1"));
        assert_ne!(key(1).pseudonym("A", "P1"), key(1).pseudonym("A", "P2"));
        assert!(!key(1).pseudonym("A", "P1").contains("P1"));
    }

    #[test]
    fn pseudonym_key_too_short_is_rejected() {
        assert!(PseudonymKey::from_bytes(vec![0; 16]).is_err());
    }

    #[test]
    fn pseudonym_key_generate_then_load_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("site.key");
        let generated = PseudonymKey::generate(&path).expect("new key");
        let loaded = PseudonymKey::load(&path).expect("key reads back");
        assert_eq!(generated.pseudonym("A", "x"), loaded.pseudonym("A", "x"));
        assert!(
            PseudonymKey::generate(&path).is_err(),
            "an existing key is never overwritten"
        );
    }

    #[test]
    fn pseudonym_key_identity_depends_on_key_only() {
        assert_eq!(key(1).identity(), key(1).identity());
        assert_ne!(key(1).identity(), key(2).identity());
        assert_eq!(key(1).identity().len(), 64);
    }

    #[test]
    fn pseudonym_debug_redacts_key() {
        assert_eq!(format!("{:?}", key(9)), "PseudonymKey(<redacted>)");
    }
}
