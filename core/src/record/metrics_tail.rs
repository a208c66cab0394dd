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

    /// Read what was appended since the last poll. A file that shrank (rewritten), or whose held
    /// partial last line changed (a resume truncated it and appended), is reread from the start: the
    /// returned flag is then `true` and callers should drop what they had.
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
        let r = self.read_new(max_bytes);
        if r.is_err() {
            // nothing is known to be waiting in a file that cannot be read (deleted, say): a reader
            // looping while `behind() > 0` must not spin on it
            self.len_seen = self.offset;
        }
        r
    }

    /// Whether the partial line held from the last poll is still in the file where it was read: a
    /// resumed run drops a partial last line and appends, possibly past the old length.
    fn pending_still_there(&self, f: &mut std::fs::File, len: u64) -> std::io::Result<bool> {
        let n = self.pending.len() as u64;
        if n == 0 || len < self.offset {
            return Ok(len >= self.offset);
        }
        f.seek(SeekFrom::Start(self.offset - n))?;
        let mut now = Vec::with_capacity(n as usize);
        f.take(n).read_to_end(&mut now)?;
        Ok(now == self.pending)
    }

    fn read_new(
        &mut self,
        max_bytes: u64,
    ) -> std::io::Result<(Vec<serde_json::Map<String, Value>>, bool)> {
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        let mut reset = false;
        if !self.pending_still_there(&mut f, len)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// A resume that drops a partial last line and appends more than it dropped (the file does not
    /// shrink between two polls) is seen as a rewrite: every complete line is read, none lost or
    /// glued to the dropped bytes.
    #[test]
    fn a_truncate_and_append_between_polls_loses_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        append(&p, "{\"a\":1}\n{\"partial");
        let mut t = MetricsTail::new(&p);
        let (lines, reset) = t.poll().unwrap();
        assert_eq!((lines.len(), reset), (1, false));
        // the resume: drop the partial line, append two complete ones
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(8).unwrap();
        append(&p, "{\"b\":2}\n{\"c\":3}\n");
        let (lines, reset) = t.poll().unwrap();
        assert!(reset);
        let keys: Vec<&String> = lines.iter().flat_map(|m| m.keys()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(t.bad_lines, 0);
        // an ordinary append after that is read incrementally
        append(&p, "{\"d\":4}\n");
        let (lines, reset) = t.poll().unwrap();
        assert_eq!((lines.len(), reset), (1, false));
    }

    /// A file deleted while it is being read in slices leaves nothing "behind" (a loader waiting
    /// for `behind() == 0` used to spin for ever).
    #[test]
    fn a_deleted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        append(&p, &"{\"x\":1}\n".repeat(100));
        let mut t = MetricsTail::new(&p);
        t.poll_limited(64).unwrap();
        assert!(t.behind() > 0);
        std::fs::remove_file(&p).unwrap();
        assert!(t.poll_limited(64).is_err());
        assert_eq!(t.behind(), 0);
    }
}
