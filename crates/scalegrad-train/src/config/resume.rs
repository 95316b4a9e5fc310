//! What a checkpoint records of its config, so that `--resume` continues only the run
//! that made it.

use super::RunConfig;

/// Keys that may change when a run resumes: they affect evaluation, logging, the run's
/// label or how a step is laid out in memory, never the trained weights. Everything else
/// (data, model, tokenizer, objective, optimiser, schedule, batch, steps, validation
/// cadence, seed) is part of what the checkpoints mean.
pub const RESUMABLE_KEYS: &[&str] = &[
    "run.name",
    "run.description",
    "run.eval_only",
    "data.test_split",
    "training.log_every",
    "training.checkpoint_every",
    "training.chunk_mib",
    "evaluation",
];

impl RunConfig {
    /// The keys that shape training, flattened to dotted names (`optimizer.lr`), with
    /// their values: what a checkpoint records and `--resume` compares.
    pub fn training_keys(&self) -> serde_json::Map<String, serde_json::Value> {
        fn flatten(
            prefix: &str,
            value: serde_json::Value,
            out: &mut serde_json::Map<String, serde_json::Value>,
        ) {
            if RESUMABLE_KEYS.contains(&prefix) {
                return;
            }
            match value {
                serde_json::Value::Object(map) if !map.is_empty() => {
                    for (key, value) in map {
                        let name = if prefix.is_empty() {
                            key
                        } else {
                            format!("{prefix}.{key}")
                        };
                        flatten(&name, value, out);
                    }
                }
                other => {
                    out.insert(prefix.to_string(), other);
                }
            }
        }
        let mut out = serde_json::Map::new();
        flatten(
            "",
            serde_json::to_value(self).expect("a parsed config serialises"),
            &mut out,
        );
        out
    }
}

/// Training keys added after checkpoints were first written, with the value that
/// reproduces what a run made before them did: a checkpoint without the key counts as
/// having that value, so it still resumes.
const ADDED_KEYS: &[(&str, &str)] = &[("training.precision", "f32")];

/// The training keys whose values differ between a checkpoint's record (`saved`) and a
/// config's ([`RunConfig::training_keys`]), as `key: saved -> now` lines (keys only one
/// side has count too).
pub fn changed_training_keys(
    saved: &serde_json::Map<String, serde_json::Value>,
    now: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&serde_json::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
    let added = |key: &str| {
        ADDED_KEYS
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| serde_json::Value::from(*value))
    };
    let saved_value = |k: &str| saved.get(k).cloned().or_else(|| added(k));
    keys.into_iter()
        .filter(|k| saved_value(k).as_ref() != now.get(*k))
        .map(|k| format!("{k}: {} -> {}", show(saved.get(k)), show(now.get(k))))
        .collect()
}
