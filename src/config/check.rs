//! The one check of what start-up needs, run by `--check-config` and at
//! every start and reload: clamped values, the modules folder, module
//! interpreters, the npm packages and the working folder of `.js` modules,
//! modules others can change, and the state folder. Each finding says what
//! is wrong, how to fix it, and whether it would stop the daemon (an error)
//! or not (a warning).

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

pub use crate::config::finding::{error, finding, notice, Finding, Severity, Subject};
use crate::config::js_check::{js_working_folder, node_packages};
pub use crate::config::module_check::find_program;
use crate::config::module_check::{candidates, module_interpreters, modules_folder};
use crate::config::Config;
use crate::error::Error;

/// One check: every finding it makes.
type Check = fn(&Subject) -> Vec<Finding>;

/// Every check, in the order their findings are reported. A new check is
/// a function of this type added here.
const CHECKS: &[Check] = &[
    clamped_values,
    crate::config::bindable::listeners_bindable,
    modules_folder,
    module_interpreters,
    node_packages,
    crate::config::writable::writable_modules,
    js_working_folder,
    policies_for_no_module,
    state_folder,
    first_read_framing,
    actions_beyond_loopback,
    web_allows_nobody,
];

/// Runs every check.
pub fn run(subject: &Subject) -> Vec<Finding> {
    CHECKS.iter().flat_map(|check| check(subject)).collect()
}

/// A daemon that listens nowhere is a mistake, not a configuration.
pub fn some_listener(listeners: &[crate::config::ListenerSpec]) -> Result<(), Error> {
    match no_listener(listeners) {
        Some(finding) => Err(Error::Config(finding.to_string())),
        None => Ok(()),
    }
}

/// The finding of an empty listener list, if it is empty.
pub fn no_listener(listeners: &[crate::config::ListenerSpec]) -> Option<Finding> {
    listeners.is_empty().then(|| {
        error(
            "\"listen\" is empty: bgjobd would serve nothing",
            "add a listener, or give --listen ADDR:PORT",
        )
    })
}

fn clamped_values(s: &Subject) -> Vec<Finding> {
    let fix = "give a value within the range of the settings table in man bgjobd";
    s.config.clamped.iter().map(|c| finding(c, fix)).collect()
}

/// First-read framing is a choice with a cost: said, not refused.
fn first_read_framing(s: &Subject) -> Vec<Finding> {
    let framing = crate::net::framing::Framing::FirstRead;
    s.config
        .listeners
        .iter()
        .filter(|l| l.framing == framing)
        .map(|l| {
            notice(
                format!(
                    "listener {} ({}) ends a classic client's request at the first read that holds a ':' (\"framing\": \"{framing}\"), as the old service did: a request written in more than one piece is cut after the first (one write larger than a TCP segment ends whole)",
                    l.addr, l.label
                ),
                "clients that write a request in pieces should half-close, or use the default framing",
            )
        })
        .collect()
}

fn state_folder(s: &Subject) -> Vec<Finding> {
    let Some(dir) = &s.config.settings.state_dir else {
        return Vec::new();
    };
    let shown = dir.display();
    let problem = match fs::metadata(dir) {
        // Created at start: in the nearest folder that exists.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir.ancestors().skip(1).find(|a| a.is_dir());
            match parent {
                Some(p)
                    if !writable(if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }) =>
                {
                    format!("state folder {shown} cannot be created in {}", p.display())
                }
                _ => return Vec::new(),
            }
        }
        Err(e) => format!("state folder {shown} cannot be reached: {e}"),
        Ok(meta) if !meta.is_dir() => format!("state folder {shown} is not a folder"),
        Ok(_) if fs::read_dir(dir).is_err() => format!("state folder {shown} cannot be read"),
        Ok(_) if !writable(dir) => format!("state folder {shown} is not writable"),
        Ok(_) => return Vec::new(),
    };
    // The journal cannot be opened there: the daemon would not start.
    vec![error(
        problem,
        "give bgjobd's user a folder of its own (state_dir, --state), or \"none\"",
    )]
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access() only reads it.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// The summary line of a good configuration; `--listen` replaces the
/// config's listeners, as it does at start.
pub fn summary(config: &Config, listen: &[SocketAddr], dir: &Path) -> String {
    let listeners: Vec<String> = if listen.is_empty() {
        config
            .listeners
            .iter()
            .map(|l| format!("{}{}", l.addr, if l.udp { "" } else { "/tcp" }))
            .collect()
    } else {
        listen.iter().map(|a| format!("{a} (--listen)")).collect()
    };
    let modules = candidates(dir).map_or(0, |files| {
        files
            .iter()
            .filter(|c| c.executable || c.name.ends_with(".js"))
            .count()
    });
    format!(
        "configuration ok: listeners {}, {modules} modules in {}",
        listeners.join(" "),
        dir.display()
    )
}

/// The start-up warnings of the policy map: a policy for a module that is
/// not in the folder (a typo, or a module removed) does nothing.
fn policies_for_no_module(s: &Subject) -> Vec<Finding> {
    let policies = &s.config.settings.module_policy;
    if policies.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = candidates(s.modules_dir)
        .map(|files| {
            files
                .into_iter()
                .map(|c| match c.name.strip_suffix(".js") {
                    Some(stem) => stem.to_string(),
                    None => c.name,
                })
                .collect()
        })
        .unwrap_or_default();
    policies
        .keys()
        .filter(|name| !names.contains(name))
        .map(|name| {
            finding(
                format!(
                    "module_policy names {name:?}, which is not a module of {}",
                    s.modules_dir.display()
                ),
                "remove the policy, or add the module",
            )
        })
        .collect()
}

/// A dashboard that can act on jobs from beyond this host is a choice
/// whose cost the operator should know: said, not refused.
pub fn actions_beyond_loopback(s: &Subject) -> Vec<Finding> {
    let Some(web) = &s.config.settings.web else {
        return Vec::new();
    };
    if !(web.actions && web.reaches_beyond_loopback()) {
        return Vec::new();
    }
    let nets: Vec<String> = web.allow.iter().map(|n| n.to_string()).collect();
    vec![notice(
        format!(
            "web: actions are on and allow reaches beyond this host ({}): anyone there who opens the dashboard can cancel, retry, pause and resume jobs",
            nets.join(", ")
        ),
        "keep allow to loopback and reach the dashboard through an SSH tunnel, or set \"actions\": false",
    )]
}

/// An empty allow list turns every client of the dashboard away: more
/// likely a slip than a wish, since leaving `web` out turns it off.
pub fn web_allows_nobody(s: &Subject) -> Vec<Finding> {
    match &s.config.settings.web {
        Some(web) if web.allow.is_empty() => vec![finding(
            "web: allow is empty: every client of the dashboard gets 403",
            "leave allow out for loopback only, or name the networks that may use it",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_for_a_missing_module_is_found() {
        let dir = std::env::temp_dir().join(format!("bgjob-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cat"), "#!/bin/sh\nexec cat\n").unwrap();
        std::fs::write(dir.join("warm.js"), "").unwrap();
        let config = Config::parse(
            r#"{"module_policy": {"cat": {"answer": "stream"}, "warm": {}, "gone": {}}}"#,
        )
        .unwrap();
        let found = policies_for_no_module(&Subject {
            config: &config,
            modules_dir: &dir,
        });
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].what.contains("\"gone\""), "{}", found[0]);
    }
}
