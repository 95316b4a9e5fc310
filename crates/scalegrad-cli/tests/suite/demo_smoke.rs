//! A reduced demo, run in every CI build so the wiring of data, tokenizer training,
//! models, losses, the training loop, checkpoints, evaluation and the run folder never
//! breaks: the demo configs with a few steps and small evaluation sets.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{self, events, json, run, succeeded, trained_tokenizer};
use serde_json::Value;

fn demo_config(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../configs/demo")
            .join(name),
    )
    .unwrap()
}

/// The demo config with small evaluation sets, written into `dir`.
fn reduced(name: &str, dir: &Path) -> PathBuf {
    let text = demo_config(name)
        .replace("max_valid_examples = 64", "max_valid_examples = 8")
        .replace("max_windows = 64", "max_windows = 2")
        .replace("max_continuations = 100", "max_continuations = 4")
        .replace("max_examples = 100", "max_examples = 4")
        .replace("bootstrap_samples = 1000", "bootstrap_samples = 20")
        .replace("log_every = 10", "log_every = 1");
    assert_ne!(text, demo_config(name));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn scalegrad(args: &[&str]) -> Output {
    run(common::scalegrad().args(args).env("HF_HUB_OFFLINE", "1"))
}

fn train(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    scalegrad(&args)
}

#[test]
fn open_ended_demo_runs_end_to_end_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = reduced("open-ended-2-sg0.2.toml", tmp.path());
    let out = tmp.path().join("results");
    let run = out.join("open-ended/sg0.2");

    // Interrupted after one step...
    succeeded(&train(&config, &out, &["--max-steps", "1"]));
    assert!(run.join("config.toml").exists(), "config written first");
    assert!(run.join("checkpoints/step-0000001/model.bpk").exists());
    std::fs::remove_file(run.join("metrics.json")).unwrap();
    // ...a second call must not silently start over or continue...
    let refused = train(&config, &out, &["--max-steps", "2"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--resume") && message.contains("--restart"),
        "{message}"
    );
    // ...and --resume continues from step 1.
    let resumed = train(&config, &out, &["--max-steps", "2", "--resume"]);
    succeeded(&resumed);
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming from"));

    let steps: Vec<u64> = events(&run)
        .iter()
        .filter(|e| e["event"] == "train")
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec![1, 2],
        "one train event per step, none lost or repeated"
    );

    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics["experiment"], "open-ended");
    assert_eq!(metrics["objective"]["kind"], "scalegrad");
    assert_eq!(metrics["checkpoint"]["source"], "best");
    assert_eq!(metrics["provenance"]["steps"], 2);
    let o = &metrics["open_ended"];
    assert_eq!(o["next_token"]["windows"], 2);
    assert_eq!(o["next_token"]["metrics"]["positions"], 2 * 256);
    let ppl = o["next_token"]["perplexity"].as_f64().unwrap();
    // After two steps the model is close to uniform over the 4096-entry vocabulary.
    assert!(ppl > 500.0 && ppl < 20000.0, "perplexity {ppl}");
    let greedy = &o["continuations"][0];
    assert_eq!(greedy["decoding"], "greedy");
    assert_eq!(greedy["count"], 4);
    assert_eq!(greedy["token"]["tokens"], 400);
    for key in ["seq_rep_4", "uniq_seq"] {
        assert!(greedy["token"][key].is_number(), "{key} in {greedy}");
        assert!(greedy["human_token"][key].is_number(), "human {key}");
    }
    assert!(run.join("best/config.json").exists() && run.join("best/tokenizer.json").exists());
    let samples = std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 4);

    // A finished run is not redone.
    let again = train(&config, &out, &[]);
    succeeded(&again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("is finished"));
}

/// A finished run's metrics without the provenance (clocks, throughput).
fn numbers(run: &Path) -> Value {
    let mut metrics = json(&run.join("metrics.json"));
    metrics.as_object_mut().unwrap().remove("provenance");
    metrics
}

#[test]
fn summarization_demo_runs_end_to_end_and_repeats_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = reduced("summarization-2-sg0.8.toml", tmp.path());
    let out = tmp.path().join("results");
    succeeded(&train(&config, &out, &["--max-steps", "2"]));
    let run = out.join("summarization/sg0.8");
    // Same config, fresh output folder: the trained WordPiece vocabulary and every
    // number are identical (the tokenizer trainer's hash-order tie-break is fixed).
    let again = tmp.path().join("again");
    succeeded(&train(&config, &again, &["--max-steps", "2"]));
    let tokenizer = |out: &Path| trained_tokenizer(&out.join("summarization"));
    assert!(
        tokenizer(&out) == tokenizer(&again),
        "tokenizer.json differs"
    );
    assert_eq!(numbers(&run), numbers(&again.join("summarization/sg0.8")));
    let metrics = json(&run.join("metrics.json"));
    let s = &metrics["summarization"];
    assert_eq!(s["examples"], 4);
    assert_eq!(s["rouge"]["count"], 4);
    assert_eq!(s["rouge"]["use_stemmer"], true);
    for t in ["rouge1", "rouge2", "rougeL", "rougeLsum"] {
        let f = s["rouge"][t]["fmeasure"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f), "{t} = {f}");
    }
    assert_eq!(s["generation"]["num_beams"], 4);
    assert!(s["references"]["novel"][1].as_f64().unwrap() > 0.0);
    let valid: Vec<Value> = events(&run)
        .into_iter()
        .filter(|e| e["event"] == "valid")
        .collect();
    assert_eq!(valid.len(), 1);
    assert!(run.join("best/model.safetensors").exists());
}

#[test]
fn the_before_fine_tuning_row_evaluates_without_training() {
    let tmp = tempfile::tempdir().unwrap();
    let config = reduced("open-ended-0-before.toml", tmp.path());
    let out = tmp.path().join("results");
    succeeded(&train(&config, &out, &[]));
    let run = out.join("open-ended/before");
    let metrics = json(&run.join("metrics.json"));
    assert_eq!(metrics["checkpoint"]["source"], "initial");
    assert_eq!(metrics["provenance"]["steps"], 0);
    assert!(!run.join("checkpoints").exists());
}

#[test]
fn bad_configs_fail_before_any_work_naming_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("\ngamma = 0.2", "\ngamma = 2.0", "objective.gamma"),
        ("block_size = 128", "block_size = 4096", "data.block_size"),
        ("block_size = 128", "block_size = 128\ncolour = 1", "colour"),
        (
            "config = \"demo\"",
            "config = \"demo\"\ntrain_split = \"nope\"",
            "nope",
        ),
    ];
    for (from, to, needle) in cases {
        let path = tmp.path().join("bad.toml");
        std::fs::write(
            &path,
            demo_config("open-ended-2-sg0.2.toml").replacen(from, to, 1),
        )
        .unwrap();
        let out = train(&path, &tmp.path().join("results"), &[]);
        assert!(!out.status.success(), "{to} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml") || needle == "nope", "{err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let run = tmp.path().join("results/open-ended/sg0.2");
        assert!(!run.join("checkpoints").exists(), "work started for {to}");
    }
    // A summary length beyond the decoder's positions (known once the model is built)
    // fails before training, not in the evaluation after it.
    let path = tmp.path().join("long.toml");
    std::fs::write(
        &path,
        demo_config("summarization-2-sg0.8.toml").replacen(
            "[evaluation]",
            "[evaluation]\nmax_length = 600",
            1,
        ),
    )
    .unwrap();
    let out = train(&path, &tmp.path().join("results"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "max_length = 600 was accepted");
    assert!(
        err.contains("evaluation.max_length") && err.contains("decoder's 512 positions"),
        "{err}"
    );
    assert!(
        !tmp.path()
            .join("results/summarization/sg0.8/checkpoints")
            .exists(),
        "training started"
    );
}

/// `--restart` deletes nothing but a run folder: a run name of `..` (which would be the
/// whole output folder) is a config error, and a folder at the run's path that holds no
/// run is refused; both leave every file where it was.
#[test]
fn restart_never_deletes_what_is_not_a_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let earlier = out.join("open-ended/mle/metrics.json");
    std::fs::create_dir_all(earlier.parent().unwrap()).unwrap();
    std::fs::write(&earlier, "{}").unwrap();
    let config = |name: &str| {
        let path = tmp.path().join("restart.toml");
        std::fs::write(
            &path,
            demo_config("open-ended-2-sg0.2.toml").replacen(
                "name = \"sg0.2\"",
                &format!("name = \"{name}\""),
                1,
            ),
        )
        .unwrap();
        path
    };
    for name in ["..", "."] {
        let failed = train(&config(name), &out, &["--restart"]);
        assert!(!failed.status.success(), "run.name {name:?} was accepted");
        let err = String::from_utf8_lossy(&failed.stderr);
        assert!(err.contains("run.name"), "{err}");
        assert!(earlier.exists(), "run.name {name:?} deleted an earlier run");
    }
    let precious = out.join("open-ended/notes/precious.txt");
    std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
    std::fs::write(&precious, "mine").unwrap();
    let failed = train(&config("notes"), &out, &["--restart"]);
    assert!(
        !failed.status.success(),
        "a folder without a run was deleted"
    );
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("holds no run") && err.contains("notes"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "mine");
}

/// Training, evaluation and a short greedy decode on wgpu (Mesa's software Vulkan in
/// CI), so the device execution paths (burn's AdamW, statistics and clipping on the
/// device, the chunked LM head and loss, chunked next-token evaluation, decoding on the
/// device) run in every CI run, compared with flex from one set of weights (scratch
/// initialisation draws from the device's generator, which differs between backends):
/// three training steps from a flex-trained model log losses within 1e-3 (relative) on
/// both, and that model evaluated on both gives perplexity within 1e-3 and identical
/// greedy continuations.
///
/// The wgpu run's own evaluation first asks for more than the device holds in one buffer,
/// as the H200 run did with the `full` preset: 40 windows of 256 tokens at once
/// are 160 MiB of logits, above the 128 MiB that wgpu allows one storage buffer on Mesa's
/// software Vulkan. The run stops with one message naming the keys to lower, keeps its
/// checkpoints and best model, and `--resume` with a smaller `evaluation.chunk_mib` only
/// evaluates. The wgpu run records its adapter, and warns once where that is software.
#[cfg(feature = "wgpu")]
#[test]
fn train_steps_and_decoding_on_wgpu_agree_with_flex() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(reduced("open-ended-2-sg0.2.toml", tmp.path()))
        .unwrap()
        .replace("max_windows = 2", "max_windows = 1")
        .replace("max_continuations = 4", "max_continuations = 2")
        .replace("continuation_len = 100", "continuation_len = 8")
        .replace("max_valid_examples = 8", "max_valid_examples = 2");
    // One output folder (so one cached tokenizer), one run name per backend.
    let out = tmp.path().join("results");
    let config = |name: &str| {
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            text.replace("name = \"sg0.2\"", &format!("name = \"{name}\"")),
        )
        .unwrap();
        path
    };
    succeeded(&train(
        &config("flex"),
        &out,
        &["--max-steps", "2", "--backend", "flex"],
    ));
    let best = out.join("open-ended/flex/best");

    // Three more steps from those weights on each backend (the demo has no dropout),
    // with the LM head and loss in 4 MiB chunks (the logits are 32 MiB).
    let text = {
        let start = text.find("source = \"scratch\"").unwrap();
        let end = text.find("[data]").unwrap();
        let source = format!("source = {:?}\n\n", best.to_str().unwrap());
        format!("{}{source}{}", &text[..start], &text[end..])
            .replace("[training]\n", "[training]\nchunk_mib = 4\n")
    };
    let train_losses = |run: &Path| -> Vec<f64> {
        events(run)
            .iter()
            .filter(|e| e["event"] == "train")
            .map(|e| e["loss"].as_f64().unwrap())
            .collect()
    };
    let tuned = |backend: &str, edit: &dyn Fn(&str) -> String| {
        let name = format!("tuned{backend}");
        let path = tmp.path().join(format!("{name}.toml"));
        let named = text.replace("name = \"sg0.2\"", &format!("name = \"{name}\""));
        std::fs::write(&path, edit(&named)).unwrap();
        (path, out.join(format!("open-ended/{name}")))
    };
    let three_steps = |backend| ["--max-steps", "3", "--backend", backend];
    let (path, flex) = tuned("flex", &str::to_string);
    succeeded(&train(&path, &out, &three_steps("flex")));
    let provenance = &json(&flex.join("metrics.json"))["provenance"];
    assert!(provenance.get("adapter").is_none(), "{provenance}");

    // On wgpu, first with the evaluation in one 160 MiB piece.
    let too_big = |config: &str| {
        let (training, evaluation) = config.split_at(config.find("[evaluation]").unwrap());
        let edited = format!(
            "{training}{}",
            evaluation
                .replace("max_windows = 1\n", "max_windows = 40\n")
                .replace("batch_size = 16\n", "batch_size = 40\n")
        );
        assert_eq!(edited.matches("= 40\n").count(), 2, "{edited}");
        edited
    };
    let (path, wgpu) = tuned("wgpu", &too_big);
    let err = common::failure(&train(&path, &out, &three_steps("wgpu")));
    assert!(
        err.contains("evaluation asked for a buffer larger than this device allows in one piece")
            && err.contains("lower evaluation.batch_size or evaluation.chunk_mib")
            && err.contains("rerun with --resume")
            && err.contains("best model is kept"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(wgpu.join("best/model.safetensors").is_file());
    assert!(std::fs::read_dir(wgpu.join("checkpoints")).unwrap().count() > 0);
    assert!(!wgpu.join("metrics.json").exists());
    // The advice taken: smaller chunks of the same evaluation; the rerun trains no
    // further step.
    let trained = train_losses(&wgpu);
    let (path, _) = tuned("wgpu", &|config| {
        too_big(config).replace("[evaluation]\n", "[evaluation]\nchunk_mib = 16\n")
    });
    let mut resume = three_steps("wgpu").to_vec();
    resume.push("--resume");
    succeeded(&train(&path, &out, &resume));
    assert_eq!(train_losses(&wgpu), trained, "the rerun trained again");
    let metrics = json(&wgpu.join("metrics.json"));
    assert_eq!(metrics["provenance"]["backend"], "wgpu");
    assert_eq!(metrics["open_ended"]["next_token"]["windows"], 40);
    assert_eq!(
        metrics["open_ended"]["continuations"][0]["token"]["tokens"],
        16
    );
    // The adapter is named, and a software one (Mesa's llvmpipe, as in CI) was warned
    // about once; a GPU would not be.
    let adapter = metrics["provenance"]["adapter"].as_str().unwrap();
    let warnings = err.matches("which is no GPU but software").count();
    assert_eq!(
        warnings,
        usize::from(adapter.starts_with("llvmpipe")),
        "{err}"
    );

    let losses = [train_losses(&flex), trained];
    assert_eq!(losses[0].len(), 3, "{losses:?}");
    assert_eq!(losses[1].len(), 3, "{losses:?}");
    for (flex, wgpu) in losses[0].iter().zip(&losses[1]) {
        assert!(
            flex.is_finite() && (flex - wgpu).abs() <= 1e-3 * flex,
            "training losses: flex {:?}, wgpu {:?}",
            losses[0],
            losses[1]
        );
    }

    // The same weights evaluated on both backends.
    let mut evaluated = Vec::new();
    for backend in ["flex", "wgpu"] {
        let name = format!("eval{backend}");
        succeeded(&scalegrad(&[
            "eval",
            "--config",
            config(&name).to_str().unwrap(),
            "--model",
            best.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--backend",
            backend,
        ]));
        evaluated.push(out.join(format!("open-ended/{name}-eval")));
    }
    let perplexity = |run: &Path| {
        json(&run.join("metrics.json"))["open_ended"]["next_token"]["perplexity"]
            .as_f64()
            .unwrap()
    };
    let (a, b) = (perplexity(&evaluated[0]), perplexity(&evaluated[1]));
    assert!(
        a.is_finite() && (a - b).abs() <= 1e-3 * a,
        "perplexity: flex {a}, wgpu {b}"
    );
    let continuations = |run: &Path| -> Vec<Value> {
        std::fs::read_to_string(run.join("samples.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["continuation_ids"].clone())
            .collect()
    };
    let flex = continuations(&evaluated[0]);
    assert_eq!(flex.len(), 2);
    assert_eq!(flex, continuations(&evaluated[1]), "greedy continuations");
}
