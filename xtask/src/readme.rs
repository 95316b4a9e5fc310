//! `cargo xtask readme`: regenerates the parts of README.md that are derived from the
//! repository (the table of presets and their runs, from `configs/`). The test below
//! fails when the committed README is stale, in the spirit of rust-analyzer's
//! `ensure_file_contents`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::reproduce::preset_runs;
use crate::util::root;

const BEGIN: &str = "<!-- presets:begin";
const END: &str = "<!-- presets:end -->";

/// The presets table: one row per preset folder under `configs/`.
pub fn presets_table() -> Result<String> {
    let mut presets: Vec<String> = std::fs::read_dir(root().join("configs"))
        .context("reading configs/")?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // The demo first (the README's first command), then alphabetical.
    presets.sort_by_key(|p| (p != "demo", p.clone()));
    let mut table =
        String::from("| preset | open-ended runs | summarization runs |\n|---|---|---|\n");
    for preset in presets {
        let runs = preset_runs(&preset)?;
        let names = |experiment: &str| {
            runs.iter()
                .filter(|r| r.experiment == experiment)
                .map(|r| format!("`{}`", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            table,
            "| [`{preset}`](configs/{preset}) | {} | {} |",
            names("open-ended"),
            names("summarization")
        )?;
    }
    Ok(table)
}

/// `readme` with the generated section replaced.
pub fn regenerate(readme: &str) -> Result<String> {
    let start = readme
        .find(BEGIN)
        .context("README.md has no `<!-- presets:begin` marker")?;
    let body = start
        + readme[start..]
            .find('\n')
            .context("unterminated presets marker")?
        + 1;
    let Some(end) = readme[body..].find(END).map(|i| body + i) else {
        bail!("README.md has no `{END}` marker after `{BEGIN}`");
    };
    Ok(format!(
        "{}{}{}",
        &readme[..body],
        presets_table()?,
        &readme[end..]
    ))
}

/// Entry point of `cargo xtask readme`.
pub fn run() -> Result<()> {
    let path = root().join("README.md");
    let old = std::fs::read_to_string(&path).context("reading README.md")?;
    let new = regenerate(&old)?;
    if new == old {
        eprintln!("README.md is up to date");
        return Ok(());
    }
    write_atomic(&path, &new)?;
    eprintln!("README.md updated");
    Ok(())
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    scalegrad_fs::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_presets_table_is_current() {
        let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
        let fresh = regenerate(&readme).unwrap();
        assert!(
            fresh == readme,
            "README.md's presets table is stale: run `cargo xtask readme` and commit the result"
        );
    }

    #[test]
    fn regenerate_replaces_only_the_marked_section() {
        let text = "intro\n<!-- presets:begin x -->\nold table\n<!-- presets:end -->\nrest\n";
        let out = regenerate(text).unwrap();
        assert!(out.starts_with("intro\n<!-- presets:begin x -->\n| preset |"));
        assert!(out.ends_with("<!-- presets:end -->\nrest\n"));
        assert!(!out.contains("old table"));
        assert!(out.contains("[`demo`](configs/demo)"));
        assert!(regenerate("no markers").is_err());
    }

    #[test]
    fn every_preset_has_both_experiments_and_a_before_row() {
        for preset in ["demo", "full", "gamma-sweep"] {
            let runs = preset_runs(preset).unwrap();
            for experiment in ["open-ended", "summarization"] {
                let names: Vec<&str> = runs
                    .iter()
                    .filter(|r| r.experiment == experiment)
                    .map(|r| r.name.as_str())
                    .collect();
                assert!(
                    names.contains(&"before"),
                    "{preset}/{experiment}: {names:?}"
                );
                assert!(names.contains(&"mle"), "{preset}/{experiment}: {names:?}");
                assert!(
                    names.iter().any(|n| n.starts_with("sg")),
                    "{preset}/{experiment}: {names:?}"
                );
            }
        }
    }
}
