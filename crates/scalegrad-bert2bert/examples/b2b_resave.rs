//! Loads a Hugging Face BERT2BERT directory and saves it back with `save_pretrained`
//! (config.json + model.safetensors with HF key names, tokenizer files copied), so that
//! `fixtures/make_fixtures.py --verify-saved DIR` can check that transformers loads it.
//!
//! Usage: `cargo run -p scalegrad-bert2bert --example b2b_resave -- FROM_DIR TO_DIR`.

use burn::tensor::Device;
use scalegrad_bert2bert::{copy_tokenizer_files, load_pretrained, save_pretrained};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = args.as_slice() else {
        return Err("usage: b2b_resave FROM_DIR TO_DIR".into());
    };
    let loaded = load_pretrained(from.as_ref(), &Device::flex())?;
    save_pretrained(&loaded.model, &loaded.config, to.as_ref())?;
    copy_tokenizer_files(from.as_ref(), to.as_ref())?;
    eprintln!("saved {} (from {}) to {to}", loaded.weights.display(), from);
    Ok(())
}
