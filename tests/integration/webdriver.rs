//! A minimal W3C WebDriver client for the dashboard's browser test: it
//! starts `chromedriver` (Debian's chromium-driver) on a port of its own
//! choosing in a temporary folder, opens one headless Chromium session, and
//! speaks HTTP/1.1 with JSON bodies over a plain `TcpStream`, one request
//! per connection. Dropping the [`Browser`] ends the session and kills the
//! driver's process group (Chromium with it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::TempDir;

/// The key under which W3C WebDriver names an element in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian's packages put the driver and the browser.
const DRIVER: &str = "chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// An element of the page, as the driver names it.
#[derive(Clone, Debug)]
pub struct Element(String);

/// A WebDriver error answer: its `error` code and message.
#[derive(Debug)]
pub struct WebDriverError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.error, self.message)
    }
}

/// One headless Chromium session behind its own chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of
    /// `width` x `height`. Without chromium or chromedriver: a failure
    /// under CI, elsewhere `None` after saying why (as the client library
    /// tests treat their missing tools).
    pub fn start(width: u32, height: u32) -> Option<Browser> {
        let present = Path::new(CHROMIUM).exists()
            && Command::new(DRIVER)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
        if !present {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMIUM} or {DRIVER} is missing: bin/test installs chromium and chromium-driver"
            );
            eprintln!(
                "\n*** SKIPPED: the dashboard's browser test needs {CHROMIUM} and {DRIVER} \
                 (bin/test installs chromium and chromium-driver) ***\n"
            );
            return None;
        }
        let dir = TempDir::new("browser");
        let log = dir.path().join("chromedriver.log");
        // With --port=0 chromedriver picks a free port itself, and a
        // driver starting at the same moment can take it first (its log
        // then says "bind() failed"): try again a few times.
        let mut tries = 0;
        let (driver, port) = loop {
            tries += 1;
            match spawn_driver(dir.path(), &log) {
                Ok(started) => break started,
                Err(log_text) if tries < 5 && log_text.contains("bind() failed") => continue,
                Err(log_text) => panic!("chromedriver printed no port; log:\n{log_text}"),
            }
        };
        let profile = dir.path().join("profile");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            dir,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    // CI runs the suite as root, where Chromium's sandbox
                    // cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer = browser
            .request("POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("new session: {e}\n{}", browser.driver_log()));
        browser.session = answer["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser.call(
            "POST",
            "/timeouts",
            json!({"script": 20_000, "pageLoad": 20_000}),
        );
        Some(browser)
    }

    /// The driver's log, for failure messages.
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// Opens `url` and waits until it has loaded.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    /// The first element matching the CSS `selector`, if any.
    pub fn find(&self, selector: &str) -> Option<Element> {
        let body = json!({"using": "css selector", "value": selector});
        match self.session_request("POST", "/element", Some(&body)) {
            Ok(value) => Some(element_of(&value)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {selector:?}: {e}"),
        }
    }

    /// The element's rendered text.
    pub fn text(&self, element: &Element) -> String {
        let value = self.call("GET", &format!("/element/{}/text", element.0), Value::Null);
        value.as_str().unwrap_or_default().to_string()
    }

    /// Clicks the element as a user would (scrolled into view, at its
    /// centre; an element hidden under another is an error).
    pub fn click(&self, element: &Element) {
        self.call("POST", &format!("/element/{}/click", element.0), json!({}));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// As [`Browser::script`], for a script that ends by calling its last
    /// argument (the callback) with the result, as a `fetch` does.
    pub fn async_script(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Polls the page's `expression` (JavaScript) until it is true.
    pub fn wait_true(&self, what: &str, limit: Duration, expression: &str) {
        let script = format!("return !!({expression});");
        self.wait(what, limit, || {
            self.script(&script, vec![]).as_bool().filter(|t| *t)
        });
    }

    /// Polls `check` every 25 ms until it gives a value, for up to `limit`.
    pub fn wait<T>(&self, what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(found) = check() {
                return found;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Resizes the window so that the page's viewport is `width` x
    /// `height` CSS pixels (the window's frame, if any, added).
    pub fn set_viewport(&self, width: u32, height: u32) {
        let inner = || {
            let v = self.script("return [window.innerWidth, window.innerHeight];", vec![]);
            (
                v[0].as_u64().unwrap_or(0) as u32,
                v[1].as_u64().unwrap_or(0) as u32,
            )
        };
        let (mut w, mut h) = (width, height);
        let mut seen = (0, 0);
        for _ in 0..4 {
            self.call("POST", "/window/rect", json!({"width": w, "height": h}));
            // The page may see its new size a moment after the answer.
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                seen = inner();
                if seen == (width, height) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            w = (w + width).saturating_sub(seen.0);
            h = (h + height).saturating_sub(seen.1);
        }
        panic!("the viewport is {seen:?}, not {width}x{height}");
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let value = self.call("GET", "/screenshot", Value::Null);
        base64_decode(value.as_str().expect("base64 PNG")).expect("valid base64")
    }

    /// A session command that must succeed: its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = (!body.is_null()).then_some(body);
        self.session_request(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn session_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        let path = format!("/session/{}{path}", self.session);
        self.request(method, &path, body)
            .map(|mut answer| answer["value"].take())
    }

    /// One HTTP request to the driver: the JSON answer of a 2xx, else the
    /// error it names.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("reach chromedriver");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        // The driver may keep the connection open after its answer: read
        // until the answer is whole rather than to the close.
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        let answer = loop {
            if let Some(answer) = parse_response(&raw) {
                break answer;
            }
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{method} {path}: chromedriver's answer: {e}"),
            };
            if n == 0 {
                panic!(
                    "{method} {path}: a bad HTTP answer: {:?}",
                    String::from_utf8_lossy(&raw)
                );
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let (status, json) = answer;
        if (200..300).contains(&status) {
            return Ok(json);
        }
        Err(WebDriverError {
            status,
            error: json["value"]["error"].as_str().unwrap_or("").to_string(),
            message: json["value"]["message"].as_str().unwrap_or("").to_string(),
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        // SAFETY: kill with a process group id of our own child; the group
        // exists until that child is reaped below.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
        if std::thread::panicking() {
            let log = self.driver_log();
            let tail = &log[log.len().saturating_sub(4000)..];
            eprintln!("--- chromedriver log (end):\n{tail}");
        }
    }
}

/// Starts chromedriver on a port of its choosing: the child and the port,
/// or its log when it printed none.
fn spawn_driver(dir: &Path, log: &Path) -> Result<(Child, u16), String> {
    let mut command = Command::new(DRIVER);
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so that a kill on drop takes the
        // browser's processes too.
        command.process_group(0);
    }
    let mut driver = command
        .arg("--port=0")
        .arg(format!("--log-path={}", log.display()))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    // "ChromeDriver was started successfully on port 34227."
    let mut port = None;
    let mut lines = BufReader::new(driver.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            port = rest.trim_end_matches('.').trim().parse().ok();
            break;
        }
    }
    match port {
        Some(port) => {
            // Keep reading its stdout so that it never blocks on it.
            std::thread::spawn(move || lines.for_each(drop));
            Ok((driver, port))
        }
        None => {
            // SAFETY: kill with the process group id of our own child,
            // which exists until the child is reaped below.
            unsafe {
                libc::kill(-(driver.id() as i32), libc::SIGKILL);
            }
            let _ = driver.wait();
            Err(std::fs::read_to_string(log).unwrap_or_default())
        }
    }
}

fn element_of(value: &Value) -> Element {
    Element(
        value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element: {value}"))
            .to_string(),
    )
}

/// The status and JSON body of an HTTP/1.1 answer (by Content-Length or
/// chunked); `None` until the answer is whole.
fn parse_response(raw: &[u8]) -> Option<(u16, Value)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = &raw[split + 4..];
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut unchunked = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let end = body.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&body[..end]).ok()?.trim(), 16).ok()?;
            body = &body[end + 2..];
            if size == 0 {
                break;
            }
            unchunked.extend_from_slice(body.get(..size)?);
            body = body.get(size + 2..)?;
        }
        body = &unchunked;
    } else {
        let length = header("content-length").and_then(|v| v.parse().ok())?;
        body = body.get(..length)?;
    }
    if body.is_empty() {
        return Some((status, Value::Null));
    }
    Some((status, serde_json::from_slice(body).ok()?))
}

/// Standard base64 (with padding), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for quad in bytes.chunks(4) {
        let data: Vec<u8> = quad.iter().copied().take_while(|c| *c != b'=').collect();
        if data.len() < 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in data.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if data.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if data.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
    assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    assert_eq!(base64_decode("aA==").unwrap(), b"h");
    assert!(base64_decode("a===").is_none());
    assert!(base64_decode("a*==").is_none());
}

#[test]
fn an_http_answer_is_read_by_length_or_in_chunks() {
    let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"value\":1}junk";
    assert_eq!(parse_response(plain).unwrap(), (200, json!({"value": 1})));
    let chunked =
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:2}\r\n0\r\n\r\n";
    assert_eq!(parse_response(chunked).unwrap(), (404, json!({"a": 2})));
    assert!(parse_response(&plain[..30]).is_none());
    assert!(parse_response(&chunked[..60]).is_none());
}
