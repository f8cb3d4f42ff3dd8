//! Handing a response head (validated by the adapter, or relayed from a
//! daemon) to Apache, which sends it with the first body bytes.
use crate::ffi::request::Request;

/// Hands a validated status and headers to Apache, which sends them with
/// the first body bytes (or at the end of the request).
pub fn apply_head(req: Request, status: u16, status_line: &[u8], headers: &[(Vec<u8>, Vec<u8>)], content_length: Option<u64>) {
    req.set_status(status, status_line);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-type") {
            req.set_content_type(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            req.set_content_length(content_length.unwrap_or(0));
        } else {
            req.add_header(name, value, name.eq_ignore_ascii_case(b"www-authenticate"));
        }
    }
    req.clear_expecting_100();
}
