//! Unit tests of the wire protocol.

use super::*;

fn module(name: &str, body_start: usize) -> Head {
    Head::Module {
        name: name.into(),
        body_start,
    }
}

#[test]
fn module_is_routed_at_the_first_colon() {
    assert_eq!(classify(b"tes", false), Head::Incomplete);
    assert_eq!(classify(b"test:", false), module("test", 5));
    assert_eq!(classify(b"test:a:b", true), module("test", 5));
    assert_eq!(classify(b"test", true), module("test", 4));
    assert_eq!(classify(b"test\n", true), module("test", 5));
}

#[test]
fn heads_too_long_to_route_are_told_apart() {
    let long = |prefix: &[u8], fill: u8| {
        let mut v = prefix.to_vec();
        v.resize(HEAD_LIMIT + 1, fill);
        v
    };
    assert!(!head_overlong(&[b'a'; HEAD_LIMIT]), "not yet");
    assert!(head_overlong(&long(b"", b'a')), "a name without end");
    assert!(
        !head_overlong(&long(b"upper:", b'a')),
        "data of a module call"
    );
    assert!(
        !head_overlong(&long(b"queue:add:upper:", b'a')),
        "an add's data"
    );
    assert!(
        head_overlong(&long(b"queue:add:", b'a')),
        "an add's name without end"
    );
    assert!(
        head_overlong(&long(b"queue:check:", b'1')),
        "no queue request is this long"
    );
}

#[test]
fn greetings_ignore_surrounding_whitespace() {
    assert_eq!(classify(b"helo", true), Head::Control(Control::Helo));
    assert_eq!(classify(b" hello\r\n", true), Head::Control(Control::Hello));
    assert_eq!(classify(b"helo", false), Head::Incomplete);
    assert_eq!(classify(b"helo:", false), module("helo", 5));
}

#[test]
fn queue_requests_wait_for_the_whole_request() {
    assert_eq!(classify(b"queue:add:test:x", false), Head::Incomplete);
    assert_eq!(
        classify(b"queue:add:te/st:a:b", true),
        Head::Control(Control::QueueAdd {
            module: "test".into(),
            data_start: 16,
            options: None,
        })
    );
    assert_eq!(
        classify(b"queue:add:test", true),
        Head::Control(Control::QueueAdd {
            module: "test".into(),
            data_start: 14,
            options: None,
        })
    );
    assert_eq!(
        classify(b"queue:check:id:42\n", true),
        Head::Control(Control::QueueCheck(JobRef::Id(42)))
    );
    assert_eq!(
        classify(b"queue:get:id:x", true),
        Head::Control(Control::QueueGet(JobRef::Invalid))
    );
    assert_eq!(
        classify(b"queue:get:id:99999999999999999999999", true),
        Head::Control(Control::QueueGet(JobRef::Invalid))
    );
    for bad in [
        &b"queue:"[..],
        b"queue:nope",
        b"queue:get:42",
        b"queue:check",
    ] {
        assert_eq!(
            classify(bad, true),
            Head::Control(Control::UnknownQueue),
            "{bad:?}"
        );
    }
}

#[test]
fn whole_controls_are_recognised() {
    for whole in [
        &b"helo"[..],
        b"hello\n",
        b"queue:check:id:1",
        b"queue:get:id:12\r\n",
        b"queue:stats",
        b"queue:list",
        b"queue:info:id:3",
        b"queue:cancel:id:3",
    ] {
        assert!(is_whole_control(whole), "{whole:?}");
    }
    for not in [
        &b"hel"[..],
        b"queue:",
        b"queue:check:id:",
        b"queue:check:i",
        b"queue:add:test:x",
        b"test:x",
        b"upper",
    ] {
        assert!(!is_whole_control(not), "{not:?}");
    }
}

#[test]
fn datagrams_split_at_the_first_colon() {
    assert_eq!(split_datagram(b"reg:a:b"), ("reg".to_string(), &b"a:b"[..]));
    assert_eq!(split_datagram(b"reg"), ("reg".to_string(), &b""[..]));
}

#[test]
fn coded_errors_follow_the_seed_pattern() {
    assert!(is_coded_error(b"404: LESS not available"));
    assert!(is_coded_error(b"  500: x"));
    assert!(!is_coded_error(b"200: fine"));
    assert!(!is_coded_error(b"40: x"));
    assert!(!is_coded_error(b"Test"));
}

#[test]
fn answers_for_each_outcome() {
    let r =
        |o: Outcome, out: &[u8]| String::from_utf8(render_answer("m", &o, out.to_vec())).unwrap();
    assert_eq!(r(Outcome::Exited(0), b"Test"), "Test");
    assert_eq!(
        r(Outcome::Exited(3), b"x"),
        "500: Module m failed (exit status 3)"
    );
    assert_eq!(
        r(Outcome::Exited(1), b"404: LESS not available"),
        "404: LESS not available"
    );
    assert_eq!(
        r(Outcome::Signaled(9), b""),
        "500: Module m failed (killed by signal 9)"
    );
    assert_eq!(r(Outcome::TimedOut, b"404: x"), "504: Module m timed out");
    assert_eq!(
        r(Outcome::OutputTooLarge(10), b""),
        "500: Module m failed (output over 10 bytes)"
    );
}

#[test]
fn queue_add_takes_options_between_add_and_the_module() {
    let req = b"queue:add?delay=30&key=a%3Ab:render:{\"q\":\"a?b&c=d\"}";
    let Head::Control(Control::QueueAdd {
        module,
        data_start,
        options,
    }) = classify(req, true)
    else {
        panic!("not an add");
    };
    assert_eq!(module, "render");
    assert_eq!(&req[options.unwrap()], b"delay=30&key=a%3Ab");
    assert_eq!(&req[data_start..], br#"{"q":"a?b&c=d"}"#, "data untouched");
    assert_eq!(
        classify(b"queue:add?:m:x", true),
        Head::Control(Control::QueueAdd {
            module: "m".into(),
            data_start: 13,
            options: Some(10..10),
        })
    );
    assert_eq!(
        classify(b"queue:retry:id:7", true),
        Head::Control(Control::QueueRetry(RetryRef::Id(JobRef::Id(7))))
    );
    assert_eq!(
        classify(b"queue:retry:module:mailer\n", true),
        Head::Control(Control::QueueRetry(RetryRef::Module("mailer".into())))
    );
    assert_eq!(
        classify(b"queue:failed", true),
        Head::Control(Control::QueueFailed)
    );
    assert!(is_whole_control(b"queue:failed"));
}

#[test]
fn pause_and_resume_name_a_module() {
    let pause = |module: &str, paused| {
        Head::Control(Control::QueuePause {
            module: module.into(),
            paused,
        })
    };
    assert_eq!(classify(b"queue:pause:render", true), pause("render", true));
    assert_eq!(
        classify(b"queue:resume:render\n", true),
        pause("render", false)
    );
    assert_eq!(classify(b"queue:pause:../x", true), pause("x", true));
    assert!(is_whole_control(b"queue:pause:render"));
    for bad in [
        &b"queue:pause:"[..],
        b"queue:resume: ",
        b"queue:pause",
        b"queue:pause:/",
    ] {
        assert_eq!(
            classify(bad, true),
            Head::Control(Control::UnknownQueue),
            "{bad:?}"
        );
    }
}
