//! The seed's wire protocol, byte for byte.

use crate::util::{Daemon, Setup, TempDir};

const CAT: &str = "#!/bin/sh\nexec cat\n";

#[test]
fn helo_and_hello_are_answered_with_or_without_newline() {
    let d = Setup::new().start();
    assert_eq!(d.ask_str("helo"), "oleh");
    assert_eq!(d.ask_str("hello"), "olleh");
    assert_eq!(d.ask_str(" helo\n"), "oleh");
    assert_eq!(d.ask_classic(b"helo\n"), b"oleh");
    assert_eq!(d.ask_classic(b"hello"), b"olleh");
}

/// A config that runs modules as the daemon's own user: the checkout's
/// `modules/` may sit where `nobody` cannot reach it.
pub fn as_owner_config() -> String {
    let path = std::env::temp_dir().join(format!("bgjob-as-owner-{}.config", std::process::id()));
    std::fs::write(
        &path,
        r#"{"listen": [], "module_user": "root", "allow_root_modules": true}"#,
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn shipped_modules_answer_from_any_working_directory() {
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/modules");
    let d = Daemon::spawn(
        TempDir::new("shipped"),
        modules.into(),
        [
            "-v",
            "-1",
            "--listen",
            "127.0.0.1:0",
            "--modules",
            modules,
            "-c",
            &as_owner_config(),
        ]
        .map(String::from)
        .to_vec(),
    );
    assert_eq!(d.ask_str("test:"), "Test");
    assert_eq!(d.ask_classic(b"test:"), b"Test");
    assert_eq!(d.ask_str("test"), "Test");
    assert_eq!(d.ask_str("upper:hello"), "HELLO");
    assert_eq!(
        d.ask_str("wc:one two\n")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1", "2", "8"]
    );
    assert_eq!(
        d.ask_str("fail:"),
        "500: Module fail failed (exit status 1)"
    );
}

#[test]
fn module_names_are_cleaned_so_no_path_leaves_the_folder() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    std::fs::write(d.dir.path().join("outside"), "#!/bin/sh\nprintf escaped\n").unwrap();
    assert_eq!(d.ask_str("../../te.st:"), "Test");
    assert_eq!(d.ask_str("t e\u{e9}st\n:x"), "Test");
    assert_eq!(d.ask_str("../outside:"), "400: Unknown request");
    assert_eq!(d.ask_str("/bin/sh:"), "400: Unknown request");
}

#[test]
fn data_reaches_the_module_byte_for_byte() {
    let d = Setup::new().module("cat", CAT).start();
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(b"a:b:c \r\n\n  ");
    let mut request = b"cat:".to_vec();
    request.extend_from_slice(&data);
    assert_eq!(d.ask(&request), data);
    assert_eq!(d.ask(b"cat:"), b"");
    assert_eq!(d.ask(b"cat"), b"");
}

#[test]
fn unknown_modules_and_empty_or_garbage_requests_get_400() {
    let d = Setup::new().module("cat", CAT).start();
    assert_eq!(d.ask_str("nosuch:x"), "400: Unknown request");
    assert_eq!(d.ask_str(""), "400: Unknown request");
    assert_eq!(d.ask_str(":data"), "400: Unknown request");
    assert_eq!(d.ask(b"\x00\xff\xfe\x01"), b"400: Unknown request");
    assert_eq!(d.ask(&[b'x'; 5000]), b"400: Unknown request");
    assert_eq!(d.ask_str("helo"), "oleh");
}

#[test]
fn module_failures_are_answered_in_the_seed_error_form() {
    let d = Setup::new()
        .module("fail", "#!/bin/sh\necho partial\nexit 3\n")
        .module(
            "coded",
            "#!/bin/sh\nprintf '404: LESS not available'\nexit 1\n",
        )
        .module("coded_ok", "#!/bin/sh\nprintf '404: LESS not available'\n")
        .module("killed", "#!/bin/sh\nkill -9 $$\n")
        .module(
            "stderr",
            "#!/bin/sh\necho 'something went wrong' >&2\nprintf ok\n",
        )
        .start();
    assert_eq!(
        d.ask_str("fail:"),
        "500: Module fail failed (exit status 3)"
    );
    assert_eq!(d.ask_str("coded:"), "404: LESS not available");
    assert_eq!(d.ask_str("coded_ok:"), "404: LESS not available");
    assert_eq!(
        d.ask_str("killed:"),
        "500: Module killed failed (killed by signal 9)"
    );
    assert_eq!(d.ask_str("stderr:"), "ok");
    d.wait_log("module stderr");
    assert!(
        d.log().contains("something went wrong"),
        "stderr goes to the log"
    );
}

#[test]
fn modules_get_their_environment_and_their_own_process_group() {
    let script = r#"#!/bin/sh
pgid=$(cut -d' ' -f5 /proc/$$/stat)
printf '%s|%s|%s|%s|%s' "$BGJOB_MODULE" "$BGJOB_TRANSPORT" "$BGJOB_REMOTE" "${BGJOB_JOB_ID-unset}" "$([ "$pgid" = $$ ] && echo leader)"
"#;
    let d = Setup::new().module("env", script).start();
    let mut stream = d.connect();
    let local = stream.local_addr().unwrap();
    use std::io::Write;
    stream.write_all(b"env:").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let answer = String::from_utf8(crate::util::read_to_end(&mut stream)).unwrap();
    assert_eq!(answer, format!("env|tcp|{local}|unset|leader"));
    // The operator socket has no address: it says so.
    assert_eq!(d.ask_operator("env:"), "env|tcp|unix|unset|leader");
    let id = d.ask_str("queue:add:env:");
    let answer = d.ask_str(&format!("queue:get:{id}"));
    assert_eq!(
        answer,
        format!("env|queue||{}|leader", id.trim_start_matches("id:"))
    );
}

#[test]
fn js_modules_run_under_node() {
    let d = Setup::new().start();
    std::fs::write(
        d.modules.join("shout.js"),
        "let s = ''; process.stdin.on('data', d => s += d); process.stdin.on('end', () => process.stdout.write(s.toUpperCase() + '!'));\n",
    )
    .unwrap();
    assert_eq!(d.ask_str("shout:hey"), "HEY!");
}

#[test]
fn a_module_added_a_moment_ago_is_found_on_its_first_request() {
    let d = Setup::new().start();
    assert_eq!(d.ask_str("late:"), "400: Unknown request");
    d.add_module("late", "#!/bin/sh\nprintf here\n");
    assert_eq!(d.ask_str("late:"), "here");
    d.add_module("late", "#!/bin/sh\nprintf changed\n");
    assert_eq!(d.ask_str("late:"), "changed");
}

#[test]
fn requests_are_logged_with_transport_peer_module_bytes_status_and_time() {
    let d = Setup::new().module("cat", CAT).start();
    assert_eq!(d.ask_str("cat:12345"), "12345");
    d.wait_log("cat: in 5 bytes, out 5 bytes, exit status 0, ran ");
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains(" INFO ") && l.contains("] tcp 127.0.0.1:")),
        "{}",
        d.log()
    );
}
