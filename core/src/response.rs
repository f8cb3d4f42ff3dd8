//! The state of one WSGI response between `start_response` and the last
//! byte: which status and headers are pending, whether they went out, and
//! how much body an app-supplied Content-Length still allows.
use crate::validate::{self, Status};

/// Status and headers as the app gave them, validated and copied (so no
/// Python object is borrowed past `start_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: Status,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub content_length: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StartError {
    /// `start_response` called again without `exc_info`.
    AlreadyStarted,
    Invalid(String),
}

#[derive(Debug, Default)]
pub struct ResponseState {
    head: Option<Head>,
    sent: bool,
    remaining: Option<u64>,
    /// Body bytes let through so far.
    body_sent: u64,
}

/// A response that carries no body whatever its headers say (RFC 9110
/// §6.4.1, §9.3.2): the answer to a HEAD request, and any 1xx, 204 or 304.
/// Its Content-Length describes the body a GET would get.
pub fn is_bodiless(status: u16, head_request: bool) -> bool {
    head_request || (100..200).contains(&status) || status == 204 || status == 304
}

/// Whether a response that ends after `sent` body bytes broke the promise
/// of its Content-Length and must be cut short (no final chunk, connection
/// closed) so that the client sees it incomplete. Never a bodiless
/// response, which passes on with its Content-Length as the app gave it;
/// nor one that sent no body byte at all, because nothing of the promise
/// is on the wire yet (Apache then sends the length it actually got: 0).
pub fn falls_short(status: u16, head_request: bool, content_length: Option<u64>, sent: u64) -> bool {
    !is_bodiless(status, head_request) && sent > 0 && content_length.is_some_and(|promised| sent < promised)
}

impl ResponseState {
    /// Records the app's status and headers. `replace` is true when the app
    /// passed `exc_info` (the caller re-raises instead once headers are sent).
    pub fn start(&mut self, status: &[u8], headers: Vec<(Vec<u8>, Vec<u8>)>, replace: bool) -> Result<(), StartError> {
        if self.head.is_some() && !replace {
            return Err(StartError::AlreadyStarted);
        }
        let status = validate::status(status).map_err(StartError::Invalid)?;
        let mut content_length = None;
        for (name, value) in &headers {
            validate::header_name(name).map_err(StartError::Invalid)?;
            validate::header_value(name, value).map_err(StartError::Invalid)?;
            if name.eq_ignore_ascii_case(b"content-length") {
                content_length = Some(validate::content_length(value).map_err(StartError::Invalid)?);
            }
        }
        self.head = Some(Head { status, headers, content_length });
        Ok(())
    }

    pub fn started(&self) -> bool {
        self.head.is_some()
    }

    pub fn headers_sent(&self) -> bool {
        self.sent
    }

    /// The head to send now, once: on the first non-empty chunk or at the end.
    pub fn take_head_to_send(&mut self) -> Option<&Head> {
        if self.sent {
            return None;
        }
        let head = self.head.as_ref()?;
        self.sent = true;
        self.remaining = head.content_length;
        self.body_sent = 0;
        Some(head)
    }

    /// For a body of known `length` (a file): the length to send, which is
    /// the app's Content-Length if smaller, and a Content-Length header is
    /// added when the app gave none.
    pub fn promise_length(&mut self, length: u64) -> u64 {
        let Some(head) = self.head.as_mut().filter(|_| !self.sent) else {
            return length;
        };
        match head.content_length {
            Some(promised) => promised.min(length),
            None => {
                head.content_length = Some(length);
                head.headers.push((b"Content-Length".to_vec(), length.to_string().into_bytes()));
                length
            }
        }
    }

    /// The transport could not send the head taken by `take_head_to_send`
    /// (too large for it): nothing went out, so an error page still can.
    pub fn head_refused(&mut self) {
        self.sent = false;
        self.head = None;
    }

    /// How many bytes of a `len`-byte chunk may still go out: an app's
    /// Content-Length is a promise, so anything past it is dropped.
    pub fn clip(&mut self, len: usize) -> usize {
        let allowed = match self.remaining.as_mut() {
            None => len,
            Some(left) => {
                let allowed = (*left).min(len as u64);
                *left -= allowed;
                allowed as usize
            }
        };
        self.body_sent += allowed as u64;
        allowed
    }

    /// Bytes the app promised (Content-Length) but has not sent.
    pub fn shortfall(&self) -> u64 {
        if self.sent {
            self.remaining.unwrap_or(0)
        } else {
            0
        }
    }

    /// Whether the response, ending now, must be cut short (see
    /// [`falls_short`]); `head_request` when the client asked with HEAD.
    pub fn falls_short(&self, head_request: bool) -> bool {
        match self.head.as_ref().filter(|_| self.sent) {
            Some(head) => falls_short(head.status.code, head_request, head.content_length, self.body_sent),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (name.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    #[test]
    fn start_once_unless_replacing() {
        let mut r = ResponseState::default();
        r.start(b"200 OK", vec![h("Content-Type", "text/plain")], false).unwrap();
        assert_eq!(r.start(b"500 Oops", vec![], false), Err(StartError::AlreadyStarted));
        r.start(b"500 Oops", vec![], true).unwrap();
        assert_eq!(r.take_head_to_send().unwrap().status.code, 500);
        assert!(r.take_head_to_send().is_none(), "sent only once");
    }

    #[test]
    fn invalid_heads_are_refused_and_keep_nothing() {
        let mut r = ResponseState::default();
        assert!(matches!(r.start(b"200 OK", vec![h("X-A", "v\r\nSet-Cookie: x")], false), Err(StartError::Invalid(_))));
        assert!(matches!(r.start(b"2000 OK", vec![], false), Err(StartError::Invalid(_))));
        assert!(matches!(r.start(b"200 OK", vec![h("Bad Name", "v")], false), Err(StartError::Invalid(_))));
        assert!(matches!(r.start(b"200 OK", vec![h("Content-Length", "five")], false), Err(StartError::Invalid(_))));
        assert!(!r.started());
        assert!(r.take_head_to_send().is_none());
    }

    #[test]
    fn content_length_clips_body() {
        let mut r = ResponseState::default();
        r.start(b"200 OK", vec![h("content-length", "5")], false).unwrap();
        assert_eq!(r.clip(3), 3, "nothing is clipped before headers are out");
        r.take_head_to_send();
        assert_eq!(r.clip(3), 3);
        assert!(r.falls_short(false));
        assert!(!r.falls_short(true), "HEAD: the length describes a GET's body");
        assert_eq!(r.clip(10), 2);
        assert_eq!(r.clip(10), 0);
        assert!(!r.falls_short(false));
    }

    #[test]
    fn bodiless_responses_keep_their_content_length() {
        for (status, head) in [(200, true), (204, false), (304, false), (103, false), (304, true)] {
            assert!(is_bodiless(status, head), "{status} {head}");
            assert!(!falls_short(status, head, Some(1234), 0));
            assert!(!falls_short(status, head, Some(1234), 10));
        }
        for status in [200, 201, 206, 404, 500] {
            assert!(!is_bodiless(status, false));
            assert!(falls_short(status, false, Some(1234), 10));
            assert!(!falls_short(status, false, Some(1234), 1234));
            assert!(!falls_short(status, false, None, 10));
            assert!(!falls_short(status, false, Some(1234), 0), "nothing sent: Apache sends the true length");
        }
    }

    #[test]
    fn file_length_promises() {
        let mut r = ResponseState::default();
        r.start(b"200 OK", vec![], false).unwrap();
        assert_eq!(r.promise_length(100), 100);
        let head = r.take_head_to_send().unwrap();
        assert_eq!(head.content_length, Some(100));
        assert!(head.headers.contains(&h("Content-Length", "100")));

        let mut r = ResponseState::default();
        r.start(b"200 OK", vec![h("Content-Length", "10")], false).unwrap();
        assert_eq!(r.promise_length(100), 10);
        assert_eq!(r.take_head_to_send().unwrap().headers.len(), 1);
    }

    #[test]
    fn refused_head_leaves_nothing_sent() {
        let mut r = ResponseState::default();
        r.start(b"200 OK", vec![h("X", "y")], false).unwrap();
        assert!(r.take_head_to_send().is_some());
        r.head_refused();
        assert!(!r.headers_sent());
        assert!(!r.started());
        assert!(r.take_head_to_send().is_none());
    }

    #[test]
    fn no_content_length_no_clipping() {
        let mut r = ResponseState::default();
        r.start(b"204 No Content", vec![], false).unwrap();
        r.take_head_to_send();
        assert_eq!(r.clip(1 << 20), 1 << 20);
        assert!(!r.falls_short(false));
    }
}
