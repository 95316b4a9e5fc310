//! Shared helpers of the integration tests: fixture paths and comparisons.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_gpt2::Gpt2;
use serde_json::Value;

/// Logits of ours and transformers' may differ by this much (f32, different summation
/// orders).
pub const LOGITS_TOLERANCE: f32 = 1e-4;
/// Losses may differ by this much.
pub const LOSS_TOLERANCE: f64 = 1e-5;

/// The three fixture models.
pub const MODELS: &[&str] = &["tiny-gpt2", "tiny-gpt2-bin", "tiny-gpt2-odd"];

/// `fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// `fixtures/expected/<name>.json`, parsed.
pub fn expected(name: &str) -> Value {
    let path = fixture("expected").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// A fixture model on flex.
/// A fixture model on flex with the CPU fast paths (`Execution::Host`, as the CLI runs
/// flex); tests of the device paths switch with `with_execution`.
pub fn load(name: &str) -> Gpt2 {
    Gpt2::from_pretrained(fixture(name), &Device::flex())
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
        .0
        .with_execution(scalegrad_ops::Execution::Host)
}

pub fn f32s(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

pub fn u32s(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_u64().expect("integer") as u32)
        .collect()
}

pub fn rows_u32(value: &Value) -> Vec<Vec<u32>> {
    value.as_array().expect("array").iter().map(u32s).collect()
}

pub fn ids_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let (batch, len) = (rows.len(), rows[0].len());
    let flat: Vec<i64> = rows.iter().flatten().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(flat, [batch, len]), device)
}

pub fn to_vec(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().expect("f32")
}

/// Largest absolute difference, asserting it is within `tolerance`.
pub fn assert_close(what: &str, rust: &[f32], python: &[f32], tolerance: f32) {
    assert_eq!(
        rust.len(),
        python.len(),
        "{what}: rust has {} values, python {}",
        rust.len(),
        python.len()
    );
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (r, p)) in rust.iter().zip(python).enumerate() {
        let d = (r - p).abs();
        // NaN counts as the worst difference.
        if d.is_nan() || d > worst {
            worst = d;
            at = i;
        }
    }
    assert!(
        worst <= tolerance,
        "{what}: max |rust - python| = {worst} at {at} (rust={}, python={}), tolerance {tolerance}",
        rust[at],
        python[at]
    );
}
