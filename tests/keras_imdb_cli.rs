//! `cargo xtask data keras-imdb` against Keras: every archive and argument set of
//! `crates/datasets/tests/fixtures/keras-datasets/imdb_load_data.json`, through the command's
//! own argument parsing, writing the JSON file the command writes.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: xtask::data::KerasImdbArgs,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/datasets/tests/fixtures/keras-datasets")
}

/// Keras keyword arguments as command-line flags (`null` → `none`).
fn flags(args: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in args.as_object().unwrap() {
        out.push(format!("--{}", k.replace('_', "-")));
        out.push(if v.is_null() { "none".into() } else { v.to_string() });
    }
    out
}

#[test]
fn the_command_writes_what_keras_load_data_returns() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("imdb_load_data.json")).unwrap()).unwrap();
    let out = std::env::temp_dir().join(format!("kiln-keras-imdb-{}.json", std::process::id()));
    let mut compared = 0;
    for case in doc["cases"].as_array().unwrap() {
        let file = fixtures().join(case["file"].as_str().unwrap());
        let mut argv =
            vec!["keras-imdb".to_string(), file.display().to_string(), "--json".into(), out.display().to_string()];
        argv.extend(flags(&case["args"]));
        let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let result = xtask::data::keras_imdb(&cli.args);
        if case.get("error").is_some() {
            assert!(result.is_err(), "{argv:?}: Keras raised {}", case["error"]);
            continue;
        }
        result.unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let ours: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        for key in ["x_train", "y_train", "x_test", "y_test"] {
            assert_eq!(ours[key], case[key], "{argv:?}: {key}");
        }
        compared += 1;
    }
    assert_eq!(compared, 48);
    let _ = std::fs::remove_file(out);
}
