//! What a start reads before it rewrites the journal: the journal replayed
//! into the live view, its damage reported, and the id floor, which the
//! counter never goes below. Damage that left records readable is
//! reported and skipped (the rewrite keeps what was read). A file nothing
//! could be read from (its header is unreadable, or not one record
//! verified) is never overwritten: it is renamed to
//! `journal.damaged-<UTC time>` in the state folder (mode 0600, byte for
//! byte what was found) for recovery by hand, and the queue starts empty.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::journal::floor::IdFloor;
use crate::journal::header::HeaderState;
use crate::journal::live::Live;
use crate::journal::record::{Format, Record};
use crate::journal::replay::{replay, Damage};

/// Replays the journal at `path` in the state folder `dir`, reports its
/// damage (keeping aside a file nothing could be read from), and raises
/// the id counter to the floor: the live view to start from.
pub fn read(dir: &Path, path: &Path) -> Result<(Live, IdFloor), Error> {
    let mut live = Live::loading();
    let damage = replay(path, |record| {
        live.apply(&record);
    })
    .map_err(|e| Error::Io(format!("cannot read {}", path.display()), e))?;
    report(path, &damage)?;
    let (floor, counter) = IdFloor::start(dir, live.next_counter());
    live.apply(&Record::NextId(counter));
    Ok((live, floor))
}

/// Logs what replaying `path` found and keeps aside a file nothing could
/// be read from. An error only when such a file cannot be moved aside:
/// the start must not then rewrite it.
fn report(path: &Path, damage: &Damage) -> Result<(), Error> {
    if damage.lost_everything() {
        let aside = keep_aside(path)
            .map_err(|e| Error::Io(format!("cannot keep {} aside", path.display()), e))?;
        log::error!(
            "journal: nothing could be read from {} ({} bytes, header {}): kept as {} for recovery by hand; the queue starts empty",
            path.display(),
            damage.skipped_bytes,
            header_text(damage.header),
            aside.display()
        );
        return Ok(());
    }
    if damage.header == HeaderState::Rebuilt {
        log::warn!("journal: its header was damaged; the salt was found again from the records");
    }
    if damage.bad_spots > 0 {
        log::warn!(
            "journal: {} damaged places, {} bytes skipped; {} records around them were kept",
            damage.bad_spots,
            damage.skipped_bytes,
            damage.records
        );
    }
    if damage.format == Some(Format::V1) {
        log::info!("journal: first format (no salt) read; rewriting it with a salt");
    }
    Ok(())
}

fn header_text(state: HeaderState) -> &'static str {
    match state {
        HeaderState::Unreadable => "unreadable",
        HeaderState::Rebuilt => "rebuilt, but no record verified",
        HeaderState::Intact => "intact, but no record verified",
        HeaderState::Missing => "missing",
    }
}

/// Renames `path` to `path.damaged-<time>` (a new name if that exists),
/// private to the daemon's user, and syncs the folder.
fn keep_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = utc_stamp(SystemTime::now());
    let name = |n: u32| {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        PathBuf::from(format!("{}.damaged-{stamp}{suffix}", path.display()))
    };
    let aside = (0..).map(name).find(|p| !p.exists()).expect("a free name");
    fs::rename(path, &aside)?;
    fs::set_permissions(&aside, fs::Permissions::from_mode(0o600))?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(aside)
}

/// `YYYYMMDDTHHMMSSZ` for `t`, in UTC.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_dates() {
        let at = |s| utc_stamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_796_615_770), "20261207T035610Z");
    }
}
