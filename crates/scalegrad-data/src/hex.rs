//! Lower-case hexadecimal of digests (cache keys, fingerprints, hub checksums).

/// `bytes` as lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
