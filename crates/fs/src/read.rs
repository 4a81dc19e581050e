//! Reading files that might not be files: FIFOs, sockets and devices are refused before
//! they are opened (opening a FIFO blocks; `/dev/zero` never ends), and every read is
//! bounded.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::FileError;

/// What kind of file `path` is, in words, when it is not a regular file or a directory.
fn special_kind(meta: &fs::Metadata) -> Option<&'static str> {
    let ft = meta.file_type();
    if ft.is_file() || ft.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
        if ft.is_char_device() {
            return Some("a character device");
        }
        if ft.is_block_device() {
            return Some("a block device");
        }
    }
    Some("not a regular file")
}

/// Errors unless `path` (following symlinks) is a regular file; names what it is instead.
pub fn check_regular_file(path: &Path) -> Result<fs::Metadata, FileError> {
    let meta = fs::metadata(path).map_err(|e| FileError::new(path, e))?;
    if meta.is_dir() {
        return Err(FileError::new(path, "is a directory, not a file"));
    }
    if let Some(kind) = special_kind(&meta) {
        return Err(FileError::new(path, format!("is {kind}, not a regular file; refusing to read it")));
    }
    Ok(meta)
}

/// Errors unless `path` is a regular file or a directory (a reader that takes either).
pub fn check_file_or_dir(path: &Path) -> Result<fs::Metadata, FileError> {
    let meta = fs::metadata(path).map_err(|e| FileError::new(path, e))?;
    if let Some(kind) = special_kind(&meta) {
        return Err(FileError::new(path, format!("is {kind}, not a regular file or directory; refusing to read it")));
    }
    Ok(meta)
}

/// Opens a regular file for reading (refusing FIFOs, sockets and devices first).
pub fn open_regular(path: &Path) -> Result<fs::File, FileError> {
    check_regular_file(path)?;
    fs::File::open(path).map_err(|e| FileError::new(path, e))
}

/// The whole content of a regular file of at most `max_bytes`; larger (or growing) files
/// are refused rather than read until memory runs out.
pub fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let meta = check_regular_file(path)?;
    if meta.len() > max_bytes {
        return Err(FileError::new(
            path,
            format!("is {} bytes, more than the {max_bytes} this reader accepts", meta.len()),
        ));
    }
    let file = fs::File::open(path).map_err(|e| FileError::new(path, e))?;
    let mut out = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1).read_to_end(&mut out).map_err(|e| FileError::new(path, e))?;
    if out.len() as u64 > max_bytes {
        return Err(FileError::new(
            path,
            format!("grew past the {max_bytes} bytes this reader accepts while being read"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_by_kind() {
        #[cfg(unix)]
        {
            let err = read_regular(Path::new("/dev/zero"), 10).unwrap_err().to_string();
            assert!(err.contains("/dev/zero") && err.contains("character device"), "{err}");
        }
        let dir = std::env::temp_dir();
        assert!(read_regular(&dir, 10).unwrap_err().to_string().contains("is a directory"));
        assert!(check_file_or_dir(&dir).is_ok());
        let f = dir.join(format!("kiln-fs-read-{}", std::process::id()));
        fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_regular(&f, 10).unwrap(), b"0123456789");
        assert!(read_regular(&f, 9).unwrap_err().to_string().contains("more than the 9"));
        fs::remove_file(&f).unwrap();
    }
}
