//! The dashboard's responses: every one closes its connection and carries
//! the headers that keep a browser from caching, sniffing, framing or
//! leaking it; HTML also carries the content security policy.

use crate::net::http::whole_response;

pub use crate::net::http::Status;

impl Status {
    /// The status of a queue answer's `NNN:` code (the queue speaks the
    /// wire protocol's codes; those without an HTTP twin are `500`).
    pub fn of_code(code: u16) -> Status {
        match code {
            400 => Status::BadRequest,
            403 => Status::Forbidden,
            404 => Status::NotFound,
            409 => Status::Conflict,
            410 => Status::Gone,
            503 => Status::Unavailable,
            _ => Status::Internal,
        }
    }
}

/// The policy of the page: its own script and style only, nothing
/// fetched or framed from anywhere else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub const HTML: &str = "text/html; charset=utf-8";
pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// A whole response; the connection closes after it. `HEAD` gets the
/// head alone.
pub fn response(status: Status, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let csp = if content_type == HTML {
        format!("Content-Security-Policy: {CSP}\r\n")
    } else {
        String::new()
    };
    let allow = if status == Status::MethodNotAllowed {
        "Allow: GET, HEAD, POST\r\n"
    } else {
        ""
    };
    let extra = format!(
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n{csp}{allow}"
    );
    let (code, reason) = (status.code(), status.reason());
    whole_response(code, reason, content_type, &extra, body, head_only)
}

/// A refusal as plain text: `NNN Reason`.
pub fn refusal(status: Status) -> Vec<u8> {
    let body = format!("{} {}\n", status.code(), status.reason());
    response(status, TEXT, body.as_bytes(), false)
}

/// An action's answer: `{"ok": true, "answer": ...}`.
pub fn action_done(answer: &str) -> Vec<u8> {
    let body = serde_json::json!({"ok": true, "answer": answer}).to_string();
    response(Status::Ok, JSON, body.as_bytes(), false)
}

/// An action refused: `{"ok": false, "error": "NNN: text"}`.
pub fn action_refused(status: Status, error: &str) -> Vec<u8> {
    let body = serde_json::json!({"ok": false, "error": error}).to_string();
    response(status, JSON, body.as_bytes(), false)
}

/// A queue answer to an action, as the dashboard's JSON: `NNN: text` is
/// an error with that status, anything else a success.
pub fn queue_answer(answer: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(answer);
    let text = text.trim_end();
    let code = text
        .get(..4)
        .filter(|c| c.ends_with(':'))
        .and_then(|c| c[..3].parse::<u16>().ok());
    match code {
        Some(code) => action_refused(Status::of_code(code), text),
        None => action_done(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn every_response_carries_the_safety_headers() {
        let page = text(response(Status::Ok, HTML, b"<p>", false));
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"));
        for h in [
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
            "Referrer-Policy: no-referrer",
            "X-Frame-Options: DENY",
            "Connection: close",
            "Content-Length: 3",
        ] {
            assert!(page.contains(h), "{h} in {page}");
        }
        assert!(page.contains(&format!("Content-Security-Policy: {CSP}\r\n")));
        assert!(page.ends_with("\r\n\r\n<p>"));
        let json = text(response(Status::Ok, JSON, b"{}", true));
        assert!(json.contains("nosniff") && !json.contains("Content-Security-Policy"));
        assert!(json.ends_with("\r\n\r\n"), "HEAD has no body");
        let no = text(refusal(Status::MethodNotAllowed));
        assert!(no.starts_with("HTTP/1.1 405 ") && no.contains("Allow: GET, HEAD, POST"));
    }

    #[test]
    fn action_answers_are_json() {
        let ok = text(action_done("cancelled: \"x\""));
        assert!(
            ok.ends_with(r#"{"answer":"cancelled: \"x\"","ok":true}"#),
            "{ok}"
        );
        let no = text(action_refused(Status::NotFound, "404: Unknown job"));
        assert!(no.starts_with("HTTP/1.1 404 Not Found"));
        assert!(
            no.ends_with(r#"{"error":"404: Unknown job","ok":false}"#),
            "{no}"
        );
        assert_eq!(Status::of_code(410), Status::Gone);
        let queued = text(queue_answer(b"queued: 2"));
        assert!(queued.starts_with("HTTP/1.1 200 OK") && queued.ends_with(r#""ok":true}"#));
        let unknown = text(queue_answer(b"404: Unknown job\n"));
        assert!(unknown.starts_with("HTTP/1.1 404 Not Found"), "{unknown}");
        assert!(unknown.ends_with(r#"{"error":"404: Unknown job","ok":false}"#));
        let odd = text(queue_answer(b"599: odd"));
        assert!(odd.starts_with("HTTP/1.1 500 "), "{odd}");
        assert_eq!(Status::of_code(502), Status::Internal);
    }
}
