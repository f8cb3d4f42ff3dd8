//! Checks on what an application hands to `start_response`, so that nothing
//! malformed (response splitting, control bytes) ever reaches the client.

/// A status line as the app gave it, checked: `"200 OK"`, as the bytes
/// that go on the wire (the app's text encoded as Latin-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub line: Vec<u8>,
}

/// Exactly three digits, then end or a space and a reason phrase free of
/// control characters.
pub fn status(value: &[u8]) -> Result<Status, String> {
    let shown = String::from_utf8_lossy(value);
    let digits_ok = value.len() >= 3 && value[..3].iter().all(u8::is_ascii_digit);
    if !digits_ok || (value.len() > 3 && value[3] != b' ') {
        return Err(format!("invalid HTTP status line {shown:?}: expected three digits and a reason phrase, such as '200 OK'"));
    }
    if value.iter().any(|&b| is_control(b)) {
        return Err(format!("control character in HTTP status line {shown:?}"));
    }
    let code = value[..3].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if code < 100 {
        return Err(format!("invalid HTTP status code in {shown:?}"));
    }
    Ok(Status { code, line: value.to_vec() })
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// A header name: a non-empty HTTP token (no spaces, colons or controls).
pub fn header_name(name: &[u8]) -> Result<(), String> {
    const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={} \t";
    if name.is_empty() {
        return Err("empty header name in response headers".to_string());
    }
    if name.iter().any(|&b| is_control(b) || b >= 0x80 || SEPARATORS.contains(&b)) {
        return Err(format!("invalid response header name {:?}", String::from_utf8_lossy(name)));
    }
    Ok(())
}

/// A header value: no CR, LF or other control characters (tab allowed).
pub fn header_value(name: &[u8], value: &[u8]) -> Result<(), String> {
    if value.iter().any(|&b| is_control(b) && b != b'\t') {
        return Err(format!(
            "control character (such as CR or LF) in the value of response header {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(())
}

/// `Content-Length` from the app: decimal digits only.
pub fn content_length(value: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(value).unwrap_or("");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid Content-Length response header {:?}", String::from_utf8_lossy(value)));
    }
    text.parse().map_err(|_| format!("Content-Length response header too large: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status(b"200 OK").unwrap(), Status { code: 200, line: b"200 OK".to_vec() });
        assert_eq!(status(b"404").unwrap().code, 404);
        assert_eq!(status(b"200 Caf\xe9").unwrap().line, b"200 Caf\xe9", "Latin-1 bytes pass unchanged");
        for bad in [&b"abc"[..], b"2000 OK", b"20 OK", b"200\r\nX: y", b"200 OK\n", b"200 O\x00K", b"200-OK", b"", b"099 Low"] {
            assert!(status(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn header_names() {
        assert!(header_name(b"X-Test").is_ok());
        for bad in [&b""[..], b"X Test", b"X:Test", b"X\r\nY", b"X\x00", b"caf\xe9"] {
            assert!(header_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn header_values() {
        assert!(header_value(b"X", b"a\tb; c=\"d\" \xe9").is_ok());
        for bad in [&b"v\r\nSet-Cookie: x"[..], b"v\nx", b"v\x00", b"v\x7f", b"\r"] {
            assert!(header_value(b"X", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn content_lengths() {
        assert_eq!(content_length(b"0"), Ok(0));
        assert_eq!(content_length(b"12345"), Ok(12345));
        for bad in [&b""[..], b"-1", b"1.5", b" 5", b"abc", b"99999999999999999999999"] {
            assert!(content_length(bad).is_err(), "{bad:?} accepted");
        }
    }
}
