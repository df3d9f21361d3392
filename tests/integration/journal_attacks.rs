//! What a hostile client can do to the journal through its data: forged
//! frames inside a torn add are never read, damage is skipped in linear
//! time, a second daemon cannot share the folder.

use std::time::{Duration, Instant};

use crate::util::{wait_for, Setup};

/// A "finished" record for `id` in the journal's first format (no salt):
/// what a client could forge before frames were salted.
fn forged_v1_finished(id: u64, answer: &[u8]) -> Vec<u8> {
    let mut body = vec![4u8];
    body.extend_from_slice(&id.to_le_bytes());
    let bytes = |b: &mut Vec<u8>, v: &[u8]| {
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(v);
    };
    bytes(&mut body, b"upper");
    bytes(&mut body, answer);
    body.extend_from_slice(&0u64.to_le_bytes()); // at_ms
    body.extend_from_slice(&1u32.to_le_bytes()); // attempts
    body.push(1); // outcome: exited
    body.extend_from_slice(&0u64.to_le_bytes());
    bytes(&mut body, b"");
    for _ in 0..6 {
        body.extend_from_slice(&0u64.to_le_bytes()); // wall, cpu, rss, bytes
    }
    body.push(0);
    bytes(&mut body, b"");
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// The same record framed as a current journal would, with a salt the
/// client made up (it cannot know the file's).
fn forged_salted_finished(id: u64, answer: &[u8]) -> Vec<u8> {
    use bgjob::journal::frame::Salt;
    use bgjob::journal::record::{Finished, Record};
    let record = Record::Finished(Finished {
        id,
        owner: String::new(),
        peer: String::new(),
        module: "upper".into(),
        answer: answer.into(),
        receipt: Default::default(),
        at_ms: 0,
        tries: Vec::new(),
        again: None,
        key: None,
    });
    let mut frame = Vec::new();
    Salt([0; 16]).encode(&record, &mut frame);
    frame
}

#[test]
fn a_forged_record_in_a_torn_add_leaves_the_victims_result_intact() {
    let mut d = Setup::new()
        .module("upper", "#!/bin/sh\nexec tr a-z A-Z\n")
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    let victim = d.add("upper:victim");
    wait_for("done", || {
        d.ask_str(&format!("queue:check:{victim}")) == "2"
    });
    let id: u64 = victim.trim_start_matches("id:").parse().unwrap();
    let mut payload = forged_v1_finished(id, b"FORGED");
    payload.extend(forged_salted_finished(id, b"FORGED"));
    payload.extend(std::iter::repeat_n(b'P', 4096));
    let mut request = b"queue:add:test:".to_vec();
    request.extend_from_slice(&payload);
    assert!(String::from_utf8_lossy(&d.ask(&request)).starts_with("id:"));
    d.kill9();
    // Tear the file inside the attacker's padding, as a crash or a full
    // disk would in the middle of writing that add.
    let journal = d.dir.path().join("state/journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let padding = bytes.windows(64).position(|w| w == [b'P'; 64]).unwrap();
    bytes.truncate(padding + 100);
    std::fs::write(&journal, bytes).unwrap();
    d.start_again();
    d.wait_log("damaged places");
    assert_eq!(d.ask_str(&format!("queue:get:{victim}")), "VICTIM");
}

#[test]
fn a_large_damaged_record_is_skipped_in_linear_time() {
    let mut d = Setup::new()
        .module("hold", "#!/bin/sh\nsleep 30\n")
        .settings(r#""max_request_bytes": 8388608"#)
        .start();
    let keep = d.add("hold:keep");
    // 4 MiB whose every fourth byte starts a claimed 4 MiB frame.
    let data: Vec<u8> = (0..4 << 20)
        .map(|i| [0xf0, 0xff, 0x3f, 0x00][i % 4])
        .collect();
    let mut request = b"queue:add:hold:".to_vec();
    request.extend_from_slice(&data);
    assert!(String::from_utf8_lossy(&d.ask(&request)).starts_with("id:"));
    d.kill9();
    let journal = d.dir.path().join("state/journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = bytes.len() - (2 << 20);
    bytes[at] ^= 0x55;
    std::fs::write(&journal, bytes).unwrap();
    let start = Instant::now();
    d.start_again();
    let took = start.elapsed();
    d.wait_log("damaged places");
    assert!(took < Duration::from_secs(1), "start-up took {took:?}");
    assert_eq!(d.ask_str(&format!("queue:check:{keep}")), "1");
}

#[test]
fn a_second_daemon_on_the_same_state_folder_is_refused() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    // On a port of its own, and on the first one's (as the same command in
    // the same folder would): the state folder's lock is named either way.
    for listen in ["127.0.0.1:0".to_string(), d.addr.to_string()] {
        let second = std::process::Command::new(crate::util::BIN)
            .args(["--listen", &listen, "--modules"])
            .arg(&d.modules)
            .current_dir(d.dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("is in use by another bgjobd (pid {})", d.pid())),
            "{listen}: {err}"
        );
        assert!(!err.contains("in use (os error"), "{err}");
    }
    assert_eq!(d.ask_str("test:"), "Test", "the first one runs on");
}

/// The daemon's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_restart_holds_about_the_live_data_not_the_file_twice_over() {
    let mut d = Setup::new()
        .module("hold", "#!/bin/sh\nsleep 30\n")
        .settings(r#""max_jobs": 1, "max_request_bytes": 8388608"#)
        .start();
    let mut request = b"queue:add:hold:".to_vec();
    request.extend(std::iter::repeat_n(b'd', 4 << 20));
    for _ in 0..16 {
        assert!(String::from_utf8_lossy(&d.ask(&request)).starts_with("id:"));
    }
    d.kill9();
    d.start_again();
    d.wait_log("journal: recovered 15 waiting jobs, 1 interrupted");
    let live_kib = 16 * 4 * 1024;
    let peak = peak_rss_kib(d.pid());
    // The live data, the running job's copy of its input, and the daemon.
    assert!(
        peak < live_kib * 3 / 2,
        "peak RSS {peak} KiB for {live_kib} KiB of live jobs"
    );
}
