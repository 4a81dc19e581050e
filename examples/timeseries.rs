//! Temperature forecasting, as in *Deep Learning with Python*, chapter 10, on the bundled
//! hourly Beijing weather series (`docs/progression.md`): windows of five days predict the
//! temperature 24 hours after their last hour; the common-sense baseline says "the same as
//! now"; an LSTM(16) learns from the windows. The windows are views of one series (Keras'
//! `timeseries_dataset_from_array` semantics), never copies.
//!
//! `cargo run --release -p kiln-examples --example timeseries`

use std::sync::Arc;

use kiln::prelude::*;

/// A few epochs keep the example quick; the book trains ten.
const EPOCHS: usize = 5;

fn main() -> Result<(), kiln::Error> {
    let weather = kiln::data::beijing_weather()?;
    let n = weather.features.rows();
    let (num_train, num_val) = (n / 2, n / 4);

    // Normalize each feature with the training part's mean and standard deviation.
    let mut raw = weather.features.clone();
    let (mut mean, mut std) = (vec![0f64; raw.cols()], vec![0f64; raw.cols()]);
    for j in 0..raw.cols() {
        let column: Vec<f64> = (0..num_train).map(|i| f64::from(raw.get(i, j))).collect();
        mean[j] = column.iter().sum::<f64>() / num_train as f64;
        std[j] = (column.iter().map(|v| (v - mean[j]).powi(2)).sum::<f64>() / num_train as f64).sqrt();
    }
    for i in 0..n {
        for (j, v) in raw.row_mut(i).iter_mut().enumerate() {
            *v = ((f64::from(*v) - mean[j]) / std[j]) as f32;
        }
    }

    // Keras: timeseries_dataset_from_array(raw[:-delay], temperature[delay:], …).
    let (sequence_length, delay) = (120, 120 + 24 - 1);
    let series = Arc::new(raw.slice_rows(0, n - delay));
    let targets = Matrix::from_vec(n - delay, 1, weather.temperature[delay..].to_vec())?;
    let windows = |start: usize, end: Option<usize>| {
        let options = WindowOptions { start_index: Some(start), end_index: end, ..WindowOptions::new(sequence_length) };
        Windows::new(series.clone(), Some(&targets), &options)
    };
    let (train, train_y) = windows(0, Some(num_train))?;
    let (val, val_y) = windows(num_train, Some(num_train + num_val))?;
    let (train_y, val_y) = (train_y.expect("targets given"), val_y.expect("targets given"));

    // The common-sense baseline: the last hour's temperature (feature 1, de-normalized).
    let baseline_mae = (0..val.len())
        .map(|k| {
            let last = f64::from(series.get(num_train + k + sequence_length - 1, 1)) * std[1] + mean[1];
            (last - f64::from(val_y.get(k, 0))).abs()
        })
        .sum::<f64>()
        / val.len() as f64;

    let mut model = Sequential::new().input_shape([sequence_length, 10]).add(LSTM::new(16)).add(Dense::new(1));
    model.compile(RMSprop::default(), Loss::mean_squared_error(), [Metric::MeanAbsoluteError])?;
    let val_x = Features::Windows(val);
    let options = FitOptions::default().epochs(EPOCHS).batch_size(32).validation_data(&val_x, &val_y);
    let history = model.fit(&Features::Windows(train), &train_y, options)?;

    let val_mae = history.get("val_mean_absolute_error").unwrap_or_default();
    println!("validation MAE of the baseline: {baseline_mae:.2} °C");
    println!("validation MAE of the LSTM per epoch: {val_mae:.2?} °C");
    println!("{}", model.summary());
    Ok(())
}
