//! Numeric and categorical tables from CSV files (optionally gzipped), read with the `csv`
//! crate. Every refusal names the file, the line and the column: a ragged row, a field that
//! is not a number, NaN or infinity where the options do not allow it.

use std::io::Read;
use std::path::{Path, PathBuf};

use kiln_tensor::Matrix;

use crate::idx::open_maybe_gzip;
use crate::{Error, Result};

/// How [`read_csv`] reads a file. Defaults: comma-separated, a header row, every column
/// numeric, no missing values allowed.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The field separator (default `b','`).
    pub delimiter: u8,
    /// Whether the first row names the columns (default true); without one the columns are
    /// named `1`, `2`, ….
    pub has_header: bool,
    /// Columns read as categories: each distinct field becomes an id, in order of first
    /// appearance.
    pub categorical: Vec<String>,
    /// Columns left out (neither parsed nor kept).
    pub skip: Vec<String>,
    /// Fields that mean "missing" (e.g. `NA`, or the empty field `""`); none by default.
    pub missing: Vec<String>,
    /// Numeric columns where missing fields, NaN and infinities are kept (missing → NaN);
    /// anywhere else they are refused.
    pub allow_missing: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            has_header: true,
            categorical: Vec::new(),
            skip: Vec::new(),
            missing: Vec::new(),
            allow_missing: Vec::new(),
        }
    }
}

impl CsvOptions {
    /// Reads these columns as categories.
    pub fn categorical(mut self, names: &[&str]) -> Self {
        self.categorical = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Leaves these columns out.
    pub fn skip(mut self, names: &[&str]) -> Self {
        self.skip = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Treats these fields as missing values.
    pub fn missing(mut self, tokens: &[&str]) -> Self {
        self.missing = tokens.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Allows missing values, NaN and infinities in these numeric columns.
    pub fn allow_missing(mut self, names: &[&str]) -> Self {
        self.allow_missing = names.iter().map(|n| n.to_string()).collect();
        self
    }
}

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers, one per row.
    Numeric(Vec<f32>),
    /// Category ids, one per row, and the category each id stands for.
    Categorical {
        /// The id of each row's category.
        ids: Vec<u32>,
        /// `vocabulary[id]` is the field the id was read from.
        vocabulary: Vec<String>,
    },
}

/// How a column enters [`Table::matrix`].
#[derive(Debug, Clone, Copy)]
pub enum Encode<'a> {
    /// A numeric column's values, one matrix column.
    Value,
    /// A categorical column as one-hot columns in this order of categories (a row whose
    /// category is not listed is refused).
    OneHot(&'a [&'a str]),
}

/// A CSV file's kept columns, by header name.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file read (for error messages).
    pub path: PathBuf,
    /// The kept columns' names, in file order.
    pub names: Vec<String>,
    /// The kept columns, in file order.
    pub columns: Vec<Column>,
    rows: usize,
}

impl Table {
    /// The number of data rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Result<&Column> {
        let k = self.names.iter().position(|n| n == name).ok_or_else(|| {
            self.error(None, Some(name), format!("no such column; the table has {}", self.names.join(", ")))
        })?;
        Ok(&self.columns[k])
    }

    /// The numeric column named `name`.
    pub fn numeric(&self, name: &str) -> Result<&[f32]> {
        match self.column(name)? {
            Column::Numeric(v) => Ok(v),
            Column::Categorical { .. } => Err(self.error(None, Some(name), "is categorical, not numeric".into())),
        }
    }

    /// A `[rows, k]` matrix of these columns, in this order: numeric values as they are,
    /// categorical columns one-hot in the given category order.
    pub fn matrix(&self, columns: &[(&str, Encode<'_>)]) -> Result<Matrix> {
        let width: usize = columns
            .iter()
            .map(|(_, e)| match e {
                Encode::Value => 1,
                Encode::OneHot(order) => order.len(),
            })
            .sum();
        let mut out = Matrix::zeros(self.rows, width);
        let mut at = 0;
        for &(name, encode) in columns {
            match (self.column(name)?, encode) {
                (Column::Numeric(v), Encode::Value) => {
                    v.iter().enumerate().for_each(|(i, &x)| out.row_mut(i)[at] = x);
                    at += 1;
                }
                (Column::Categorical { ids, vocabulary }, Encode::OneHot(order)) => {
                    // Where each category id lands among the one-hot columns.
                    let slots: Vec<Option<usize>> =
                        vocabulary.iter().map(|c| order.iter().position(|o| o == c)).collect();
                    for (i, &id) in ids.iter().enumerate() {
                        let Some(slot) = slots[id as usize] else {
                            let problem = format!(
                                "category `{}` (data row {}) is not among the one-hot categories {order:?}",
                                vocabulary[id as usize],
                                i + 1
                            );
                            return Err(self.error(None, Some(name), problem));
                        };
                        out.row_mut(i)[at + slot] = 1.0;
                    }
                    at += order.len();
                }
                (Column::Numeric(_), Encode::OneHot(_)) => {
                    let problem = "is numeric; read it as categorical (CsvOptions::categorical) to one-hot it";
                    return Err(self.error(None, Some(name), problem.into()));
                }
                (Column::Categorical { .. }, Encode::Value) => {
                    return Err(self.error(None, Some(name), "is categorical; encode it with Encode::OneHot".into()));
                }
            }
        }
        Ok(out)
    }

    fn error(&self, line: Option<u64>, column: Option<&str>, problem: String) -> Error {
        Error::Csv { path: self.path.clone(), line, column: column.map(str::to_string), problem }
    }
}

/// Reads a CSV file (gzip-compressed when it starts with gzip's magic bytes) into a
/// [`Table`], as `options` say.
///
/// ```no_run
/// use kiln_datasets::{CsvOptions, Encode, read_csv};
///
/// let options = CsvOptions::default().categorical(&["cbwd"]).skip(&["No", "pm2.5"]);
/// let table = read_csv("hourly_beijing_pm.csv.gz".as_ref(), &options)?;
/// let x = table.matrix(&[("TEMP", Encode::Value), ("cbwd", Encode::OneHot(&["NE", "NW", "SE", "cv"]))])?;
/// assert_eq!(x.cols(), 5);
/// # Ok::<(), kiln_datasets::Error>(())
/// ```
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<Table> {
    read_csv_from(open_maybe_gzip(path)?, path, options)
}

/// [`read_csv`] from any reader; `path` names it in errors.
pub fn read_csv_from(reader: impl Read, path: &Path, options: &CsvOptions) -> Result<Table> {
    let error = |line: Option<u64>, column: Option<&str>, problem: String| Error::Csv {
        path: path.to_path_buf(),
        line,
        column: column.map(str::to_string),
        problem,
    };
    let mut csv =
        csv::ReaderBuilder::new().delimiter(options.delimiter).has_headers(false).flexible(true).from_reader(reader);
    let mut records = csv.records();
    let read_error = |e: csv::Error| {
        let line = e.position().map(|p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(source) => Error::Io { path: path.to_path_buf(), source },
            csv::ErrorKind::Utf8 { err, .. } => error(line, None, format!("not UTF-8 text ({err})")),
            other => error(line, None, format!("{other:?}")),
        }
    };
    let first = match records.next() {
        Some(r) => r.map_err(read_error)?,
        None => return Err(error(None, None, "empty file: no header row and no data".into())),
    };
    let width = first.len();
    let (names, pending): (Vec<String>, Option<csv::StringRecord>) = if options.has_header {
        (first.iter().map(|f| f.trim().to_string()).collect(), None)
    } else {
        ((1..=width).map(|k| k.to_string()).collect(), Some(first))
    };
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(error(Some(1), Some(name), "appears twice in the header".into()));
        }
    }
    for (option, list) in
        [("categorical", &options.categorical), ("skip", &options.skip), ("allow_missing", &options.allow_missing)]
    {
        if let Some(unknown) = list.iter().find(|n| !names.contains(n)) {
            let problem = format!("named in `{option}` but not in the header ({})", names.join(", "));
            return Err(error(None, Some(unknown), problem));
        }
    }
    if let Some(both) = options.categorical.iter().find(|n| options.allow_missing.contains(n)) {
        return Err(error(None, Some(both), "is both categorical and in `allow_missing` (numeric only)".into()));
    }
    // Per file column: None when skipped, else its kept index.
    let mut kept_names = Vec::new();
    let mut columns = Vec::new();
    let mut slot = Vec::with_capacity(width);
    for name in &names {
        if options.skip.contains(name) {
            slot.push(None);
            continue;
        }
        slot.push(Some(columns.len()));
        kept_names.push(name.clone());
        columns.push(if options.categorical.contains(name) {
            Column::Categorical { ids: Vec::new(), vocabulary: Vec::new() }
        } else {
            Column::Numeric(Vec::new())
        });
    }
    let lenient: Vec<bool> = kept_names.iter().map(|n| options.allow_missing.contains(n)).collect();
    let mut vocabularies: Vec<std::collections::HashMap<String, u32>> = vec![Default::default(); columns.len()];
    let mut rows = 0usize;
    for record in pending.into_iter().map(Ok).chain(records) {
        let record = record.map_err(read_error)?;
        let line = record.position().map(|p| p.line());
        if record.len() != width {
            let what = if options.has_header { "the header has" } else { "the first row has" };
            return Err(error(line, None, format!("{} fields, {what} {width}", record.len())));
        }
        for (field, k) in record.iter().zip(&slot) {
            let Some(k) = *k else { continue };
            let name = &kept_names[k];
            match &mut columns[k] {
                Column::Numeric(values) => {
                    let trimmed = field.trim();
                    let value = if options.missing.iter().any(|m| m == trimmed) {
                        if !lenient[k] {
                            let problem = format!("missing value `{trimmed}` (allow it with `allow_missing`)");
                            return Err(error(line, Some(name), problem));
                        }
                        f32::NAN
                    } else {
                        let parsed: f32 = trimmed
                            .parse()
                            .map_err(|_| error(line, Some(name), format!("`{}` is not a number", excerpt(field))))?;
                        if !parsed.is_finite() && !lenient[k] {
                            let problem = format!("`{trimmed}` is not a finite number (allow it with `allow_missing`)");
                            return Err(error(line, Some(name), problem));
                        }
                        parsed
                    };
                    values.push(value);
                }
                Column::Categorical { ids, vocabulary } => {
                    let next = vocabulary.len() as u32;
                    let id = *vocabularies[k].entry(field.to_string()).or_insert_with(|| {
                        vocabulary.push(field.to_string());
                        next
                    });
                    ids.push(id);
                }
            }
        }
        rows += 1;
    }
    Ok(Table { path: path.to_path_buf(), names: kept_names, columns, rows })
}

/// A field shortened for an error message.
fn excerpt(field: &str) -> String {
    kiln_fs::excerpt_to(field, 40)
}

/// The features of the hourly weather series, in the order of `docs/progression.md`.
pub const WEATHER_FEATURES: [&str; 10] = ["DEWP", "TEMP", "PRES", "Iws", "Is", "Ir", "NE", "NW", "SE", "cv"];

/// The hourly weather series of [`beijing_weather`].
#[derive(Debug, Clone)]
pub struct Weather {
    /// One row per hour, [`WEATHER_FEATURES`] columns, not normalized.
    pub features: Matrix,
    /// The temperature of each hour, °C.
    pub temperature: Vec<f32>,
    /// The file read.
    pub path: PathBuf,
}

/// The bundled hourly Beijing weather series ([`beijing_weather_csv`](crate::beijing_weather_csv))
/// as `docs/progression.md` takes it: `features` `[43824, 10]` — dew point, temperature
/// (°C), pressure, cumulated wind speed, snow and rain hours, then the wind direction one-hot
/// in the order `NE, NW, SE, cv` — and the temperature alone.
pub fn beijing_weather() -> Result<Weather> {
    let path = crate::beijing_weather_csv();
    let options = CsvOptions::default().categorical(&["cbwd"]).skip(&["No", "year", "month", "day", "hour", "pm2.5"]);
    let table = read_csv(&path, &options)?;
    let mut columns: Vec<(&str, Encode<'_>)> = WEATHER_FEATURES[..6].iter().map(|&n| (n, Encode::Value)).collect();
    columns.push(("cbwd", Encode::OneHot(&WEATHER_FEATURES[6..])));
    Ok(Weather { features: table.matrix(&columns)?, temperature: table.numeric("TEMP")?.to_vec(), path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, options: &CsvOptions) -> Result<Table> {
        read_csv_from(text.as_bytes(), Path::new("t.csv"), options)
    }

    fn message(text: &str, options: &CsvOptions) -> String {
        read(text, options).unwrap_err().to_string()
    }

    #[test]
    fn numeric_and_categorical_columns_with_one_hot() {
        let text = "No,TEMP,cbwd,pm2.5\n1,-11,NW,NA\n2,-12.5,cv,129\n3,1e1,NW,148\n";
        let options =
            CsvOptions::default().categorical(&["cbwd"]).skip(&["No"]).missing(&["NA"]).allow_missing(&["pm2.5"]);
        let t = read(text, &options).unwrap();
        assert_eq!((t.rows(), t.names.clone()), (3, vec!["TEMP".to_string(), "cbwd".into(), "pm2.5".into()]));
        assert_eq!(t.numeric("TEMP").unwrap(), &[-11.0, -12.5, 10.0]);
        assert!(t.numeric("pm2.5").unwrap()[0].is_nan());
        assert_eq!(
            t.column("cbwd").unwrap(),
            &Column::Categorical { ids: vec![0, 1, 0], vocabulary: vec!["NW".into(), "cv".into()] }
        );
        let x = t.matrix(&[("cbwd", Encode::OneHot(&["NE", "NW", "SE", "cv"])), ("TEMP", Encode::Value)]).unwrap();
        assert_eq!(x.as_slice(), &[0., 1., 0., 0., -11., 0., 0., 0., 1., -12.5, 0., 1., 0., 0., 10.]);
        let e = t.matrix(&[("cbwd", Encode::OneHot(&["NE", "NW"]))]).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.csv: column `cbwd`: category `cv` (data row 2) is not among the one-hot categories [\"NE\", \"NW\"]"
        );
    }

    #[test]
    fn bad_rows_and_fields_are_refused_naming_line_and_column() {
        let plain = CsvOptions::default();
        assert_eq!(message("a,b\n1,2\n3\n", &plain), "t.csv: line 3: 1 fields, the header has 2");
        assert_eq!(message("a,b\n1,2\n3,x7\n", &plain), "t.csv: line 3, column `b`: `x7` is not a number");
        assert_eq!(
            message("a,b\n1,NaN\n", &plain),
            "t.csv: line 2, column `b`: `NaN` is not a finite number (allow it with `allow_missing`)"
        );
        assert!(message("a,b\n1,inf\n", &plain).contains("line 2, column `b`: `inf` is not a finite"));
        assert_eq!(
            message("a,b\n1,NA\n", &CsvOptions::default().missing(&["NA"])),
            "t.csv: line 2, column `b`: missing value `NA` (allow it with `allow_missing`)"
        );
        assert_eq!(message("a,b\n1,\n", &plain), "t.csv: line 2, column `b`: `` is not a number");
        assert_eq!(message("", &plain), "t.csv: empty file: no header row and no data");
        assert_eq!(message("a,a\n1,2\n", &plain), "t.csv: line 1, column `a`: appears twice in the header");
        assert_eq!(
            message("a,b\n1,2\n", &CsvOptions::default().skip(&["c"])),
            "t.csv: column `c`: named in `skip` but not in the header (a, b)"
        );
        let bytes = b"a,b\n1,\xff\n";
        let e = read_csv_from(&bytes[..], Path::new("t.csv"), &CsvOptions::default().categorical(&["b"])).unwrap_err();
        assert!(e.to_string().starts_with("t.csv: line 2: not UTF-8 text"), "{e}");
    }

    #[test]
    fn quoted_fields_crlf_other_delimiters_and_no_header() {
        let t = read(
            "\"x\";\"name\"\r\n\"1.5\";\"a;b\"\r\n2;c\r\n",
            &CsvOptions { delimiter: b';', categorical: vec!["name".into()], ..CsvOptions::default() },
        )
        .unwrap();
        assert_eq!(t.numeric("x").unwrap(), &[1.5, 2.0]);
        assert_eq!(
            t.column("name").unwrap(),
            &Column::Categorical { ids: vec![0, 1], vocabulary: vec!["a;b".into(), "c".into()] }
        );
        let t = read("1,2\n3,4\n", &CsvOptions { has_header: false, ..CsvOptions::default() }).unwrap();
        assert_eq!((t.rows(), t.numeric("2").unwrap()), (2, &[2.0, 4.0][..]));
        assert_eq!(
            message("1,2\n3\n", &CsvOptions { has_header: false, ..CsvOptions::default() }),
            "t.csv: line 2: 1 fields, the first row has 2"
        );
    }
}
