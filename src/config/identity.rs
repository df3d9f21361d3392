//! Which user modules run as. A daemon started as root runs them as
//! `module_user` (default `nobody`) and refuses to run them as root unless
//! `allow_root_modules` says so.
//!
//! Lookups go through `uzers`, which calls the reentrant `getpwnam_r` family
//! (the entry lands in a buffer of the caller's, not libc's static storage),
//! so they need no unsafe code here and stay sound on every SIGHUP reload,
//! when the spawn and journal threads are already running.

use crate::error::Error;

/// The (uid, gid) modules switch to, or `None` to run them as the daemon
/// itself (it is not root, so it could not switch anyway).
pub fn module_identity(
    user: Option<&str>,
    group: Option<&str>,
    allow_root: bool,
) -> Result<Option<(u32, u32)>, Error> {
    let root = uzers::get_effective_uid() == 0;
    if !root && user.is_none() {
        return Ok(None);
    }
    let name = user.unwrap_or("nobody");
    let (uid, primary_gid) = lookup_user(name)?;
    let gid = match group {
        Some(group) => lookup_group(group)?,
        None => primary_gid,
    };
    if uid == 0 && !allow_root {
        return Err(Error::Config(format!(
            "modules would run as root (module_user {name:?}): choose another module_user, or set allow_root_modules"
        )));
    }
    if !root {
        log::warn!("module_user {name:?} ignored: bgjobd is not running as root");
        return Ok(None);
    }
    Ok(Some((uid, gid)))
}

/// A user by name or number: (uid, primary gid). A number without a passwd
/// entry is taken as is, with the same number as its group, so a container
/// without the user in /etc/passwd can still name one.
fn lookup_user(name: &str) -> Result<(u32, u32), Error> {
    if let Ok(uid) = name.parse::<u32>() {
        return Ok(match uzers::get_user_by_uid(uid) {
            Some(user) => (user.uid(), user.primary_group_id()),
            None => (uid, uid),
        });
    }
    match uzers::get_user_by_name(name) {
        Some(user) => Ok((user.uid(), user.primary_group_id())),
        None => Err(Error::Config(format!("module_user {name:?}: no such user"))),
    }
}

/// A group by name or number; a number is taken as is.
fn lookup_group(name: &str) -> Result<u32, Error> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match uzers::get_group_by_name(name) {
        Some(group) => Ok(group.gid()),
        None => Err(Error::Config(format!(
            "module_group {name:?}: no such group"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running_as_root() -> bool {
        uzers::get_effective_uid() == 0
    }

    #[test]
    fn names_are_looked_up() {
        assert_eq!(lookup_user("root").unwrap(), (0, 0));
        assert_eq!(lookup_group("root").unwrap(), 0);
        let nobody = lookup_user("nobody").unwrap();
        assert_ne!(nobody.0, 0, "nobody is not root");
    }

    #[test]
    fn numeric_ids_are_taken_with_or_without_an_entry() {
        // uid 0 has a passwd entry: its primary group comes from there.
        assert_eq!(lookup_user("0").unwrap(), (0, 0));
        let nobody = lookup_user("nobody").unwrap();
        assert_eq!(lookup_user(&nobody.0.to_string()).unwrap(), nobody);
        // No passwd entry: the number stands for itself and its group.
        assert_eq!(lookup_user("3999999999").unwrap(), (3999999999, 3999999999));
        assert_eq!(lookup_group("4242").unwrap(), 4242);
    }

    #[test]
    fn an_unknown_user_or_group_is_named_in_the_error() {
        let err = module_identity(Some("bgjob-no-such-user"), None, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid configuration: module_user "bgjob-no-such-user": no such user"#
        );
        let err = module_identity(Some("root"), Some("bgjob-no-such-group"), true).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"module_group "bgjob-no-such-group": no such group"#),
            "{err}"
        );
    }

    #[test]
    fn root_is_refused_unless_allowed() {
        let err = module_identity(Some("root"), None, false).unwrap_err();
        assert!(
            err.to_string().contains("modules would run as root"),
            "{err}"
        );
        let err = module_identity(Some("0"), None, false).unwrap_err();
        assert!(
            err.to_string().contains("modules would run as root"),
            "{err}"
        );
        let allowed = module_identity(Some("root"), None, true).unwrap();
        assert_eq!(allowed, running_as_root().then_some((0, 0)));
    }

    #[test]
    fn a_root_daemon_defaults_to_nobody_and_others_keep_their_own_user() {
        let identity = module_identity(None, None, false).unwrap();
        if running_as_root() {
            assert_eq!(identity, Some(lookup_user("nobody").unwrap()));
        } else {
            assert_eq!(identity, None);
        }
        let numeric = module_identity(Some("4242"), Some("4343"), false).unwrap();
        assert_eq!(numeric, running_as_root().then_some((4242, 4343)));
    }
}
