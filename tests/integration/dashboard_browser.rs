//! The dashboard in a real browser: headless Chromium, driven over
//! WebDriver (`webdriver.rs`), opens the page the web listener serves and
//! watches jobs added over the TCP socket appear, fail, run again, report
//! progress and end; its buttons cancel, retry, pause and resume; module
//! output that looks like markup stays text; an action without the page's
//! token, or from another origin, is refused; and the page fits a 400 px
//! screen. Screenshots go to a temporary folder, and into `docs/` when
//! `BGJOB_SCREENSHOTS=1` is set.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{wait_for, web_request, write_module, Daemon, Setup, SmallDisk, TempDir};
use crate::webdriver::Browser;

/// How soon the page must show a change: it polls once a second.
const LIVE: Duration = Duration::from_secs(2);
/// How long a job's own steps may take on a busy machine.
const SLOW: Duration = Duration::from_secs(15);

/// A module that waits for the file `go-<its job id>` in `dir`, then
/// answers `done`.
fn gated(dir: &Path, before: &str) -> String {
    format!(
        "#!/bin/sh\n{before}\nwhile [ ! -e {}/go-$BGJOB_JOB_ID ]; do sleep 0.02; done\nprintf done\n",
        dir.display()
    )
}

/// Lets the gated job `id` (`id:N` or `N`) finish.
fn release(dir: &Path, id: u64) {
    std::fs::write(dir.join(format!("go-{id}")), "").unwrap();
}

fn number(id: &str) -> u64 {
    id.trim_start_matches("id:").parse().unwrap()
}

/// The dashboard's browser test needs a daemon with the web listener and a
/// browser on its page; `None` when there is no browser (see
/// [`Browser::start`]).
fn open(d: &Daemon, width: u32, height: u32) -> Option<(Browser, String)> {
    let browser = Browser::start(width, height)?;
    let url = format!("http://{}/", d.web_addr());
    browser.goto(&url);
    browser.wait_true(
        "the page's first poll",
        SLOW,
        "document.getElementById('conn').dataset.state === 'live'",
    );
    Some((browser, url))
}

/// A CSS attribute selector's quoted value.
fn row(table: &str, id: u64) -> String {
    format!("#{table} tr[data-id=\"{id}\"]")
}

/// The text of the first element matching `selector`, or `None`.
fn text_of(b: &Browser, selector: &str) -> Option<String> {
    let v = b.script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        vec![json!(selector)],
    );
    v.as_str().map(str::to_string)
}

/// Waits (up to `limit`) until the element `selector` has the text `want`.
fn wait_text(b: &Browser, selector: &str, want: &str, limit: Duration) {
    let mut seen = None;
    let start = Instant::now();
    while start.elapsed() < limit {
        seen = text_of(b, selector);
        if seen.as_deref() == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{selector} shows {seen:?}, not {want:?}, after {limit:?}");
}

fn wait_gone(b: &Browser, selector: &str, limit: Duration) {
    b.wait_true(
        &format!("{selector} to go"),
        limit,
        &format!("document.querySelector({}) === null", json!(selector)),
    );
}

/// Clicks the button `selector` as a user does.
fn click(b: &Browser, selector: &str) {
    let button = b
        .find(selector)
        .unwrap_or_else(|| panic!("no button {selector}"));
    b.click(&button);
}

/// The value and max of the progress bar of the running job `id`, if it
/// shows one.
fn progress(b: &Browser, id: u64) -> Option<(f64, f64)> {
    let v = b.script(
        "const p = document.querySelector(arguments[0]);
         return p && !p.hidden ? [p.value, p.max] : null;",
        vec![json!(format!("{} progress", row("running", id)))],
    );
    Some((v.get(0)?.as_f64()?, v.get(1)?.as_f64()?))
}

fn status(d: &Daemon, id: u64) -> String {
    let info = d.ask_str(&format!("queue:info:id:{id}"));
    info.lines()
        .find_map(|l| l.strip_prefix("status: "))
        .map(str::to_string)
        .unwrap_or(info)
}

/// Polls `check` every 50 ms for up to `limit`.
fn wait_for_long(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where screenshots go: a temporary folder, and `docs/` as well with
/// `BGJOB_SCREENSHOTS=1`.
fn keep_screenshot(dir: &TempDir, name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
    std::fs::write(dir.path().join(name), png).unwrap();
    if std::env::var_os("BGJOB_SCREENSHOTS").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name);
        std::fs::write(&docs, png).unwrap();
        eprintln!("wrote {}", docs.display());
    }
}

#[test]
fn jobs_appear_fail_run_again_and_are_paused_resumed_and_cancelled_from_the_page() {
    let gates = TempDir::new("gates");
    let g = gates.path();
    let d = Setup::new()
        .settings(r#""max_jobs": 8"#)
        .web(r#""actions": true"#)
        .module("slow", &gated(g, ""))
        .module(
            "steps",
            &gated(
                g,
                &format!(
                    "echo 1/4 >&$BGJOB_PROGRESS_FD\n\
                     while [ ! -e {0}/step-$BGJOB_JOB_ID ]; do sleep 0.02; done\n\
                     echo 3/4 >&$BGJOB_PROGRESS_FD",
                    g.display()
                ),
            ),
        )
        .module(
            "flaky",
            &gated(
                g,
                &format!(
                    "if [ ! -e {}/fixed ]; then echo 'cannot reach the printer' >&2; \
                     echo 'giving up' >&2; exit 3; fi",
                    g.display()
                ),
            ),
        )
        .start();
    let Some((b, _)) = open(&d, 1280, 900) else {
        return;
    };

    // Jobs added over TCP show within the page's poll.
    let added = Instant::now();
    let slow: Vec<u64> = (0..3).map(|_| number(&d.add("slow:"))).collect();
    for id in &slow {
        wait_text(
            &b,
            &format!("{} td.module", row("running", *id)),
            "slow",
            LIVE,
        );
    }
    eprintln!(
        "three jobs on the page {:?} after their adds",
        added.elapsed()
    );
    wait_text(&b, "#counts [data-count=running] .n", "3", LIVE);
    assert_eq!(
        text_of(&b, "#version"),
        Some(format!("v{}", env!("CARGO_PKG_VERSION")))
    );
    wait_text(&b, "#modules tr[data-module=slow] td.running", "3", LIVE);
    assert_eq!(
        text_of(&b, &format!("{} td.attempt", row("running", slow[0]))).as_deref(),
        Some("1")
    );

    // A progress bar that moves.
    let steps = number(&d.add("steps:"));
    b.wait("the bar at 1/4", LIVE + LIVE, || {
        (progress(&b, steps) == Some((1.0, 4.0))).then_some(())
    });
    wait_text(
        &b,
        &format!("{} .progress-text", row("running", steps)),
        "1/4 · 25%",
        LIVE,
    );
    std::fs::write(g.join(format!("step-{steps}")), "").unwrap();
    b.wait("the bar at 3/4", LIVE + LIVE, || {
        (progress(&b, steps) == Some((3.0, 4.0))).then_some(())
    });
    assert_eq!(progress(&b, slow[0]), None, "no bar without progress");

    // Failed jobs with their stderr, retried one by one and per module.
    let flaky: Vec<u64> = (0..2).map(|_| number(&d.add("flaky:"))).collect();
    for id in &flaky {
        wait_text(
            &b,
            &format!("{} pre.stderr", row("failed", *id)),
            "cannot reach the printer",
            SLOW,
        );
        wait_text(
            &b,
            &format!("{} td.exit", row("failed", *id)),
            "exit 3",
            LIVE,
        );
    }
    wait_text(&b, "#counts [data-count=failed] .n", "2", LIVE);
    std::fs::write(g.join("fixed"), "").unwrap();
    click(
        &b,
        &format!("{} button[data-action=retry]", row("failed", flaky[0])),
    );
    wait_text(
        &b,
        &format!("{} td.module", row("running", flaky[0])),
        "flaky",
        LIVE,
    );
    wait_gone(&b, &row("failed", flaky[0]), LIVE);
    assert!(
        b.find(&row("failed", flaky[1])).is_some(),
        "only the one retried"
    );
    wait_text(
        &b,
        &format!("{} td.attempt", row("running", flaky[0])),
        "2",
        LIVE,
    );
    click(
        &b,
        "#modules tr[data-module=flaky] button[data-action=retry-module]",
    );
    wait_text(
        &b,
        "#message",
        "retry the failed jobs of flaky: queued: 1",
        LIVE,
    );
    wait_text(
        &b,
        &format!("{} td.module", row("running", flaky[1])),
        "flaky",
        LIVE,
    );
    wait_gone(&b, &row("failed", flaky[1]), LIVE);
    b.wait_true(
        "the empty failed list",
        LIVE,
        "!document.querySelector('p[data-empty=failed]').hidden",
    );
    for id in &flaky {
        release(g, *id);
        wait_gone(&b, &row("running", *id), SLOW);
        assert_eq!(d.ask_str(&format!("queue:get:id:{id}")), "done");
    }

    // Pause: the module's next job waits; resume: it runs.
    click(
        &b,
        "#modules tr[data-module=slow] button[data-action=pause]",
    );
    wait_text(&b, "#modules tr[data-module=slow] td.state", "paused", LIVE);
    assert!(
        d.ask_str("queue:stats").contains("paused_modules: slow\n"),
        "{}",
        d.ask_str("queue:stats")
    );
    let held = number(&d.add("slow:"));
    wait_text(&b, "#modules tr[data-module=slow] td.waiting", "1", LIVE);
    wait_text(&b, "#counts [data-count=waiting] .n", "1", LIVE);
    assert_eq!(status(&d, held), "waiting");
    assert!(b.find(&row("running", held)).is_none());
    click(
        &b,
        "#modules tr[data-module=slow] button[data-action=resume]",
    );
    wait_text(
        &b,
        &format!("{} td.module", row("running", held)),
        "slow",
        LIVE,
    );
    wait_text(&b, "#modules tr[data-module=slow] td.state", "active", LIVE);

    // Cancel a running job from its row.
    click(
        &b,
        &format!("{} button[data-action=cancel]", row("running", held)),
    );
    wait_gone(&b, &row("running", held), LIVE);
    wait_text(
        &b,
        "#message",
        &format!("cancel job {held}: cancelled: running job killed"),
        LIVE,
    );
    wait_for("the cancelled job gone", || {
        d.ask_str(&format!("queue:check:id:{held}")) == "404: Unknown job"
    });

    for id in slow.iter().chain([&steps]) {
        release(g, *id);
    }
    wait_text(&b, "#counts [data-count=running] .n", "0", SLOW);
}

#[test]
fn module_output_that_looks_like_markup_is_shown_as_text_and_runs_nothing() {
    // One line: the queue keeps a failed attempt's first line of stderr.
    const PAYLOAD: &str = "<script>window.bgjobPwned = 1</script>\
         <img src=x onerror=\"window.bgjobPwned = 2\">\
         <b onmouseover='window.bgjobPwned = 3'>bold</b> &amp; <!-- --> \
         <svg onload=window.bgjobPwned=4> \\ é";
    let script = format!("#!/bin/sh\ncat >&2 <<'EOF'\n{PAYLOAD}\nEOF\nexit 1\n");
    let d = Setup::new()
        .web(r#""actions": true"#)
        .module("evil", &script)
        .start();
    let Some((b, _)) = open(&d, 1280, 900) else {
        return;
    };
    // Anything the payload could add to the page is recorded from now on.
    b.script(
        "window.bgjobAdded = [];
         new MutationObserver((records) => {
           for (const r of records) for (const n of r.addedNodes)
             if (n.nodeType === 1 && n.closest('#failed pre')) window.bgjobAdded.push(n.outerHTML);
         }).observe(document.body, {childList: true, subtree: true});",
        vec![],
    );
    let id = number(&d.add("evil:"));
    let pre = format!("{} pre.stderr", row("failed", id));
    wait_text(&b, &pre, PAYLOAD, SLOW);
    // The rendered text, as the user sees it, is the payload too.
    let shown = b.text(&b.find(&pre).unwrap());
    assert!(shown.contains("<img src=x onerror="), "{shown}");
    // Let an image error or a script have had its turn.
    std::thread::sleep(Duration::from_millis(300));
    let verdict = b.script(
        "const pre = document.querySelector(arguments[0]);
         return {
           flag: window.bgjobPwned === undefined ? null : window.bgjobPwned,
           children: pre.childElementCount,
           added: window.bgjobAdded,
           images: document.images.length,
           scripts: Array.from(document.scripts).map((s) => s.getAttribute('src')),
           bold: document.querySelectorAll('#failed b, #failed img, #failed script, svg').length,
         };",
        vec![json!(pre)],
    );
    assert_eq!(
        verdict,
        json!({"flag": null, "children": 0, "added": [], "images": 0,
               "scripts": ["/app.js"], "bold": 0}),
    );
    // Hovering where the payload's <b> would be runs nothing either.
    b.click(&b.find(&pre).unwrap());
    assert_eq!(
        b.script("return window.bgjobPwned === undefined", vec![]),
        json!(true)
    );
}

/// A POST to `path` from the page itself, as `fetch` sends it (the browser
/// adds Origin), with `headers`: its status, or the error's name.
fn fetch_post(b: &Browser, url: &str, headers: Value, mode: &str) -> Value {
    b.async_script(
        "const [url, headers, mode, done] = arguments;
         fetch(url, {method: 'POST', headers, mode, cache: 'no-store'})
           .then((r) => done(r.type === 'opaque' ? 'opaque' : r.status))
           .catch((e) => done(e.name));",
        vec![json!(url), headers, json!(mode)],
    )
}

fn paused(d: &Daemon, module: &str) -> bool {
    let state = d.web_state();
    state["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == module)
        .unwrap_or_else(|| panic!("no module {module} in {state}"))["paused"]
        == json!(true)
}

/// A page of another origin: answers every request with a small HTML
/// page, on a free loopback port, until dropped.
struct Elsewhere {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Elsewhere {
    fn serve() -> Elsewhere {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let page = "<!doctype html><title>elsewhere</title><p>another site";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{page}",
                    page.len()
                );
            }
        });
        Elsewhere {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Elsewhere {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn an_action_without_the_token_or_from_another_origin_is_refused() {
    let d = Setup::new()
        .web(r#""actions": true"#)
        .module("m", "#!/bin/sh\nprintf m\n")
        .start();
    let Some((b, _)) = open(&d, 1024, 768) else {
        return;
    };
    let web: SocketAddr = d.web_addr();
    let token = b
        .script(
            "return document.querySelector('meta[name=\"bgjob-token\"]').content;",
            vec![],
        )
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_eq!(token, d.web_token(), "the page carries the daemon's token");

    // From the page, same origin: only with the token.
    let pause = "/api/pause?module=m";
    assert_eq!(fetch_post(&b, pause, json!({}), "same-origin"), json!(403));
    let wrong = json!({"X-Bgjob-Token": "0".repeat(64)});
    assert_eq!(fetch_post(&b, pause, wrong, "same-origin"), json!(403));
    assert!(!paused(&d, "m"), "a refused POST changes nothing");
    let right = json!({ "X-Bgjob-Token": token });
    assert_eq!(
        fetch_post(&b, pause, right.clone(), "same-origin"),
        json!(200)
    );
    assert!(paused(&d, "m"));
    let resume = "/api/resume?module=m";
    assert_eq!(
        fetch_post(&b, resume, right.clone(), "same-origin"),
        json!(200)
    );
    assert!(!paused(&d, "m"));

    // From a page of another origin (another port of this host), which
    // has no token to send: a simple POST arrives with its Origin and is
    // refused; one that sends a header needs a CORS preflight, which the
    // listener does not grant, so it is never sent; and the dashboard's
    // own page, which holds the token, cannot be read from there.
    let elsewhere = Elsewhere::serve();
    b.goto(&format!("http://{}/", elsewhere.addr));
    let foreign = format!("http://{web}{pause}");
    assert_eq!(
        fetch_post(&b, &foreign, json!({}), "no-cors"),
        json!("opaque")
    );
    assert_eq!(fetch_post(&b, &foreign, right, "cors"), json!("TypeError"));
    let read = b.async_script(
        "const [url, done] = arguments;
         fetch(url).then((r) => r.text()).then(done).catch((e) => done(e.name));",
        vec![json!(format!("http://{web}/"))],
    );
    assert_eq!(read, json!("TypeError"), "the token stays unread");
    assert!(!paused(&d, "m"), "nothing changed from another origin");
    // Nor from the dashboard's own page under another name: its CSP
    // (connect-src 'self') keeps it to the origin it was loaded from.
    b.goto(&format!("http://localhost:{}/", web.port()));
    b.wait_true(
        "the page from localhost",
        SLOW,
        "document.getElementById('conn').dataset.state === 'live'",
    );
    assert_eq!(
        fetch_post(&b, &foreign, json!({}), "no-cors"),
        json!("TypeError")
    );
    assert!(!paused(&d, "m"));

    // Raw: a foreign or missing Origin, or no token, is 403; both right, 200.
    let post = |origin: Option<&str>, token: Option<&str>| {
        let mut request = format!("POST {pause} HTTP/1.1\r\nHost: {web}\r\nContent-Length: 0\r\n");
        if let Some(origin) = origin {
            request += &format!("Origin: {origin}\r\n");
        }
        if let Some(token) = token {
            request += &format!("X-Bgjob-Token: {token}\r\n");
        }
        web_request(web, &(request + "\r\n")).status
    };
    let own = format!("http://{web}");
    assert_eq!(post(Some("http://evil.example"), Some(&token)), 403);
    assert_eq!(post(Some("null"), Some(&token)), 403);
    assert_eq!(post(None, Some(&token)), 403);
    assert_eq!(post(Some(&own), None), 403);
    assert_eq!(post(Some(&own), Some(&token[..63])), 403);
    assert!(!paused(&d, "m"));
    assert_eq!(post(Some(&own), Some(&token)), 200);
    assert!(paused(&d, "m"));
}

#[test]
fn without_actions_the_page_shows_no_buttons_and_a_post_is_refused() {
    let gates = TempDir::new("gates");
    let d = Setup::new()
        .web("")
        .module("slow", &gated(gates.path(), ""))
        .start();
    let Some((b, _)) = open(&d, 1024, 768) else {
        return;
    };
    let id = number(&d.add("slow:"));
    wait_text(
        &b,
        &format!("{} td.module", row("running", id)),
        "slow",
        LIVE,
    );
    let shown = b.script(
        "return Array.from(document.querySelectorAll('button')).filter((e) => e.offsetParent !== null).length;",
        vec![],
    );
    assert_eq!(shown, json!(0), "no visible button");
    assert_eq!(d.web_act(&format!("/api/cancel?id={id}")).status, 403);
    assert!(b.find(&row("running", id)).is_some(), "still running");
    release(gates.path(), id);
    wait_gone(&b, &row("running", id), SLOW);
}

#[test]
fn the_page_fits_1280_and_400_pixels_and_its_screenshots_are_taken() {
    let gates = TempDir::new("gates");
    let g = gates.path();
    let d = Setup::new()
        .settings(
            r#""max_jobs": 6, "module_policy": {"render": {"max_jobs": 3, "retries": 1, "retry_base_secs": 0.05}, "mailer": {"retries": 0}}"#,
        )
        .web(r#""actions": true"#)
        .module(
            "render",
            &gated(
                g,
                "echo $((BGJOB_JOB_ID % 7 * 10 + 20))% >&$BGJOB_PROGRESS_FD",
            ),
        )
        .module(
            "thumbs",
            "#!/bin/sh\nsleep 0.0$((BGJOB_JOB_ID % 9))\nprintf ok\n",
        )
        .module(
            "mailer",
            "#!/bin/sh\necho 'smtp: connection refused (mx1.example.org:25)' >&2\n\
             echo 'will not retry: no attempts left' >&2\nexit 75\n",
        )
        .start();
    let shots = TempDir::new("screenshots");
    // For the pictures in docs/, a few minutes of history first, so that
    // the charts have lines to show; the test itself needs none.
    if std::env::var_os("BGJOB_SCREENSHOTS").is_some_and(|v| v == "1") {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(180) {
            n += 1;
            // A rate that rises and falls over about a minute.
            let phase = start.elapsed().as_secs_f64() / 60.0 * std::f64::consts::TAU;
            let burst = (4.0 + 3.0 * phase.sin()).round() as usize;
            for _ in 0..burst {
                d.add("thumbs:");
            }
            if n.is_multiple_of(150) {
                d.add("mailer:");
            }
            std::thread::sleep(Duration::from_millis(400));
        }
    } else {
        for _ in 0..20 {
            d.add("thumbs:");
        }
    }
    for hour in [1, 2] {
        let answer = d.ask_str(&format!("queue:add?delay={}:thumbs:nightly", hour * 3600));
        assert!(answer.starts_with("id:"), "{answer}");
    }
    let failed = number(&d.add("mailer:"));
    let running: Vec<u64> = (0..3).map(|_| number(&d.add("render:"))).collect();
    for _ in 0..4 {
        d.add("render:");
    }
    let Some((b, _)) = open(&d, 1280, 900) else {
        return;
    };
    wait_text(
        &b,
        &format!("{} td.exit", row("failed", failed)),
        "exit 75",
        SLOW,
    );
    for id in &running {
        b.wait("a progress bar", SLOW, || progress(&b, *id).map(drop));
    }
    wait_text(&b, "#modules tr[data-module=render] td.waiting", "4", SLOW);
    wait_text(&b, "#counts [data-count=scheduled] .n", "2", SLOW);
    b.wait_true(
        "the thumbs done",
        SLOW,
        "document.querySelector('#modules tr[data-module=thumbs] td.running').textContent === '0'",
    );
    wait_text(
        &b,
        "#modules tr[data-module=render] td.policy",
        "max_jobs 3 · retries 1 · retry_base_secs 0.05",
        LIVE,
    );
    b.wait_true(
        "the thumbs' run times",
        SLOW,
        "/ms$/.test(document.querySelector('#modules tr[data-module=thumbs] td.p95').textContent)",
    );
    // The rate chart draws the first closed interval (of 10 s) in the
    // started series' colour.
    wait_for_long("a point in the history", Duration::from_secs(30), || {
        d.web_state()["history"]["points"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["started"].as_f64() > Some(0.0)))
    });
    b.wait_true(
        "the started line on the chart",
        LIVE,
        "(() => {
           const c = document.getElementById('chart-rate');
           const hex = getComputedStyle(document.documentElement).getPropertyValue('--c-started').trim();
           const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
           const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let n = 0;
           for (let i = 0; i < data.length; i += 4)
             if (want.every((v, k) => Math.abs(data[i + k] - v) < 8) && data[i + 3] > 200) n++;
           return n > 3;
         })()",
    );

    for (width, name) in [(1280, "dashboard.png"), (400, "dashboard-narrow.png")] {
        b.set_viewport(width, 900);
        b.wait_true(
            "the layout at the new width",
            SLOW,
            &format!("document.documentElement.clientWidth === {width}"),
        );
        let scroll = b.script("return document.documentElement.scrollWidth;", vec![]);
        assert!(
            scroll.as_u64().is_some_and(|w| w <= u64::from(width)),
            "at {width} px the page is {scroll} px wide"
        );
        // Nothing sticks out of its card either (tables scroll inside).
        let wider = b.script(
            "const w = document.documentElement.clientWidth;
             return Array.from(document.querySelectorAll('body *'))
               .filter((e) => e.closest('.scroll') === null && e.getBoundingClientRect().right > w + 0.5)
               .map((e) => e.tagName + '.' + e.className);",
            vec![],
        );
        assert_eq!(wider, json!([]), "at {width} px");
        let height = b
            .script("return document.documentElement.scrollHeight;", vec![])
            .as_u64()
            .unwrap();
        b.set_viewport(width, height.min(4000) as u32);
        // The charts redraw for their new size after a resize.
        b.wait_true(
            "the charts at their size",
            SLOW,
            "Array.from(document.querySelectorAll('canvas')).every((c) => c.width === Math.round(c.clientWidth * devicePixelRatio))",
        );
        keep_screenshot(&shots, name, &b.screenshot());
    }
    for id in running {
        release(g, id);
    }
}

#[test]
fn the_header_shows_a_failing_journal_with_its_error_until_it_writes_again() {
    let dir = TempDir::new("webdisk");
    let Some(disk) = SmallDisk::mount(&dir.path().join("state"), "256k") else {
        return;
    };
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "ok", "#!/bin/sh\ncat\n");
    std::fs::write(
        dir.path().join("service.config"),
        r#"{"state_dir": "state", "listen": [{"port": 0}], "web": {"listen": "127.0.0.1:0"}}"#,
    )
    .unwrap();
    let args = ["-vv", "-1", "-c", "service.config", "-m", "modules"];
    let mut d = Daemon::spawn(dir, modules, args.map(String::from).to_vec());
    d.add("ok:kept");
    d.kill9();
    disk.fill(0);
    d.start_again();
    let Some((b, _)) = open(&d, 1024, 768) else {
        return;
    };
    wait_text(&b, "#journal", "failing", LIVE);
    b.wait_true(
        "the journal's error shown",
        LIVE,
        "!document.getElementById('journal-error').hidden && \
         document.getElementById('journal-error').textContent.includes('No space left on device')",
    );
    disk.empty();
    wait_for("adds accepted once there is room", || {
        d.ask_str("queue:add:ok:after").starts_with("id:")
    });
    wait_text(&b, "#journal", "syncing", SLOW);
    b.wait_true(
        "the error gone",
        LIVE,
        "document.getElementById('journal-error').hidden",
    );
}

#[test]
fn a_page_that_loses_the_daemon_says_so_and_after_a_restart_asks_to_be_reloaded() {
    // A fixed port, so that the restarted daemon is where the page looks.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut d = Setup::new()
        .web(&format!(r#""listen": "127.0.0.1:{port}", "actions": true"#))
        .module("m", "#!/bin/sh\nprintf m\n")
        .start();
    let Some((b, _)) = open(&d, 1024, 768) else {
        return;
    };
    assert_eq!(
        b.script("return document.getElementById('restarted').hidden", vec![]),
        json!(true)
    );
    d.kill9();
    wait_text(&b, "#conn", "stale", LIVE + LIVE);
    b.wait_true(
        "the page to say it cannot reach bgjobd",
        LIVE,
        "!document.getElementById('conn-error').hidden",
    );
    d.start_again();
    wait_text(&b, "#conn", "live", SLOW);
    b.wait_true(
        "the page to ask for a reload",
        LIVE,
        "!document.getElementById('restarted').hidden",
    );
    // The old page's token is no longer the daemon's.
    click(&b, "#modules tr[data-module=m] button[data-action=pause]");
    wait_text(&b, "#message", "pause m: 403: Forbidden", LIVE);
    assert!(!paused(&d, "m"));
    b.goto(&format!("http://127.0.0.1:{port}/"));
    b.wait_true(
        "the reloaded page",
        SLOW,
        "document.getElementById('conn').dataset.state === 'live' && document.getElementById('restarted').hidden",
    );
    click(&b, "#modules tr[data-module=m] button[data-action=pause]");
    wait_text(&b, "#message", "pause m: paused: m", LIVE);
    assert!(paused(&d, "m"));
}

#[test]
fn long_names_and_output_do_not_widen_a_400_px_page() {
    let gates = TempDir::new("gates");
    let long = "a".repeat(128);
    let d = Setup::new()
        .settings(&format!(
            r#""module_policy": {{"{long}": {{"max_jobs": 2, "retries": 0, "job_timeout_secs": 3600, "max_waiting": 1000, "retry_base_secs": 30}}}}"#
        ))
        .web(r#""actions": true"#)
        .module(
            &long,
            &format!(
                "#!/bin/sh\nif [ \"$(cat)\" = wait ]; then\n\
                 echo 123456789/987654321 >&$BGJOB_PROGRESS_FD\n\
                 while [ ! -e {}/go-$BGJOB_JOB_ID ]; do sleep 0.02; done\nexit 0\nfi\n\
                 printf '%01000d' 0 | tr 0 x >&2\nexit 2\n",
                gates.path().display()
            ),
        )
        .start();
    let failed = number(&d.add(&format!("{long}:")));
    let running = number(&d.add(&format!("{long}:wait")));
    let Some((b, _)) = open(&d, 1024, 900) else {
        return;
    };
    // (A window started narrower than 500 px is widened to 500.)
    b.set_viewport(400, 900);
    // As much of the line as the queue keeps (200 bytes today).
    b.wait_true(
        "the long stderr line",
        SLOW,
        &format!(
            "(document.querySelector('{} pre.stderr') || {{}}).textContent?.startsWith('x'.repeat(200))",
            row("failed", failed)
        ),
    );
    b.wait("the progress bar", SLOW, || progress(&b, running).map(drop));
    let width = b.script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth,
                 Array.from(document.querySelectorAll('body *'))
                   .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
                   .map((e) => e.tagName + '.' + e.className)];",
        vec![],
    );
    assert_eq!(width, json!([400, 400, []]));
    release(gates.path(), running);
}
