//! Where settings come from: the config file with the command line over it,
//! read at start and again on SIGHUP.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;

/// Where settings come from, to read them again on SIGHUP.
#[derive(Debug, Clone)]
pub struct SettingsSource {
    pub config_path: PathBuf,
    /// `--listen` was given, so a missing config file is not an error.
    pub config_optional: bool,
    /// The config's listeners are served (neither `--listen` nor systemd's
    /// sockets replace them), so a reload applies their changes.
    pub listeners_from_config: bool,
    pub timeout: Option<f64>,
    pub max_jobs: Option<u64>,
    pub state: Option<String>,
    /// `--web ADDR:PORT`: the dashboard's address, over the config's.
    pub web: Option<std::net::SocketAddr>,
}

impl SettingsSource {
    /// Reads the config file and applies the command line over it.
    pub fn load(&self) -> Result<Config, Error> {
        let mut config = if self.config_optional && !self.config_path.exists() {
            Config::default()
        } else {
            Config::load(&self.config_path)?
        };
        if let Some(secs) = self.timeout {
            if !(secs.is_finite() && secs > 0.0) {
                return Err(Error::Config(format!(
                    "--timeout {secs} is not a positive number of seconds"
                )));
            }
            config.settings.job_timeout = Duration::from_secs_f64(secs.min(86_400.0));
            if secs > 86_400.0 {
                config
                    .clamped
                    .push(format!("--timeout: {secs} is out of range, 86400 is used"));
            }
        }
        if let Some(n) = self.max_jobs {
            config.settings.max_jobs = n.clamp(1, 4096) as usize;
            if config.settings.max_jobs as u64 != n {
                let used = config.settings.max_jobs;
                config
                    .clamped
                    .push(format!("--max-jobs: {n} is out of range, {used} is used"));
            }
        }
        if let Some(state) = &self.state {
            config.settings.state_dir = crate::config::file::parse_state_dir(state);
        }
        if let Some(addr) = self.web {
            let web = config
                .settings
                .web
                .get_or_insert_with(|| crate::config::web::WebSettings::on(addr));
            web.listen = addr;
        }
        let s = &config.settings;
        config.settings.module_limits.identity = crate::config::identity::module_identity(
            s.module_user.as_deref(),
            s.module_group.as_deref(),
            s.allow_root_modules,
        )?;
        Ok(config)
    }
}
