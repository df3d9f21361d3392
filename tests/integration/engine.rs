//! The queue engine the daemons under test keep their queue in, picked by
//! `BGJOB_TEST_ENGINE` so that the same queue tests run against every
//! engine: `local` (the default) is the journal in the daemon's state
//! folder. The harness starts every daemon through [`Engine::from_env`].

/// An engine the queue tests can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The daemon's own journal (or memory, with `--state none`).
    Local,
}

/// The variable that names the engine.
pub const VARIABLE: &str = "BGJOB_TEST_ENGINE";

impl Engine {
    /// The engine `name` stands for (none: the default), or why not.
    pub fn named(name: Option<&str>) -> Result<Engine, String> {
        match name {
            None | Some("local") => Ok(Engine::Local),
            Some(other) => Err(format!(
                "{VARIABLE}={other:?} names no queue engine (known: local)"
            )),
        }
    }

    /// The engine the environment names; an unknown name fails the test
    /// that starts a daemon, rather than running it on another engine.
    pub fn from_env() -> Engine {
        let name = std::env::var(VARIABLE).ok();
        Engine::named(name.as_deref()).unwrap_or_else(|why| panic!("{why}"))
    }

    /// What a daemon is started with for this engine, after its test's own
    /// arguments: the local engine needs nothing beyond the state folder.
    pub fn args(self) -> Vec<String> {
        match self {
            Engine::Local => Vec::new(),
        }
    }
}

#[test]
fn the_queue_engine_is_named_by_the_environment_and_local_by_default() {
    assert_eq!(Engine::named(None), Ok(Engine::Local));
    assert_eq!(Engine::named(Some("local")), Ok(Engine::Local));
    let unknown = Engine::named(Some("redis")).unwrap_err();
    assert!(unknown.contains("BGJOB_TEST_ENGINE=\"redis\""), "{unknown}");
    assert!(unknown.contains("known: local"), "{unknown}");
}

#[test]
fn an_unknown_engine_fails_the_test_that_starts_a_daemon() {
    let test = std::env::current_exe().unwrap();
    let run = std::process::Command::new(test)
        .args([
            "--exact",
            "queue::queue_get_waits_for_the_job_and_answers_what_a_direct_call_would",
            "--test-threads=1",
        ])
        .env(VARIABLE, "nonesuch")
        .output()
        .unwrap();
    let out =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "passed on an unknown engine:\n{out}");
    assert!(out.contains("names no queue engine"), "{out}");
}
