//! Functional models: graphs of layers built in Rust, trained, saved and loaded; the
//! graph checks; several inputs; Keras Functional configs kiln refuses by name.

use kiln::prelude::*;

fn rows(n: usize, width: usize, seed: u64) -> Matrix {
    let mut rng = Rng::seed_from_u64(seed);
    Matrix::from_vec(n, width, (0..n * width).map(|_| rng.uniform() * 2.0 - 1.0).collect()).unwrap()
}

/// A residual block with a projection shortcut (the docs' example).
fn residual() -> Sequential {
    let mut g = Functional::new().seed(7);
    let x = g.input([10]);
    let h = g.apply(Dense::new(16).activation(Activation::Relu), x);
    let h = g.apply(Dense::new(16).activation(Activation::Relu), h);
    let shortcut = g.apply(Dense::new(16).use_bias(false), x);
    let sum = g.merge(Add::new(), &[h, shortcut]);
    let out = g.apply(Dense::new(3).activation(Activation::Softmax), sum);
    g.model(out).unwrap()
}

fn labels(n: usize) -> Matrix {
    Matrix::from_vec(n, 1, (0..n).map(|i| (i % 3) as f32).collect()).unwrap()
}

#[test]
fn a_residual_model_trains_saves_and_loads_bit_for_bit() {
    let (x, y) = (rows(96, 10, 1), labels(96));
    let mut model = residual();
    model.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy]).unwrap();
    let history = model.fit(&x, &y, FitOptions::default().epochs(3).batch_size(16).verbose(Verbosity::Silent)).unwrap();
    let loss = history.get("loss").unwrap();
    assert!(loss[2] < loss[0], "{loss:?}");

    let dir = std::env::temp_dir().join(format!("kiln-functional-{}", std::process::id()));
    model.save(&dir).unwrap();
    let mut back = Sequential::load(&dir).unwrap();
    assert_eq!(back.graph(), model.graph());
    let (a, b) = (model.predict(&x, 32).unwrap(), back.predict(&x, 32).unwrap());
    assert_eq!(a.as_slice(), b.as_slice());
    assert_eq!(back.summary(), model.summary());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_threads_train_a_graph_bit_for_bit_as_one() {
    let (x, y) = (rows(64, 10, 2), labels(64));
    let run = |par: Parallelism| {
        let mut model = residual();
        model.set_parallelism(par);
        model.compile(Adam::default(), Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
        model.fit(&x, &y, FitOptions::default().epochs(2).batch_size(16).verbose(Verbosity::Silent)).unwrap();
        model.get_weights()
    };
    assert_eq!(run(Parallelism::Sequential), run(Parallelism::threads(2)));
}

#[test]
fn a_model_of_two_inputs_takes_a_list_and_refuses_the_wrong_count() {
    let mut g = Functional::new();
    let a = g.named_input("a", [4]);
    let b = g.named_input("b", [2]);
    let da = g.apply(Dense::new(3), a);
    let db = g.apply(Dense::new(3), b);
    let m = g.merge(Maximum::new(), &[da, db]);
    let out = g.apply(Dense::new(1), m);
    let mut model = g.model(out).unwrap();
    model.compile(Sgd::default(), Loss::mean_squared_error(), [Metric::MeanAbsoluteError]).unwrap();
    let (xa, xb, y) = (rows(20, 4, 3), rows(20, 2, 4), rows(20, 1, 5));
    let parts = [FeaturesRef::from(&xa), FeaturesRef::from(&xb)];
    let logs = model.evaluate(FeaturesRef::list(&parts), &y, 8).unwrap();
    assert!(logs.get("loss").unwrap().is_finite());
    assert_eq!(model.predict(FeaturesRef::list(&parts), 8).unwrap().shape(), (20, 1));

    let err = model.predict(&xa, 8).unwrap_err().to_string();
    assert!(err.contains("1 input array(s) for a model of 2 input(s)") && err.contains("`b` [2]"), "{err}");
    let swapped = [FeaturesRef::from(&xb), FeaturesRef::from(&xa)];
    let err = model.predict(FeaturesRef::list(&swapped), 8).unwrap_err().to_string();
    assert!(err.contains("input `a`"), "{err}");

    // Validation data is held to the same rules: one array per input, in order.
    let quiet = || FitOptions::default().epochs(1).batch_size(8).verbose(Verbosity::Silent);
    let err = model.fit(FeaturesRef::list(&parts), &y, quiet().validation_data(&xa, &y)).unwrap_err().to_string();
    assert!(err.contains("validation") && err.contains("for a model of 2 input(s)"), "{err}");
    let history = model.fit(FeaturesRef::list(&parts), &y, quiet().validation_data(FeaturesRef::list(&parts), &y));
    assert!(history.unwrap().get("val_loss").is_some());
}

#[test]
fn graph_mistakes_are_refused_by_name() {
    // A layer the output does not depend on.
    let mut g = Functional::new();
    let x = g.input([4]);
    let _dangling = g.apply(Dense::new(2).name("dangling"), x);
    let out = g.apply(Dense::new(1), x);
    let err = g.model(out).unwrap_err().to_string();
    assert!(err.contains("`dangling`") && err.contains("do not reach the output"), "{err}");

    // An input the output does not depend on.
    let mut g = Functional::new();
    let x = g.input([4]);
    let _unused = g.named_input("unused", [2]);
    let out = g.apply(Dense::new(1), x);
    let err = g.model(out).unwrap_err().to_string();
    assert!(err.contains("input `unused` does not reach the output"), "{err}");

    // Shapes that do not agree, and a broadcast kiln does not compute.
    let mut g = Functional::new();
    let x = g.input([4]);
    let a = g.apply(Dense::new(3), x);
    let b = g.apply(Dense::new(2), x);
    let out = g.merge(Add::new().name("sum"), &[a, b]);
    let err = g.model(out).unwrap_err().to_string();
    assert!(err.contains("`sum`") && err.contains("(None, 3) and (None, 2)"), "{err}");

    // Subtract takes two inputs; a Dense takes one; a merge layer is not for a stack.
    let mut g = Functional::new();
    let x = g.input([4]);
    let out = g.merge(Subtract::new(), &[x, x, x]);
    assert!(g.model(out).unwrap_err().to_string().contains("exactly 2 inputs"));
    let mut g = Functional::new();
    let x = g.input([4]);
    let out = g.merge(Dense::new(1).name("d"), &[x, x]);
    assert!(g.model(out).unwrap_err().to_string().contains("takes one input, not 2"));
    let mut stack = Sequential::new().add(Add::new());
    let err = stack.build(4).unwrap_err().to_string();
    assert!(err.contains("`add`") || err.contains("add:"), "{err}");
    assert!(err.contains("Functional"), "{err}");

    // Concatenate on the batch axis, and on an axis where other sizes differ.
    let mut g = Functional::new();
    let x = g.input([2, 3]);
    let y = g.input([2, 4]);
    let out = g.merge(Concatenate::new().axis(0), &[x, y]);
    assert!(g.model(out).unwrap_err().to_string().contains("batch axis"));
    let mut g = Functional::new();
    let x = g.input([2, 3]);
    let y = g.input([2, 4]);
    let out = g.merge(Concatenate::new().axis(1), &[x, y]);
    assert!(g.model(out).unwrap_err().to_string().contains("matching shapes except for the concatenation axis"));
}

#[test]
fn concatenate_on_an_inner_axis_interleaves_as_keras_does() {
    // [2, 3] and [2, 1] along axis -1: each of the two rows gets 3 values then 1.
    let mut g = Functional::new();
    let x = g.input([2, 3]);
    let y = g.input([2, 1]);
    let out = g.merge(Concatenate::new(), &[x, y]);
    let flat = g.apply(Flatten::new(), out);
    let mut model = g.model(flat).unwrap();
    let xa = Matrix::from_rows(&[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]).unwrap();
    let xb = Matrix::from_rows(&[[7.0, 8.0]]).unwrap();
    let parts = [FeaturesRef::from(&xa), FeaturesRef::from(&xb)];
    let got = model.predict(FeaturesRef::list(&parts), 1).unwrap();
    assert_eq!(got.as_slice(), &[1.0, 2.0, 3.0, 7.0, 4.0, 5.0, 6.0, 8.0]);
}

/// A Keras Functional config with `layers` and endpoints given as JSON.
fn functional_config(layers: serde_json::Value, outputs: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"class_name": "Functional", "config": {
        "name": "f", "layers": layers, "input_layers": [["in", 0, 0]], "output_layers": outputs}})
}

fn tensor(layer: &str) -> serde_json::Value {
    serde_json::json!({"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": [layer, 0, 0]}})
}

#[test]
fn keras_graphs_kiln_does_not_compute_are_refused_by_name() {
    let input = serde_json::json!({"class_name": "InputLayer", "name": "in",
        "config": {"name": "in", "batch_shape": [null, 4]}, "inbound_nodes": []});
    let dense = |name: &str, calls: Vec<serde_json::Value>| {
        serde_json::json!({"class_name": "Dense", "name": name, "config": {"name": name, "units": 4},
            "inbound_nodes": calls.into_iter().map(|t| serde_json::json!({"args": [t], "kwargs": {}})).collect::<Vec<_>>()})
    };
    let add = serde_json::json!({"class_name": "Add", "name": "add", "config": {"name": "add"},
        "inbound_nodes": [{"args": [[tensor("a"), tensor("in")]], "kwargs": {}}]});
    // The graph imports: `a` and the input joined by Add.
    let ok = functional_config(
        serde_json::json!([input, dense("a", vec![tensor("in")]), add]),
        serde_json::json!(["add", 0, 0]),
    );
    let model = kiln_keras::model_from_keras(&ok).unwrap();
    assert_eq!(model.graph().unwrap().inbound.len(), 2);

    // A shared layer: `a` called twice.
    let shared = functional_config(
        serde_json::json!([input, dense("a", vec![tensor("in"), tensor("in")])]),
        serde_json::json!(["a", 0, 0]),
    );
    let err = kiln_keras::model_from_keras(&shared).unwrap_err().to_string();
    assert!(err.contains("`a` is called 2 times (a shared layer)"), "{err}");

    // Two outputs.
    let two = functional_config(
        serde_json::json!([input, dense("a", vec![tensor("in")]), dense("b", vec![tensor("in")])]),
        serde_json::json!([["a", 0, 0], ["b", 0, 0]]),
    );
    let err = kiln_keras::model_from_keras(&two).unwrap_err().to_string();
    assert!(err.contains("output_layers") && err.contains("2 outputs"), "{err}");

    // A nested model used as a layer.
    let nested = serde_json::json!({"class_name": "Sequential", "name": "inner", "config": {"name": "inner", "layers": []},
        "inbound_nodes": [{"args": [tensor("in")], "kwargs": {}}]});
    let add2 = serde_json::json!({"class_name": "Add", "name": "add", "config": {"name": "add"},
        "inbound_nodes": [{"args": [[tensor("inner"), tensor("in")]], "kwargs": {}}]});
    let err = kiln_keras::model_from_keras(&functional_config(
        serde_json::json!([input, nested, add2]),
        serde_json::json!(["add", 0, 0]),
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("nested model (`inner`"), "{err}");

    // `keras.ops` calls sit in `layers` under merge class names, with their constants in
    // `args`. `ops.add(a, in)` (module keras.src.ops.numpy) adds as the layer does;
    // `ops.average(a)` is a mean over axes, not the Average layer.
    let op = |class: &str, args: serde_json::Value| {
        serde_json::json!({"module": "keras.src.ops.numpy", "class_name": class, "name": "op",
            "config": {"name": "op"}, "inbound_nodes": [{"args": args, "kwargs": {}}]})
    };
    let graph = |op| {
        let residual = serde_json::json!({"class_name": "Add", "name": "add", "config": {"name": "add"},
            "inbound_nodes": [{"args": [[tensor("op"), tensor("in")]], "kwargs": {}}]});
        functional_config(
            serde_json::json!([input, dense("a", vec![tensor("in")]), op, residual]),
            serde_json::json!(["add", 0, 0]),
        )
    };
    kiln_keras::model_from_keras(&graph(op("Add", serde_json::json!([tensor("a"), tensor("in")])))).unwrap();
    let err =
        kiln_keras::model_from_keras(&graph(op("Average", serde_json::json!([tensor("a")])))).unwrap_err().to_string();
    assert!(err.contains("module") && err.contains("keras.ops operation"), "{err}");
    // `ops.add(ops.multiply(a, 0.5), in)` with the modules left out.
    let scaled = serde_json::json!({"class_name": "Multiply", "name": "multiply", "config": {"name": "multiply"},
        "inbound_nodes": [{"args": [tensor("a"), 0.5], "kwargs": {}}]});
    let residual = serde_json::json!({"class_name": "Add", "name": "add", "config": {"name": "add"},
        "inbound_nodes": [{"args": [[tensor("multiply"), tensor("in")]], "kwargs": {}}]});
    let err = kiln_keras::model_from_keras(&functional_config(
        serde_json::json!([input, dense("a", vec![tensor("in")]), scaled, residual]),
        serde_json::json!(["add", 0, 0]),
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("args") && err.contains("not a tensor (0.5)"), "{err}");
}

/// Built in the order its Keras code applies them, the f2 trace's graph lists its layers as
/// Keras' `model.layers` does (depth first, ties by the walk from the output): `dense`
/// before `branch_tanh`, although `branch_tanh` was applied first.
#[test]
fn layers_come_in_keras_order_whatever_the_order_they_were_applied_in() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/keras/functional/keras_trace_f2_concat_branches_fanout.json");
    let trace: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let config = &trace["model"]["config"];
    let layers = config.get("config").unwrap_or(config)["layers"].as_array().unwrap();
    let keras: Vec<&str> =
        layers.iter().filter(|l| l["class_name"] != "InputLayer").map(|l| l["name"].as_str().unwrap()).collect();

    let mut g = Functional::new();
    let x = g.named_input("features", [12]);
    let t = g.apply(Dense::new(8).activation(Activation::Tanh).name("branch_tanh"), x);
    let r = g.apply(Dense::new(6).activation(Activation::Relu), x);
    let s = g.apply(Dense::new(5).activation(Activation::Sigmoid), r);
    let c = g.merge(Concatenate::new().name("concat"), &[t, s]);
    let out = g.apply(Dense::new(1).activation(Activation::Sigmoid).name("out"), c);
    let model = g.model(out).unwrap();
    let ours: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(ours, keras);
}

#[test]
fn default_input_names_count_only_default_named_inputs_as_keras_does() {
    // Keras' `uniquify`: `Input(name="a")` then `Input()` gives `input_layer`, not
    // `input_layer_1`.
    let mut g = Functional::new();
    let a = g.named_input("a", [2]);
    let b = g.input([2]);
    let c = g.input([2]);
    let ab = g.merge(Add::new(), &[a, b]);
    let out = g.merge(Add::new(), &[ab, c]);
    let model = g.model(out).unwrap();
    let names: Vec<&str> = model.graph().unwrap().inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "input_layer", "input_layer_1"]);
}

/// `keras.Model({"zeta": a, "alpha": b}, o)` saves `input_layers` as a dict (Keras 3.15.1);
/// its inputs are in sorted key order, as Keras' `model.inputs` flattens them.
#[test]
fn a_dict_of_inputs_imports_in_sorted_key_order() {
    let input = |name: &str, width: usize| {
        serde_json::json!({"class_name": "InputLayer", "name": name,
            "config": {"name": name, "batch_shape": [null, width]}, "inbound_nodes": []})
    };
    let t = |layer: &str, width: usize| {
        serde_json::json!({"class_name": "__keras_tensor__",
            "config": {"shape": [null, width], "keras_history": [layer, 0, 0]}})
    };
    let concat = serde_json::json!({"class_name": "Concatenate", "name": "concatenate",
        "config": {"name": "concatenate", "axis": -1},
        "inbound_nodes": [{"args": [[t("zeta", 3), t("alpha", 2)]], "kwargs": {}}]});
    let dense = serde_json::json!({"class_name": "Dense", "name": "dense", "config": {"name": "dense", "units": 1},
        "inbound_nodes": [{"args": [t("concatenate", 5)], "kwargs": {}}]});
    let cfg = serde_json::json!({"class_name": "Functional", "config": {"name": "f",
        "layers": [input("zeta", 3), input("alpha", 2), concat, dense],
        "input_layers": {"zeta": ["zeta", 0, 0], "alpha": ["alpha", 0, 0]},
        "output_layers": ["dense", 0, 0]}});
    let model = kiln_keras::model_from_keras(&cfg).unwrap();
    let names: Vec<&str> = model.graph().unwrap().inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
}
