//! The dashboard (`"web"`): its page and assets with their headers and the
//! token, `/api/state` reflecting real jobs, the actions and every way of
//! being refused one, HTTP bounds, the Host check, slow clients, reload.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{check_config, wait_for, web_request, Daemon, Setup, TempDir, WebResponse};

const SLOW: &str = "#!/bin/sh\necho 40/100 >&\"$BGJOB_PROGRESS_FD\"\nsleep 30\n";
const BROKEN: &str = "#!/bin/sh\necho 'no such invoice' >&2\necho second line >&2\nexit 3\n";
const QUICK: &str = "#!/bin/sh\ncat\n";

fn id_of(answer: &str) -> u64 {
    answer.strip_prefix("id:").unwrap().parse().unwrap()
}

fn json(r: &WebResponse) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// A POST to the dashboard with these header lines (Host is its own).
fn post(d: &Daemon, path: &str, headers: &str) -> WebResponse {
    let addr = d.web_addr();
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\n\r\n");
    web_request(addr, &head)
}

fn find(list: &Value, id: u64) -> Option<&Value> {
    list.as_array()?.iter().find(|row| row["id"] == id)
}

fn module<'a>(state: &'a Value, name: &str) -> &'a Value {
    let modules = state["modules"].as_array().unwrap();
    modules
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {state}"))
}

#[test]
fn the_page_and_assets_are_served_with_their_headers() {
    let d = Setup::new().web("").start();
    let page = d.web_get("/");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("Content-Security-Policy").unwrap();
    assert_eq!(
        csp,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    for (name, value) in [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Connection", "close"),
    ] {
        assert_eq!(page.header(name), Some(value), "{name} in {page:?}");
    }
    let token = d.web_token();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!page.body.contains("{{TOKEN}}"));
    let js = d.web_get("/app.js");
    assert_eq!(
        (js.status, js.header("Content-Type")),
        (200, Some("text/javascript"))
    );
    assert!(js.header("Content-Security-Policy").is_none());
    assert_eq!(js.header("X-Content-Type-Options"), Some("nosniff"));
    let css = d.web_get("/app.css");
    assert_eq!(
        (css.status, css.header("Content-Type")),
        (200, Some("text/css"))
    );
    let weight = page.body.len() + js.body.len() + css.body.len();
    assert!(weight < 150 * 1024, "the page weighs {weight} bytes");
    let state = d.web_get("/api/state");
    assert_eq!(state.header("Content-Type"), Some("application/json"));
    assert_eq!(state.header("Cache-Control"), Some("no-store"));
    let metrics = d.web_get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("bgjob_jobs_running"), "{metrics:?}");
    assert_eq!(d.web_get("/healthz").body, "ok\n");
    let head = web_request(
        d.web_addr(),
        &format!("HEAD / HTTP/1.1\r\nHost: {}\r\n\r\n", d.web_addr()),
    );
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    // Another start draws another token.
    let again = Setup::new().web("").start();
    assert_ne!(again.web_token(), token);
}

#[test]
fn the_dashboard_is_off_by_default_and_checked_by_check_config() {
    let d = Setup::new().start();
    d.wait_log("started");
    assert!(!d.log().contains("dashboard on"), "{}", d.log());
    let dir = TempDir::new("web-check");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    let check = |web: &str| check_config(&format!(r#"{{"web": {web}}}"#), &modules, &[]);
    let (code, text) = check(r#"{"listen": "127.0.0.1:9465"}"#);
    assert_eq!(code, Some(0), "{text}");
    for (web, says) in [
        (
            r#"{"listen": "nowhere"}"#,
            "web.listen: \"nowhere\" is not ADDR:PORT",
        ),
        (
            r#"{"listen": "127.0.0.1:1", "allow": ["10.0.0.0/33"]}"#,
            "web.allow",
        ),
        (
            r#"{"listen": "127.0.0.1:1", "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (r#"{"allow": []}"#, "web.listen: missing"),
    ] {
        let (code, text) = check(web);
        assert_eq!(code, Some(1), "{web}: {text}");
        assert!(text.contains(says), "{web}: {text}");
    }
    let (code, text) =
        check(r#"{"listen": "0.0.0.0:1", "allow": ["10.0.0.0/8"], "actions": true}"#);
    assert_eq!(code, Some(0), "a note, not a warning: {text}");
    assert!(
        text.contains("note: web: actions are on and allow reaches beyond this host (10.0.0.0/8)"),
        "{text}"
    );
    let (code, text) = check(r#"{"listen": "127.0.0.1:1", "allow": []}"#);
    assert_eq!(code, Some(3), "a warning: {text}");
    assert!(text.contains("web: allow is empty"), "{text}");
}

#[test]
fn web_on_the_command_line_turns_the_dashboard_on() {
    let d = Setup::new().arg("--web").arg("127.0.0.1:0").start();
    let s = d.web_state();
    assert_eq!(s["actions"], false, "the defaults: {s}");
    assert_eq!(d.web_act("/api/pause?module=x").status, 403);
    let o = std::process::Command::new(crate::util::BIN)
        .args(["--web", "nowhere", "--check-config"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "a bad command line");
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not ADDR:PORT"));
}

#[test]
fn clients_outside_the_allow_list_get_403() {
    let d = Setup::new()
        .web(r#""allow": ["10.0.0.0/8"], "actions": true"#)
        .start();
    for path in ["/", "/api/state", "/metrics", "/nothing"] {
        let r = d.web_get(path);
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(!r.body.contains("bgjob-token"), "{r:?}");
    }
    let r = post(&d, "/api/pause?module=x", "Origin: http://x\r\n");
    assert_eq!(r.status, 403);
}

#[test]
fn state_reflects_real_jobs() {
    let d = Setup::new()
        .web("")
        .settings(r#""max_jobs": 2, "module_policy": {"slow": {"max_jobs": 1, "retries": 2}}"#)
        .module("slow", SLOW)
        .module("invoice", BROKEN)
        .module("quick", QUICK)
        .module("held", QUICK)
        .start();
    let s = d.web_state();
    assert_eq!(s["journal"]["state"], "syncing", "{s}");
    assert_eq!(s["journal"]["error"], Value::Null);
    let running = id_of(&d.add("slow:a"));
    let waiting = id_of(&d.add("slow:b"));
    let failed = id_of(&d.add("invoice:1"));
    let scheduled = id_of(&d.ask_str("queue:add?delay=600:quick:later"));
    assert_eq!(d.ask_operator("queue:pause:held"), "paused: held");
    let held = id_of(&d.add("held:x"));
    for _ in 0..5 {
        let id = d.add("quick:fast");
        assert_eq!(d.ask_str(&format!("queue:get:{id}")), "fast");
    }
    wait_for("the state to show every job", || {
        let s = d.web_state();
        find(&s["running"], running).is_some_and(|r| r["progress"]["done"] == 40)
            && find(&s["failed"], failed).is_some()
    });
    let s = d.web_state();
    let row = find(&s["running"], running).unwrap();
    assert_eq!(row["module"], "slow");
    assert!(
        row["listener"].as_str().unwrap().starts_with("--listen"),
        "{row}"
    );
    assert_eq!(row["attempt"], 1);
    assert_eq!(row["progress"]["total"], 100);
    assert!(row["age_secs"].as_f64().unwrap() >= 0.0);
    assert!(find(&s["running"], waiting).is_none(), "it waits: {s}");
    assert_eq!(s["running_total"], 1);
    let f = find(&s["failed"], failed).unwrap();
    assert_eq!(f["module"], "invoice");
    assert_eq!(f["attempts"], 1);
    assert_eq!(f["exit"], "exit 3");
    assert_eq!(f["stderr"], "no such invoice");
    assert_eq!(s["failed_total"], 1);
    let counts = &s["counts"];
    assert_eq!(counts["running"], 1, "{s}");
    assert_eq!(counts["waiting"], 2, "slow:b and the paused held:x: {s}");
    assert_eq!(counts["scheduled"], 1, "{s}");
    assert_eq!(counts["failed"], 1);
    let slow = module(&s, "slow");
    assert_eq!(
        (slow["running"].as_u64(), slow["waiting"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(slow["policy"]["max_jobs"], 1);
    assert_eq!(slow["policy"]["retries"], 2);
    assert_eq!(slow["paused"], false);
    let h = module(&s, "held");
    assert_eq!(
        (h["paused"].as_bool(), h["waiting"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(h["policy"], serde_json::json!({}));
    let quick = module(&s, "quick");
    assert_eq!(
        (quick["done_hour"].as_u64(), quick["failed_hour"].as_u64()),
        (Some(5), Some(0))
    );
    let (p50, p95) = (
        quick["run_p50_ms"].as_f64().unwrap(),
        quick["run_p95_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p95 >= p50 && p95 < 10_000.0, "{quick}");
    let inv = module(&s, "invoice");
    assert_eq!(
        (inv["done_hour"].as_u64(), inv["failed_hour"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        module(&s, "slow")["run_p50_ms"],
        Value::Null,
        "nothing of it ended"
    );
    let _ = (scheduled, held);
    // The ten-second intervals in which the jobs ran become history points
    // (the jobs may straddle two): per second, so ten times their sum counts
    // the jobs.
    let start = Instant::now();
    let sum = |points: &[Value], key: &str| -> f64 {
        points
            .iter()
            .map(|p| p[key].as_f64().unwrap() * 10.0)
            .sum::<f64>()
            .round()
    };
    let points = loop {
        let s = d.web_state();
        let points = s["history"]["points"].as_array().unwrap().clone();
        if sum(&points, "succeeded") >= 5.0 && sum(&points, "failed") >= 1.0 {
            break points;
        }
        assert!(start.elapsed() < Duration::from_secs(25), "no points: {s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(sum(&points, "succeeded"), 5.0, "{points:?}");
    assert_eq!(sum(&points, "failed"), 1.0, "{points:?}");
    assert!(
        sum(&points, "started") >= 7.0,
        "slow:a, invoice and 5 quick: {points:?}"
    );
    for p in &points {
        assert!(p["t"].as_u64().unwrap() % 10 == 0, "{p}");
        let ended = p["succeeded"].as_f64() > Some(0.0) || p["failed"].as_f64() > Some(0.0);
        assert_eq!(p["run_p50_ms"].is_f64(), ended, "{p}");
        assert_eq!(p["run_p95_ms"].is_f64(), ended, "{p}");
        let started = p["started"].as_f64() > Some(0.0);
        assert_eq!(p["wait_p50_ms"].is_f64(), started, "{p}");
    }
}

/// The dashboard actions, each with its token and Origin, and the state after.
#[test]
fn every_action_works_with_the_token_and_origin() {
    let d = Setup::new()
        .web(r#""actions": true"#)
        .module("slow", SLOW)
        .module("invoice", BROKEN)
        .module("other", BROKEN)
        .start();
    let running = id_of(&d.add("slow:a"));
    let one = id_of(&d.add("invoice:1"));
    let two = id_of(&d.add("other:1"));
    let three = id_of(&d.add("other:2"));
    wait_for("the jobs to run and fail", || {
        let s = d.web_state();
        s["failed_total"] == 3 && find(&s["running"], running).is_some()
    });
    let ok = |r: WebResponse| {
        assert_eq!(r.status, 200, "{r:?}");
        let v = json(&r);
        assert_eq!(v["ok"], true, "{v}");
        v["answer"].as_str().unwrap().to_string()
    };
    assert_eq!(
        ok(d.web_act(&format!("/api/cancel?id={running}"))),
        "cancelled: running job killed"
    );
    wait_for("the cancelled job to end", || {
        find(&d.web_state()["running"], running).is_none()
    });
    d.add_module("invoice", "#!/bin/sh\nprintf paid\n");
    d.add_module("other", "#!/bin/sh\nprintf fixed\n");
    assert_eq!(ok(d.web_act(&format!("/api/retry?id={one}"))), "queued: 1");
    assert_eq!(d.ask_str(&format!("queue:get:id:{one}")), "paid");
    assert_eq!(ok(d.web_act("/api/retry?module=other")), "queued: 2");
    for id in [two, three] {
        assert_eq!(d.ask_str(&format!("queue:get:id:{id}")), "fixed");
    }
    assert_eq!(d.web_state()["failed_total"], 0);
    assert_eq!(ok(d.web_act("/api/pause?module=other")), "paused: other");
    assert_eq!(module(&d.web_state(), "other")["paused"], true);
    let held = id_of(&d.add("other:3"));
    assert_eq!(
        d.ask_str(&format!("queue:check:id:{held}")),
        "0",
        "paused: it waits"
    );
    assert_eq!(ok(d.web_act("/api/resume?module=other")), "resumed: other");
    assert_eq!(d.ask_str(&format!("queue:get:id:{held}")), "fixed");
    assert_eq!(module(&d.web_state(), "other")["paused"], false);
    // The queue's refusals come back with their status.
    let r = d.web_act("/api/cancel?id=123456789");
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (404, Some("404: Unknown job"))
    );
    let r = d.web_act("/api/pause?module=nosuch");
    assert_eq!(r.status, 400, "as queue:pause answers: {r:?}");
    assert_eq!(json(&r)["error"], "400: Unknown request");
    assert_eq!(json(&r)["ok"], false);
    let log = d.log();
    for line in [
        format!("dashboard 127.0.0.1: cancel of job {running}"),
        format!("dashboard 127.0.0.1: retry of job {one}"),
        "dashboard 127.0.0.1: retry of module other's failed jobs".to_string(),
        "dashboard 127.0.0.1: pause of module other".to_string(),
        "dashboard 127.0.0.1: resume of module other".to_string(),
    ] {
        assert!(log.contains(&line), "{line} in {log}");
    }
    assert!(
        log.contains("INFO  bgjob::daemon::web] dashboard 127.0.0.1: pause"),
        "{log}"
    );
}

/// Without the token, with a wrong one, with a foreign Origin or none,
/// or with actions off: 403, and nothing changes.
#[test]
fn actions_without_token_and_origin_are_refused_and_change_nothing() {
    let on = Setup::new()
        .web(r#""actions": true"#)
        .module("slow", SLOW)
        .module("invoice", BROKEN)
        .start();
    let off = Setup::new()
        .web("")
        .module("slow", SLOW)
        .module("invoice", BROKEN)
        .start();
    for d in [&on, &off] {
        let running = id_of(&d.add("slow:a"));
        let failed = id_of(&d.add("invoice:1"));
        wait_for("the jobs to run and fail", || {
            let s = d.web_state();
            s["failed_total"] == 1 && find(&s["running"], running).is_some()
        });
        let addr = d.web_addr();
        let token = d.web_token();
        let origin = format!("Origin: http://{addr}\r\n");
        let good_token = format!("X-Bgjob-Token: {token}\r\n");
        let wrong = format!("X-Bgjob-Token: {}\r\n", "0".repeat(64));
        let refusals = [
            ("no token", origin.clone()),
            ("a wrong token", format!("{origin}{wrong}")),
            (
                "a short token",
                format!("{origin}X-Bgjob-Token: {}\r\n", &token[..10]),
            ),
            (
                "a foreign Origin",
                format!("Origin: http://evil.example\r\n{good_token}"),
            ),
            (
                "an https Origin",
                format!("Origin: https://{addr}\r\n{good_token}"),
            ),
            ("no Origin", good_token.clone()),
        ];
        let paths = [
            format!("/api/cancel?id={running}"),
            format!("/api/retry?id={failed}"),
            "/api/retry?module=invoice".to_string(),
            "/api/pause?module=slow".to_string(),
            "/api/resume?module=slow".to_string(),
        ];
        for (what, headers) in &refusals {
            for path in &paths {
                let r = post(d, path, headers);
                assert_eq!(r.status, 403, "{what} {path}: {r:?}");
                assert_eq!(json(&r)["ok"], false);
            }
        }
        if std::ptr::eq(d, &off) {
            // Actions off: even the page's own token and Origin are refused.
            for path in &paths {
                let r = d.web_act(path);
                assert_eq!(r.status, 403, "actions off {path}: {r:?}");
            }
            assert_eq!(d.web_state()["actions"], false);
        }
        let s = d.web_state();
        assert!(find(&s["running"], running).is_some(), "still running: {s}");
        assert!(find(&s["failed"], failed).is_some(), "still failed: {s}");
        assert_eq!(module(&s, "slow")["paused"], false);
        assert_eq!(d.ask_str(&format!("queue:check:id:{running}")), "1");
        assert!(d
            .log()
            .contains("refused (actions off, or token or Origin wrong): 403"));
        assert!(
            !d.log().contains("dashboard 127.0.0.1: cancel of job"),
            "{}",
            d.log()
        );
    }
}

#[test]
fn http_bounds_methods_paths_and_host_are_checked() {
    let d = Setup::new().web(r#""actions": true"#).start();
    let addr = d.web_addr();
    let ask = |raw: &str| web_request(addr, raw).status;
    let host = format!("Host: {addr}\r\n");
    let long = format!(
        "GET / HTTP/1.1\r\n{host}X-Long: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(ask(&long), 431);
    let big = format!("POST /api/pause?module=a HTTP/1.1\r\n{host}Content-Length: 5000\r\n\r\n");
    assert_eq!(ask(&big), 413);
    let chunked = format!(
        "POST /api/pause?module=a HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(ask(&chunked), 411);
    assert_eq!(
        ask(&format!("DELETE /api/state HTTP/1.1\r\n{host}\r\n")),
        405
    );
    assert_eq!(
        ask(&format!("GET /api/cancel?id=1 HTTP/1.1\r\n{host}\r\n")),
        405
    );
    assert_eq!(
        ask(&format!(
            "POST / HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n"
        )),
        405
    );
    assert_eq!(ask(&format!("GET /nothing HTTP/1.1\r\n{host}\r\n")), 404);
    assert_eq!(ask(&format!("GET /api/cancel HTTP/1.1\r\n{host}\r\n")), 405);
    assert_eq!(ask("garbage\r\n\r\n"), 400);
    // DNS rebinding: a name other than localhost is refused.
    for bad in ["Host: evil.example:80\r\n", "Host: evil.example\r\n", ""] {
        assert_eq!(
            ask(&format!("GET /api/state HTTP/1.1\r\n{bad}\r\n")),
            421,
            "{bad:?}"
        );
    }
    let port = addr.port();
    for good in [
        format!("Host: localhost:{port}\r\n"),
        "Host: localhost\r\n".into(),
        host.clone(),
    ] {
        assert_eq!(
            ask(&format!("GET /api/state HTTP/1.1\r\n{good}\r\n")),
            200,
            "{good:?}"
        );
    }
    // A body within bounds is read before the answer.
    let body = format!("POST /api/pause?module=a HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nhello");
    assert_eq!(ask(&body), 403, "no token");
}

#[test]
fn dripping_clients_do_not_hold_the_daemon() {
    let d = Setup::new().web("").start();
    let addr = d.web_addr();
    let mut drips: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /api/state HTTP/1.1\r\nHo").unwrap();
            s
        })
        .collect();
    for round in 0..5 {
        for s in &mut drips {
            let _ = s.write_all(b"s");
        }
        assert_eq!(d.ask_str("helo"), "oleh", "round {round}");
        let r = d.web_get("/api/state");
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Idle ones are closed after their time.
    let mut lone = TcpStream::connect(addr).unwrap();
    lone.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    lone.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut lone, &mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed after about 10 s"
    );
    assert!(rest.is_empty(), "closed without an answer");
}

#[test]
fn reload_applies_web_changes() {
    let d = Setup::new().web(r#""listen": "127.0.0.1:0""#).start();
    let first = d.web_addr();
    let token = d.web_token();
    assert_eq!(d.web_state()["actions"], false);
    let config = d.dir.path().join("service.config");
    std::fs::write(
        &config,
        r#"{"web": {"listen": "127.0.0.1:0", "actions": true}}"#,
    )
    .unwrap();
    d.signal("HUP");
    wait_for("the reload", || d.log().contains("reloaded "));
    assert_eq!(d.web_addr(), first, "same listen: the listener stays");
    assert_eq!(d.web_state()["actions"], true);
    assert_eq!(d.web_token(), token, "one token per start");
    std::fs::write(
        &config,
        r#"{"web": {"listen": "127.0.0.1:0", "allow": ["10.0.0.0/8"]}}"#,
    )
    .unwrap();
    d.signal("HUP");
    wait_for("the second reload", || {
        d.log().matches("reloaded ").count() >= 2
    });
    assert_eq!(d.web_get("/api/state").status, 403);
    std::fs::write(&config, "{}").unwrap();
    d.signal("HUP");
    wait_for("the third reload", || {
        d.log().matches("reloaded ").count() >= 3
    });
    assert!(d.log().contains("dashboard off"), "{}", d.log());
    assert!(TcpStream::connect(first).is_err(), "the listener is closed");
}

#[test]
fn a_reload_to_a_taken_port_still_applies_actions_and_allow() {
    let d = Setup::new()
        .web(r#""listen": "127.0.0.1:0", "actions": true"#)
        .start();
    let first = d.web_addr();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = d.dir.path().join("service.config");
    let web = format!(
        r#"{{"web": {{"listen": "{}"}}}}"#,
        taken.local_addr().unwrap()
    );
    std::fs::write(&config, web).unwrap();
    d.signal("HUP");
    wait_for("the reload", || d.log().contains("reloaded "));
    assert!(d.log().contains("the dashboard stays on"), "{}", d.log());
    assert_eq!(d.web_addr(), first);
    assert_eq!(
        d.web_state()["actions"],
        false,
        "actions are off where it stays"
    );
    let refused = post(&d, "/api/pause?module=echo", "");
    assert_eq!(refused.status, 403);
}

#[test]
fn clients_outside_the_allow_list_cannot_push_out_allowed_ones() {
    let d = Setup::new().web(r#""allow": ["127.0.0.1/32"]"#).start();
    let addr = d.web_addr();
    // An allowed client connects first and is slow to send its request.
    let mut patient = crate::access::socket_from("127.0.0.1", addr);
    patient.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    // Then more outsiders than the dashboard takes connections.
    let outsiders: Vec<TcpStream> = (0..48)
        .map(|_| crate::access::socket_from("127.0.0.2", addr))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let host = format!("Host: {addr}\r\n\r\n");
    patient.write_all(host.as_bytes()).unwrap();
    let answer = String::from_utf8_lossy(&crate::util::read_to_end(&mut patient)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(outsiders);
}

#[test]
fn bgjob_status_prints_the_state() {
    let d = Setup::new()
        .web("")
        .module("slow", SLOW)
        .module("invoice", BROKEN)
        .start();
    let running = id_of(&d.add("slow:a"));
    let failed = id_of(&d.add("invoice:1"));
    wait_for("the jobs to run and fail", || {
        let s = d.web_state();
        s["failed_total"] == 1
            && find(&s["running"], running).is_some_and(|r| r["progress"]["done"] == 40)
    });
    let web = d.web_addr().to_string();
    let status = |args: &[&str], env: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_bgjob"));
        c.args(args).env_remove("BGJOB_WEB");
        if let Some(addr) = env {
            c.env("BGJOB_WEB", addr);
        }
        c.output().unwrap()
    };
    let o = status(&["status", "--web", &web], None);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.starts_with("bgjobd "), "{text}");
    assert!(
        text.contains("jobs: 1 running, 0 waiting, 0 scheduled, 1 failed"),
        "{text}"
    );
    assert!(text.contains(&format!("  {running} slow (")), "{text}");
    assert!(text.contains(", 40/100\n"), "{text}");
    assert!(
        text.contains(&format!("  {failed} invoice, 1 attempts, ")),
        "{text}"
    );
    assert!(text.contains("exit 3: no such invoice"), "{text}");
    let o = status(&["status", "--json"], Some(&web));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["failed_total"], 1);
    // Nobody there: exit 3, and the hint names the setting.
    let o = status(&["status", "--web", "127.0.0.1:1"], None);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"web\" in the config"));
}

#[test]
fn stderr_reaches_the_state_as_written_and_queue_lines_escaped_once() {
    let d = Setup::new()
        .web("")
        .module(
            "odd",
            "#!/bin/sh\nprintf '%s\\n' 'a\"b<c>\\d é' >&2\nexit 1\n",
        )
        .start();
    let id = id_of(&d.add("odd:x"));
    wait_for("the job to fail", || d.web_state()["failed_total"] == 1);
    let s = d.web_state();
    assert_eq!(
        find(&s["failed"], id).unwrap()["stderr"],
        "a\"b<c>\\d é",
        "{s}"
    );
    let failed = d.ask_operator("queue:failed");
    assert!(
        failed.ends_with(" a\\\"b<c>\\\\d \\xc3\\xa9\n"),
        "{failed:?}"
    );
    let info = d.ask_operator(&format!("queue:info:id:{id}"));
    assert!(info.contains("attempt_1: exit 1, "), "{info}");
    assert!(info.contains(", a\\\"b<c>\\\\d \\xc3\\xa9\n"), "{info:?}");
}
