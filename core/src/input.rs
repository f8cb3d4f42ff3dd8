//! Buffering for `wsgi.input`: `read`, `read(n)` and `readline(n)` over a
//! source that hands out body bytes in whatever pieces the client sent.
//!
//! What the app asks for is only an upper bound: nothing is allocated past
//! what the body can still hold (its Content-Length, when known) or past
//! what has arrived (a chunked body grows its result as data comes). An
//! allocation that fails is an error the caller can report, never an
//! abort, and it consumes nothing. A failed read fails every later one,
//! so a body cut short never looks complete.

/// The source of body bytes failed: the client went away, timed out, or
/// sent a malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadFailed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The source failed during this read.
    Failed,
    /// An earlier read failed: what is left of the body is unknown.
    FailedBefore,
    /// No memory for what was asked; no body byte was consumed.
    NoMemory,
}

/// Hands out body bytes into the buffer it is given; 0 at the end. An
/// empty buffer asks for nothing and only tells the client to go on
/// (`100 Continue`).
pub type Fill<'a> = dyn FnMut(&mut [u8]) -> Result<usize, ReadFailed> + 'a;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Open,
    Ended,
    Failed,
}

#[derive(Debug, Default)]
pub struct BodyReader {
    buf: Vec<u8>,
    pos: usize,
    state: State,
    /// What the source can still give, when the body's length is known.
    unread: Option<u64>,
    /// The source has been asked at least once.
    primed: bool,
}

/// The first step of a read whose size is not known up front; each later
/// step doubles what the result already holds.
const CHUNK: usize = 64 * 1024;

impl BodyReader {
    /// A reader for a body of `length` bytes, or of unknown length (chunked).
    pub fn new(length: Option<u64>) -> Self {
        BodyReader { unread: length, ..Self::default() }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn check(&self) -> Result<(), ReadError> {
        match self.state {
            State::Failed => Err(ReadError::FailedBefore),
            _ => Ok(()),
        }
    }

    /// The most bytes a read of `size` (everything when `None`) can
    /// return, when that is known: what is buffered plus what the body's
    /// length says is left. `None` while the end is unknown.
    pub fn bound(&self, size: Option<usize>) -> Option<usize> {
        let have = self.buffered().len();
        if let Some(n) = size.filter(|&n| n <= have) {
            return Some(n);
        }
        let left = match self.state {
            State::Open => self.unread?,
            State::Ended | State::Failed => 0,
        };
        let total = usize::try_from((have as u64).saturating_add(left)).unwrap_or(usize::MAX);
        Some(size.map_or(total, |n| n.min(total)))
    }

    /// Whether a read of `len` bytes is served without asking the source
    /// (so without blocking).
    pub fn ready(&self, len: usize) -> bool {
        self.state != State::Open || (self.primed && self.buffered().len() >= len)
    }

    /// Whether more may come from the source: not once it ended or
    /// failed, nor once a body of known length has been read whole.
    fn open(&mut self) -> bool {
        if self.state == State::Open && self.unread == Some(0) {
            self.state = State::Ended;
        }
        self.state == State::Open
    }

    /// Whether `readline(size)` is served without asking the source.
    pub fn line_ready(&self, size: Option<usize>) -> bool {
        let data = self.buffered();
        let limit = size.map_or(data.len(), |n| n.min(data.len()));
        self.state != State::Open || size.is_some_and(|n| n <= data.len()) || data[..limit].contains(&b'\n')
    }

    /// Asks the source for more into `out`, keeping track of the end.
    fn fill_from(&mut self, fill: &mut Fill<'_>, out: &mut [u8]) -> Result<usize, ReadError> {
        self.primed = true;
        match fill(out) {
            Ok(0) => {
                self.state = State::Ended;
                Ok(0)
            }
            Ok(n) => {
                self.unread = self.unread.map(|left| left.saturating_sub(n as u64));
                Ok(n)
            }
            Err(ReadFailed) => {
                self.state = State::Failed;
                Err(ReadError::Failed)
            }
        }
    }

    /// Takes up to `n` buffered bytes; the buffer itself when all of it goes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        let n = n.min(self.buffered().len());
        if self.pos == 0 && n == self.buf.len() {
            return Ok(std::mem::take(&mut self.buf));
        }
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| ReadError::NoMemory)?;
        out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(out)
    }

    /// Fills `out`, buffered bytes first, then straight from the source;
    /// returns how many bytes it holds, fewer only at the end of the body.
    /// An empty `out` asks the source once, the first time, so that the
    /// client is told to send its body.
    pub fn read_into(&mut self, out: &mut [u8], fill: &mut Fill<'_>) -> Result<usize, ReadError> {
        self.check()?;
        if out.is_empty() {
            if !self.primed && self.state == State::Open {
                self.primed = true;
                if fill(&mut []).is_err() {
                    self.state = State::Failed;
                    return Err(ReadError::Failed);
                }
            }
            return Ok(0);
        }
        let from_buffer = self.buffered().len().min(out.len());
        out[..from_buffer].copy_from_slice(&self.buf[self.pos..self.pos + from_buffer]);
        self.pos += from_buffer;
        let mut got = from_buffer;
        while got < out.len() && self.open() {
            got += self.fill_from(fill, &mut out[got..])?;
        }
        Ok(got)
    }

    /// `read(size)` (everything when `None`): up to `size` bytes, fewer
    /// only at the end of the body. A body of known length is reserved
    /// whole up front, so a size it cannot hold fails before anything is
    /// consumed; otherwise the result grows with the data that arrives.
    /// Either way memory is written only as data comes.
    pub fn read(&mut self, size: Option<usize>, fill: &mut Fill<'_>) -> Result<Vec<u8>, ReadError> {
        self.check()?;
        let want = size.unwrap_or(usize::MAX);
        let mut out = self.take(want)?;
        if let Some(rest) = self.bound(Some(want - out.len())) {
            if out.try_reserve_exact(rest).is_err() {
                self.unread_bytes(out);
                return Err(ReadError::NoMemory);
            }
        }
        while out.len() < want && self.open() {
            let have = out.len();
            let room = self.bound(Some(want - have)).unwrap_or(want - have);
            let step = room.min(have.max(CHUNK));
            if out.try_reserve(step).is_err() {
                self.unread_bytes(out);
                return Err(ReadError::NoMemory);
            }
            out.resize(have + step, 0);
            let mut got = 0;
            while got < step && self.open() {
                match self.fill_from(fill, &mut out[have + got..]) {
                    Ok(n) => got += n,
                    Err(e) => return Err(e),
                }
            }
            out.truncate(have + got);
        }
        Ok(out)
    }

    /// Adds at least one byte to the buffer, or returns false at the end.
    fn fill_buffer(&mut self, fill: &mut Fill<'_>) -> Result<bool, ReadError> {
        if !self.open() {
            return Ok(false);
        }
        // Keep only what is pending, so the buffer never grows with
        // bytes already handed out.
        let mut buf = std::mem::take(&mut self.buf);
        buf.drain(..self.pos);
        self.pos = 0;
        let start = buf.len();
        let step = self.unread.map_or(CHUNK, |left| CHUNK.min(usize::try_from(left).unwrap_or(usize::MAX)));
        if buf.try_reserve(step).is_err() {
            self.buf = buf;
            return Err(ReadError::NoMemory);
        }
        buf.resize(start + step, 0);
        let got = self.fill_from(fill, &mut buf[start..]);
        buf.truncate(start + *got.as_ref().unwrap_or(&0));
        self.buf = buf;
        Ok(got? > 0)
    }

    /// `readline(size)`: up to and including the next b'\n', at most `size` bytes.
    pub fn readline(&mut self, size: Option<usize>, fill: &mut Fill<'_>) -> Result<Vec<u8>, ReadError> {
        self.check()?;
        let mut scanned = 0;
        loop {
            let data = self.buffered();
            let limit = size.map_or(data.len(), |n| n.min(data.len()));
            if let Some(i) = data[scanned..limit].iter().position(|&b| b == b'\n') {
                return self.take(scanned + i + 1);
            }
            if size.is_some_and(|n| data.len() >= n) {
                return self.take(limit);
            }
            scanned = limit;
            if !self.fill_buffer(fill)? {
                return self.take(usize::MAX);
            }
        }
    }

    /// Puts back bytes a read returned but the caller could not hand on
    /// (no memory for them): the next read gets them again.
    pub fn unread_bytes(&mut self, data: Vec<u8>) {
        if self.buffered().is_empty() {
            self.buf = data;
            self.pos = 0;
        } else if self.pos >= data.len() {
            // Where they came from: the consumed part of the buffer.
            self.pos -= data.len();
            self.buf[self.pos..self.pos + data.len()].copy_from_slice(&data);
        } else {
            let mut joined = data;
            if joined.try_reserve(self.buffered().len()).is_ok() {
                joined.extend_from_slice(self.buffered());
                self.buf = joined;
                self.pos = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out `body` in pieces of at most `piece` bytes.
    fn source(body: &[u8], piece: usize) -> impl FnMut(&mut [u8]) -> Result<usize, ReadFailed> + '_ {
        let mut at = 0;
        move |buf: &mut [u8]| {
            let n = piece.min(buf.len()).min(body.len() - at);
            buf[..n].copy_from_slice(&body[at..at + n]);
            at += n;
            Ok(n)
        }
    }

    #[test]
    fn read_all_and_sized() {
        let body = b"hello world, this is the body";
        let mut fill = source(body, 4);
        let mut r = BodyReader::default();
        assert_eq!(r.read(Some(5), &mut fill).unwrap(), b"hello");
        assert_eq!(r.read(None, &mut fill).unwrap(), &body[5..]);
        assert_eq!(r.read(None, &mut fill).unwrap(), b"");
        assert_eq!(r.read(Some(3), &mut fill).unwrap(), b"");
    }

    #[test]
    fn readline_with_and_without_limit() {
        let body = b"one\ntwo two\n\nlast";
        let mut fill = source(body, 3);
        let mut r = BodyReader::default();
        assert_eq!(r.readline(None, &mut fill).unwrap(), b"one\n");
        assert_eq!(r.readline(Some(3), &mut fill).unwrap(), b"two");
        assert_eq!(r.readline(None, &mut fill).unwrap(), b" two\n");
        assert_eq!(r.readline(None, &mut fill).unwrap(), b"\n");
        assert_eq!(r.readline(None, &mut fill).unwrap(), b"last");
        assert_eq!(r.readline(None, &mut fill).unwrap(), b"");
    }

    #[test]
    fn mixed_reads_keep_order() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for length in [None, Some(body.len() as u64)] {
            let mut fill = source(&body, 7000);
            let mut r = BodyReader::new(length);
            let mut out = r.readline(Some(100), &mut fill).unwrap();
            out.extend(r.read(Some(150_000), &mut fill).unwrap());
            let mut piece = [0u8; 1000];
            let n = r.read_into(&mut piece, &mut fill).unwrap();
            out.extend_from_slice(&piece[..n]);
            out.extend(r.readline(None, &mut fill).unwrap());
            out.extend(r.read(None, &mut fill).unwrap());
            assert_eq!(out, body);
        }
    }

    #[test]
    fn read_into_takes_buffered_bytes_first() {
        let body = b"first line\nthe rest of it";
        let mut fill = source(body, 5);
        let mut r = BodyReader::default();
        assert!(!r.line_ready(None));
        assert_eq!(r.readline(Some(3), &mut fill).unwrap(), b"fir");
        assert!(r.line_ready(Some(2)), "two buffered bytes");
        assert!(!r.line_ready(None), "no newline buffered yet");
        let mut out = [0u8; 12];
        assert_eq!(r.read_into(&mut out, &mut fill).unwrap(), 12);
        assert_eq!(&out, b"st line\nthe ");
        let mut out = [0u8; 64];
        let n = r.read_into(&mut out, &mut fill).unwrap();
        assert_eq!(&out[..n], b"rest of it");
        assert_eq!(r.read_into(&mut out, &mut fill).unwrap(), 0);
    }

    #[test]
    fn bound_is_what_the_body_can_still_hold() {
        let body = b"twelve bytes";
        let mut fill = source(body, 5);
        let mut r = BodyReader::new(Some(12));
        assert_eq!(r.bound(Some(1 << 40)), Some(12));
        assert_eq!(r.bound(None), Some(12));
        assert_eq!(r.bound(Some(4)), Some(4));
        assert_eq!(r.readline(Some(3), &mut fill).unwrap(), b"twe");
        assert_eq!(r.bound(None), Some(9));

        let mut chunked = BodyReader::new(None);
        assert_eq!(chunked.bound(Some(1 << 40)), None);
        assert_eq!(chunked.bound(None), None);
        let mut fill = source(body, 5);
        assert_eq!(chunked.readline(Some(3), &mut fill).unwrap(), b"twe");
        // Served from what is buffered: known.
        assert_eq!(chunked.bound(Some(2)), Some(2));
        assert_eq!(chunked.read(None, &mut fill).unwrap(), b"lve bytes");
        assert_eq!(chunked.bound(Some(100)), Some(0), "the end is known once reached");
    }

    #[test]
    fn huge_sizes_allocate_only_what_arrives() {
        let body = b"twelve bytes";
        for length in [Some(12), None] {
            let mut fill = source(body, 5);
            let mut r = BodyReader::new(length);
            let out = r.read(Some(1 << 40), &mut fill).unwrap();
            assert_eq!(out, body);
            assert!(out.capacity() <= CHUNK, "{length:?}: {} bytes allocated", out.capacity());
            if length.is_some() {
                assert_eq!(out.capacity(), 12, "a known length is allocated exactly");
            }
        }
        // A large chunked body grows with what arrives, at most doubling.
        let big = vec![7u8; 1_000_000];
        let mut fill = source(&big, 10_000);
        let out = BodyReader::new(None).read(Some(usize::MAX), &mut fill).unwrap();
        assert_eq!(out.len(), big.len());
        assert!(out.capacity() < 2 * big.len() + CHUNK);
    }

    #[test]
    fn a_known_length_too_large_for_memory_fails_before_reading() {
        let body = b"twelve bytes";
        let mut fill = source(body, 5);
        let mut r = BodyReader::new(Some(1 << 50));
        assert_eq!(r.read(None, &mut fill), Err(ReadError::NoMemory));
        assert_eq!(r.read(Some(1 << 50), &mut fill), Err(ReadError::NoMemory));
        assert_eq!(r.read(Some(12), &mut fill).unwrap(), body, "nothing was consumed");
    }

    #[test]
    fn a_known_length_is_not_read_past() {
        let mut calls = 0;
        let mut fill = |buf: &mut [u8]| -> Result<usize, ReadFailed> {
            calls += 1;
            buf[..3].copy_from_slice(b"abc");
            Ok(3)
        };
        let mut r = BodyReader::new(Some(3));
        assert_eq!(r.read(None, &mut fill).unwrap(), b"abc");
        assert_eq!(r.read(None, &mut fill).unwrap(), b"");
        assert_eq!(calls, 1, "the end of a Content-Length body needs no further read");
    }

    #[test]
    fn errors_stick() {
        let mut calls = 0;
        let mut failing = |_: &mut [u8]| -> Result<usize, ReadFailed> {
            calls += 1;
            Err(ReadFailed)
        };
        let mut r = BodyReader::default();
        assert_eq!(r.read(None, &mut failing), Err(ReadError::Failed));
        assert_eq!(r.read(Some(10), &mut failing), Err(ReadError::FailedBefore));
        assert_eq!(r.readline(None, &mut failing), Err(ReadError::FailedBefore));
        assert_eq!(r.read_into(&mut [0u8; 4], &mut failing), Err(ReadError::FailedBefore));
        assert_eq!(r.read_into(&mut [], &mut failing), Err(ReadError::FailedBefore));
        assert_eq!(r.bound(None), Some(0));
        assert!(r.ready(100), "a failed reader answers without the source");
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_zero_read_asks_the_source_once_without_ending_the_body() {
        let mut asked = Vec::new();
        let body = b"data";
        let mut at = 0;
        let mut fill = |buf: &mut [u8]| -> Result<usize, ReadFailed> {
            asked.push(buf.len());
            let n = buf.len().min(body.len() - at);
            buf[..n].copy_from_slice(&body[at..at + n]);
            at += n;
            Ok(n)
        };
        let mut r = BodyReader::new(None);
        assert!(!r.ready(0));
        assert_eq!(r.read_into(&mut [], &mut fill).unwrap(), 0);
        assert!(r.ready(0));
        assert_eq!(r.read_into(&mut [], &mut fill).unwrap(), 0);
        assert_eq!(r.read(None, &mut fill).unwrap(), b"data");
        assert_eq!(asked[0], 0, "the first zero read reaches the source (100 Continue)");
        assert_eq!(asked.iter().filter(|&&n| n == 0).count(), 1);
    }

    #[test]
    fn unread_bytes_come_back_first() {
        let body = b"line one\nline two\nrest";
        let mut fill = source(body, 100);
        let mut r = BodyReader::default();
        let line = r.readline(None, &mut fill).unwrap();
        assert_eq!(line, b"line one\n");
        r.unread_bytes(line);
        assert_eq!(r.read(None, &mut fill).unwrap(), body);
        let mut r = BodyReader::default();
        let mut fill = source(body, 100);
        let all = r.read(None, &mut fill).unwrap();
        r.unread_bytes(all);
        assert_eq!(r.readline(None, &mut fill).unwrap(), b"line one\n");
    }

    #[test]
    fn buffer_holds_only_pending_bytes() {
        // Many short lines read one by one: the buffer never keeps lines
        // already handed out.
        let body: Vec<u8> = (0..20_000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let mut fill = source(&body, 4096);
        let mut r = BodyReader::default();
        let mut out = Vec::new();
        loop {
            let line = r.readline(None, &mut fill).unwrap();
            if line.is_empty() {
                break;
            }
            assert!(r.buf.len() <= 2 * CHUNK, "buffer grew to {}", r.buf.len());
            out.extend(line);
        }
        assert_eq!(out, body);
    }
}
