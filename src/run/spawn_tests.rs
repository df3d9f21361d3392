//! Unit tests of the spawn thread: pipes, process group, environment, failures.

use super::*;
use std::io::{Read, Write};

fn spawner() -> (mio::Poll, Spawner) {
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
    (poll, Spawner::start_thread(waker, &[], None).unwrap())
}

fn result(poll: &mut mio::Poll, spawner: &mut Spawner) -> SpawnResult {
    let mut events = mio::Events::with_capacity(4);
    loop {
        if let Some(r) = spawner.take_results().pop() {
            return r;
        }
        spawner.want_results();
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
    }
}

#[test]
fn a_process_gets_its_pipes_group_and_environment() {
    let (mut poll, mut spawner) = spawner();
    let script =
        "read line; echo \"$line|$BGJOB_MODULE|$(cut -d' ' -f5 /proc/$$/stat)|$$\"; echo err >&2; echo 1/2 >&$BGJOB_PROGRESS_FD; [ -e /proc/$$/fd/4 ] || echo no-4 >&2";
    let args = [OsStr::new("-c"), OsStr::new(script)];
    let (serial, pipes) = spawner
        .start(
            Path::new("/bin/sh"),
            &args,
            &["BGJOB_MODULE=m".to_string()],
            &ModuleLimits::default(),
            (None, true),
        )
        .unwrap();
    let done = result(&mut poll, &mut spawner);
    assert_eq!(done.serial, serial);
    let pid = done.pid.unwrap();
    pipes.stdin.set_nonblocking(false).unwrap();
    let stdout = pipes.stdout.unwrap();
    stdout.set_nonblocking(false).unwrap();
    pipes.stderr.set_nonblocking(false).unwrap();
    (&pipes.stdin).write_all(b"hello\n").unwrap();
    drop(pipes.stdin);
    let mut out = String::new();
    (&stdout).read_to_string(&mut out).unwrap();
    let mut err = String::new();
    (&pipes.stderr).read_to_string(&mut err).unwrap();
    let progress = pipes.progress.unwrap();
    progress.set_nonblocking(false).unwrap();
    let mut said = String::new();
    (&progress).read_to_string(&mut said).unwrap();
    assert_eq!(out, format!("hello|m|{0}|{0}\n", pid), "own process group");
    assert_eq!(said, "1/2\n", "its progress pipe is on BGJOB_PROGRESS_FD");
    assert_eq!(
        err, "err\nno-4\n",
        "the progress pipe, and nothing after it"
    );
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    assert_eq!(status, 0);
}

#[test]
fn a_missing_program_is_an_error() {
    let (mut poll, mut spawner) = spawner();
    let (_, pipes) = spawner
        .start(
            Path::new("/nonexistent/x"),
            &[],
            &[],
            &ModuleLimits::default(),
            (None, false),
        )
        .unwrap();
    let done = result(&mut poll, &mut spawner);
    assert_eq!(done.error.map(|e| e.kind()), Some(io::ErrorKind::NotFound));
    // The failed child is left for the caller to reap, as the loop does.
    let pid = done.pid.expect("a child was created");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(
        unsafe { libc::waitpid(pid as i32, &mut status, 0) },
        pid as i32
    );
    let mut rest = Vec::new();
    let stdout = pipes.stdout.unwrap();
    stdout.set_nonblocking(false).unwrap();
    assert_eq!(
        (&stdout).read_to_end(&mut rest).unwrap(),
        0,
        "the child's ends are closed"
    );
}
