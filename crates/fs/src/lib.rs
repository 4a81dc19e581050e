//! kiln-fs: writes that survive crashes, and reads that refuse what is not a file.
//!
//! A file, or a whole directory of files that must agree (a saved model), either keeps
//! its previous content or has the new one — never a mix, never a torn file — even if the
//! process is killed or the machine loses power mid-write. See [`write_atomic`] and
//! [`replace_dir_atomic`]. Readers use [`read_regular`] / [`open_regular`], which refuse
//! FIFOs, sockets and devices before opening them and bound what they read.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("kiln-fs-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! kiln_fs::write_atomic(&dir.join("a.txt"), b"hello")?;
//! assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"hello");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), kiln_fs::FileError>(())
//! ```
//!
//! With the `failpoints` feature, the `fail` crate's points `write:torn`, `write:enospc`
//! (a full disk), `save:before-swap`, `save:no-exchange`, `save:between-renames` and
//! `remove:after-rename` can kill or divert a save or a removal (configure them with
//! `fail::cfg(name, "return")` or `FAILPOINTS`); tests use them to prove that a killed
//! save loses nothing.

mod atomic;
mod error;
mod excerpt;
mod failpoint;
mod lock;
mod read;

pub use atomic::{recover_dir, remove_dir_atomic, replace_dir_atomic, write_atomic};
pub use error::FileError;
pub use excerpt::{EXCERPT_BYTES, excerpt, excerpt_to};
pub use lock::SaveLock;
pub use read::{check_file_or_dir, check_regular_file, open_regular, read_regular};
