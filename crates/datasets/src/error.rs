//! The error type of this crate: every variant names the file (or URL) and the problem.

use std::path::PathBuf;

/// Anything that can go wrong while finding, fetching, verifying or parsing data.
///
/// Each message starts with the offending path or URL, so a user can tell *which* file is
/// bad; none of these is ever turned into a panic or a silently shorter data set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// An operating-system I/O error while reading or writing `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path a reader refuses before reading: not a regular file (a FIFO, a device, a
    /// socket), or larger than the reader accepts.
    #[error("{}: {problem}", path.display())]
    Refused {
        /// The path.
        path: PathBuf,
        /// What it is, or why it is refused.
        problem: String,
    },
    /// A gzip stream that is truncated or corrupt (bad header, CRC or length).
    #[error("{}: corrupt or truncated gzip data: {detail}", path.display())]
    Gzip {
        /// The `.gz` file.
        path: PathBuf,
        /// What the decoder reported.
        detail: String,
    },
    /// A file that is not a valid IDX file (magic, dimensions, byte count).
    #[error("{}: invalid IDX file: {problem}", path.display())]
    Idx {
        /// The IDX file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// An image file and a label file that do not belong together.
    #[error("{} and {}: {problem}", images.display(), labels.display())]
    Mismatch {
        /// The `*-idx3-ubyte` file.
        images: PathBuf,
        /// The `*-idx1-ubyte` file.
        labels: PathBuf,
        /// How they disagree.
        problem: String,
    },
    /// A tar archive (or aclImdb directory) that is unreadable or lacks the expected members.
    #[error("{}: {problem}", path.display())]
    Archive {
        /// The archive or directory.
        path: PathBuf,
        /// What is wrong or missing.
        problem: String,
    },
    /// A directory with nothing usable in it.
    #[error("{}: {problem}", path.display())]
    NoData {
        /// The directory.
        path: PathBuf,
        /// What was looked for.
        problem: String,
    },
    /// A file whose content is not one of the formats this crate reads.
    #[error("{}: unrecognised format: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        problem: String,
    },
    /// A download whose bytes do not match the published checksum or size.
    #[error("{url}: {problem} (the download was discarded)")]
    Verification {
        /// Where the bytes came from.
        url: String,
        /// Expected vs actual checksum or size.
        problem: String,
    },
    /// A download that failed (connection, HTTP status, timeout, interrupted body).
    #[error("{url}: download failed: {problem}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// The requested data could not be had from any allowed place; `attempts` says why.
    #[error("{what} is not available: {}", attempts.join("; "))]
    Unavailable {
        /// The data set and split, e.g. `mnist train (full)`.
        what: String,
        /// One line per place tried and why it failed.
        attempts: Vec<String>,
    },
    /// A CSV file that cannot be read as the options ask: a ragged row, a field that is not
    /// a number, a NaN or infinity where none is allowed, a column the options name but the
    /// header lacks.
    #[error("{}{}: {problem}", path.display(), csv_place(*line, column.as_deref()))]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The 1-based line of the offending record, when one is.
        line: Option<u64>,
        /// The offending column's header name, when one is.
        column: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// An argument outside its valid range (e.g. `max_tokens` smaller than the reserved tokens).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// `", line L, column `C`"` for a CSV error's place (either part only when known).
fn csv_place(line: Option<u64>, column: Option<&str>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(": line {l}, column `{c}`"),
        (Some(l), None) => format!(": line {l}"),
        (None, Some(c)) => format!(": column `{c}`"),
        (None, None) => String::new(),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A `kiln-fs` refusal (special file, too large) as this crate's error.
    pub(crate) fn refused(e: kiln_fs::FileError) -> Self {
        if e.message.contains("No such file") {
            return Error::NotFound { path: e.path };
        }
        Error::Refused { path: e.path, problem: e.message }
    }

    /// Wraps an I/O error, turning "not found" into [`Error::NotFound`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, source }
        }
    }
}
