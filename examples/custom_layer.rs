//! A layer written outside kiln — five methods — trained, saved and loaded.
//!
//! `Scale` multiplies each feature (the last axis, as Keras' per-feature layers do) by a
//! learned factor and adds a learned offset: `y = x ⊙ γ + β`. kiln regularizes `γ` (the penalty lives on the parameter), updates
//! both with the optimizer, names them `scale/gamma` and `scale/beta`, counts them in
//! the summary, and saves and loads them: the layer only does its math.
//!
//! `kiln::layers::testing::check_gradients` checks its backward pass against finite
//! differences first, as kiln's own layers are checked.
//!
//! The crate needs `kiln-nn` alone: kiln re-exports `serde` and `typetag` (the derive is
//! told where serde is with `#[serde(crate = "kiln::serde")]`). The layer takes dense
//! values only, which is `Layer::reads_sparse`'s default, so a model refuses sparse rows
//! into it with an error naming it instead of calling it with a sparse batch.
//!
//! `cargo run --release -p kiln-examples --example custom_layer`

use kiln::layers::testing::{GradCheck, check_gradients};
use kiln::prelude::*;
use kiln::serde::{Deserialize, Serialize};
use kiln::tensor::kernels;
use kiln::typetag;

/// `y = x ⊙ γ + β`, one `γ` and one `β` per feature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "kiln::serde")]
struct Scale {
    #[serde(flatten)]
    core: LayerCore,
    /// The L2 factor of the penalty on the scales `γ`.
    l2: f32,
}

#[typetag::serde]
impl Layer for Scale {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn build(&mut self, input: &Shape, ctx: &mut BuildContext<'_>) -> Result<Shape, kiln::layers::LayerError> {
        // One γ and one β per feature of the last axis; the output has the input's shape.
        let width = input.last();
        let mut gamma = ctx.param("gamma", vec![width])?.with_regularizer(Some(Box::new(L2::new(self.l2))));
        gamma.value_mut().fill(1.0);
        let beta = ctx.param("beta", vec![width])?;
        self.core.params = vec![gamma, beta];
        Ok(input.clone())
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, _par: Parallelism) {
        // Only dense values arrive: `reads_sparse` is false, so the model refuses sparse rows.
        let LayerInput::Dense(x) = input else { unreachable!("the model feeds Scale dense values only") };
        let [gamma, beta] = &self.core.params[..] else { unreachable!("built") };
        let out = &mut self.core.output;
        out.resize(x.rows, x.cols);
        // A sample of any shape is rows of the last axis's width.
        let x = x.regroup(gamma.len());
        for (o, xr) in out.as_mut_slice().chunks_exact_mut(x.cols).zip(x.data.chunks_exact(x.cols)) {
            for j in 0..x.cols {
                o[j] = xr[j] * gamma.value()[j] + beta.value()[j];
            }
        }
    }

    fn backward(
        &mut self,
        input: LayerInput<'_>,
        grad: &mut Matrix,
        _grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        _par: Parallelism,
    ) {
        let LayerInput::Dense(x) = input else { unreachable!("the model feeds Scale dense values only") };
        let [gamma, beta] = &mut self.core.params[..] else { unreachable!("built") };
        let x = x.regroup(gamma.len());
        let cols = x.cols;
        // ∂L/∂β = Σ_rows g; ∂L/∂γ = Σ_rows g ⊙ x; ∂L/∂x = g ⊙ γ.
        kernels::column_sums(grad.as_slice(), beta.grad_mut());
        let dg = gamma.grad_mut();
        dg.fill(0.0);
        for (g, xr) in grad.as_slice().chunks_exact(cols).zip(x.data.chunks_exact(cols)) {
            dg.iter_mut().zip(g.iter().zip(xr)).for_each(|(d, (g, x))| *d += g * x);
        }
        if let Some(gi) = grad_input {
            gi.resize(grad.rows(), grad.cols());
            for (o, g) in gi.as_mut_slice().chunks_exact_mut(cols).zip(grad.as_slice().chunks_exact(cols)) {
                o.iter_mut().zip(g.iter().zip(gamma.value())).for_each(|(o, (g, s))| *o = g * s);
            }
        }
    }
}

fn main() -> Result<(), kiln::Error> {
    // First, the backward pass against finite differences of the forward one — on flat
    // rows and on shaped samples (γ, β per last-axis feature) — as every built-in layer is.
    for shape in [vec![3], vec![4, 3]] {
        let mut layer = Scale { core: LayerCore::default(), l2: 1e-2 };
        let report = check_gradients(&mut layer, &Shape::new(shape).expect("a shape"), &GradCheck::default())
            .unwrap_or_else(|e| panic!("Scale's backward is wrong: {e}"));
        println!("gradient check: {} values agree (worst difference {:.1e})", report.checked, report.worst);
    }

    // y = 3·x₀ − 2·x₁ + 1, learned by Scale → Dense(1).
    let mut rng = Rng::seed_from_u64(0);
    let rows: Vec<[f32; 2]> = (0..256).map(|_| [rng.uniform_in(-1.0, 1.0), rng.uniform_in(-1.0, 1.0)]).collect();
    let x = Matrix::from_rows(&rows)?;
    let y = Matrix::from_vec(256, 1, rows.iter().map(|r| 3.0 * r[0] - 2.0 * r[1] + 1.0).collect())?;

    let mut model = Sequential::new().add(Scale { core: LayerCore::default(), l2: 1e-4 }).add(Dense::new(1));
    model.compile(Optimizer::new(Adam::default(), 0.05), Loss::mean_squared_error(), NO_METRICS)?;
    let history = model.fit(&x, &y, FitOptions::default().epochs(60).batch_size(32).verbose(Verbosity::Silent))?;
    let loss = history.get("loss").expect("loss is logged");
    println!("loss: first epoch {:.4}, last {:.6}", loss[0], loss[loss.len() - 1]);
    assert!(loss[loss.len() - 1] < 0.01 * loss[0], "the custom layer trains");
    println!("{}", model.summary());

    let dir = std::env::temp_dir().join(format!("kiln-custom-layer-{}", std::process::id()));
    model.save(&dir)?;
    let mut loaded = Sequential::load(&dir)?;
    assert_eq!(loaded.predict(&x, 64)?, model.predict(&x, 64)?, "identical predictions after load");
    let names: Vec<String> = loaded.get_weights().0.into_iter().map(|t| t.name).collect();
    println!("saved and loaded {} ({names:?}) with identical predictions", dir.display());
    std::fs::remove_dir_all(&dir).ok();

    // Sparse rows (a multi-hot bag of words) into a layer that takes dense values: refused
    // by name before any batch, never a panic.
    let mut sparse = CsrMatrix::with_cols(2);
    sparse.push_row(&[0], &[1.0])?;
    sparse.push_row(&[1], &[0.5])?;
    let err = model.predict(&sparse, None).unwrap_err().to_string();
    assert!(err.contains("layer `scale` (Scale) reads the model's input (sparse (CSR) rows)"), "{err}");
    println!("sparse input refused: {err}");
    Ok(())
}
