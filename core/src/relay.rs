//! How the Apache child passes a daemon's response on to the client. The
//! daemon runs the application's code, which the child does not trust to
//! frame the client's connection: the child checks the head, drops
//! hop-by-hop headers and holds the body to the Content-Length it was given,
//! so a daemon cannot desynchronise a keep-alive connection.
use crate::response::{falls_short, is_bodiless};
use crate::validate;

/// Headers that describe one connection, not the response (RFC 9110 §7.6.1):
/// Apache frames the client's connection itself.
const HOP_BY_HOP: [&[u8]; 7] = [b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"];

/// A daemon's head that the child can pass on.
#[derive(Debug, PartialEq, Eq)]
pub struct RelayedHead {
    /// The headers to send, without hop-by-hop ones.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The response's Content-Length, if it declared one.
    pub content_length: Option<u64>,
    /// The application asked for the client connection to be closed
    /// (`Connection: close`).
    pub close_client: bool,
    /// The names of the hop-by-hop headers that were left out.
    pub dropped: Vec<Vec<u8>>,
}

/// Why a daemon's head cannot be passed on.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadRefused {
    /// A 1xx status: an informational answer is not a response.
    Informational(u16),
    /// A Content-Length that does not parse, or two that differ.
    ContentLength(String),
}

impl std::fmt::Display for HeadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadRefused::Informational(status) => write!(f, "status {status} is informational (1xx), not a final response"),
            HeadRefused::ContentLength(why) => f.write_str(why),
        }
    }
}

/// Checks a daemon's head before anything of it reaches Apache.
pub fn check_head(status: u16, headers: &[(Vec<u8>, Vec<u8>)]) -> Result<RelayedHead, HeadRefused> {
    if (100..200).contains(&status) {
        return Err(HeadRefused::Informational(status));
    }
    let mut relayed = RelayedHead { headers: Vec::with_capacity(headers.len()), content_length: None, close_client: false, dropped: Vec::new() };
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = validate::content_length(value).map_err(HeadRefused::ContentLength)?;
            if relayed.content_length.is_some_and(|earlier| earlier != length) {
                return Err(HeadRefused::ContentLength("two different Content-Length response headers".into()));
            }
            relayed.content_length = Some(length);
        }
        if HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop)) {
            if name.eq_ignore_ascii_case(b"connection") {
                relayed.close_client |= value.split(|&b| b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
            relayed.dropped.push(name.clone());
        } else {
            relayed.headers.push((name.clone(), value.clone()));
        }
    }
    Ok(relayed)
}

/// Holds a response body to its Content-Length as Data frames arrive.
#[derive(Debug)]
pub struct BodyLimit {
    status: u16,
    head_request: bool,
    content_length: Option<u64>,
    /// Nobody sees this body (Apache answers with its own error document).
    discard: bool,
    /// Body bytes passed on so far.
    sent: u64,
}

/// What to do with one Data frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Take {
    /// How many of its bytes go to the client.
    pub pass: usize,
    /// Bytes beyond the Content-Length: the daemon is out of step.
    pub excess: usize,
}

impl BodyLimit {
    /// For the response with this status and Content-Length, to a HEAD
    /// request if `head_request`.
    pub fn new(status: u16, head_request: bool, content_length: Option<u64>) -> Self {
        BodyLimit { status, head_request, content_length, discard: false, sent: 0 }
    }

    /// A body taken whole and passed nowhere (`WSGIErrorOverride`).
    pub fn discarding(status: u16) -> Self {
        BodyLimit { discard: true, ..BodyLimit::new(status, false, None) }
    }

    /// Takes `len` bytes of body from the daemon.
    pub fn take(&mut self, len: usize) -> Take {
        if self.discard || is_bodiless(self.status, self.head_request) {
            // A HEAD is often answered by running the GET: its body is
            // expected and dropped, and says nothing about the framing.
            return Take { pass: 0, excess: 0 };
        }
        let room = self.content_length.map_or(u64::MAX, |length| length - self.sent);
        let pass = room.min(len as u64) as usize;
        self.sent += pass as u64;
        Take { pass, excess: len - pass }
    }

    /// At the end of the body: how many bytes short of its Content-Length
    /// it is, when that breaks its promise (see [`falls_short`]); else 0.
    pub fn shortfall(&self) -> u64 {
        if !self.discard && falls_short(self.status, self.head_request, self.content_length, self.sent) {
            self.content_length.unwrap_or(0) - self.sent
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn heads() {
        let ok = check_head(200, &headers(&[("Content-Type", "text/plain"), ("Content-Length", "12")])).unwrap();
        assert_eq!(ok.content_length, Some(12));
        assert_eq!(ok.headers, headers(&[("Content-Type", "text/plain"), ("Content-Length", "12")]));
        assert!(!ok.close_client && ok.dropped.is_empty());
        assert_eq!(check_head(404, &[]).unwrap().content_length, None);
        // The same length twice is harmless.
        assert_eq!(check_head(200, &headers(&[("Content-Length", "5"), ("content-length", "5")])).unwrap().content_length, Some(5));

        for (status, pairs, refused) in [
            (100, vec![], HeadRefused::Informational(100)),
            (101, vec![("Upgrade", "websocket")], HeadRefused::Informational(101)),
            (199, vec![], HeadRefused::Informational(199)),
            (200, vec![("Content-Length", "abc")], HeadRefused::ContentLength("invalid Content-Length response header \"abc\"".into())),
            (200, vec![("Content-Length", "")], HeadRefused::ContentLength("invalid Content-Length response header \"\"".into())),
            (200, vec![("Content-Length", "-1")], HeadRefused::ContentLength("invalid Content-Length response header \"-1\"".into())),
            (200, vec![("Content-Length", "99999999999999999999999")], HeadRefused::ContentLength("Content-Length response header too large: 99999999999999999999999".into())),
            (200, vec![("Content-Length", "5"), ("Content-Length", "6")], HeadRefused::ContentLength("two different Content-Length response headers".into())),
        ] {
            assert_eq!(check_head(status, &headers(&pairs)), Err(refused), "{status} {pairs:?}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let head = check_head(
            200,
            &headers(&[
                ("Transfer-Encoding", "chunked"),
                ("X-Kept", "1"),
                ("Connection", "keep-alive, Close"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Trailer", "X-Sum"),
                ("Upgrade", "h2c"),
                ("Proxy-Connection", "close"),
                ("Set-Cookie", "a=1"),
            ]),
        )
        .unwrap();
        assert_eq!(head.headers, headers(&[("X-Kept", "1"), ("Set-Cookie", "a=1")]));
        assert_eq!(head.dropped.len(), 7);
        assert!(head.close_client);
        // Only the close token of Connection asks for a close.
        assert!(!check_head(200, &headers(&[("Connection", "keep-alive, x-closer")])).unwrap().close_client);
        assert!(!check_head(200, &headers(&[("Proxy-Connection", "close")])).unwrap().close_client);
    }

    /// Feeds Data frames of the given sizes; returns what passed, the first
    /// frame with excess (if any) and the shortfall at the end.
    fn relay(content_length: Option<u64>, bodiless: bool, frames: &[usize]) -> (usize, Option<usize>, u64) {
        let mut limit = BodyLimit::new(if bodiless { 204 } else { 200 }, false, content_length);
        let mut passed = 0;
        for (i, &len) in frames.iter().enumerate() {
            let take = limit.take(len);
            passed += take.pass;
            if take.excess > 0 {
                assert_eq!(take.pass + take.excess, len);
                return (passed, Some(i), limit.shortfall());
            }
        }
        (passed, None, limit.shortfall())
    }

    #[test]
    fn bodies_are_held_to_their_length() {
        for (content_length, bodiless, frames, expected) in [
            // No length: everything passes, nothing is short.
            (None, false, &[3, 0, 70_000][..], (70_003, None, 0)),
            // Exact.
            (Some(10), false, &[4, 6], (10, None, 0)),
            (Some(0), false, &[0], (0, None, 0)),
            (Some(0), false, &[], (0, None, 0)),
            // Too much: clipped at the length, and the frame is flagged.
            (Some(10), false, &[4, 7, 5], (10, Some(1), 0)),
            (Some(0), false, &[1], (0, Some(0), 0)),
            // Too little: the shortfall is reported at the end, once some
            // of the body went out (with none, Apache sends the real length).
            (Some(10), false, &[4, 3], (7, None, 3)),
            (Some(10), false, &[], (0, None, 0)),
            // HEAD, 204, 304: nothing passes, nothing is excess or short,
            // whatever the Content-Length says.
            (Some(10), true, &[], (0, None, 0)),
            (Some(10), true, &[10], (0, None, 0)),
            (Some(3), true, &[10, 10], (0, None, 0)),
            (None, true, &[5], (0, None, 0)),
        ] {
            assert_eq!(relay(content_length, bodiless, frames), expected, "{content_length:?} {bodiless} {frames:?}");
        }
    }
}
