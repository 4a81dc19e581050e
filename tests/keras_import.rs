//! Reading Keras configs: layers, regularizers, optimizers by name prefix, clear refusals.

use kiln_keras::{compile_from_keras, model_from_keras, optimizer_from_keras};
use serde_json::json;

fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn trace_v_config_becomes_the_same_model() {
    let t = fixture("keras_trace_v_l1_l1l2_activity.json");
    let mut m = model_from_keras(&t["model"]["config"]).unwrap();
    compile_from_keras(&mut m, &t["model"]["compile"]).unwrap();
    assert_eq!(m.input_width(), Some(5));
    let names: Vec<&str> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["dense", "dense_1"]);
    let cfg = m.to_config_json();
    for needle in [r#""type": "L1""#, r#""type": "L1L2""#, r#""activity_regularizer": {"#, r#""type": "RMSprop""#] {
        assert!(cfg.contains(needle), "{needle} missing in {cfg}");
    }
    assert_eq!(m.optimizer().unwrap().learning_rate(), 0.01);
    assert_eq!(m.metrics()[0].name, "accuracy");
}

/// Frozen layers import frozen: a layer's own `trainable: false`, and every layer of a
/// model whose own `trainable` is false (Keras then trains nothing, whatever the layers
/// say: `Layer.trainable_weights`).
#[test]
fn frozen_layers_and_frozen_models_import_frozen() {
    let t = fixture("frozen/keras_trace_t3_frozen_middle_dense_sgd_momentum.json");
    let frozen = |cfg: &serde_json::Value| -> Vec<bool> {
        model_from_keras(cfg).unwrap().layers().iter().map(|l| l.is_trainable()).collect()
    };
    let cfg = t["model"]["config"].clone();
    assert_eq!(frozen(&cfg), [true, false, true]);
    let mut whole = cfg.clone();
    let inner = if whole.get("config").is_some() { &mut whole["config"] } else { &mut whole };
    inner["trainable"] = json!(false);
    assert_eq!(frozen(&whole), [false, false, false]);
}

#[test]
fn optimizer_class_comes_from_name_prefix_or_class_name() {
    let sgd = optimizer_from_keras(&json!({"name": "sgd_3", "learning_rate": 0.1, "momentum": 0.9, "nesterov": true}))
        .unwrap();
    assert!(format!("{sgd:?}").contains("nesterov: true"));
    let adam =
        optimizer_from_keras(&json!({"class_name": "Adam", "config": {"name": "x", "learning_rate": 0.002}})).unwrap();
    assert_eq!(adam.learning_rate(), 0.002);
    let rms = optimizer_from_keras(&json!({"name": "rm_sprop", "centered": true})).unwrap();
    assert!(format!("{rms:?}").contains("centered: true"));
    let adamw = optimizer_from_keras(&json!({"name": "adamw", "weight_decay": 0.01, "clipnorm": 1.0})).unwrap();
    assert_eq!((adamw.weight_decay_value(), adamw.clip()), (Some(0.01), kiln_optimizers::Clip::Norm(1.0)));
    let err = optimizer_from_keras(&json!({"name": "adamax"})).unwrap_err().to_string();
    assert!(err.contains("adamax"), "{err}");
    let err = optimizer_from_keras(&json!({"name": "sgd", "clipnorm": 1.0, "clipvalue": 0.5})).unwrap_err().to_string();
    assert!(err.contains("only one of"), "{err}");
    let err = optimizer_from_keras(&json!({"name": "sgd", "use_ema": true})).unwrap_err().to_string();
    assert!(err.contains("use_ema"), "{err}");
    let scheduled = optimizer_from_keras(&json!({"name": "sgd", "learning_rate": {
        "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "staircase": true, "name": "ExponentialDecay"},
        "registered_name": null}}))
    .unwrap();
    assert_eq!(scheduled.learning_rate(), 0.1);
    let err = optimizer_from_keras(&json!({"name": "sgd", "learning_rate": {
        "class_name": "CosineDecayRestarts", "config": {"initial_learning_rate": 0.1, "first_decay_steps": 10}}}))
    .unwrap_err()
    .to_string();
    assert!(err.contains("learning_rate.config") && err.contains("CosineDecayRestarts"), "{err}");
}

/// What Keras refuses, or computes in integer arithmetic, from a JSON integer: an integer
/// rate or SGD momentum (refused by Keras' constructors), a schedule's integer
/// `initial_learning_rate` or `values` (Keras' dtype comes from them). Clipping limits
/// that are not above 0 are Keras' "off".
#[test]
fn integer_rates_are_refused_and_non_positive_clips_are_off() {
    for (v, key) in [
        (json!({"name": "sgd", "learning_rate": 1}), "learning_rate"),
        (json!({"name": "sgd", "learning_rate": 0.1, "momentum": 1}), "momentum"),
        (
            json!({"name": "sgd", "learning_rate": {"class_name": "CosineDecay",
                "config": {"initial_learning_rate": 1, "decay_steps": 10}}}),
            "initial_learning_rate",
        ),
        (
            json!({"name": "sgd", "learning_rate": {"class_name": "PiecewiseConstantDecay",
                "config": {"boundaries": [10], "values": [1.0, 1]}}}),
            "values/1",
        ),
    ] {
        let err = optimizer_from_keras(&v).unwrap_err().to_string();
        assert!(err.contains(key) && (err.contains("float") || err.contains("integer")), "{v}: {err}");
    }
    // Integer steps and boundaries are fine: Keras casts them to the rate's type; so are
    // values that are all integers (Keras' own test_config uses [1, 2, 3]).
    for values in [json!([1.0, 0.5]), json!([1, 2])] {
        optimizer_from_keras(&json!({"name": "sgd", "learning_rate": {"class_name": "PiecewiseConstantDecay",
            "config": {"boundaries": [10], "values": values}}}))
        .unwrap();
    }
    for key in ["clipnorm", "global_clipnorm", "clipvalue"] {
        let opt = optimizer_from_keras(&json!({"name": "sgd", "learning_rate": 0.0, key: 0.0})).unwrap();
        assert_eq!(opt.learning_rate(), 0.0, "{key}");
    }
}

/// `go_backwards` imports (trace q7a's config, and on every recurrent class); the arguments
/// kiln does not compute are refused by name when set, never dropped.
#[test]
fn recurrent_go_backwards_imports_and_unsupported_arguments_are_refused() {
    let t = fixture("sequences/keras_trace_q7a_go_backwards_lstm_gru.json");
    let m = model_from_keras(&t["model"]["config"]).unwrap();
    let cfg = m.to_config_json();
    assert_eq!(cfg.matches(r#""go_backwards": true"#).count(), 2, "{cfg}");
    for class in ["SimpleRNN", "LSTM", "GRU"] {
        let layer = |extra: serde_json::Value| {
            let mut c = json!({"name": "r", "units": 2});
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({"layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [null, 4, 3]}},
                {"class_name": class, "config": c}]})
        };
        let m = model_from_keras(&layer(json!({"go_backwards": true, "stateful": false, "dropout": 0.0}))).unwrap();
        assert!(m.to_config_json().contains(r#""go_backwards": true"#), "{class}");
        for (arg, value) in [
            ("stateful", json!(true)),
            ("return_state", json!(true)),
            ("dropout", json!(0.2)),
            ("recurrent_dropout", json!(0.2)),
        ] {
            let err = model_from_keras(&layer(json!({ arg: value }))).unwrap_err().to_string();
            assert!(err.contains(arg) && err.contains(class), "{class} {arg}: {err}");
        }
    }
}

#[test]
fn unsupported_layers_and_losses_are_refused_by_name() {
    let cfg = json!({"name": "sequential", "layers": [{"class_name": "SeparableConv2D", "config": {}}]});
    assert!(model_from_keras(&cfg).unwrap_err().to_string().contains("SeparableConv2D"));
    let cfg = json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "hard_silu"}}]});
    assert!(model_from_keras(&cfg).unwrap_err().to_string().contains("hard_silu"));
    let mut m = model_from_keras(&json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2}},
        {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.25, "seed": 7}}]}))
    .unwrap();
    assert_eq!(m.input_width(), Some(3));
    let err = compile_from_keras(&mut m, &json!({"optimizer": {"name": "sgd"}, "loss": "hinge"})).unwrap_err();
    assert!(err.to_string().contains("hinge"));
    compile_from_keras(
        &mut m,
        &json!({"optimizer": {"name": "sgd"}, "loss": "mse",
        "metrics": [{"class_name": "MeanAbsoluteError", "config": {"name": "mean_absolute_error"}}]}),
    )
    .unwrap();
    assert_eq!(m.metrics()[0].name, "mean_absolute_error");
}

#[test]
fn loss_options_import_and_the_rest_are_refused_by_name() {
    use kiln_trainer::{Loss, Reduction};
    let model = || {
        model_from_keras(&json!({"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
            {"class_name": "Dense", "config": {"name": "d", "units": 3}}]}))
        .unwrap()
    };
    let compile = |loss: serde_json::Value| {
        let mut m = model();
        compile_from_keras(&mut m, &json!({"optimizer": {"name": "sgd"}, "loss": loss})).map(|()| m.loss().unwrap())
    };
    let scce = compile(json!({"class_name": "SparseCategoricalCrossentropy", "config": {
        "name": "scce", "reduction": "sum", "from_logits": true, "ignore_class": 255}}))
    .unwrap();
    assert_eq!(
        scce,
        Loss::sparse_categorical_crossentropy()
            .with_from_logits(true)
            .with_ignore_class(Some(255))
            .unwrap()
            .with_reduction(Reduction::Sum)
    );
    let cce = compile(json!({"class_name": "CategoricalCrossentropy", "config": {
        "reduction": "mean_with_sample_weight", "label_smoothing": 0.1, "axis": -1}}))
    .unwrap();
    assert_eq!((cce.label_smoothing(), cce.reduction()), (0.1, Reduction::MeanWithSampleWeight));
    let mae =
        compile(json!({"class_name": "MeanAbsoluteError", "config": {"reduction": "sum_over_batch_size"}})).unwrap();
    assert_eq!(mae, Loss::mean_absolute_error());
    assert_eq!(compile(json!("mae")).unwrap(), Loss::mean_absolute_error());
    let refused = |loss: serde_json::Value, needle: &str| {
        let err = compile(loss).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    };
    // reduction=None (JSON null): one loss per sample, which fit cannot train on.
    refused(json!({"class_name": "MeanSquaredError", "config": {"reduction": null}}), "reduction `none`");
    refused(json!({"class_name": "MeanSquaredError", "config": {"reduction": "max"}}), "`max`");
    refused(json!({"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 1.5}}), "label_smoothing");
    refused(
        json!({"class_name": "SparseCategoricalCrossentropy", "config": {"label_smoothing": 0.1}}),
        "label_smoothing",
    );
    refused(json!({"class_name": "CategoricalCrossentropy", "config": {"ignore_class": 1}}), "ignore_class");
    refused(json!({"class_name": "CategoricalCrossentropy", "config": {"axis": 0}}), "axis");
    refused(json!({"class_name": "MeanAbsoluteError", "config": {"from_logits": true}}), "from_logits");
    refused(json!({"class_name": "BinaryFocalCrossentropy", "config": {}}), "BinaryFocalCrossentropy");
    refused(json!({"class_name": "CategoricalCrossentropy", "config": {"gamma": 2.0}}), "gamma");
}

#[test]
fn keras_argument_quirks_are_followed_and_bad_values_named() {
    let with = |class: &str, input: serde_json::Value, config: serde_json::Value| {
        json!({"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": input}},
            {"class_name": class, "config": config}]})
    };
    // Keras 3.15.1's SimpleRNN never uses `activity_regularizer` (not even to check it):
    // no such loss. LSTM and GRU keep theirs, and refuse a malformed one by name.
    let l2 = json!({"class_name": "L2", "config": {"l2": 0.0123}});
    for (class, kept) in [("SimpleRNN", false), ("LSTM", true), ("GRU", true)] {
        let cfg = with(class, json!([null, 4, 3]), json!({"name": "r", "units": 2, "activity_regularizer": l2}));
        let text = model_from_keras(&cfg).unwrap().to_config_json();
        assert_eq!(text.contains("0.0123"), kept, "{class}: {text}");
    }
    let bad = json!({"class_name": "L2", "config": {"l2": "much"}});
    for (class, imports) in [("SimpleRNN", true), ("LSTM", false), ("GRU", false)] {
        let cfg = with(class, json!([null, 4, 3]), json!({"name": "r", "units": 2, "activity_regularizer": bad}));
        match model_from_keras(&cfg) {
            Ok(_) => assert!(imports, "{class}"),
            Err(e) => assert!(!imports && e.to_string().contains("activity_regularizer"), "{class}: {e}"),
        }
    }
    // A flag that is not a boolean is named, not read as false.
    let cfg = with("GlobalAveragePooling1D", json!([null, 4, 3]), json!({"name": "g", "keepdims": "yes"}));
    let err = model_from_keras(&cfg).unwrap_err().to_string();
    assert!(err.contains("keepdims") && err.contains("true or false"), "{err}");
    // Orthogonal on a 1-D bias: Keras raises, kiln names it (it used to index past the bias).
    let orthogonal = json!({"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": null}});
    let cfg = with("Dense", json!([null, 3]), json!({"name": "d", "units": 4, "bias_initializer": orthogonal}));
    let err = model_from_keras(&cfg).unwrap_err().to_string();
    assert!(err.contains("bias_initializer") && err.contains("Orthogonal"), "{err}");
    // An Embedding fed another layer's float outputs is refused (its ids are checked where
    // they enter the model).
    let cfg = json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 4}},
        {"class_name": "Embedding", "config": {"name": "e", "input_dim": 10, "output_dim": 2}}]});
    let err = model_from_keras(&cfg).unwrap_err().to_string();
    assert!(err.contains("`e`") && err.contains("`d` (Dense)") && err.contains("model input"), "{err}");
    // Through Flatten, an input's values reach the Embedding unchanged (Keras allows it):
    // they are checked as its ids.
    let cfg = json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 2, 3]}},
        {"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Embedding", "config": {"name": "e", "input_dim": 10, "output_dim": 2}}]});
    let mut m = model_from_keras(&cfg).unwrap();
    let ids = kiln_tensor::Matrix::from_vec(1, 6, vec![0.0, 1.0, 2.0, 3.0, 4.0, 9.0]).unwrap();
    assert_eq!(m.predict(&ids, 1).unwrap().cols(), 12);
    let bad = kiln_tensor::Matrix::from_vec(1, 6, vec![0.0, 1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
    let err = m.predict(&bad, 1).unwrap_err().to_string();
    assert!(err.contains("column 5") && err.contains("0..10"), "{err}");
}

/// `compile(loss=keras.losses.binary_crossentropy, metrics=[keras.metrics.binary_accuracy,
/// keras.losses.mean_squared_error])` in Keras 3.15.1's `get_compile_config()`: functions
/// are saved as `{"module": "builtins", "class_name": "function", "config": name}`.
#[test]
fn losses_and_metrics_saved_as_functions_import_by_name() {
    let mut m = model_from_keras(&json!({"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 1, "activation": "sigmoid"}}]}))
    .unwrap();
    let function = |name: &str| json!({"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"});
    compile_from_keras(
        &mut m,
        &json!({"optimizer": {"module": "keras.optimizers", "class_name": "SGD", "config": {"name": "sgd",
            "learning_rate": 0.009999999776482582, "weight_decay": null, "clipnorm": null, "global_clipnorm": null,
            "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null,
            "loss_scale_factor": null, "gradient_accumulation_steps": null, "momentum": 0.0, "nesterov": false},
            "registered_name": null},
            "loss": function("binary_crossentropy"), "loss_weights": null,
            "metrics": [function("binary_accuracy"), function("mean_squared_error")],
            "weighted_metrics": null, "run_eagerly": false, "steps_per_execution": 1, "jit_compile": false}),
    )
    .unwrap();
    let names: Vec<&str> = m.metrics().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["binary_accuracy", "mean_squared_error"]);
    assert_eq!(m.loss().unwrap().name(), "binary_crossentropy");
}

/// Keras 3.15.1's `regularizers.get`: `{"class_name": "L2"}` is `L2(0.01)`, `"l1l2"` is
/// `L1L2(0, 0)`, and `"l1_l2"` is not an identifier it knows.
#[test]
fn regularizer_identifiers_as_keras_reads_them() {
    let penalty = |v: serde_json::Value| {
        f64::from(kiln_keras::regularizer_from_keras(&v).unwrap().expect("a regularizer").penalty(&[2.0]).unwrap())
    };
    assert!((penalty(json!({"class_name": "L2"})) - 0.04).abs() < 1e-9);
    assert_eq!(penalty(json!("l1l2")), 0.0);
    let err = kiln_keras::regularizer_from_keras(&json!("l1_l2")).unwrap_err().to_string();
    assert!(err.contains("l1_l2"), "{err}");
}

/// Keras' `VarianceScaling` with any scale, mode and distribution imports (the Glorot, He
/// and Lecun initializers are its special cases), and draws with the deviation it asks.
#[test]
fn variance_scaling_imports_in_general() {
    let dense = |init: serde_json::Value| {
        json!({"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [null, 400]}},
            {"class_name": "Dense", "config": {"name": "d", "units": 300, "kernel_initializer": init}}]})
    };
    let vs = |scale: f64, mode: &str, distribution: &str| {
        json!({"module": "keras.initializers", "class_name": "VarianceScaling",
            "config": {"scale": scale, "mode": mode, "distribution": distribution, "seed": null}, "registered_name": null})
    };
    for (init, variance) in [
        (vs(2.0, "fan_in", "truncated_normal"), 2.0 / 400.0),
        (vs(0.1, "fan_out", "uniform"), 0.1 / 300.0),
        (vs(3.0, "fan_avg", "untruncated_normal"), 3.0 / 350.0),
        (vs(1.0, "fan_in", "normal"), 1.0 / 400.0),
    ] {
        let mut m = model_from_keras(&dense(init.clone())).unwrap();
        m.build(400).unwrap();
        let w = m.get_weights();
        let k = &w.0[0].values;
        let var = k.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / k.len() as f64;
        assert!((var / variance - 1.0).abs() < 0.02, "{init}: variance {var} vs {variance}");
    }
    for bad in [vs(0.0, "fan_in", "uniform"), vs(1.0, "fan_sideways", "uniform"), vs(1.0, "fan_in", "cauchy")] {
        assert!(model_from_keras(&dense(bad.clone())).is_err(), "{bad}");
    }
}

/// Keras 3.15.1 loads these compile configs of a one-output model: no loss (the model
/// predicts, not trains), per-output forms with that one output's entry, and functions of
/// `keras.losses`/`keras.metrics` by name. A function of the user's own, saved by its name
/// alone, Keras cannot load, and kiln refuses instead of reading a built-in under that name.
#[test]
fn compile_configs_keras_loads_for_one_output() {
    let model = || {
        model_from_keras(&json!({"layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [null, 3]}},
            {"class_name": "Dense", "config": {"name": "out", "units": 2}}]}))
        .unwrap()
    };
    let sgd = json!({"class_name": "SGD", "config": {"name": "sgd", "learning_rate": 0.01}});
    let mut m = model();
    compile_from_keras(&mut m, &json!({"optimizer": sgd, "loss": null, "metrics": ["mae"]})).unwrap();
    assert!(m.loss().is_none(), "no loss: left uncompiled");
    for (loss, metrics, weighted) in [
        (json!(["mse"]), json!([["mae", "mse"]]), json!(null)),
        (json!({"out": "mse"}), json!({"out": ["mae", "mse"]}), json!({"out": ["mae"]})),
        (json!({"out": "mse"}), json!({"out": "mae"}), json!(null)),
    ] {
        let mut m = model();
        let cfg = json!({"optimizer": sgd, "loss": loss, "metrics": metrics, "weighted_metrics": weighted});
        compile_from_keras(&mut m, &cfg).unwrap_or_else(|e| panic!("{cfg}: {e}"));
        assert_eq!(m.loss().unwrap().name(), "mean_squared_error");
        assert!(m.metrics().iter().any(|n| n.name == "mae"), "{cfg}");
    }
    let two = json!({"optimizer": sgd, "loss": {"a": "mse", "b": "mae"}});
    let err = compile_from_keras(&mut model(), &two).unwrap_err().to_string();
    assert!(err.contains("2 outputs"), "{err}");
    let function = |name: &str| json!({"module": "builtins", "class_name": "function", "config": name});
    for (key, name) in [("loss", "mae"), ("loss", "my_loss"), ("metrics", "accuracy")] {
        let value = if key == "loss" { function(name) } else { json!([function(name)]) };
        let mut cfg = json!({"optimizer": sgd, "loss": "mse"});
        cfg[key] = value;
        let err = compile_from_keras(&mut model(), &cfg).unwrap_err().to_string();
        assert!(err.contains(&format!("function `{name}`")), "{err}");
    }
}
