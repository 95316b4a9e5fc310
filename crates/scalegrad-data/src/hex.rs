//! Lower-case hexadecimal of digests (cache keys, fingerprints, hub checksums).

/// `bytes` as lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short digest of a serialisable key: the first 8 bytes of the SHA-256 of its JSON,
/// in hexadecimal (cache file and folder names).
pub(crate) fn short_digest(key: &impl serde::Serialize) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(key).expect("cache keys serialise");
    hex(&Sha256::digest(&json)[..8])
}
