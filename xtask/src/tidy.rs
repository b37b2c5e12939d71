//! Tidy checks that keep the documents true to the tree (after rust-analyzer's
//! `xtask/src/tidy.rs`): ARCHITECTURE.md must name every Rust source file the repository
//! tracks, so that a file added, moved or renamed without its place in the map fails CI.
//!
//! A file is named when ARCHITECTURE.md holds, inside backticks, its path from the repository's
//! root, or a pattern that expands to it: `dir/{a,b,c}.rs` (one level of braces, as a shell
//! writes it). Only backticked text counts, so prose that happens to contain a name does not.

use std::collections::BTreeSet;
use std::path::Path;

/// The paths ARCHITECTURE.md names: every backticked span, braces expanded.
pub fn named_paths(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, span) in doc.split('`').enumerate() {
        // The odd pieces are inside backticks.
        if i % 2 == 1 {
            for p in expand_braces(span.trim()) {
                out.insert(p);
            }
        }
    }
    out
}

/// Expands one `{a,b}` group (`x/{a,b}.rs` → `x/a.rs`, `x/b.rs`); text without braces is
/// itself.
fn expand_braces(s: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (s.find('{'), s.find('}')) else {
        return vec![s.to_string()];
    };
    if close < open {
        return vec![s.to_string()];
    }
    let (head, tail) = (&s[..open], &s[close + 1..]);
    s[open + 1..close]
        .split(',')
        .map(|alt| format!("{head}{}{tail}", alt.trim()))
        .collect()
}

/// The Rust source files git tracks under `root`, relative to it.
pub fn tracked_sources(root: &Path) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "--", "*.rs"])
        .current_dir(root)
        .output()?;
    anyhow::ensure!(out.status.success(), "git ls-files failed");
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_string)
        .collect())
}

/// The tracked sources ARCHITECTURE.md does not name.
pub fn unnamed_sources(root: &Path) -> anyhow::Result<Vec<String>> {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let named = named_paths(&doc);
    Ok(tracked_sources(root)?
        .into_iter()
        .filter(|f| !named.contains(f))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_and_only_backticked_text_counts() {
        let doc = "The `wire/{a, b}.rs` files and `x/y.rs`; not x/z.rs, `only {`.";
        let named = named_paths(doc);
        assert!(named.contains("wire/a.rs") && named.contains("wire/b.rs"));
        assert!(named.contains("x/y.rs"));
        assert!(!named.contains("x/z.rs"));
    }

    /// Architecture Invariant: ARCHITECTURE.md is the map of the tree, and every Rust file the
    /// repository tracks is on it.
    #[test]
    fn architecture_names_every_source_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let missing = unnamed_sources(root).expect("reading the tree");
        assert!(
            missing.is_empty(),
            "ARCHITECTURE.md does not name these {} files (add each, in backticks, where it \
             belongs in the code map):\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
