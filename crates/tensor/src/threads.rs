//! How many threads matrix products use: `KILN_THREADS`, else one.

use faer::Par;

/// The environment variable that sets the default thread count.
pub const THREADS_ENV: &str = "KILN_THREADS";

/// Threads requested by `KILN_THREADS` (a positive integer), else 1.
///
/// An unparsable or zero value is ignored with a warning on stderr rather than failing,
/// since the variable only tunes speed.
pub fn threads_from_env() -> usize {
    match std::env::var(THREADS_ENV) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("warning: ignoring {THREADS_ENV}={v:?} (expected a positive integer); using 1 thread");
                1
            }
        },
        Err(_) => 1,
    }
}

/// The faer parallelism for `threads`: sequential for 1 (bit-reproducible), rayon otherwise.
pub fn par_for_threads(threads: usize) -> Par {
    if threads <= 1 { Par::Seq } else { Par::rayon(threads) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_is_sequential() {
        assert!(matches!(par_for_threads(1), Par::Seq));
        assert!(matches!(par_for_threads(0), Par::Seq));
        assert!(matches!(par_for_threads(3), Par::Rayon(n) if n.get() == 3));
    }
}
