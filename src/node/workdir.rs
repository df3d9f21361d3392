//! Where `.js` modules run. The seed's service ran them in its own folder,
//! the one holding its `service.config` and its `modules/` folder, so its
//! modules use paths such as `./modules/tmp/`. bgjobd runs them in the
//! `js_working_dir` setting, by default the folder that holds the modules
//! folder: the same place, whatever bgjobd's own working folder is.
//! (Executable modules run in the modules folder itself.)

use std::path::{Path, PathBuf};

/// The working folder of `.js` modules: `setting` (relative to bgjobd's
/// working folder), or the folder holding `modules_dir`.
pub fn js_working_dir(setting: Option<&Path>, modules_dir: &Path) -> PathBuf {
    if let Some(dir) = setting {
        return std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    }
    let modules = std::path::absolute(modules_dir).unwrap_or_else(|_| modules_dir.to_path_buf());
    match modules.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => modules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_folder_holding_the_modules() {
        assert_eq!(
            js_working_dir(None, Path::new("/srv/site/modules")),
            Path::new("/srv/site")
        );
        let here = std::env::current_dir().unwrap();
        assert_eq!(js_working_dir(None, Path::new("modules")), here);
        assert_eq!(js_working_dir(None, Path::new("/")), Path::new("/"));
    }

    #[test]
    fn a_setting_wins_and_is_made_absolute() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            js_working_dir(Some(Path::new("work")), Path::new("/srv/site/modules")),
            here.join("work")
        );
        assert_eq!(
            js_working_dir(Some(Path::new("/tmp")), Path::new("/srv/site/modules")),
            Path::new("/tmp")
        );
    }
}
