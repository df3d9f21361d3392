//! A dashboard request, read with `httparse` within bounds: a head over
//! [`MAX_HEAD`] is refused `431`, a body over [`MAX_BODY`] `413`, a chunked
//! body `411`. Only the fields the dashboard uses are kept.

use crate::web::response::Status;

/// A request head longer than this is refused (`431`).
pub const MAX_HEAD: usize = 8 * 1024;
/// A declared body longer than this is refused (`413`).
pub const MAX_BODY: usize = 4 * 1024;
/// Header fields read at most; more is refused `431`.
const MAX_FIELDS: usize = 32;

/// A complete request head, and its body once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without its query.
    pub path: String,
    /// The query, without its `?` (empty if none).
    pub query: String,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub token: Option<String>,
    /// Bytes of the head, and of the body it announces.
    pub head_len: usize,
    pub body_len: usize,
}

/// What the bytes read so far make of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Read more.
    Incomplete,
    /// The head is complete (its body, if any, follows `head_len` bytes in).
    Head(Request),
    /// Answer with this status and close.
    Refused(Status),
}

/// Parses what has arrived of a request.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut head = httparse::Request::new(&mut fields);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => return Parsed::Refused(Status::HeaderTooLarge),
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Parsed::Incomplete,
        Ok(httparse::Status::Partial) => return Parsed::Refused(Status::HeaderTooLarge),
        Err(httparse::Error::TooManyHeaders) => return Parsed::Refused(Status::HeaderTooLarge),
        Err(_) => return Parsed::Refused(Status::BadRequest),
    };
    let (Some(method), Some(target)) = (head.method, head.path) else {
        return Parsed::Refused(Status::BadRequest);
    };
    if !target.starts_with('/') {
        return Parsed::Refused(Status::BadRequest);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        host: None,
        origin: None,
        token: None,
        head_len: len,
        body_len: 0,
    };
    let mut length_seen = false;
    for field in head.headers.iter() {
        let Ok(value) = std::str::from_utf8(field.value) else {
            return Parsed::Refused(Status::BadRequest);
        };
        let value = value.trim();
        let once = |slot: &mut Option<String>| match slot {
            Some(_) => false,
            None => {
                *slot = Some(value.to_string());
                true
            }
        };
        let name = field.name.to_ascii_lowercase();
        let fine = match name.as_str() {
            "host" => once(&mut request.host),
            "origin" => once(&mut request.origin),
            "x-bgjob-token" => once(&mut request.token),
            // Given twice, even alike, a length is refused: two that differ
            // are how requests are smuggled past a proxy.
            "content-length" if length_seen => false,
            "content-length" => match value.parse::<usize>() {
                Ok(n) if n > MAX_BODY => return Parsed::Refused(Status::PayloadTooLarge),
                Ok(n) => {
                    request.body_len = n;
                    length_seen = true;
                    true
                }
                Err(_) => false,
            },
            "transfer-encoding" => return Parsed::Refused(Status::LengthRequired),
            _ => true,
        };
        if !fine {
            // A field given twice, or a length that is no number.
            return Parsed::Refused(Status::BadRequest);
        }
    }
    Parsed::Head(request)
}

/// A query's `key=value` pairs; no percent-decoding is needed for job ids
/// and module names, and a `%` in a value is refused by the module-name rule.
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Parsed::Head(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_is_read_once_complete() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a"), Parsed::Incomplete);
        let r = head("POST /api/cancel?id=5 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nOrigin: http://127.0.0.1:80\r\nX-Bgjob-Token: ab\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/cancel");
        assert_eq!(r.query, "id=5");
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:80"));
        assert_eq!(r.origin.as_deref(), Some("http://127.0.0.1:80"));
        assert_eq!(r.token.as_deref(), Some("ab"));
        assert_eq!(query_value(&r.query, "id"), Some("5"));
        assert_eq!(query_value("module=a&id=3", "id"), Some("3"));
        assert_eq!(query_value("x", "id"), None);
    }

    #[test]
    fn bounds_and_bad_heads_are_refused() {
        let refused = |b: &[u8]| match parse(b) {
            Parsed::Refused(s) => s,
            other => panic!("{other:?}"),
        };
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        assert_eq!(refused(&long), Status::HeaderTooLarge);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(refused(&long), Status::HeaderTooLarge);
        let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(refused(text.as_bytes()), Status::HeaderTooLarge);
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"),
            Status::PayloadTooLarge
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Status::LengthRequired
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(refused(b"GET x HTTP/1.1\r\n\r\n"), Status::BadRequest);
        assert_eq!(refused(b"\x01 / HTTP/1.1\r\n\r\n"), Status::BadRequest);
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"),
            Status::BadRequest
        );
    }
}
