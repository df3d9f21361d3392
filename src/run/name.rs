//! The module-name rule: what a module may be called, so that a name from
//! a request can never leave the modules folder. A leaf: it imports nothing.

/// Longest module name kept after cleaning; longer names are unknown modules.
pub const MAX_MODULE_NAME: usize = 128;

/// Keeps only `a-z A-Z 0-9 - _`, as the seed service did, so a name can never
/// leave the modules folder.
pub fn clean_module_name(raw: &[u8]) -> String {
    raw.iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
        .take(MAX_MODULE_NAME + 1)
        .map(|&b| b as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_module_name(b"../../x"), "x");
        assert_eq!(clean_module_name(b"a-b_C9 \n\0/"), "a-b_C9");
        assert_eq!(clean_module_name("pø".as_bytes()), "p");
        assert_eq!(clean_module_name(&[b'a'; 500]).len(), MAX_MODULE_NAME + 1);
    }
}
