//! `cargo xtask new-plugin NAME [--kind regularizer|callback]`: scaffolds a plugin crate
//! that builds as is with `cargo build --release` in its folder.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Options of `cargo xtask new-plugin`.
#[derive(clap::Args)]
pub struct NewPluginArgs {
    /// Crate name (letters, digits, `-`, `_`); also the `package` of its registered names.
    pub name: String,
    /// What the plugin provides.
    #[arg(long, value_enum, default_value_t = Kind::Regularizer)]
    pub kind: Kind,
    /// Where to create the crate (default: plugins/NAME in the workspace).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The kind of plugin to scaffold.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A weight/activity regularizer (`penalty` + `add_grad`).
    Regularizer,
    /// A training callback (hooks on the logs, may stop training).
    Callback,
}

/// Scaffolds a plugin crate; refuses to touch an existing folder.
pub fn run(args: &NewPluginArgs) -> anyhow::Result<bool> {
    let name = &args.name;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!("`{name}` is not a crate name: use letters, digits, `-` and `_`, starting with a letter");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace");
    let (dir, api_path) = match &args.dir {
        // Relative, so the scaffolded crate keeps building if the checkout moves.
        None => (root.join("plugins").join(name), "../../crates/plugin-api".to_string()),
        Some(d) => (d.clone(), root.join("crates/plugin-api").display().to_string()),
    };
    if dir.exists() {
        bail!("{} already exists; pick another name or remove it", dir.display());
    }
    let package = name.replace('-', "_");
    let type_name = camel_case(name);
    let registered = format!("{package}>{type_name}");
    let lib_file = format!("{}{package}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);

    let (source, readme_use) = match args.kind {
        Kind::Regularizer => (
            REGULARIZER_RS.replace("{TYPE}", &type_name).replace("{REGISTERED}", &registered),
            format!(
                "cargo xtask reproduce --plugin target/release/{lib_file} \\\n    --only imdb_custom --regularizer '{registered}' --config '{{\"factor\": 0.001, \"power\": 3.0}}'"
            ),
        ),
        Kind::Callback => (
            CALLBACK_RS.replace("{TYPE}", &type_name).replace("{REGISTERED}", &registered),
            format!("cargo xtask reproduce --plugin target/release/{lib_file} --only imdb_original"),
        ),
    };
    let files = [
        ("Cargo.toml", CARGO_TOML.replace("{NAME}", name).replace("{API_PATH}", &api_path)),
        ("src/lib.rs", source),
        (
            "README.md",
            README_MD
                .replace("{NAME}", name)
                .replace("{REGISTERED}", &registered)
                .replace("{LIB}", &lib_file)
                .replace("{USE}", &readme_use),
        ),
    ];
    for (file, text) in &files {
        let path = dir.join(file);
        fs::create_dir_all(path.parent().expect("file in a folder"))
            .with_context(|| format!("creating {}", dir.display()))?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("created {} ({registered})", dir.display());
    println!("next:\n  (cd {} && cargo build --release)\n  {readme_use}", dir.display());
    Ok(true)
}

/// `my-reg` → `MyReg`: the Rust type (and registered class) name.
fn camel_case(name: &str) -> String {
    name.split(['-', '_']).filter(|p| !p.is_empty()).map(|p| p[..1].to_ascii_uppercase() + &p[1..]).collect()
}

const CARGO_TOML: &str = r#"[package]
name = "{NAME}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# A C-compatible shared library: what kiln loads with --plugin.
crate-type = ["cdylib"]

[dependencies]
kiln-plugin-api = { path = "{API_PATH}" }
serde = { version = "1", features = ["derive"] }

# A standalone workspace, so `cargo build --release` works in this folder.
[workspace]
"#;

const REGULARIZER_RS: &str = r#"//! A kiln regularizer plugin: `factor · Σ|w|^power` (power 2 is Keras' L2).

use kiln_plugin_api::RegularizerPlugin;
use serde::{Deserialize, Serialize};

/// `factor · Σ|w|^power`; the config is this struct, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct {TYPE} {
    /// The penalty factor.
    #[serde(default = "default_factor")]
    pub factor: f32,
    /// The exponent (≥ 1).
    #[serde(default = "default_power")]
    pub power: f32,
}

fn default_factor() -> f32 {
    0.01
}

fn default_power() -> f32 {
    2.0
}

impl RegularizerPlugin for {TYPE} {
    /// `package>Name`: what saved models and `--regularizer` call it. Keep it stable.
    const NAME: &'static str = "{REGISTERED}";

    fn penalty(&self, values: &[f32]) -> Result<f32, String> {
        Ok(self.factor * values.iter().map(|w| w.abs().powf(self.power)).sum::<f32>())
    }

    fn add_grad(&self, values: &[f32], grad: &mut [f32], scale: f32) -> Result<(), String> {
        // d|w|^p/dw = p·|w|^(p−1)·sign(w).
        let c = scale * self.factor * self.power;
        for (g, &w) in grad.iter_mut().zip(values) {
            *g += c * w.abs().powf(self.power - 1.0) * w.signum();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if !(self.factor >= 0.0 && self.power >= 1.0) {
            return Err(format!("need factor ≥ 0 and power ≥ 1, got {self:?}"));
        }
        Ok(())
    }
}

kiln_plugin_api::export_plugin!(regularizers = [{TYPE}]);
"#;

const CALLBACK_RS: &str = r#"//! A kiln callback plugin: prints each epoch's logs, optionally stops after N epochs.

use kiln_plugin_api::{CallbackPlugin, Control, Logs};
use serde::{Deserialize, Serialize};

/// Prints `epoch N: key=value …` to stderr; stops training after `stop_after` epochs.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct {TYPE} {
    /// Stop after this many epochs (never if absent).
    #[serde(default)]
    pub stop_after: Option<usize>,
}

impl CallbackPlugin for {TYPE} {
    /// `package>Name`: what saved models call it. Keep it stable.
    const NAME: &'static str = "{REGISTERED}";

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, ctl: &mut Control) -> Result<(), String> {
        let line: Vec<String> = logs.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
        eprintln!("epoch {}: {}", epoch + 1, line.join(" "));
        if self.stop_after.is_some_and(|n| epoch + 1 >= n) {
            ctl.stop_training();
        }
        Ok(())
    }
}

kiln_plugin_api::export_plugin!(callbacks = [{TYPE}]);
"#;

const README_MD: &str = r#"# {NAME} — a kiln plugin

Registers **`{REGISTERED}`**. Scaffolded by `cargo xtask new-plugin`; see the kiln
workspace's `docs/plugins.md` for the whole tutorial and the safety rules.

Build (from this folder; inside the kiln checkout the library lands in the workspace's
`target/release/{LIB}`):

```sh
cargo build --release
```

Use (from the kiln workspace root):

```sh
{USE}
```
"#;
