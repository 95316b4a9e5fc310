//! Loads a Hugging Face GPT-2 directory and saves it again with
//! `Gpt2::save_pretrained` (what a fine-tuning run does at the end), so that
//! `fixtures/check_transformers_loads.py` can load the result with transformers.
//!
//! Usage: `cargo run -p scalegrad-gpt2 --example resave -- <model dir> <output dir>`.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::tensor::Device;
use scalegrad_gpt2::Gpt2;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [source, target] = args.as_slice() else {
        eprintln!("usage: gpt2_resave <model dir> <output dir>");
        return ExitCode::FAILURE;
    };
    let result = Gpt2::from_pretrained(source, &Device::flex())
        .and_then(|(model, _)| model.save_pretrained(target, Some(source)));
    match result {
        Ok(()) => {
            eprintln!("saved {} to {}", source.display(), target.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
