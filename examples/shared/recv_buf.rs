//! A receive buffer for the example servers' connection loops (http and
//! kv), included by `#[path]` from each.

use std::io::{self, Read};

/// A receive buffer: `data()` is what has been read and not consumed; the
/// rest is room for the next read, zeroed only when the buffer grows (not on
/// every read).
pub struct RecvBuf {
    buf: Vec<u8>,
    filled: usize,
}

impl RecvBuf {
    pub fn new(capacity: usize) -> RecvBuf {
        RecvBuf {
            buf: vec![0; capacity],
            filled: 0,
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Drops the first `n` bytes of data.
    pub fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// One read into the free space (doubling the buffer if there is none).
    pub fn read_from(&mut self, mut source: impl Read) -> io::Result<usize> {
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = source.read(&mut self.buf[self.filled..])?;
        self.filled += n;
        Ok(n)
    }
}
