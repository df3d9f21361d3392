//! queue:add, queue:check and queue:get.

use std::time::{Duration, Instant};

use crate::util::{wait_for, Setup};

#[test]
fn a_queued_job_is_waiting_then_running_then_done_then_fetched() {
    let d = Setup::new()
        .module("block", "#!/bin/sh\nsleep 0.6\nprintf blocked\n")
        .module("upper", "#!/bin/sh\nexec tr a-z A-Z\n")
        .settings(r#""max_jobs": 1"#)
        .start();
    let first = d.add("block:");
    let second = d.add("upper:hello queue");
    assert_ne!(first, second);
    wait_for("job 1 running", || {
        d.ask_str(&format!("queue:check:{first}")) == "1"
    });
    assert_eq!(
        d.ask_str(&format!("queue:check:{second}")),
        "0",
        "waits behind the running job"
    );
    wait_for("job 2 done", || {
        d.ask_str(&format!("queue:check:{second}")) == "2"
    });
    assert_eq!(d.ask_str(&format!("queue:check:{first}")), "2");
    assert_eq!(d.ask_str(&format!("queue:get:{second}")), "HELLO QUEUE");
    assert_eq!(
        d.ask_str(&format!("queue:get:{second}")),
        "404: Unknown job",
        "a fetched result is gone"
    );
    assert_eq!(
        d.ask_str(&format!("queue:check:{second}")),
        "404: Unknown job"
    );
    assert_eq!(d.ask_str(&format!("queue:get:{first}")), "blocked");
    let third = d.add("upper:x");
    assert!(
        ![&first, &second].contains(&&third),
        "ids are never handed out twice"
    );
}

#[test]
fn queue_get_waits_for_the_job_and_answers_what_a_direct_call_would() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 0.5\nprintf slow-done\n")
        .module("fail", "#!/bin/sh\nexit 2\n")
        .start();
    let id = d.ask_str("queue:add:slow:");
    let start = Instant::now();
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), "slow-done");
    assert!(start.elapsed() >= Duration::from_millis(300));
    let id = d.ask_str("queue:add:fail:");
    assert_eq!(d.ask_str(&format!("queue:get:{id}")), d.ask_str("fail:"));
    assert_eq!(
        d.ask_classic(format!("queue:get:{}", d.ask_str("queue:add:slow:")).as_bytes()),
        b"slow-done"
    );
}

#[test]
fn two_clients_waiting_for_the_same_job_both_get_it() {
    let d = Setup::new()
        .module("slow", "#!/bin/sh\nsleep 0.4\nprintf both\n")
        .start();
    let id = d.ask_str("queue:add:slow:");
    let request = format!("queue:get:{id}");
    let other = {
        let (addr, request) = (d.addr, request.clone());
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            use std::io::Write;
            s.write_all(request.as_bytes()).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            crate::util::read_to_end(&mut s)
        })
    };
    assert_eq!(d.ask_str(&request), "both");
    assert_eq!(other.join().unwrap(), b"both");
}

#[test]
fn unknown_ids_and_unknown_queue_requests_are_answered() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    assert_eq!(d.ask_str("queue:check:id:42"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:get:id:42"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:get:id:abc"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:get:id:"), "404: Unknown job");
    assert_eq!(d.ask_str("queue:get:42"), "500: Unknown queue request");
    assert_eq!(d.ask_str("queue:frobnicate"), "500: Unknown queue request");
    assert_eq!(d.ask_str("queue:"), "500: Unknown queue request");
    assert_eq!(d.ask_str("queue:add:nosuch:x"), "400: Unknown request");
    d.add("test");
}

#[test]
fn waiting_jobs_start_in_fifo_order() {
    let d = Setup::new().settings(r#""max_jobs": 1"#).start();
    let log = d.dir.path().join("order");
    d.add_module(
        "note",
        &format!("#!/bin/sh\nsleep 0.05\ncat >> {}\n", log.display()),
    );
    for i in 0..6 {
        d.add(&format!("note:{i} "));
    }
    wait_for("all six", || {
        std::fs::read_to_string(&log).unwrap_or_default().len() == 12
    });
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "0 1 2 3 4 5 ");
}

#[test]
fn unfetched_results_expire_after_the_retention_time() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .settings(r#""result_retention_secs": 1"#)
        .start();
    let id = d.ask_str("queue:add:test:");
    wait_for("done", || d.ask_str(&format!("queue:check:{id}")) == "2");
    wait_for("expired", || {
        d.ask_str(&format!("queue:check:{id}")) == "404: Unknown job"
    });
    d.wait_log("unfetched queue results expired");
}

#[test]
fn one_result_for_many_waiting_clients_is_held_once() {
    let d = Setup::new()
        .module("big", "#!/bin/sh\nsleep 1\nhead -c 4000000 /dev/zero\n")
        .start();
    let id = d.ask_str("queue:add:big:");
    assert!(id.starts_with("id:"), "{id}");
    // A hundred clients wait for it and never read their answer.
    let waiting: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut s = d.connect();
            std::io::Write::write_all(&mut s, format!("queue:get:{id}").as_bytes()).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            s
        })
        .collect();
    wait_for("the job done and fetched", || {
        d.log().contains("big #") && d.ask_str(&format!("queue:check:{id}")) == "404: Unknown job"
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rss_kib < 150 * 1024,
        "RSS {rss_kib} KiB for 100 copies of 4 MB?"
    );
    drop(waiting);
}
