//! `kiln_datasets::pad_sequences` against Keras' own outputs
//! (fixtures/keras/generate/make_pad_sequences.py): every `maxlen` / `padding` /
//! `truncating` / `value` combination on sequences longer, shorter and empty.

use kiln_datasets::{PadOptions, Side, pad_sequences};

fn side(v: &serde_json::Value) -> Side {
    match v.as_str().unwrap() {
        "pre" => Side::Pre,
        "post" => Side::Post,
        other => panic!("side {other}"),
    }
}

#[test]
fn pad_sequences_matches_keras_for_every_argument_combination() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras/pad_sequences.json");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sequences: Vec<Vec<i64>> = serde_json::from_value(record["sequences"].clone()).unwrap();
    let cases = record["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 40);
    for case in cases {
        let opts = PadOptions {
            maxlen: case["maxlen"].as_u64().map(|m| m as usize),
            padding: side(&case["padding"]),
            truncating: side(&case["truncating"]),
            value: case["value"].as_u64().unwrap() as u32,
        };
        let want: Vec<Vec<u32>> = serde_json::from_value(case["output"].clone()).unwrap();
        let got = pad_sequences(&sequences, &opts).unwrap();
        let rows: Vec<Vec<u32>> = (0..got.rows()).map(|i| got.row(i).to_vec()).collect();
        assert_eq!(rows, want, "{case}");
    }
}

#[test]
fn pad_sequences_refuses_what_is_not_a_token_id() {
    let err = pad_sequences(&[vec![1i64, -2, 3]], &PadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("sequence 0, position 1") && err.contains("-2"), "{err}");
    let opts = PadOptions { maxlen: Some(0), ..PadOptions::default() };
    assert!(pad_sequences(&[vec![1u32]], &opts).unwrap_err().to_string().contains("maxlen"));
    // Truncated away, a bad id is never read (Keras cuts first).
    let opts = PadOptions { maxlen: Some(1), ..PadOptions::default() };
    assert_eq!(pad_sequences(&[vec![-1i64, 5]], &opts).unwrap().as_slice(), &[5]);
    // A `maxlen` no memory holds is an error, not an abort.
    let opts = PadOptions { maxlen: Some(usize::MAX / 16), ..PadOptions::default() };
    let err = pad_sequences(&[vec![1u32], vec![2]], &opts).unwrap_err().to_string();
    assert!(err.contains("do not fit in memory"), "{err}");
}

/// The bundled data as the text and timeseries examples take it: IMDB as padded ids, the
/// weather series as ten features in `docs/progression`'s order.
#[test]
fn bundled_imdb_sequences_and_weather_series_load_as_the_examples_take_them() {
    let imdb = kiln::data::imdb_sequences(&kiln_datasets::Source::Bundled, 10_000, 200).unwrap();
    let kiln_trainer::Features::Ids(ids) = &imdb.x else { panic!("ids expected") };
    assert_eq!((ids.rows(), ids.cols(), imdb.y.rows()), (5000, 200, 5000));
    assert!(ids.as_slice().iter().all(|&id| id < 10_000));
    // Keras pads at the front: a short review's first id is 0 and its last is not.
    assert!(ids.row(0)[199] != 0 && (0..5000).any(|i| ids.row(i)[0] == 0));
    assert!(imdb.y.as_slice().iter().all(|&l| l == 0.0 || l == 1.0));

    let weather = kiln::data::beijing_weather().unwrap();
    assert_eq!((weather.features.rows(), weather.features.cols()), (43_824, 10));
    // 2010-01-01 00:00: DEWP -21, TEMP -11, PRES 1021, Iws 1.79, Is 0, Ir 0, wind NW.
    assert_eq!(weather.features.row(0), &[-21.0, -11.0, 1021.0, 1.79, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    assert!((0..43_824).all(|i| weather.features.row(i)[6..].iter().sum::<f32>() == 1.0));
    assert!((0..43_824).all(|i| weather.features.get(i, 1) == weather.temperature[i]));
}
