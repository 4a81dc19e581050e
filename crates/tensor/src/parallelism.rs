//! How many threads a computation may use, and whether a product overwrites or adds.
//!
//! kiln's own types, so that no public signature names faer's (a faer major version must
//! not break every crate that implements a layer).

use std::num::NonZeroUsize;

/// The environment variable that sets the default thread count.
pub const THREADS_ENV: &str = "KILN_THREADS";

/// Most threads `KILN_THREADS` may ask for; more is surely a typo (and would spawn a
/// thread pool of that size).
pub const MAX_THREADS: usize = 1024;

/// Threads for matrix products and elementwise work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// One thread: results are bitwise reproducible on a given machine.
    #[default]
    Sequential,
    /// Up to this many threads (kiln's kernels keep each sum's order, so results equal the
    /// sequential ones bit for bit).
    Threads(NonZeroUsize),
}

impl Parallelism {
    /// `Sequential` for 0 or 1, else `Threads(n)`.
    pub fn threads(n: usize) -> Self {
        match NonZeroUsize::new(n) {
            Some(n) if n.get() > 1 => Self::Threads(n),
            _ => Self::Sequential,
        }
    }

    /// The thread count (1 when sequential).
    pub fn thread_count(self) -> usize {
        match self {
            Self::Sequential => 1,
            Self::Threads(n) => n.get(),
        }
    }

    /// From `KILN_THREADS` (a positive integer up to [`MAX_THREADS`]), else every core
    /// this process may use ([`Parallelism::all_cores`]), as Keras uses every core.
    ///
    /// A value that is not such a number is ignored with a warning on stderr rather than
    /// failing, since the variable only tunes speed, never results: kiln's splits keep
    /// each sum's order, so N threads give one thread's bits.
    pub fn from_env() -> Self {
        match std::env::var(THREADS_ENV) {
            Ok(v) => match parse_threads(&v) {
                Ok(n) => Self::threads(n),
                Err(why) => {
                    let all = Self::all_cores();
                    eprintln!("warning: ignoring {THREADS_ENV}={v:?} ({why}); using all {} cores", all.thread_count());
                    all
                }
            },
            Err(_) => Self::all_cores(),
        }
    }

    /// The cores this process may use (`std::thread::available_parallelism`, which
    /// honours CPU affinity and cgroup quotas), at most [`MAX_THREADS`]; one if unknown.
    pub fn all_cores() -> Self {
        Self::threads(std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS))
    }

    /// The faer equivalent.
    pub(crate) fn to_faer(self) -> faer::Par {
        match self {
            Self::Sequential => faer::Par::Seq,
            Self::Threads(n) => faer::Par::rayon(n.get()),
        }
    }
}

/// Parses a thread count: an integer in `1..=MAX_THREADS`.
pub fn parse_threads(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is not in 1..={MAX_THREADS}")),
        Err(_) => Err(format!("`{text}` is not a positive integer")),
    }
}

/// Whether a product overwrites its destination or adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accumulate {
    /// `dst = product`.
    Replace,
    /// `dst += product`.
    Add,
}

impl Accumulate {
    /// The faer equivalent.
    pub(crate) fn to_faer(self) -> faer::Accum {
        match self {
            Self::Replace => faer::Accum::Replace,
            Self::Add => faer::Accum::Add,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_is_sequential() {
        assert_eq!(Parallelism::threads(1), Parallelism::Sequential);
        assert_eq!(Parallelism::threads(0), Parallelism::Sequential);
        assert_eq!(Parallelism::threads(3).thread_count(), 3);
        assert!(matches!(Parallelism::threads(3).to_faer(), faer::Par::Rayon(n) if n.get() == 3));
    }

    #[test]
    fn all_cores_is_what_the_process_may_use() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(Parallelism::all_cores().thread_count(), cores.min(MAX_THREADS));
        if std::env::var_os(THREADS_ENV).is_none() {
            assert_eq!(Parallelism::from_env(), Parallelism::all_cores(), "the default is every core");
        }
    }

    #[test]
    fn thread_counts_are_checked() {
        assert_eq!(parse_threads(" 2 "), Ok(2));
        for bad in ["0", "-1", "two", "", "1025", "99999999999999999999999"] {
            assert!(parse_threads(bad).is_err(), "{bad}");
        }
    }
}
