//! Buffering for `wsgi.input`: `read`, `read(n)` and `readline(n)` over a
//! source that hands out body bytes in whatever pieces the client sent.

/// Reads the request body through a `fill` function that returns 0 at the end.
#[derive(Debug, Default)]
pub struct BodyReader {
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

const CHUNK: usize = 64 * 1024;

impl BodyReader {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        out
    }

    /// Adds at least one byte to the buffer, or returns false at the end.
    fn fill_more<E>(&mut self, want: usize, fill: &mut dyn FnMut(&mut [u8]) -> Result<usize, E>) -> Result<bool, E> {
        if self.eof {
            return Ok(false);
        }
        let start = self.buf.len();
        self.buf.resize(start + want.clamp(1, CHUNK), 0);
        let got = fill(&mut self.buf[start..]);
        let n = *got.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        got?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// `read(size)`: up to `size` bytes (all that remain when `None`),
    /// fewer only at the end of the body.
    pub fn read<E>(&mut self, size: Option<usize>, fill: &mut dyn FnMut(&mut [u8]) -> Result<usize, E>) -> Result<Vec<u8>, E> {
        if let (Some(n), true) = (size, self.buffered().is_empty()) {
            return self.read_direct(n, fill);
        }
        loop {
            let have = self.buffered().len();
            if size.is_some_and(|n| have >= n) {
                return Ok(self.consume(size.unwrap()));
            }
            let want = size.map_or(CHUNK, |n| n - have);
            if !self.fill_more(want, fill)? {
                return Ok(self.consume(self.buffered().len()));
            }
        }
    }

    /// Fills `out` (buffered bytes first, then straight from the source),
    /// short only at the end of the body; returns how many bytes it holds.
    pub fn read_into<E>(&mut self, out: &mut [u8], fill: &mut dyn FnMut(&mut [u8]) -> Result<usize, E>) -> Result<usize, E> {
        let buffered = self.buffered().len().min(out.len());
        out[..buffered].copy_from_slice(&self.consume(buffered));
        let mut got = buffered;
        while got < out.len() && !self.eof {
            match fill(&mut out[got..])? {
                0 => self.eof = true,
                k => got += k,
            }
        }
        Ok(got)
    }

    /// `read(n)` with nothing buffered: the body goes straight into the
    /// result, with no intermediate buffer to fill, copy and clear.
    fn read_direct<E>(&mut self, n: usize, fill: &mut dyn FnMut(&mut [u8]) -> Result<usize, E>) -> Result<Vec<u8>, E> {
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n && !self.eof {
            match fill(&mut out[got..]) {
                Ok(0) => self.eof = true,
                Ok(k) => got += k,
                Err(e) => return Err(e),
            }
        }
        out.truncate(got);
        Ok(out)
    }

    /// `readline(size)`: up to and including the next b'\n', at most `size` bytes.
    pub fn readline<E>(&mut self, size: Option<usize>, fill: &mut dyn FnMut(&mut [u8]) -> Result<usize, E>) -> Result<Vec<u8>, E> {
        let mut scanned = 0;
        loop {
            let data = self.buffered();
            let limit = size.map_or(data.len(), |n| n.min(data.len()));
            if let Some(i) = data[scanned..limit].iter().position(|&b| b == b'\n') {
                return Ok(self.consume(scanned + i + 1));
            }
            if size.is_some_and(|n| data.len() >= n) {
                return Ok(self.consume(size.unwrap()));
            }
            scanned = limit;
            if !self.fill_more(CHUNK, fill)? {
                return Ok(self.consume(self.buffered().len()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out `body` in pieces of at most `piece` bytes.
    fn source(body: &[u8], piece: usize) -> impl FnMut(&mut [u8]) -> Result<usize, ()> + '_ {
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
        let mut fill = source(&body, 7000);
        let mut r = BodyReader::default();
        let mut out = r.readline(Some(100), &mut fill).unwrap();
        out.extend(r.read(Some(150_000), &mut fill).unwrap());
        out.extend(r.read(None, &mut fill).unwrap());
        assert_eq!(out, body);
    }

    #[test]
    fn read_into_takes_buffered_bytes_first() {
        let body = b"first line\nthe rest of it";
        let mut fill = source(body, 5);
        let mut r = BodyReader::default();
        assert_eq!(r.readline(Some(3), &mut fill).unwrap(), b"fir");
        let mut out = [0u8; 12];
        assert_eq!(r.read_into(&mut out, &mut fill).unwrap(), 12);
        assert_eq!(&out, b"st line\nthe ");
        let mut out = [0u8; 64];
        let n = r.read_into(&mut out, &mut fill).unwrap();
        assert_eq!(&out[..n], b"rest of it");
        assert_eq!(r.read_into(&mut out, &mut fill).unwrap(), 0);
    }

    #[test]
    fn errors_pass_through() {
        let mut calls = 0;
        let mut failing = |_: &mut [u8]| -> Result<usize, &str> {
            calls += 1;
            Err("reset")
        };
        let mut r = BodyReader::default();
        assert_eq!(r.read(None, &mut failing), Err("reset"));
        assert_eq!(calls, 1);
    }
}
