//! `.js` modules: the seed's module API through the Node.js host, plain
//! scripts, and the shipped compiler modules with their npm packages.

use std::time::Duration;

use crate::util::{wait_for, Daemon, Setup, TempDir};

fn with_js(files: &[(&str, &str)], settings: Option<&str>) -> Daemon {
    let mut setup = Setup::new();
    if let Some(settings) = settings {
        setup = setup.settings(settings);
    }
    let d = setup.start();
    for (name, source) in files {
        std::fs::write(d.modules.join(name), source).unwrap();
    }
    d
}

#[test]
fn a_seed_module_answers_tcp_udp_and_queue_calls() {
    let d = with_js(&[], None);
    let out = d.dir.path().join("udp.out");
    let seed = format!(
        r#"exports.TExecute = function (parts, client) {{
  client.write('T:' + parts[0] + ':' + parts[1]);
  client.write(Buffer.from([0x21]));
  client.end();
}};
exports.UExecute = function (parts) {{
  require('fs').writeFileSync({:?}, 'U:' + parts[1]);
  return 'ignored';
}};
"#,
        out.display().to_string()
    );
    std::fs::write(d.modules.join("seedmod.js"), seed).unwrap();
    assert_eq!(d.ask_str("seedmod:hello:world"), "T:seedmod:hello:world!");
    assert_eq!(d.ask_classic(b"seedmod:classic"), b"T:seedmod:classic!");
    let id = d.ask_str("queue:add:seedmod:queued");
    assert_eq!(
        d.ask_str(&format!("queue:get:{id}")),
        "T:seedmod:queued!",
        "queue jobs use TExecute"
    );
    d.send_udp(b"seedmod:datagram");
    wait_for("UExecute", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "U:datagram")
    });
}

#[test]
fn a_plain_script_reads_its_data_from_stdin() {
    let d = with_js(
        &[(
            "shout.js",
            "let s = ''; process.stdin.on('data', d => s += d); process.stdin.on('end', () => process.stdout.write(s.toUpperCase()));",
        )],
        None,
    );
    assert_eq!(d.ask_str("shout:quiet"), "QUIET");
}

/// Per-request (cold) mode: every error has its own answer.
#[test]
fn module_errors_are_clear_answers_never_hangs() {
    let d = with_js(
        &[
            (
                "throws.js",
                "exports.TExecute = function () { throw new Error('boom'); };",
            ),
            (
                "rejects.js",
                "exports.TExecute = async function () { throw new Error('async boom'); };",
            ),
            (
                "noend.js",
                "exports.TExecute = function (parts, client) {};",
            ),
            (
                "fail.js",
                "// the seed's fail.js: a module without exports\n",
            ),
            ("broken.js", "exports.TExecute = function ( {"),
            ("udponly.js", "exports.UExecute = function () {};"),
            (
                "spins.js",
                "exports.TExecute = function () { setInterval(() => {}, 1000); };",
            ),
        ],
        Some(r#""job_timeout_secs": 2, "node_workers": 0"#),
    );
    assert_eq!(d.ask_str("throws:"), "500: Module throws failed: boom");
    assert_eq!(
        d.ask_str("rejects:"),
        "500: Module rejects failed: async boom"
    );
    assert_eq!(
        d.ask_str("noend:"),
        "500: Module noend did not call client.end()"
    );
    assert_eq!(
        d.ask_str("fail:"),
        "500: Module fail exports nothing and wrote nothing"
    );
    assert!(d
        .ask_str("broken:")
        .starts_with("500: Module broken failed to load: "));
    assert_eq!(
        d.ask_str("udponly:"),
        "500: Module udponly exports no TExecute"
    );
    let start = std::time::Instant::now();
    assert_eq!(d.ask_str("spins:"), "504: Module spins timed out");
    assert!(start.elapsed() < Duration::from_secs(15));
    d.wait_log("module throws");
    d.wait_log("at exports.TExecute");
}

/// The shipped modules folder, with its npm packages (bin/test installs them).
fn shipped() -> Daemon {
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/modules");
    assert!(
        std::path::Path::new(modules)
            .join("node_modules/less")
            .exists(),
        "npm packages missing: run `npm ci --prefix modules` (bin/test does)"
    );
    Daemon::on_folder(
        TempDir::new("shipped-js"),
        std::path::Path::new(modules),
        &crate::protocol::as_owner_config(),
    )
}

#[test]
fn the_compiler_modules_compile_for_real() {
    let d = shipped();
    assert_eq!(
        d.ask_str("less:@color: red;\n.a { color: @color; }"),
        ".a {\n  color: red;\n}\n"
    );
    assert_eq!(
        d.ask_str("sass:.a { .b { color: red; } }"),
        ".a .b {\n  color: red;\n}"
    );
    assert_eq!(
        d.ask_str("typescript:let x: number = 1;\nfunction f(a: string): void {}"),
        "let x = 1;\nfunction f(a) { }\n"
    );
    let coffee = d.ask_str("coffee:square = (x) -> x * x");
    assert!(
        coffee.contains("square = function(x) {\n    return x * x;\n  };"),
        "{coffee}"
    );
    assert_eq!(d.ask_str("jade:p Hello"), "<p>Hello</p>");
    assert_eq!(d.ask_str("pug:ul\n  li one"), "<ul><li>one</li></ul>");
    assert_eq!(d.ask_str("roole:a"), "404: Roole not available");
    assert!(
        d.ask_str("less:.a {").starts_with("500: LESS "),
        "compile errors in the seed's form"
    );
    assert!(d
        .ask_str("typescript:let = ;")
        .starts_with("500: TypeScript "));
}

#[test]
fn a_compiler_module_without_its_package_answers_404() {
    let d = Setup::new().start();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/modules");
    for (file, answer) in [
        ("less.js", "404: LESS not available"),
        ("sass.js", "404: SASS not available"),
        ("coffee.js", "404: CoffeeScript not available"),
        ("jade.js", "404: Jade not available"),
        ("typescript.js", "404: TypeScript not available"),
    ] {
        std::fs::copy(format!("{shipped}/{file}"), d.modules.join(file)).unwrap();
        let name = file.trim_end_matches(".js");
        assert_eq!(d.ask_str(&format!("{name}:x")), answer);
    }
}

/// A module that counts its calls: consecutive answers from one worker count up.
const COUNTER: &str = r#"let calls = 0;
exports.TExecute = function (parts, client) {
  calls += 1;
  if (parts[1] === 'hang') return setInterval(() => {}, 1000);
  if (parts[1] === 'crash') process.exit(3);
  client.end(`${calls}:${process.pid}`);
};
"#;

fn counts(answer: &str) -> (u32, u32) {
    let (n, pid) = answer.split_once(':').unwrap_or_else(|| panic!("{answer}"));
    (n.parse().unwrap(), pid.parse().unwrap())
}

#[test]
fn a_warm_worker_serves_consecutive_requests_and_cold_mode_does_not() {
    let d = with_js(&[("counter.js", COUNTER)], Some(r#""node_workers": 1"#));
    let (n1, pid1) = counts(&d.ask_str("counter:"));
    let (n2, pid2) = counts(&d.ask_str("counter:"));
    let (n3, pid3) = counts(&String::from_utf8(d.ask_classic(b"counter:")).unwrap());
    assert_eq!((n1, n2, n3), (1, 2, 3), "require and start-up happen once");
    assert!(pid1 == pid2 && pid2 == pid3);
    let id = d.ask_str("queue:add:counter:");
    assert_eq!(
        counts(&d.ask_str(&format!("queue:get:{id}"))).0,
        4,
        "queue jobs use the same worker"
    );
    d.wait_log("module counter: starting a warm worker");

    let cold = with_js(&[("counter.js", COUNTER)], Some(r#""node_workers": 0"#));
    assert_eq!(counts(&cold.ask_str("counter:")).0, 1);
    assert_eq!(
        counts(&cold.ask_str("counter:")).0,
        1,
        "one process per request"
    );
}

#[test]
fn a_worker_past_the_time_limit_is_killed_and_replaced() {
    let d = with_js(
        &[("counter.js", COUNTER)],
        Some(r#""node_workers": 1, "job_timeout_secs": 1"#),
    );
    let (_, first) = counts(&d.ask_str("counter:"));
    assert_eq!(d.ask_str("counter:hang"), "504: Module counter timed out");
    wait_for("the stuck worker gone", || {
        !crate::util::process_alive(first)
    });
    let (n, second) = counts(&d.ask_str("counter:"));
    assert_eq!(n, 1, "a fresh worker");
    assert_ne!(first, second);
}

#[test]
fn a_module_that_crashes_its_worker_fails_one_job() {
    let d = with_js(&[("counter.js", COUNTER)], Some(r#""node_workers": 1"#));
    assert_eq!(counts(&d.ask_str("counter:")).0, 1);
    assert_eq!(
        d.ask_str("counter:crash"),
        "500: Module counter failed (exit status 3)"
    );
    assert_eq!(
        counts(&d.ask_str("counter:")).0,
        1,
        "the next job gets a new worker"
    );
    assert_eq!(counts(&d.ask_str("counter:")).0, 2);
}

#[test]
fn a_module_that_exits_its_process_answers_alike_warm_and_cold() {
    let exits = [(
        "quit.js",
        "exports.TExecute = function () { process.exit(0); };\n",
    )];
    for settings in [r#""node_workers": 1"#, r#""node_workers": 0"#] {
        let d = with_js(&exits, Some(settings));
        let id = d.add("quit:");
        assert_eq!(d.ask_str(&format!("queue:get:{id}")), "", "{settings}");
        let info = d.ask_str(&format!("queue:info:{id}"));
        assert!(info.contains("exit_code: 0\n"), "{settings}: {info}");
    }
}

#[test]
fn a_changed_module_is_unloaded_and_reloaded() {
    let unloaded = TempDir::new("unloaded");
    let marker = unloaded.path().join("unloaded");
    let v1 = format!(
        "{COUNTER}exports.Unload = function () {{ require('fs').writeFileSync({:?}, 'v1'); }};\n",
        marker.display().to_string()
    );
    let d = with_js(&[("counter.js", &v1)], Some(r#""node_workers": 1"#));
    assert_eq!(counts(&d.ask_str("counter:")).0, 1);
    assert_eq!(counts(&d.ask_str("counter:")).0, 2);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        d.modules.join("counter.js"),
        "exports.TExecute = (parts, client) => client.end('v2');\n",
    )
    .unwrap();
    d.signal("HUP"); // the index is also refreshed every 10 seconds
    d.wait_log("module counter changed");
    assert_eq!(d.ask_str("counter:"), "v2");
    wait_for("Unload() called on the old worker", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s == "v1")
    });
}

#[test]
fn idle_workers_stop() {
    let d = with_js(
        &[("counter.js", COUNTER)],
        Some(r#""node_workers": 1, "node_worker_idle_secs": 0.5"#),
    );
    let (_, pid) = counts(&d.ask_str("counter:"));
    wait_for("the idle worker to stop", || {
        !crate::util::process_alive(pid)
    });
    assert_eq!(
        counts(&d.ask_str("counter:")).0,
        1,
        "started again on demand"
    );
}

#[test]
fn warm_jobs_keep_their_error_answers() {
    let d = with_js(
        &[
            (
                "throws.js",
                "exports.TExecute = function () { throw new Error('boom'); };",
            ),
            (
                "noend.js",
                "exports.TExecute = function (parts, client) {};",
            ),
            (
                "spins.js",
                "exports.TExecute = function () { setInterval(() => {}, 1000); };",
            ),
            ("fail.js", "// no exports: served cold\n"),
        ],
        Some(r#""job_timeout_secs": 1"#),
    );
    assert_eq!(d.ask_str("throws:"), "500: Module throws failed: boom");
    assert_eq!(
        d.ask_str("throws:"),
        "500: Module throws failed: boom",
        "the worker survives a throw"
    );
    assert_eq!(
        d.ask_str("noend:"),
        "500: Module noend did not call client.end()",
        "as soon as it has nothing left to do, as in cold mode"
    );
    assert_eq!(d.ask_str("spins:"), "504: Module spins timed out");
    assert_eq!(
        d.ask_str("fail:"),
        "500: Module fail exports nothing and wrote nothing"
    );
    d.wait_log("module fail cannot be served warm");
}

#[test]
fn a_warm_answer_past_the_output_cap_fails_its_job() {
    let d = with_js(
        &[(
            "big.js",
            "exports.TExecute = (parts, client) => client.end('x'.repeat(100000));",
        )],
        Some(r#""max_output_bytes": 1000"#),
    );
    assert_eq!(
        d.ask_str("big:"),
        "500: Module big failed (output over 1000 bytes)"
    );
    d.wait_log("a worker's answer passed 1000 bytes");
}

#[test]
fn progress_frames_are_not_answer_bytes() {
    // Many progress calls in one tick arrive with the answer in one read:
    // only the answer counts against the output cap.
    let d = with_js(
        &[(
            "steps.js",
            "exports.TExecute = (parts, client) => { for (let i = 0; i < 5000; i++) client.progress(i, 5000); client.end('ok'); };",
        )],
        Some(r#""max_output_bytes": 1000, "node_workers": 1"#),
    );
    for _ in 0..4 {
        assert_eq!(d.ask_str("steps:"), "ok");
    }
    // A whole answer over the cap in one read is still refused.
    d.add_module(
        "over.js",
        "exports.TExecute = (parts, client) => client.end('y'.repeat(1500));",
    );
    assert_eq!(
        d.ask_str("over:"),
        "500: Module over failed (output over 1000 bytes)"
    );
}

#[test]
fn a_warm_worker_takes_a_request_larger_than_a_pipe() {
    let d = with_js(
        &[(
            "size.js",
            "exports.TExecute = (parts, client) => client.end(String(parts[1].length));",
        )],
        None,
    );
    let mut request = b"size:".to_vec();
    request.extend(std::iter::repeat_n(b'a', 2 << 20));
    assert_eq!(d.ask(&request), b"2097152");
    assert_eq!(d.ask_str("size:abc"), "3", "the same worker goes on");
}

#[test]
fn a_warm_job_receipt_carries_its_workers_cpu_and_memory() {
    let busy = "exports.TExecute = function (parts, client) {
  let x = 0;
  for (let i = 0; i < 1e8; i++) x = (x + i) % 1000003;
  const big = Buffer.alloc(64 << 20).fill(1);
  client.end(String(x + big[7]));
};
";
    let d = with_js(&[("busy.js", busy)], Some(r#""node_workers": 1"#));
    assert!(
        d.ask_str("busy:").parse::<u64>().is_ok(),
        "a warm worker answers"
    );
    let id = d.ask_str("queue:add:busy:");
    wait_for("the job done", || {
        d.ask_str(&format!("queue:check:{id}")) == "2"
    });
    d.wait_log("module busy: starting a warm worker");
    let info = d.ask_str(&format!("queue:info:{id}"));
    let number = |key: &str| -> f64 {
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")));
        line.unwrap_or_else(|| panic!("no {key} in:\n{info}"))
            .parse()
            .unwrap()
    };
    assert!(number("cpu_user_ms") > 0.0, "{info}");
    assert!(
        number("max_rss_kib") >= 65536.0,
        "the 64 MiB buffer:\n{info}"
    );
}
