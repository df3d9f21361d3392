//! Just enough HTTP/1.1 for the metrics listener: read a `GET` request's
//! head within a size limit, and write a complete response that closes the
//! connection. One request per connection, no bodies, no keep-alive: what
//! a Prometheus scraper and `curl` need, and nothing a client could stretch.

/// A request head longer than this is refused (`431`).
pub const MAX_HEAD: usize = 8 * 1024;

/// What the bytes read so far make of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// The head has not ended yet: read more.
    Incomplete,
    /// A `GET` (or `HEAD`, answered without a body) of this path, query cut off.
    Get { path: String, head_only: bool },
    /// Answer with this status and close.
    Refused(Status),
}

/// The statuses the metrics listener and the dashboard answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Gone,
    LengthRequired,
    PayloadTooLarge,
    MisdirectedRequest,
    HeaderTooLarge,
    Internal,
    Unavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::Conflict => 409,
            Status::Gone => 410,
            Status::LengthRequired => 411,
            Status::PayloadTooLarge => 413,
            Status::MisdirectedRequest => 421,
            Status::HeaderTooLarge => 431,
            Status::Internal => 500,
            Status::Unavailable => 503,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::Conflict => "Conflict",
            Status::Gone => "Gone",
            Status::LengthRequired => "Length Required",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::MisdirectedRequest => "Misdirected Request",
            Status::HeaderTooLarge => "Request Header Fields Too Large",
            Status::Internal => "Internal Server Error",
            Status::Unavailable => "Service Unavailable",
        }
    }
}

/// Reads the request line once the head is complete (a blank line ends
/// it); the header fields are not needed and are skipped. The limit holds
/// for the head however it arrived: one read may bring a whole 12 KiB head
/// with its blank line, which is refused as one that has not ended yet.
pub fn read_request(buf: &[u8]) -> Request {
    let end = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|blank| find(buf, blank).map(|at| at + blank.len()))
        .min();
    match end {
        Some(len) if len <= MAX_HEAD => {}
        None if buf.len() <= MAX_HEAD => return Request::Incomplete,
        _ => return Request::Refused(Status::HeaderTooLarge),
    }
    let line_end = find(buf, b"\n").unwrap_or(buf.len());
    let Ok(line) = std::str::from_utf8(&buf[..line_end]) else {
        return Request::Refused(Status::BadRequest);
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Refused(Status::BadRequest);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Request::Refused(Status::BadRequest);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::Refused(Status::MethodNotAllowed),
    };
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Request::Get {
        path: path.to_string(),
        head_only,
    }
}

/// A whole response; the server closes the connection after it.
pub fn response(status: Status, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    whole_response(
        status.code(),
        status.reason(),
        content_type,
        "",
        body,
        head_only,
    )
}

/// A whole response with `extra` header lines (each ending in CRLF), that
/// closes the connection; `HEAD` (`head_only`) gets the head alone.
pub fn whole_response(
    code: u16,
    reason: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request::Get {
            path: path.into(),
            head_only: false,
        }
    }

    #[test]
    fn get_requests_are_read_once_the_head_ends() {
        assert_eq!(
            read_request(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Request::Incomplete
        );
        assert_eq!(
            read_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            get("/metrics")
        );
        assert_eq!(
            read_request(b"GET /healthz?x=1 HTTP/1.0\n\n"),
            get("/healthz")
        );
        assert_eq!(
            read_request(b"HEAD / HTTP/1.1\r\n\r\n"),
            Request::Get {
                path: "/".into(),
                head_only: true
            }
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_status() {
        let refused = |s: Status| Request::Refused(s);
        assert_eq!(
            read_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            refused(Status::MethodNotAllowed)
        );
        assert_eq!(read_request(b"GET\r\n\r\n"), refused(Status::BadRequest));
        assert_eq!(
            read_request(b"GET metrics HTTP/1.1\r\n\r\n"),
            refused(Status::BadRequest)
        );
        assert_eq!(
            read_request(b"GET / SPDY/3\r\n\r\n"),
            refused(Status::BadRequest)
        );
        assert_eq!(
            read_request(&vec![b'a'; MAX_HEAD + 1]),
            refused(Status::HeaderTooLarge)
        );
        let mut long_line = b"GET /".to_vec();
        long_line.resize(9 * 1024, b'a');
        long_line.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(read_request(&long_line), refused(Status::HeaderTooLarge));
        let mut long_head = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long_head.resize(12 * 1024, b'a');
        long_head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(read_request(&long_head), refused(Status::HeaderTooLarge));
        let mut at_limit = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        at_limit.resize(MAX_HEAD - 4, b'a');
        at_limit.extend_from_slice(b"\r\n\r\n");
        assert_eq!(read_request(&at_limit), get("/metrics"));
        assert_eq!(
            read_request(b"\xff / HTTP/1.1\r\n\r\n"),
            refused(Status::BadRequest)
        );
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let r = response(Status::Ok, "text/plain", b"ok\n", false);
        assert_eq!(
            r,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
        );
        let head = response(Status::NotFound, "text/plain", b"no\n", true);
        assert!(head.ends_with(b"Content-Length: 3\r\nConnection: close\r\n\r\n"));
    }
}
