//! Fixture loading shared by the parity tests.

use std::io::Read;
use std::path::PathBuf;

/// Path of a committed fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Reads a fixture, gunzipping `.gz` files.
pub fn read_fixture(name: &str) -> String {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (regenerate with `cargo xtask fixtures scalegrad-metrics`)",
            path.display()
        )
    });
    if name.ends_with(".gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("gunzipping {}: {e}", path.display()));
        text
    } else {
        String::from_utf8(bytes).expect("fixture is UTF-8")
    }
}
