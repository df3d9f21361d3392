//! Code at rest. The kernel maps a program's code page by page as it runs,
//! and around each page it touches it maps its neighbours as well (fault
//! around, 64 KiB), so start-up (argument and config parsing, binding)
//! leaves nearly all of the binary's and libc's code resident. Once the
//! daemon is ready, and again when a load has subsided, it asks the kernel
//! to map only the code pages it touches (`MADV_RANDOM`) and drops the
//! ones it has (`MADV_DONTNEED`): the idle loop then holds only the few
//! pages it runs. The pages stay in the page cache, shared and clean, so
//! a later request maps them again with a minor fault each.

/// Drops the mappings of every code segment backed by a file.
pub fn shed_code() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, end) in maps.lines().filter_map(code_segment) {
        let (addr, len) = (start as *mut libc::c_void, end - start);
        // SAFETY: the range is one of this process's read-only, executable
        // file mappings: its pages are never written, so dropping them only
        // makes the next access read them again from the file.
        unsafe {
            libc::madvise(addr, len, libc::MADV_RANDOM);
            libc::madvise(addr, len, libc::MADV_DONTNEED);
        }
    }
}

/// The range of a `/proc/self/maps` line that maps a file's code
/// (`r-xp`, a path, not `[vdso]`).
fn code_segment(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    if fields.next()? != "r-xp" {
        return None;
    }
    if !fields.nth(3)?.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_backed_code_is_shed() {
        let code = "5568c13f0000-5568c151a000 r-xp 00053000 fe:00 5401313   /usr/sbin/bgjobd";
        assert_eq!(code_segment(code), Some((0x5568c13f0000, 0x5568c151a000)));
        for other in [
            "5568c139c000-5568c13f0000 r--p 00000000 fe:00 5401313   /usr/sbin/bgjobd",
            "7fb41b775000-7fb41b782000 rw-p 00000000 00:00 0",
            "7fffd0b5e000-7fffd0b60000 r-xp 00000000 00:00 0          [vdso]",
            "7fb41b775000-7fb41b782000 r-xp 00000000 00:00 0",
            "garbage",
        ] {
            assert_eq!(code_segment(other), None, "{other}");
        }
    }
}
