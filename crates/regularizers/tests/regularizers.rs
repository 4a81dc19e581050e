//! Penalties against hand-computed values, gradients against finite differences, and the
//! serialized form of every built-in.

use kiln_regularizers::{L1, L1L2, L2, Regularizer};

const W: [f32; 5] = [0.5, -1.5, 0.25, 2.0, -0.75];

fn all() -> Vec<Box<dyn Regularizer>> {
    vec![Box::new(L1::new(0.01)), Box::new(L2::new(0.002)), Box::new(L1L2::new(0.001, 0.002))]
}

#[test]
fn penalties_match_keras_formulas() {
    // NumPy: 0.01*np.abs(w).sum(), 0.002*np.square(w).sum(), 0.001*|w|.sum()+0.002*(w**2).sum()
    let abs: f32 = W.iter().map(|w| w.abs()).sum();
    let sq: f32 = W.iter().map(|w| w * w).sum();
    assert_eq!(abs, 5.0);
    assert_eq!(sq, 7.125);
    assert!((L1::new(0.01).penalty(&W).unwrap() - 0.05).abs() < 1e-8);
    assert!((L2::new(0.002).penalty(&W).unwrap() - 0.01425).abs() < 1e-8);
    assert!((L1L2::new(0.001, 0.002).penalty(&W).unwrap() - (0.005 + 0.01425)).abs() < 1e-8);
}

#[test]
#[allow(clippy::needless_range_loop)] // `i` perturbs one weight and reads its gradient
fn gradients_match_finite_differences() {
    for reg in all() {
        let mut grad = [0.0f32; 5];
        reg.add_grad(&W, &mut grad, 1.0).unwrap();
        for i in 0..W.len() {
            let h = 1e-3f64;
            let f = |d: f64| {
                let w: Vec<f32> =
                    W.iter().enumerate().map(|(j, &x)| if j == i { (x as f64 + d) as f32 } else { x }).collect();
                reg.penalty(&w).unwrap() as f64
            };
            let fd = (f(h) - f(-h)) / (2.0 * h);
            assert!((fd - grad[i] as f64).abs() < 1e-4, "{reg:?} w[{i}]: fd {fd} vs {}", grad[i]);
        }
    }
}

#[test]
fn scale_multiplies_the_gradient_and_adds() {
    let mut grad = [1.0f32; 5];
    L2::new(0.5).add_grad(&W, &mut grad, 0.25).unwrap();
    for (g, w) in grad.iter().zip(W) {
        assert_eq!(*g, 1.0 + 0.25 * 0.5 * 2.0 * w);
    }
    let mut g0 = [0.0f32; 1];
    L1::new(1.0).add_grad(&[0.0], &mut g0, 1.0).unwrap();
    assert_eq!(g0[0], 0.0, "TensorFlow's abs gradient at 0 is 0");
}

#[test]
fn defaults_follow_keras() {
    assert_eq!(L1::default().l1, 0.01);
    assert_eq!(L2::default().l2, 0.01);
    assert_eq!(L1L2::default(), L1L2::new(0.0, 0.0));
    let from_empty: Box<dyn Regularizer> = serde_json::from_str(r#"{"type":"L2"}"#).unwrap();
    assert_eq!(from_empty.penalty(&[1.0]).unwrap(), 0.01);
}

#[test]
fn every_builtin_round_trips_through_json() {
    let json: Vec<String> = all().iter().map(|r| serde_json::to_string(r.as_ref()).unwrap()).collect();
    insta::assert_snapshot!(json.join("\n"), @r#"
    {"type":"L1","l1":0.01}
    {"type":"L2","l2":0.002}
    {"type":"L1L2","l1":0.001,"l2":0.002}
    "#);
    for (reg, s) in all().iter().zip(&json) {
        let back: Box<dyn Regularizer> = serde_json::from_str(s).unwrap();
        assert_eq!(back.penalty(&W).unwrap(), reg.penalty(&W).unwrap());
    }
}

#[test]
fn factors_are_validated_like_keras() {
    // Keras: `validate_float_arg` refuses negative, NaN and infinite factors.
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let err = L2::new(bad).validate().unwrap_err().to_string();
        assert!(err.contains("argument `l2`") && err.contains("non-negative"), "{err}");
        assert!(L1::new(bad).validate().is_err());
        assert!(L1L2::new(0.0, bad).validate().unwrap_err().to_string().contains("`l2`"));
    }
    for reg in all() {
        reg.validate().unwrap();
    }
    L2::new(0.0).validate().unwrap();
}
