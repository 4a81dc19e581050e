//! Bounded quotes of input in error messages: an error about a 15 MiB value, or a
//! 10 KB command-line argument, quotes its start and says how long it is.

use std::fmt::{self, Display, Write};

/// Most bytes of a value an error message quotes.
pub const EXCERPT_BYTES: usize = 200;

/// `value` as text, cut to at most [`EXCERPT_BYTES`] bytes followed by `… (N bytes)` when
/// longer. The whole text is never held: quoting a huge value costs no memory.
pub fn excerpt(value: impl Display) -> String {
    excerpt_to(value, EXCERPT_BYTES)
}

/// [`excerpt`] with a limit of `max` bytes.
pub fn excerpt_to(value: impl Display, max: usize) -> String {
    let mut head = Head { text: String::new(), total: 0, max, cut: false };
    // `Head` never fails, so neither does formatting into it (a `Display` that errors
    // is quoted as far as it got).
    let _ = write!(head, "{value}");
    if head.cut { format!("{}… ({} bytes)", head.text, head.total) } else { head.text }
}

/// Keeps the first `max` bytes written (whole characters only) and counts the rest.
struct Head {
    text: String,
    total: usize,
    max: usize,
    cut: bool,
}

impl Write for Head {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        if self.cut {
            return Ok(());
        }
        let room = self.max - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.cut = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt("a".repeat(EXCERPT_BYTES)), "a".repeat(EXCERPT_BYTES));
        let long = "b".repeat(1 << 20);
        assert_eq!(excerpt(&long), format!("{}… (1048576 bytes)", "b".repeat(EXCERPT_BYTES)));
        // Never a split character.
        assert_eq!(excerpt_to("ééé", 3), "é… (6 bytes)");
        // Many small writes, as a JSON value's `Display` makes.
        struct Ones;
        impl Display for Ones {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (0..10_000).try_for_each(|_| f.write_str("1,"))
            }
        }
        let e = excerpt(Ones);
        assert!(e.starts_with("1,1,") && e.ends_with("… (20000 bytes)") && e.len() < EXCERPT_BYTES + 30, "{e}");
    }
}
