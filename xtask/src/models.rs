//! `cargo xtask keras import`, `predict` and `export-onnx`: a Keras archive into a kiln
//! model directory, a model directory's predictions for rows given as JSON, and the model
//! as ONNX.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kiln_tensor::Matrix;
use kiln_trainer::Sequential;

/// Largest `--input` file read (a list of rows as JSON).
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Options of `cargo xtask keras import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The Keras 3 archive (`model.save("x.keras")`): config.json and model.weights.h5.
    pub file: PathBuf,
    /// The kiln model directory to write (new, empty, or a previous kiln save).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `cargo xtask predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// A kiln model directory (`Sequential::save`, `keras import --out`).
    pub dir: PathBuf,
    /// JSON file holding a list of rows, each a list of numbers as wide as the model's input.
    #[arg(long)]
    pub input: PathBuf,
    /// Write the predictions (a list of rows) to this JSON file instead of stdout.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `cargo xtask export-onnx`.
#[derive(clap::Args, Debug)]
pub struct ExportOnnxArgs {
    /// A kiln model directory (`Sequential::save`, `keras import --out`).
    pub dir: PathBuf,
    /// The ONNX file to write (opset 13).
    #[arg(long)]
    pub out: PathBuf,
}

/// `export-onnx DIR --out model.onnx`.
pub fn export_onnx(args: &ExportOnnxArgs) -> anyhow::Result<bool> {
    let model = Sequential::load(&args.dir)?;
    kiln_onnx::export_onnx(&model, &args.out).with_context(|| format!("exporting {}", args.dir.display()))?;
    eprintln!(
        "wrote {} (ONNX opset {}, input `input` [N, {}], output `output`)",
        args.out.display(),
        kiln_onnx::OPSET,
        model.input_width().unwrap_or(0)
    );
    Ok(true)
}

/// `keras import FILE --out DIR`.
pub fn keras_import(args: &ImportArgs) -> anyhow::Result<bool> {
    let model = kiln_keras::import_keras_file(&args.file)?;
    model.save(&args.out).with_context(|| format!("saving the imported model to {}", args.out.display()))?;
    eprintln!(
        "imported {} ({} layers, {} weights) into {}",
        args.file.display(),
        model.layers().len(),
        model.param_count(),
        args.out.display()
    );
    Ok(true)
}

/// Reads `path` as a list of equally long rows of finite numbers, `width` wide.
pub fn read_rows(path: &Path, width: usize) -> anyhow::Result<Matrix> {
    let bytes = kiln_fs::read_regular(path, MAX_INPUT_BYTES)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let Some(rows) = value.as_array() else {
        bail!("{}: expected a list of rows (a JSON array of arrays of numbers)", path.display());
    };
    if rows.is_empty() {
        bail!("{}: the list of rows is empty", path.display());
    }
    let mut values = Vec::with_capacity(rows.len() * width);
    for (i, row) in rows.iter().enumerate() {
        let Some(row) = row.as_array() else { bail!("{}: row {i} is not a list of numbers", path.display()) };
        if row.len() != width {
            bail!("{}: row {i} has {} values, the model takes {width}", path.display(), row.len());
        }
        for (j, v) in row.iter().enumerate() {
            match v.as_f64() {
                Some(x) if x.is_finite() && (x as f32).is_finite() => values.push(x as f32),
                _ => bail!("{}: row {i}, column {j} is {v}, not a finite float32 number", path.display()),
            }
        }
    }
    Ok(Matrix::from_vec(rows.len(), width, values)?)
}

/// `predict DIR --input X.json [--json OUT]`.
pub fn predict(args: &PredictArgs) -> anyhow::Result<bool> {
    let mut model = Sequential::load(&args.dir)?;
    let width = model.input_width().with_context(|| format!("{}: the model has no input width", args.dir.display()))?;
    let x = read_rows(&args.input, width)?;
    let y = model.predict(&x, 256)?;
    let rows: Vec<&[f32]> = (0..y.rows()).map(|i| y.row(i)).collect();
    let json = serde_json::to_string(&rows)?;
    match &args.json {
        Some(out) => {
            kiln_fs::write_atomic(out, format!("{json}\n").as_bytes())?;
            eprintln!("wrote {} predictions to {}", y.rows(), out.display());
        }
        None => println!("{json}"),
    }
    Ok(true)
}
