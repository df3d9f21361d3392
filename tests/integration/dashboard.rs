//! The dashboard (`"web"`): its page and assets with their headers and the
//! token, `/api/state` reflecting real jobs, the actions and every way of
//! being refused one, HTTP bounds, the Host check, slow clients, reload.

use crate::util::{web_request, Setup};

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
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'"),
        "{csp}"
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
    let metrics = d.web_get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("bgjob_jobs_running"), "{metrics:?}");
    assert_eq!(d.web_get("/healthz").body, "ok\n");
    // Another start draws another token.
    let again = Setup::new().web("").start();
    assert_ne!(again.web_token(), token);
}

#[test]
fn the_dashboard_is_off_by_default() {
    let d = Setup::new().start();
    d.wait_log("started");
    assert!(!d.log().contains("dashboard on"), "{}", d.log());
}

#[test]
fn state_has_the_documented_fields() {
    let d = Setup::new().web("").arg("--state").arg("none").start();
    let s = d.web_state();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_secs"].is_u64());
    assert!(s["now"].as_f64().unwrap() > 1.7e9);
    assert_eq!(s["actions"], false);
    assert_eq!(s["journal"]["state"], "memory");
    assert_eq!(s["cluster"], serde_json::Value::Null);
    assert_eq!(s["counts"]["running"], 0);
    assert_eq!(s["history"]["interval_secs"], 10);
    assert!(s["running"].as_array().unwrap().is_empty());
    assert_eq!(s["failed_total"], 0);
    let host = format!("Host: {}", d.web_addr());
    let bad = web_request(
        d.web_addr(),
        "GET /api/state HTTP/1.1\r\nHost: evil.example:80\r\n\r\n",
    );
    assert_eq!(bad.status, 421, "{bad:?}");
    assert!(!host.is_empty());
}

#[test]
fn a_running_job_shows_with_its_progress_and_can_be_cancelled() {
    let d = Setup::new()
        .web(r#""actions": true"#)
        .arg("--state")
        .arg("none")
        .module(
            "slow",
            "#!/bin/sh\necho 40/100 >&\"$BGJOB_PROGRESS_FD\"\nsleep 30\n",
        )
        .start();
    let id = d.add("slow:x");
    let id: u64 = id.strip_prefix("id:").unwrap().parse().unwrap();
    crate::util::wait_for("the job to report progress", || {
        d.web_state()["running"][0]["progress"]["done"] == 40
    });
    let s = d.web_state();
    let row = &s["running"][0];
    assert_eq!(row["id"], id);
    assert_eq!(row["module"], "slow");
    assert_eq!(row["attempt"], 1);
    assert_eq!(row["progress"]["total"], 100);
    assert_eq!(s["counts"]["running"], 1);
    assert_eq!(s["actions"], true);
    let done = d.web_act(&format!("/api/cancel?id={id}"));
    assert_eq!(done.status, 200, "{done:?}");
    let answer: serde_json::Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    crate::util::wait_for("the job to end", || d.web_state()["counts"]["running"] == 0);
    assert!(
        d.log().contains("dashboard 127.0.0.1: cancel of job"),
        "{}",
        d.log()
    );
}
