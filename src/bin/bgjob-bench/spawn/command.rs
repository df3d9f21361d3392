//! The `Command` way: std's `std::process::Command` on the loop thread,
//! given what `Spawner` gives a module (the same environment, a process
//! group of its own, the same user and CPU limit).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use bgjob::run::limits::{ModuleLimits, MODULE_ENV};
use bgjob::run::spawn::Pipes;

/// The variables a job adds (`JobEnv::vars` for a TCP request).
pub const JOB_VARS: [&str; 3] = [
    "BGJOB_MODULE=test",
    "BGJOB_TRANSPORT=tcp",
    "BGJOB_ATTEMPT=1",
];

/// Whether the daemon passes the variable `name` to modules (the rule of
/// `Spawner::start_thread` with no `module_env` names).
fn passes(name: &[u8]) -> bool {
    MODULE_ENV
        .iter()
        .any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix.as_bytes()),
            None => name == allowed.as_bytes(),
        })
}

/// The environment `Spawner` gives a module, for `Command` to give the same.
pub fn module_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<_> = vars.filter(|(k, _)| passes(k.as_bytes())).collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    for var in JOB_VARS {
        let (k, v) = var.split_once('=').expect("NAME=value");
        env.push((k.into(), v.into()));
    }
    env
}

/// Starts `script` with piped stdio (our ends non-blocking); its pid.
/// `limits.identity` becomes `.uid().gid()`, `limits.cpu_secs` a `pre_exec`
/// `setrlimit`: either one takes std off `posix_spawn` to fork and exec.
pub fn start(
    script: &Path,
    env: &[(OsString, OsString)],
    limits: &ModuleLimits,
) -> io::Result<(u32, Pipes)> {
    let mut command = Command::new(script);
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = limits.identity {
        command.uid(uid).gid(gid);
    }
    if let Some(secs) = limits.cpu_secs {
        let limit = libc::rlimit {
            rlim_cur: secs as libc::rlim_t,
            rlim_max: secs as libc::rlim_t,
        };
        // SAFETY: setrlimit is async-signal-safe and the closure touches
        // only its own copy of `limit`.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_CPU, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn()?;
    let no_pipe = || io::Error::other("no pipe");
    let pipes = Pipes {
        stdin: child.stdin.take().ok_or_else(no_pipe)?.into(),
        stdout: Some(child.stdout.take().ok_or_else(no_pipe)?.into()),
        stderr: child.stderr.take().ok_or_else(no_pipe)?.into(),
        progress: None,
    };
    pipes.stdin.set_nonblocking(true)?;
    if let Some(stdout) = &pipes.stdout {
        stdout.set_nonblocking(true)?;
    }
    pipes.stderr.set_nonblocking(true)?;
    Ok((child.id(), pipes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_gets_the_variables_the_spawner_passes() {
        let vars = [
            ("PATH", "/bin"),
            ("LC_ALL", "C"),
            ("LD_PRELOAD", "x"),
            ("PATHX", "y"),
        ];
        let env = module_env(vars.iter().map(|(k, v)| (k.into(), v.into())));
        let names: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "LC_ALL",
                "BGJOB_MODULE",
                "BGJOB_TRANSPORT",
                "BGJOB_ATTEMPT"
            ]
        );
        let env = module_env(std::iter::empty());
        assert_eq!(
            env[0],
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())
        );
    }
}
