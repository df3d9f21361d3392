//! What runs a module: the file itself, or Node.js with the built-in host
//! for `.js` modules; and the `BGJOB_*` variables a module gets.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use crate::run::modules::{Kind, Module};

/// The Node.js host that runs `.js` modules written against the seed's API
/// (`bin/bgjob-node-host.js`), built into the binary so that an installed
/// bgjobd never looks for it on disk.
pub const NODE_HOST: &str = include_str!("../../bin/bgjob-node-host.js");

/// How a module's process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One process per job.
    Cold,
    /// A resident Node.js worker serving jobs one after another.
    Worker,
}

/// The program and arguments (after the program name) that run `module`.
/// `node` is the Node.js binary, resolved; `None` if it is not installed.
/// The host enters `js_dir` before it loads a `.js` module.
pub fn command<'a>(
    module: &'a Module,
    node: Option<&'a Path>,
    js_dir: &'a Path,
    mode: Mode,
) -> io::Result<(&'a Path, Vec<&'a OsStr>)> {
    match module.kind {
        Kind::Executable => Ok((&module.path, Vec::new())),
        Kind::Node => {
            let node = node
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "node is not installed"))?;
            let mut args = vec![
                OsStr::new("-e"),
                OsStr::new(NODE_HOST),
                module.path.as_os_str(),
                js_dir.as_os_str(),
            ];
            if mode == Mode::Worker {
                args.push(OsStr::new("--worker"));
            }
            Ok((node, args))
        }
    }
}

/// The environment a job adds for its module.
pub struct JobEnv<'a> {
    pub module: &'a str,
    pub transport: &'a str,
    pub remote: Option<String>,
    pub job_id: Option<u64>,
    pub attempt: u32,
}

impl JobEnv<'_> {
    /// The `BGJOB_*` variables as `NAME=value`.
    pub fn vars(&self) -> Vec<String> {
        let mut vars = vec![
            format!("BGJOB_MODULE={}", self.module),
            format!("BGJOB_TRANSPORT={}", self.transport),
            format!("BGJOB_ATTEMPT={}", self.attempt),
        ];
        if let Some(remote) = &self.remote {
            vars.push(format!("BGJOB_REMOTE={remote}"));
        }
        if let Some(id) = self.job_id {
            vars.push(format!("BGJOB_JOB_ID={id}"));
        }
        vars
    }
}
