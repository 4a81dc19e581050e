//! `kiln keras import`, `predict` and `export-onnx` (also `cargo xtask …`): a Keras archive into a kiln
//! model directory, a model directory's predictions for rows given as JSON, and the model
//! as ONNX.

use std::path::PathBuf;

use anyhow::{Context, bail};
use kiln_trainer::Sequential;

use crate::out_path::{check_output, check_output_dir};

pub use crate::rows::{MAX_INPUT_BYTES, read_rows};

/// Options of `kiln keras import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The Keras 3 archive (`model.save("x.keras")`): config.json and model.weights.h5.
    pub file: PathBuf,
    /// The kiln model directory to write (new, empty, or a previous kiln save).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `kiln predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// A kiln model directory (`Sequential::save`, `keras import --out`).
    pub dir: PathBuf,
    /// JSON file holding a list of rows, each a list of numbers as wide as the model's input.
    #[arg(long)]
    pub input: PathBuf,
    /// A model of several inputs (Functional): the files of its second, third, … inputs,
    /// in the model's input order (`--input` holds the first).
    #[arg(long = "and-input")]
    pub more_inputs: Vec<PathBuf>,
    /// Write the predictions (a list of rows) to this JSON file instead of stdout.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `kiln export-onnx`.
#[derive(clap::Args, Debug)]
pub struct ExportOnnxArgs {
    /// A kiln model directory (`Sequential::save`, `keras import --out`).
    pub dir: PathBuf,
    /// The ONNX file to write (opset 17).
    #[arg(long)]
    pub out: PathBuf,
}

/// `export-onnx DIR --out model.onnx`.
pub fn export_onnx(args: &ExportOnnxArgs) -> anyhow::Result<bool> {
    check_output("--out", &args.out, &[&args.dir], &[&args.dir])?;
    let model = Sequential::load(&args.dir)?;
    kiln_onnx::export_onnx(&model, &args.out).with_context(|| format!("exporting {}", args.dir.display()))?;
    eprintln!(
        "wrote {} (ONNX opset {}, input `input` [N, {}], output `output`)",
        args.out.display(),
        kiln_onnx::OPSET,
        model.model_input_shape().map_or_else(String::new, |s| s
            .dims()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "))
    );
    Ok(true)
}

/// `keras import FILE --out DIR`.
pub fn keras_import(args: &ImportArgs) -> anyhow::Result<bool> {
    check_output_dir("--out", &args.out, &[&args.file])?;
    // A previous save at `--out` itself is replaced; a folder nested in another model is not.
    crate::out_path::refuse_in_model_dir("--out", &args.out, false)?;
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

/// `predict DIR --input X.json [--json OUT]`.
pub fn predict(args: &PredictArgs) -> anyhow::Result<bool> {
    if let Some(out) = &args.json {
        check_output("--json", out, &[&args.input, &args.dir], &[&args.dir])?;
    }
    let mut model = Sequential::load(&args.dir)?;
    let shapes = model
        .model_input_shapes()
        .with_context(|| format!("{}: the model has no input shape", args.dir.display()))?
        .to_vec();
    let files: Vec<&PathBuf> = std::iter::once(&args.input).chain(&args.more_inputs).collect();
    if files.len() != shapes.len() {
        bail!(
            "{}: the model takes {} input(s); give one file each (--input, then --and-input for each further one),              not {}",
            args.dir.display(),
            shapes.len(),
            files.len()
        );
    }
    let xs = files.iter().zip(&shapes).map(|(f, s)| read_rows(f, s.dims())).collect::<anyhow::Result<Vec<_>>>()?;
    if let Some((f, x)) = files.iter().zip(&xs).find(|(_, x)| x.rows() != xs[0].rows()) {
        bail!("{}: {} rows, but {} has {}", f.display(), x.rows(), args.input.display(), xs[0].rows());
    }
    let parts: Vec<kiln_trainer::FeaturesRef<'_>> = xs.iter().map(kiln_trainer::FeaturesRef::from).collect();
    let y = if parts.len() == 1 {
        model.predict(parts[0], 256)?
    } else {
        model.predict(kiln_trainer::FeaturesRef::list(&parts), 256)?
    };
    // JSON has no NaN or infinity (serde would write `null`): refuse, and write nothing.
    if let Some((i, j, v)) =
        (0..y.rows()).find_map(|i| y.row(i).iter().position(|v| !v.is_finite()).map(|j| (i, j, y.row(i)[j])))
    {
        bail!(
            "{}: the prediction for row {i} is {v} at output {j}; JSON cannot hold it, so nothing was written \
             (the model overflows on this input)",
            args.input.display()
        );
    }
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

#[cfg(test)]
mod tests {
    // --- round 3: no import nested in a saved model (issue 23 #10) ---
    use super::*;

    #[test]
    fn keras_import_into_a_folder_inside_a_saved_model_is_refused() {
        let d = std::env::temp_dir().join(format!("kiln-import-nested-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mm = d.join("mm");
        std::fs::create_dir_all(&mm).unwrap();
        for f in ["model.safetensors", "metadata.json"] {
            std::fs::write(mm.join(f), "x").unwrap();
        }
        let args = ImportArgs { file: d.join("seq.keras"), out: mm.join("sub") };
        let err = keras_import(&args).unwrap_err().to_string();
        assert!(err.contains("--out") && err.contains("inside the saved kiln model directory"), "{err}");
        assert!(!mm.join("sub").exists());
        // Replacing a previous save at --out itself is allowed: this fails on the missing file.
        let err =
            format!("{:#}", keras_import(&ImportArgs { file: d.join("seq.keras"), out: mm.clone() }).unwrap_err());
        assert!(!err.contains("saved kiln model directory"), "{err}");
        let _ = std::fs::remove_dir_all(d);
    }
}
