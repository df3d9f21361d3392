//! `bgjob-assets DIR`: the man pages (`DIR/man/bgjobd.8`, `DIR/man/bgjob.1`)
//! and the bash, zsh and fish completions (`DIR/completions/`) of bgjobd and
//! bgjob, generated from their clap definitions so they never drift from
//! the programs. The Debian package ships them; built with `--features assets`.

/// The client's command line, shared with `bgjob`.
#[path = "../bgjob/cli.rs"]
mod client_cli;
/// bgjobd(8)'s sections from the documents, and Markdown to roff.
mod man;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: bgjob-assets DIR");
        return ExitCode::from(2);
    };
    match write_all(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgjob-assets: {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

/// A program's man page: clap's sections; for the daemon, without the
/// help's short "EXTRA" note, and with the settings, checks, signals, exit
/// status and files instead. Code spans are bold, never backticks.
fn man_page(command: &clap::Command, section: &str) -> std::io::Result<String> {
    let page = clap_mangen::Man::new(command.clone()).section(section);
    let mut out = Vec::new();
    if section == "8" {
        page.render_title(&mut out)?;
        page.render_name_section(&mut out)?;
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
        out.extend(man::daemon_sections().into_bytes());
        page.render_version_section(&mut out)?;
    } else {
        page.render(&mut out)?;
    }
    Ok(man::bold_code(&String::from_utf8_lossy(&out)))
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    let (man, completions) = (dir.join("man"), dir.join("completions"));
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;
    let programs = [
        (bgjob::config::cli::Cli::command(), "8"),
        (client_cli::Cli::command(), "1"),
    ];
    for (command, section) in programs {
        let name = command.get_name().to_string();
        let page = man_page(&command, section)?;
        fs::write(man.join(format!("{name}.{section}")), page)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut command = command.clone();
            clap_complete::generate_to(shell, &mut command, &name, &completions)?;
        }
    }
    Ok(())
}
