//! The dashboard's files, embedded at build time: nothing is fetched from
//! anywhere at run time. The page gets the start's token in place of its
//! `{{TOKEN}}` placeholder.

/// The page, with `{{TOKEN}}` where the token goes.
pub const INDEX: &str = include_str!("assets/index.html");
pub const SCRIPT: &str = include_str!("assets/app.js");
pub const STYLE: &str = include_str!("assets/app.css");

/// The placeholder the page carries for the token.
const PLACEHOLDER: &str = "{{TOKEN}}";

/// The page with this start's token in it (a hex string, so it needs no
/// escaping in an attribute).
pub fn page(token: &str) -> String {
    INDEX.replace(PLACEHOLDER, token)
}

/// Bytes of the whole page: HTML, script and style.
pub fn weight() -> usize {
    INDEX.len() + SCRIPT.len() + STYLE.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_the_token_and_stays_small() {
        assert!(INDEX.contains(PLACEHOLDER));
        let page = page("00ff");
        assert!(page.contains("content=\"00ff\""), "{page}");
        assert!(!page.contains(PLACEHOLDER));
        assert!(weight() < 150 * 1024, "{} bytes", weight());
    }
}
