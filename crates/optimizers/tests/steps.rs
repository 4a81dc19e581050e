//! Optimizer steps against values computed by hand (float64 NumPy of Keras' formulas).

use kiln_optimizers::{Adam, AdamW, Optimizer, RMSprop, Sgd};

fn run(opt: &mut Optimizer, w: &mut [f32], grads: &[&[f32]]) {
    opt.build(&[("p".to_string(), w.len())]);
    for g in grads {
        opt.update(0, w, &mut g.to_vec());
        opt.finish_step();
    }
}

fn close(a: f32, b: f64) -> bool {
    ((a as f64) - b).abs() <= 1e-6 + 1e-5 * b.abs()
}

#[test]
fn rmsprop_two_steps_by_hand() {
    // v1 = 0.1*0.25 = 0.025; w1 = 1 - 0.1*0.5/sqrt(0.025+1e-7)
    // v2 = 0.9*0.025 + 0.1*1.0 = 0.1225; w2 = w1 - 0.1*(-1)/sqrt(0.1225+1e-7)
    let mut opt = Optimizer::new(RMSprop::default(), 0.1);
    let mut w = [1.0f32];
    run(&mut opt, &mut w, &[&[0.5], &[-1.0]]);
    let w1 = 1.0 - 0.05 / (0.025f64 + 1e-7).sqrt();
    let w2 = w1 + 0.1 / (0.1225f64 + 1e-7).sqrt();
    assert!(close(w[0], w2), "{} vs {w2}", w[0]);
    assert!(close(opt.slots()[0].values[0], 0.1225));
    assert_eq!(opt.slots()[0].slot, "velocity");
}

#[test]
fn rmsprop_epsilon_sits_inside_the_root() {
    // With g = 1e-4 the torch-style g/(sqrt(v)+eps) and Keras' g/sqrt(v+eps) differ clearly.
    let mut opt = Optimizer::new(RMSprop::default().epsilon(1e-6), 1.0);
    let mut w = [0.0f32];
    run(&mut opt, &mut w, &[&[1e-4]]);
    let keras = -1e-4 / (1e-9f64 + 1e-6).sqrt();
    let torch = -1e-4 / (1e-9f64.sqrt() + 1e-6);
    assert!(close(w[0], keras) && !close(w[0], torch));
}

#[test]
fn rmsprop_momentum_and_centered() {
    let mut opt = Optimizer::new(RMSprop::default().momentum(0.5).centered(true), 0.1);
    let mut w = [0.0f32];
    run(&mut opt, &mut w, &[&[1.0], &[1.0]]);
    // step 1: v=0.1, a=0.1, inc=0.1/sqrt(0.1-0.01+1e-7), m=inc
    let inc1 = 0.1 / (0.09f64 + 1e-7).sqrt();
    // step 2: v=0.19, a=0.19, inc=0.1/sqrt(0.19-0.0361+1e-7), m=0.5*inc1+inc2
    let inc2 = 0.1 / (0.1539f64 + 1e-7).sqrt();
    let want = -(inc1 + 0.5 * inc1 + inc2);
    assert!(close(w[0], want), "{} vs {want}", w[0]);
    let names: Vec<_> = opt.slots().iter().map(|s| s.slot).collect();
    assert_eq!(names, ["velocity", "momentum", "average_gradient"]);
}

#[test]
fn sgd_plain_momentum_and_nesterov() {
    let mut w = [1.0f32];
    run(&mut Optimizer::new(Sgd::default(), 0.1), &mut w, &[&[2.0]]);
    assert!(close(w[0], 0.8));
    // momentum 0.9: m1=-0.2, w=0.8; m2=-0.18-0.2=-0.38, w=0.42
    let mut w = [1.0f32];
    run(&mut Optimizer::new(Sgd::default().momentum(0.9), 0.1), &mut w, &[&[2.0], &[2.0]]);
    assert!(close(w[0], 0.42));
    // nesterov: m1=-0.2, w=1+0.9*-0.2-0.2=0.62; m2=-0.38, w=0.62-0.342-0.2=0.078
    let mut w = [1.0f32];
    run(&mut Optimizer::new(Sgd::default().momentum(0.9).nesterov(true), 0.1), &mut w, &[&[2.0], &[2.0]]);
    assert!(close(w[0], 0.078), "{}", w[0]);
}

#[test]
fn adam_first_steps_by_hand() {
    let mut w = [1.0f32];
    let mut opt = Optimizer::new(Adam::default(), 0.1);
    run(&mut opt, &mut w, &[&[0.5], &[-1.0]]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
    let (mut m, mut v, mut x) = (0.0f64, 0.0f64, 1.0f64);
    for (t, g) in [(1.0, 0.5), (2.0, -1.0)] {
        let alpha = 0.1 * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        m += (g - m) * (1.0 - b1);
        v += (g * g - v) * (1.0 - b2);
        x -= m * alpha / (v.sqrt() + eps);
    }
    assert!(close(w[0], x), "{} vs {x}", w[0]);
    assert_eq!(opt.iterations(), 2);
}

#[test]
fn defaults_follow_keras_and_config_round_trips() {
    let r = RMSprop::default();
    assert_eq!((r.rho, r.momentum, r.epsilon, r.centered), (0.9, 0.0, 1e-7, false));
    let a = Adam::default();
    assert_eq!((a.beta_1, a.beta_2, a.epsilon, a.amsgrad), (0.9, 0.999, 1e-7, false));
    assert_eq!(Optimizer::from(Sgd::default()).learning_rate(), 0.01);
    assert_eq!(Optimizer::from(Adam::default()).learning_rate(), 0.001);
    let opt = Optimizer::new(RMSprop::default(), 0.01);
    let json = serde_json::to_string(&opt).unwrap();
    assert_eq!(
        json,
        r#"{"learning_rate":0.01,"type":"RMSprop","rho":0.9,"momentum":0.0,"epsilon":1e-7,"centered":false}"#
    );
    let back: Optimizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back.learning_rate(), 0.01);
    // Files written before the redesign put the type first; both read the same.
    let old: Optimizer = serde_json::from_str(
        r#"{"type":"RMSprop","learning_rate":0.01,"rho":0.9,"momentum":0.0,"epsilon":1e-7,"centered":false}"#,
    )
    .unwrap();
    assert_eq!(serde_json::to_string(&old).unwrap(), json);
    let sgd: Optimizer = serde_json::from_str(r#"{"type":"SGD","momentum":0.9}"#).unwrap();
    assert_eq!(sgd.learning_rate(), 0.01);
}

#[test]
fn hyperparameters_are_validated_naming_the_argument() {
    let check = |opt: Optimizer, needle: &str| {
        let err = opt.validate().unwrap_err();
        assert!(err.contains(needle), "{err}");
    };
    // Keras takes any float rate, 0 and negative ones too; not what float32 cannot hold.
    Optimizer::new(RMSprop::default(), -0.5).validate().unwrap();
    check(Optimizer::new(RMSprop::default(), f64::NAN), "`learning_rate`");
    check(Optimizer::new(RMSprop::default(), 1e39), "`learning_rate`"); // inf as float32
    check(Optimizer::new(RMSprop::default().rho(1.5), 1e-3), "`rho`");
    // Keras checks neither; beyond [0, 1] a mean of squares could turn negative, which
    // loading refuses, so kiln keeps ρ there. ε = 0 and a negative RMSprop momentum (no
    // momentum, as Keras' `if self.momentum > 0`) compute as in Keras.
    check(Optimizer::new(RMSprop::default().rho(-0.1), 1e-3), "`rho`");
    Optimizer::new(RMSprop::default().rho(1.0).epsilon(0.0).momentum(-0.5), 1e-3).validate().unwrap();
    check(Optimizer::new(RMSprop::default().epsilon(f64::INFINITY), 1e-3), "`epsilon`");
    check(Optimizer::new(Sgd::default().momentum(-0.1), 1e-3), "`momentum`");
    // Keras' SGD takes a momentum in [0, 1]; AdamW requires a weight decay.
    check(Optimizer::new(Sgd::default().momentum(2.0), 1e-3), "`momentum`");
    check(Optimizer::new(AdamW::default(), 1e-3).weight_decay(None), "`weight_decay`");
    Optimizer::new(Sgd::default().momentum(1.0), 1e-3).validate().unwrap();
    Optimizer::new(AdamW::default(), 1e-3).validate().unwrap();
    check(Optimizer::new(Adam::default().beta_2(1.01), 1e-3), "`beta_2`");
    Optimizer::new(Adam::default().beta_2(1.0).epsilon(0.0), 1e-3).validate().unwrap();
    Optimizer::new(RMSprop::default(), 1e-3).validate().unwrap();
    Optimizer::new(Adam::default().amsgrad(true), 1e-3).validate().unwrap();
}

#[test]
fn decayed_state_is_flushed_to_zero_not_left_subnormal() {
    // With zero gradients the state only decays (Adam's v by 0.999 a step: 10⁵ steps take it
    // far below the smallest normal float); it must never be subnormal (slow on x86), for
    // every rule and slot. It ends at 0, or, as under TensorFlow's flush-to-zero, where its
    // decay step itself underflows: Adam's `m + (0 − m)·(1−β₁)` leaves an `m` below
    // 2⁻¹²⁶/(1−β₁) unchanged (and `v` below 2⁻¹²⁶/(1−β₂)); a step can't move it.
    // The largest magnitude a decayed slot may keep: Adam's `m` and `v`, by their `1 − β`
    // (Keras' constants: the double `1 − β` rounded once to float32).
    let rest = |is_adam: bool, slot: &str| match (is_adam, slot) {
        (false, _) => 0.0,
        (true, "momentum") => f32::MIN_POSITIVE / (1.0 - 0.9f64) as f32,
        (true, _) => f32::MIN_POSITIVE / (1.0 - 0.999f64) as f32,
    };
    for (mut opt, is_adam) in [
        (Optimizer::new(RMSprop::default().momentum(0.5).centered(true), 1e-3), false),
        (Optimizer::new(RMSprop::default(), 1e-3), false),
        (Optimizer::new(Adam::default().amsgrad(true), 1e-3), true),
        (Optimizer::new(Sgd::default().momentum(0.9), 1e-3), false),
    ] {
        let mut w = [0.5f32, -0.5];
        run(&mut opt, &mut w, &[&[1e-3, -1e-3]]);
        for _ in 0..100_000 {
            opt.update(0, &mut w, &mut [0.0, 0.0]);
            opt.finish_step();
        }
        for s in opt.slots() {
            if s.slot == "velocity_hat" {
                continue; // AMSGrad's running maximum never decays
            }
            assert!(s.values.iter().all(|v| *v == 0.0 || v.abs() >= f32::MIN_POSITIVE), "{} {:?}", s.slot, s.values);
            assert!(
                s.values.iter().all(|v| v.abs() <= rest(is_adam, s.slot)),
                "{} did not decay: {:?}",
                s.slot,
                s.values
            );
        }
        // Stuck, not still decaying slowly: one more step changes no bit.
        let before: Vec<Vec<u32>> =
            opt.slots().iter().map(|s| s.values.iter().map(|v| v.to_bits()).collect()).collect();
        opt.update(0, &mut w, &mut [0.0, 0.0]);
        opt.finish_step();
        let after: Vec<Vec<u32>> = opt.slots().iter().map(|s| s.values.iter().map(|v| v.to_bits()).collect()).collect();
        assert_eq!(before, after);
    }
}

#[test]
fn rmsprop_flushes_underflowing_products_as_tensorflow_does() {
    // TensorFlow runs with flush-to-zero: lr·g = 10⁻³·10⁻³⁷ is subnormal there, so 0, and
    // the weight stays 0 (without the flush it would move by 3·10⁻³⁷). At g = 10⁻³⁰ the
    // step is a normal number and is taken as written; g² underflows either way.
    for opt in [RMSprop::default(), RMSprop::default().centered(true), RMSprop::default().momentum(0.5)] {
        let mut o = Optimizer::new(opt, 1e-3);
        let mut w = [0.0f32, 0.0];
        run(&mut o, &mut w, &[&[1e-37, 1e-30]]);
        let step = (1e-3f32 * 1e-30) / 1e-7f32.sqrt();
        assert_eq!(w[0].to_bits(), 0.0f32.to_bits(), "{opt:?}");
        assert_eq!(w[1], -step, "{opt:?}");
        assert!(o.slots()[0].values.iter().all(|v| *v == 0.0), "{opt:?}");
    }
    // SGD: lr·g = 10⁻⁴⁰ is zero; 10⁻³³ is taken.
    for opt in [Sgd::default(), Sgd::default().momentum(0.9), Sgd::default().momentum(0.9).nesterov(true)] {
        let mut o = Optimizer::new(opt, 1e-3);
        let mut w = [0.0f32, 0.0];
        run(&mut o, &mut w, &[&[1e-37, 1e-30]]);
        assert_eq!(w[0].to_bits(), 0.0f32.to_bits(), "{opt:?}");
        assert!(w[1] < 0.0, "{opt:?}");
    }
    // Adam: m = 10⁻³⁷ after one step of g = 10⁻³⁶, and m·α (α ≈ 3·10⁻⁴) is subnormal: no
    // step (without the flush: 3·10⁻³⁴). At g = 10⁻²⁰, m·α is normal and the step is taken.
    let mut o = Optimizer::new(Adam::default(), 1e-3);
    let mut w = [0.0f32, 0.0];
    run(&mut o, &mut w, &[&[1e-36, 1e-20]]);
    assert_eq!(w[0].to_bits(), 0.0f32.to_bits());
    assert!(w[1] < 0.0);
    // NaN and infinite gradients still propagate as before (to NaN, or −∞ through SGD's
    // momentum), and a zero learning rate still multiplies an infinite gradient into NaN.
    for opt in [
        Optimizer::new(RMSprop::default(), 1e-3),
        Optimizer::new(RMSprop::default().centered(true).momentum(0.5), 1e-3),
        Optimizer::new(Adam::default(), 1e-3),
        Optimizer::new(Sgd::default().momentum(0.9), 1e-3),
        Optimizer::new(Sgd::default(), 0.0),
    ] {
        let mut o = opt;
        let mut w = [1.0f32, 1.0];
        run(&mut o, &mut w, &[&[f32::NAN, f32::INFINITY]]);
        assert!(w[0].is_nan() && !w[1].is_finite(), "{w:?}");
    }
}

#[test]
fn clipping_and_weight_decay_follow_keras_order() {
    // SGD(lr 0.1) so the update is visible: w ← w − lr·g after clipping and decay.
    let grads: &[&[f32]] = &[&[3.0, 4.0]];
    let mut w = [1.0f32, 1.0];
    run(&mut Optimizer::new(Sgd::default(), 0.1).clipnorm(1.0), &mut w, grads);
    // ‖g‖ = 5 → g·1/5 = [0.6, 0.8].
    assert!(close(w[0], 1.0 - 0.06) && close(w[1], 1.0 - 0.08), "{w:?}");
    let mut w = [1.0f32, 1.0];
    run(&mut Optimizer::new(Sgd::default(), 0.1).clipvalue(0.5), &mut w, grads);
    assert!(close(w[0], 0.95) && close(w[1], 0.95), "{w:?}");
    let mut w = [1.0f32, 1.0];
    run(&mut Optimizer::new(Sgd::default(), 0.1).weight_decay(0.5), &mut w, grads);
    // w ← w − w·0.5·0.1 = 0.95, then − 0.1·g.
    assert!(close(w[0], 0.95 - 0.3) && close(w[1], 0.95 - 0.4), "{w:?}");
    // Global norm over two parameters: ‖[3, 4, 12]‖ = 13 → scale 1/13.
    let mut opt = Optimizer::new(Sgd::default(), 1.0).global_clipnorm(1.0);
    opt.build(&[("a".to_string(), 2), ("b".to_string(), 1)]);
    let (mut a, mut b) = ([0.0f32; 2], [0.0f32]);
    let (mut ga, mut gb) = ([3.0f32, 4.0], [12.0f32]);
    opt.begin_step([&ga[..], &gb[..]]);
    opt.update(0, &mut a, &mut ga);
    opt.update(1, &mut b, &mut gb);
    assert!(close(a[0], -3.0 / 13.0) && close(b[0], -12.0 / 13.0), "{a:?} {b:?}");
}

#[test]
fn schedules_drive_the_rate_and_options_round_trip() {
    use kiln_optimizers::{AdamW, LearningRate, LearningRateSchedule};
    let schedule = LearningRateSchedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 1.0,
        decay_rate: 0.5,
        staircase: false,
    };
    let mut opt = Optimizer::new(Sgd::default(), schedule.clone());
    assert!(opt.set_learning_rate(0.3).unwrap_err().contains("ExponentialDecay"));
    let mut w = [0.0f32];
    run(&mut opt, &mut w, &[&[1.0], &[1.0]]);
    // Steps at iterations 0 and 1: rates 0.1 and 0.05.
    assert!(close(w[0], -0.15), "{w:?}");
    assert_eq!(opt.learning_rate(), 0.025);

    let adamw = Optimizer::new(AdamW::default(), 1e-3).clipnorm(2.0);
    assert_eq!(adamw.weight_decay_value(), Some(0.004));
    let json = serde_json::to_value(&adamw).unwrap();
    assert_eq!(json["type"], "AdamW");
    assert_eq!(json["clipnorm"], 2.0);
    let back: Optimizer = serde_json::from_value(json).unwrap();
    assert_eq!((back.weight_decay_value(), back.clip()), (Some(0.004), kiln_optimizers::Clip::Norm(2.0)));
    let s: Optimizer = serde_json::from_value(serde_json::to_value(&opt).unwrap()).unwrap();
    assert_eq!(s.learning_rate_config(), &LearningRate::Schedule(schedule));
    let two: Result<Optimizer, _> =
        serde_json::from_value(serde_json::json!({"type": "SGD", "clipnorm": 1.0, "clipvalue": 1.0}));
    let err = two.unwrap_err().to_string();
    assert!(err.contains("only one of"), "{err}");
}

/// Keras 3.15.1 (TensorFlow 2.21) gave every expected value here: `SGD(…)` on a float32
/// variable, one `apply_gradients`.
#[test]
fn clipping_limits_edges_and_nan_as_keras() {
    // `if self.clipnorm and self.clipnorm > 0`: a limit of 0, below 0 or NaN clips
    // nothing (w = 1, g = 5, lr 0.1 → 0.5), and never panics.
    for opt in [
        Optimizer::new(Sgd::default(), 0.1).clipnorm(0.0),
        Optimizer::new(Sgd::default(), 0.1).clipnorm(-1.0),
        Optimizer::new(Sgd::default(), 0.1).clipvalue(0.0),
        Optimizer::new(Sgd::default(), 0.1).clipvalue(-1.0),
        Optimizer::new(Sgd::default(), 0.1).clipvalue(f64::NAN),
        Optimizer::new(Sgd::default(), 0.1).global_clipnorm(0.0),
    ] {
        let mut o = opt;
        o.validate().unwrap();
        let mut w = [1.0f32];
        o.build(&[("p".to_string(), 1)]);
        o.begin_step([&[5.0f32][..]]);
        o.update(0, &mut w, &mut [5.0]);
        assert_eq!(w, [0.5], "{:?}", o.clip());
    }
    // tf.clip_by_norm: a NaN in the gradient makes its whole norm, and so all of it, NaN.
    let mut w = [1.0f32, 2.0, 3.0];
    run(&mut Optimizer::new(Sgd::default(), 0.1).clipnorm(1.0), &mut w, &[&[f32::NAN, 1.0, 1.0]]);
    assert!(w.iter().all(|v| v.is_nan()), "{w:?}");
    // global_clipnorm under its limit: c · min(1/‖g‖, f32(1/c)), 1/c divided in float64.
    for (c, g, keras) in [(9.9, 1.0f32, -0.99999994f32), (0.03, 0.01, -0.009999999)] {
        let mut opt = Optimizer::new(Sgd::default(), 1.0).global_clipnorm(c);
        let mut w = [0.0f32];
        opt.build(&[("p".to_string(), 1)]);
        opt.begin_step([&[g][..]]);
        opt.update(0, &mut w, &mut [g]);
        assert_eq!(w, [keras], "c = {c}");
    }
}

#[test]
fn amsgrad_keeps_a_nan_in_its_maximum_as_ops_maximum() {
    // Adam(0.1, amsgrad=True): g = [1, 1], then [nan, 1] → velocity_hat [nan, 0.001999].
    let mut opt = Optimizer::new(Adam::default().amsgrad(true), 0.1);
    let mut w = [0.0f32, 0.0];
    run(&mut opt, &mut w, &[&[1.0, 1.0], &[f32::NAN, 1.0]]);
    let v_hat = opt.slots().into_iter().find(|s| s.slot == "velocity_hat").unwrap().values.to_vec();
    assert!(v_hat[0].is_nan() && close(v_hat[1], 0.001999), "{v_hat:?}");
}

#[test]
fn any_finite_rate_is_taken_as_keras_takes_any_float() {
    // SGD(0.0): w = 1, g = 5 stays 1; a negative rate climbs.
    for (lr, keras) in [(0.0, 1.0f32), (-0.1, 1.5)] {
        let mut opt = Optimizer::new(Sgd::default(), lr);
        opt.validate().unwrap();
        let mut w = [1.0f32];
        run(&mut opt, &mut w, &[&[5.0]]);
        assert_eq!(w, [keras]);
    }
    let err = Optimizer::new(Sgd::default(), f64::INFINITY).validate().unwrap_err();
    assert!(err.contains("learning_rate"), "{err}");
}

#[test]
fn degenerate_settings_keras_accepts_compute_as_keras() {
    // Keras 3.15.1, w = 1, g = 5, lr 0.1, one step: RMSprop(rho=1) → −1580.1389,
    // RMSprop(momentum=−0.5) → 0.6837722 (no momentum), Adam(epsilon=0) → 0.9000007.
    for (mut opt, keras) in [
        (Optimizer::new(RMSprop::default().rho(1.0), 0.1), -1580.1389),
        (Optimizer::new(RMSprop::default().momentum(-0.5), 0.1), 0.6837722),
        (Optimizer::new(Adam::default().epsilon(0.0), 0.1), 0.9000007),
    ] {
        opt.validate().unwrap();
        let mut w = [1.0f32];
        run(&mut opt, &mut w, &[&[5.0]]);
        assert!(close(w[0], keras), "{opt:?}: {} vs {keras}", w[0]);
    }
}
