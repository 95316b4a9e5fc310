//! `scalegrad info`: what this binary can run on.

use anyhow::Result;

use crate::backend::Backend;

/// Arguments of `scalegrad info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints the version and the compiled backends.
pub fn run(args: Args) -> Result<()> {
    let compiled: Vec<&str> = Backend::compiled().iter().map(|b| b.name()).collect();
    if args.json {
        let info = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "backends": compiled,
        });
        println!("{info}");
    } else {
        println!("scalegrad {}", env!("CARGO_PKG_VERSION"));
        println!("compiled backends: {}", compiled.join(", "));
    }
    Ok(())
}
