//! A job belongs to where it was added: other listeners cannot see it, ids
//! cannot be guessed, operators (the socket in the state folder, listeners
//! marked admin) see everything, and one client cannot evict another's
//! results.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use crate::access::ask_from;
use crate::util::{wait_for, write_module, Daemon, TempDir};

/// A daemon with the listeners `public` (serves only `upper`), `other`
/// (serves only `test`) and `ops` (admin), all on loopback.
fn three_listeners(settings: &str) -> (Daemon, SocketAddr, SocketAddr) {
    let dir = TempDir::new("owners");
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    write_module(&modules, "upper", "#!/bin/sh\nsleep 0.2\nexec tr a-z A-Z\n");
    write_module(&modules, "test", "#!/bin/sh\nprintf Test\n");
    std::fs::write(
        dir.path().join("service.config"),
        format!(
            r#"{{"listen": [
            {{"name": "public", "address": "127.0.0.1", "port": 0, "modules": ["upper"]}},
            {{"name": "other", "address": "127.0.0.1", "port": 0, "modules": ["test"]}},
            {{"name": "ops", "address": "127.0.0.1", "port": 0, "admin": true}}]
            {settings}}}"#
        ),
    )
    .unwrap();
    let args = ["-vv", "-1", "-m", modules.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    let d = Daemon::spawn(dir, modules, args);
    let addr_of = |name: &str| {
        d.wait_log(&format!(" ({name};"));
        crate::util::listener_addr(&d.log(), name).unwrap()
    };
    let (other, ops) = (addr_of("other"), addr_of("ops"));
    (d, other, ops)
}

fn ask_at(addr: SocketAddr, request: &str) -> String {
    ask_from("127.0.0.1", addr, request)
}

#[test]
fn another_listeners_job_is_unknown_there() {
    let (d, other, ops) = three_listeners("");
    let id = d.add("upper:secret");
    for request in ["check", "get", "cancel", "info"] {
        assert_eq!(
            ask_at(other, &format!("queue:{request}:{id}")),
            "404: Unknown job",
            "queue:{request} from another listener"
        );
    }
    assert_eq!(ask_at(other, "queue:list"), "403: Forbidden");
    assert_eq!(d.ask_str("queue:list"), "403: Forbidden");
    assert!(
        d.ask_str("queue:stats").contains("jobs_"),
        "counts stay open"
    );
    let number = id.trim_start_matches("id:");
    assert!(
        ask_at(ops, "queue:list").starts_with(&format!("{number} upper queue")),
        "an admin listener lists it"
    );
    assert!(ask_at(ops, &format!("queue:info:{id}")).contains("module: upper"));
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "SECRET");
    assert_eq!(
        ask_at(other, &format!("queue:info:{id}")),
        "404: Unknown job",
        "nor its receipt"
    );
    assert!(d
        .ask_str(&format!("queue:info:{id}"))
        .contains("status: fetched"));
}

#[test]
fn ownership_survives_a_restart() {
    let (mut d, _, _) = three_listeners("");
    let id = d.add("upper:kept");
    wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    d.kill9();
    d.start_again();
    d.wait_log(" (other;");
    let other = crate::util::listener_addr(&d.log(), "other").unwrap();
    assert_eq!(
        ask_at(other, &format!("queue:get:{id}")),
        "404: Unknown job"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "KEPT");
}

#[test]
fn ids_are_unguessable_exact_in_javascript_and_never_reused() {
    let (d, _, _) = three_listeners("");
    let ids: Vec<u64> = (0..40)
        .map(|_| d.add("upper:x").trim_start_matches("id:").parse().unwrap())
        .collect();
    assert!(ids.iter().all(|&id| id > 0 && id < 1 << 53), "{ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    let neighbours = ids
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) < 1000)
        .count();
    assert_eq!(neighbours, 0, "ids follow each other: {ids:?}");
    for id in &ids {
        for guess in [id - 1, id + 1] {
            if !ids.contains(&guess) {
                assert_eq!(
                    d.ask_str(&format!("queue:check:id:{guess}")),
                    "404: Unknown job"
                );
            }
        }
    }
    let key = d.dir.path().join("state/id.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_operator_socket_is_private_and_may_act_on_every_job() {
    let (d, _, _) = three_listeners("");
    let socket = d.operator_socket();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the daemon's user");
    let id = d.add("upper:slow");
    let list = d.ask_operator("queue:list");
    assert!(
        list.starts_with(&format!("{} upper queue", id.trim_start_matches("id:"))),
        "{list}"
    );
    assert_eq!(
        d.ask_operator(&format!("queue:get:{id}")),
        "SLOW",
        "another listener's job, fetched by an operator"
    );
    assert_eq!(d.ask_operator("helo"), "oleh");
}

#[test]
fn one_client_cannot_evict_anothers_results() {
    let (d, _, ops) = three_listeners(
        r#", "result_retention_bytes": 100, "result_retention_bytes_per_client": 100"#,
    );
    d.add_module("sixty", "#!/bin/sh\nprintf '%060d' 0\n");
    d.add_module("forty", "#!/bin/sh\nprintf '%040d' 0\n");
    let mine = ask_from("127.0.0.1", ops, "queue:add:sixty:");
    wait_for("done", || {
        ask_at(ops, &format!("queue:check:{mine}")) == "2"
    });
    let theirs = ask_from("127.0.0.2", ops, "queue:add:sixty:");
    assert!(theirs.starts_with("id:"), "{theirs}");
    d.wait_log(&format!(
        "queue result {} dropped",
        theirs.trim_start_matches("id:")
    ));
    assert_eq!(
        ask_at(ops, &format!("queue:check:{mine}")),
        "2",
        "the first client's result is still there"
    );
    let more = ask_from("127.0.0.1", ops, "queue:add:forty:");
    wait_for("done", || {
        ask_at(ops, &format!("queue:check:{more}")) == "2"
    });
    assert_eq!(
        ask_from("127.0.0.3", ops, "queue:add:sixty:"),
        "503: Busy",
        "the total is full: refused, not evicting"
    );
    assert_eq!(ask_at(ops, &format!("queue:get:{mine}")).len(), 60);
}

#[test]
fn two_unnamed_listeners_on_the_same_address_own_their_jobs_apart() {
    // `-l 127.0.0.1:0` twice: two ports, the same written address.
    let d = crate::util::Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .start();
    d.wait_log("started: listening on");
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("started: listening on"))
        .unwrap();
    let addrs: Vec<SocketAddr> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert_eq!(addrs.len(), 2, "{line}");
    let other = *addrs.iter().find(|&&a| a != d.addr).unwrap();
    let id = d.add("test:x");
    wait_for("the job to finish", || {
        d.ask_str(&format!("queue:check:{id}")) == "2"
    });
    assert_eq!(
        ask_at(other, &format!("queue:get:{id}")),
        "404: Unknown job"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "Test");
}
