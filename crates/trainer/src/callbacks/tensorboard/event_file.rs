//! TensorBoard's event-file format: TFRecord framing of `Event` protobufs.
//!
//! A record is `len: u64 LE`, `masked_crc32c(len bytes): u32 LE`, `data`,
//! `masked_crc32c(data): u32 LE`, with `mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`
//! (TensorFlow's `core/lib/hash/crc32c.h`). The messages are the subset of
//! `tensorflow/core/util/event.proto` and `summary.proto` a scalar needs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;

/// `tensorflow.Event`: a timestamped step carrying a file version or a summary.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The payload.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum What {
    /// `"brain.Event:2"` in a file's first record.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Summary values.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` with a `simple_value` (what TensorBoard's scalar
/// dashboard reads, as PyTorch's and tensorboardX's writers write it).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SummaryValue {
    /// The series name (`epoch_loss`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// The scalar.
    #[prost(float, tag = "2")]
    pub simple_value: f32,
}

/// TensorFlow's masked CRC32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Longest host name put in an event file's name (a file name is at most 255 bytes).
const MAX_HOST_CHARS: usize = 64;

/// `$HOSTNAME` as a file-name part: characters outside `[A-Za-z0-9._-]` (a `/` would make
/// it a path) become `_`, at most [`MAX_HOST_CHARS`]; `localhost` when unset or empty.
fn host_part(raw: Option<&str>) -> String {
    let host: String = raw
        .unwrap_or("")
        .chars()
        .take(MAX_HOST_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    // `.` or `..` alone stay harmless inside the longer name, but say nothing: use the default.
    if host.is_empty() || host.chars().all(|c| c == '.') { "localhost".into() } else { host }
}

/// One event file, written record by record and flushed on request.
pub(crate) struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<secs>.<host>.<pid>.<n>.v2` (the directory too)
    /// and writes the version record.
    pub fn create(dir: &Path, n: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = wall_time();
        let host = host_part(std::env::var("HOSTNAME").ok().as_deref());
        let name = format!("events.out.tfevents.{}.{host}.{}.{n}.v2", now as u64, std::process::id());
        let path = dir.join(name);
        // `create_new`: never overwrite another run's file.
        let file = File::options().write(true).create_new(true).open(&path)?;
        let mut w = Self { path, out: BufWriter::new(file) };
        w.write(&Event { wall_time: now, step: 0, what: Some(What::FileVersion("brain.Event:2".into())) })?;
        w.flush()?;
        Ok(w)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends scalars at `step`, one event.
    pub fn scalars(&mut self, step: i64, values: impl IntoIterator<Item = (String, f32)>) -> std::io::Result<()> {
        let value: Vec<SummaryValue> =
            values.into_iter().map(|(tag, simple_value)| SummaryValue { tag, simple_value }).collect();
        if value.is_empty() {
            return Ok(());
        }
        self.write(&Event { wall_time: wall_time(), step, what: Some(What::Summary(Summary { value })) })
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn write(&mut self, event: &Event) -> std::io::Result<()> {
        let data = event.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc(&len).to_le_bytes())?;
        self.out.write_all(&data)?;
        self.out.write_all(&masked_crc(&data).to_le_bytes())
    }
}

/// Seconds since the Unix epoch.
fn wall_time() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_safe_file_name_parts() {
        // Issue 23 #16: a HOSTNAME with `/` or 300 characters gave "No such file".
        assert_eq!(host_part(Some("node-7.cluster_a")), "node-7.cluster_a");
        assert_eq!(host_part(Some("a/../b c")), "a_.._b_c");
        assert_eq!(host_part(Some(&"h".repeat(300))), "h".repeat(MAX_HOST_CHARS));
        assert_eq!(host_part(Some("")), "localhost");
        assert_eq!(host_part(None), "localhost");
        assert_eq!(host_part(Some("..")), "localhost");
        let dir = std::env::temp_dir().join(format!("kiln-tb-host-{}", std::process::id()));
        let name = format!("events.out.tfevents.1.{}.1.0.v2", host_part(Some(&format!("x/{}", "y".repeat(300)))));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&name), b"").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn masked_crc_matches_tensorflow() {
        // TensorFlow's crc32c_test: crc32c("123456789") = 0xe3069283; the masked value is
        // what tensorboard.summary.writer.record_writer.masked_crc32c returns for it.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn records_frame_their_events() {
        let dir = std::env::temp_dir().join(format!("kiln-tb-unit-{}", std::process::id()));
        let mut w = EventWriter::create(&dir, 0).unwrap();
        w.scalars(3, [("epoch_loss".to_string(), 0.25)]).unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()), masked_crc(&bytes[at..at + 8]));
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            events.push(Event::decode(data).unwrap());
            at += 16 + len;
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
        let Some(What::Summary(s)) = &events[1].what else { panic!("no summary") };
        assert_eq!((events[1].step, s.value[0].tag.as_str(), s.value[0].simple_value), (3, "epoch_loss", 0.25));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
