//! Reading a growing `metrics.jsonl` as it is written.

use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Longest metrics line [`MetricsTail`] buffers while waiting for its newline; longer ones are
/// counted as unreadable and skipped, so junk without newlines cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Incremental reader of a growing `metrics.jsonl`: each [`MetricsTail::poll`] reads only the
/// bytes appended since the last call and returns the complete lines among them. A partial last
/// line is kept for the next poll; lines that are not JSON objects are counted, not fatal.
#[derive(Debug)]
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    pub(super) pending: Vec<u8>,
    len_seen: u64,
    /// Inside a line longer than [`MAX_LINE_BYTES`]: drop bytes up to its newline.
    skipping: bool,
    /// Lines that could not be parsed so far.
    pub bad_lines: usize,
}

impl MetricsTail {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        MetricsTail {
            path: path.into(),
            offset: 0,
            pending: Vec::new(),
            len_seen: 0,
            skipping: false,
            bad_lines: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes known to exist (file length at the last poll) but not read yet.
    pub fn behind(&self) -> u64 {
        self.len_seen.saturating_sub(self.offset)
    }

    /// Read what was appended since the last poll. A file that shrank (rewritten) is reread from
    /// the start: the returned flag is then `true` and callers should drop what they had.
    pub fn poll(&mut self) -> std::io::Result<(Vec<serde_json::Map<String, Value>>, bool)> {
        self.poll_limited(u64::MAX)
    }

    /// Like [`MetricsTail::poll`] but reads at most `max_bytes` new bytes, so a reader can work
    /// through a metrics file of millions of lines in bounded memory and time slices (call again
    /// while [`MetricsTail::behind`] is non-zero).
    pub fn poll_limited(
        &mut self,
        max_bytes: u64,
    ) -> std::io::Result<(Vec<serde_json::Map<String, Value>>, bool)> {
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        let mut reset = false;
        if len < self.offset {
            self.offset = 0;
            self.pending.clear();
            self.skipping = false;
            self.bad_lines = 0;
            reset = true;
        }
        self.len_seen = len;
        f.seek(SeekFrom::Start(self.offset))?;
        let want = (len - self.offset).min(max_bytes);
        let mut buf = Vec::with_capacity(want as usize);
        f.take(want).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.pending.extend_from_slice(&buf);
        let mut out = Vec::new();
        let cut = match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => {
                // A "line" with no end in sight (binary junk): count it once, keep no bytes.
                if self.pending.len() > MAX_LINE_BYTES {
                    self.pending.clear();
                    if !self.skipping {
                        self.bad_lines += 1;
                    }
                    self.skipping = true;
                }
                return Ok((out, reset));
            }
        };
        let complete: Vec<u8> = self.pending.drain(..cut).collect();
        for (k, line) in complete.split(|&b| b == b'\n').enumerate() {
            if k == 0 && self.skipping {
                // the end of an over-long line already counted
                self.skipping = false;
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(m)) => out.push(m),
                _ => self.bad_lines += 1,
            }
        }
        Ok((out, reset))
    }
}
