//! Reading a socket under a wall-clock deadline. Each read waits only for
//! the time left, so a peer that trickles a frame a byte at a time cannot
//! stretch it past the deadline (a plain receive timeout starts again with
//! every byte that arrives).
use std::borrow::Borrow;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Reads `stream` (a blocking socket) until `deadline`, then fails with
/// `TimedOut`. It sets the socket's receive timeout before each read.
pub struct DeadlineReader<S> {
    stream: S,
    deadline: Instant,
}

impl<S: Borrow<UnixStream>> DeadlineReader<S> {
    pub fn new(stream: S, deadline: Instant) -> Self {
        DeadlineReader { stream, deadline }
    }

    /// Starts a new deadline, e.g. for the next frame.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

impl<S: Borrow<UnixStream>> Read for DeadlineReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the deadline for this frame passed"));
        }
        let stream = self.stream.borrow();
        stream.set_read_timeout(Some(left))?;
        let mut r: &UnixStream = stream;
        r.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{read_frame, write_frame, Frame, Limits};
    use std::io::Write;
    use std::time::Duration;

    #[test]
    fn a_trickling_peer_is_cut_off_at_the_deadline() {
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let mut frame = Vec::new();
        write_frame(&mut frame, &Frame::Data(vec![b'x'; 200])).unwrap();
        let trickle = std::thread::spawn(move || {
            // One byte every 20 ms: the whole frame would take 4 s.
            for byte in frame {
                if tx.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let start = Instant::now();
        let mut r = DeadlineReader::new(&rx, start + Duration::from_millis(300));
        let err = read_frame(&mut r, &Limits::default()).unwrap_err();
        let took = start.elapsed();
        assert!(err.is_timeout(), "{err}");
        // The deadline holds however many bytes arrived before it; the
        // bound is loose for a busy machine but far below the 4 s a
        // per-read timeout would allow.
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
        drop(rx);
        trickle.join().unwrap();
    }

    #[test]
    fn frames_that_arrive_are_read_and_the_deadline_can_move() {
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let mut r = DeadlineReader::new(&rx, Instant::now() + Duration::from_secs(5));
        write_frame(&mut tx, &Frame::End).unwrap();
        write_frame(&mut tx, &Frame::Abort).unwrap();
        assert_eq!(read_frame(&mut r, &Limits::default()).unwrap(), Frame::End);
        // A deadline already past fails at once, without reading.
        r.set_deadline(Instant::now());
        assert_eq!(read_frame(&mut r, &Limits::default()).unwrap_err().io_kind(), Some(io::ErrorKind::TimedOut));
        r.set_deadline(Instant::now() + Duration::from_secs(5));
        assert_eq!(read_frame(&mut r, &Limits::default()).unwrap(), Frame::Abort);
        drop(tx);
        assert!(matches!(read_frame(&mut r, &Limits::default()), Err(crate::protocol::ProtocolError::Closed)));
    }
}
