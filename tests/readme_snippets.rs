//! The README shows exactly what the examples run.

use std::path::Path;

/// The ```rust blocks of the README.
fn rust_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// A source file without its leading `//!` doc lines and blank lines.
fn body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip_while(|l| l.starts_with("//!") || l.is_empty()).map(|l| format!("{l}\n")).collect()
}

#[test]
fn the_readme_shows_the_readme_and_quickstart_examples_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let blocks = rust_blocks(&std::fs::read_to_string(root.join("README.md")).unwrap());
    for example in ["examples/readme.rs", "examples/convnet.rs", "examples/quickstart/src/main.rs"] {
        let want = body(&root.join(example));
        assert!(blocks.contains(&want), "README.md has no ```rust block equal to {example}:\n{want}");
    }
}

#[test]
fn the_layers_doc_shows_the_text_and_timeseries_examples_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let blocks = rust_blocks(&std::fs::read_to_string(root.join("docs/layers.md")).unwrap());
    for example in ["examples/text_lstm.rs", "examples/timeseries.rs"] {
        let want = body(&root.join(example));
        assert!(blocks.contains(&want), "docs/layers.md has no ```rust block equal to {example}:\n{want}");
    }
}

#[test]
fn the_functional_doc_shows_the_residual_and_two_input_examples_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let blocks = rust_blocks(&std::fs::read_to_string(root.join("docs/functional.md")).unwrap());
    for example in ["examples/residual.rs", "examples/two_inputs.rs"] {
        let want = body(&root.join(example));
        assert!(blocks.contains(&want), "docs/functional.md has no ```rust block equal to {example}:\n{want}");
    }
}
