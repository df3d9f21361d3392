//! The Node.js host's `client` and working folder, the same on both paths:
//! a warm worker (`node_workers` > 0) and a process per request (0).

use crate::util::{Daemon, Setup};

/// Modules that write what Node.js's own socket refuses, and one that
/// writes a Uint8Array and a string with its encoding, which it takes.
const WRITERS: &[(&str, &str)] = &[
    (
        "object.js",
        "exports.TExecute = (parts, client) => { client.write({ css: 'a{}' }); client.end(); };",
    ),
    (
        "nothing.js",
        "exports.TExecute = (parts, client) => { client.write(undefined); client.end(); };",
    ),
    (
        "number.js",
        "exports.TExecute = (parts, client) => client.end(42);",
    ),
    (
        "bytes.js",
        "exports.TExecute = (parts, client) => { client.write(new Uint8Array([79, 75])); client.write('aGk=', 'base64', () => client.end()); };",
    ),
];

/// Modules of a daemon started as root run as `nobody`: let them write here.
fn writable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

fn daemon(files: &[(&str, &str)], workers: usize, extra: &str) -> Daemon {
    let d = Setup::new()
        .settings(&format!(r#""node_workers": {workers}{extra}"#))
        .start();
    for (name, source) in files {
        std::fs::write(d.modules.join(name), source).unwrap();
    }
    d
}

#[test]
fn a_write_a_socket_would_refuse_is_a_500_that_names_it_warm_and_cold() {
    for workers in [1, 0] {
        let d = daemon(WRITERS, workers, "");
        for (request, answer) in [
            (
                "object:",
                "500: Module object wrote an object, not a string or Buffer",
            ),
            (
                "nothing:",
                "500: Module nothing wrote undefined, not a string or Buffer",
            ),
            (
                "number:",
                "500: Module number wrote a number, not a string or Buffer",
            ),
            ("bytes:", "OKhi"),
        ] {
            assert_eq!(
                d.ask_str(request),
                answer,
                "{request} with {workers} workers"
            );
        }
        let id = d.ask_str("queue:add:object:");
        assert_eq!(
            d.ask_str(&format!("queue:get:{id}")),
            "500: Module object wrote an object, not a string or Buffer",
            "a failed job, not a result, with {workers} workers"
        );
    }
}

/// A module that reports its working folder and writes a file in it.
const WHERE: &str = r#"exports.TExecute = function (parts, client) {
  require('fs').writeFileSync('./modules/tmp/out.txt', parts[1]);
  client.end(process.cwd());
};
"#;

#[test]
fn js_modules_run_in_the_folder_holding_the_modules_warm_and_cold() {
    for workers in [1, 0] {
        let d = daemon(&[("where.js", WHERE)], workers, "");
        let top = d.modules.parent().unwrap().to_path_buf();
        std::fs::create_dir(d.modules.join("tmp")).unwrap();
        writable(&d.modules.join("tmp"));
        assert_eq!(d.ask_str("where:seed"), top.display().to_string());
        assert_eq!(
            std::fs::read_to_string(d.modules.join("tmp/out.txt")).unwrap(),
            "seed",
            "./modules/tmp/ is the modules folder's tmp ({workers} workers)"
        );
        // Shell modules keep running in the modules folder.
        crate::util::write_module(&d.modules, "pwd", "#!/bin/sh\npwd\n");
        assert_eq!(d.ask_str("pwd:"), format!("{}\n", d.modules.display()));
    }
}

#[test]
fn js_working_dir_moves_them_and_a_missing_one_is_a_clear_answer() {
    let elsewhere = crate::util::TempDir::new("js-workdir");
    std::fs::create_dir_all(elsewhere.path().join("modules/tmp")).unwrap();
    writable(&elsewhere.path().join("modules/tmp"));
    for workers in [1, 0] {
        let setting = format!(r#", "js_working_dir": {:?}"#, elsewhere.path().display());
        let d = daemon(&[("where.js", WHERE)], workers, &setting);
        assert_eq!(
            d.ask_str("where:moved"),
            elsewhere.path().display().to_string()
        );
        let gone = r#", "js_working_dir": "/nonexistent/bgjob""#;
        let d = daemon(&[("where.js", WHERE)], workers, gone);
        assert_eq!(
            d.ask_str("where:"),
            "500: Module where cannot enter its working folder /nonexistent/bgjob (ENOENT)"
        );
        d.signal("HUP"); // the start-up check again, now with a .js module
        d.wait_log("the .js modules' working folder /nonexistent/bgjob is not a folder");
    }
}

/// The seed's page never asks for `client.end()`: modules that write and
/// then have nothing left to do have answered, however long their work
/// took; one that wrote nothing has not.
const UNENDED: &[(&str, &str)] = &[
    (
        "writes.js",
        "exports.TExecute = (parts, client) => client.write('Test');",
    ),
    (
        "later.js",
        "exports.TExecute = (parts, client) => { client.write('a'); setTimeout(() => require('fs').readFile(__filename, () => client.write('b')), 300); };",
    ),
    (
        "child.js",
        "exports.TExecute = (parts, client) => require('child_process').exec('sleep 0.3; echo -n c', (e, out) => client.write(out));",
    ),
    ("silent.js", "exports.TExecute = () => {};"),
];

#[test]
fn a_module_that_writes_without_end_is_answered_once_it_is_done_warm_and_cold() {
    for workers in [1, 0] {
        let d = daemon(UNENDED, workers, r#", "job_timeout_secs": 20"#);
        for _ in 0..2 {
            let start = std::time::Instant::now();
            assert_eq!(d.ask_str("writes:"), "Test", "{workers} workers");
            assert_eq!(d.ask_str("later:"), "ab", "{workers} workers");
            assert_eq!(d.ask_str("child:"), "c", "{workers} workers");
            assert_eq!(
                d.ask_str("silent:"),
                "500: Module silent did not call client.end()",
                "{workers} workers"
            );
            assert!(
                start.elapsed() < std::time::Duration::from_secs(15),
                "answered when done, not at the time limit"
            );
        }
        let id = d.ask_str("queue:add:later:");
        assert_eq!(d.ask_str(&format!("queue:get:{id}")), "ab");
    }
}
