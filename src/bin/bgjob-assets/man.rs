//! The sections of `bgjobd(8)` beyond what clap knows (the settings, the
//! start-up check, signals, exit status, files), taken from the documents
//! so that the man page says what they say, and the Markdown of both
//! turned into roff (code spans in bold, never a literal backtick).

/// The documents the sections come from, as built into this program.
const CONFIGURATION: &str = include_str!("../../../docs/configuration.md");
const OPERATIONS: &str = include_str!("../../../docs/operations.md");

/// What the Debian package installs where, for the FILES section.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/bgjob/service.config",
        "the configuration file the service reads (a conffile)",
    ),
    (
        "/etc/bgjob/modules",
        "the modules folder the service serves; on the first install, links to the examples",
    ),
    (
        "/usr/share/bgjob/modules",
        "the example modules and their npm packages",
    ),
    (
        "/var/lib/bgjob",
        "the service's state folder (`StateDirectory=`; under `DynamicUser=` a link to /var/lib/private/bgjob): `journal`, `id.key`, `lock` and the operator socket `admin.sock`, which `bgjob` finds without `--socket`; `dpkg --purge bgjob` removes it",
    ),
    (
        "/lib/systemd/system/bgjobd.service, bgjobd.socket",
        "the units: the service (sandboxed, `Type=notify`) and its socket activation",
    ),
    (
        "/usr/share/doc/bgjob/docs",
        "the documentation: protocol.md, modules.md, client.md, configuration.md, operations.md",
    ),
];

/// The extra sections, in roff.
pub fn daemon_sections() -> String {
    let mut out = String::new();
    section(&mut out, "SETTINGS");
    paragraph(
        &mut out,
        "The configuration file is the seed's JSON array of listeners, or an object with \"listen\" and any of these settings (values out of range are clamped, with a warning):",
    );
    for row in table(CONFIGURATION, "| setting | default | range | meaning |") {
        let range = match row[2].as_str() {
            "" => String::new(),
            range => format!(", range {range}"),
        };
        item(
            &mut out,
            &format!("{} (default {}{range})", row[0], row[1]),
            &row[3],
        );
    }
    section(&mut out, "CHECKS");
    paragraph(
        &mut out,
        "--check-config prints every finding with its fix, marked error: (bgjobd would not start) or warning: (it starts, serves what it can and logs the same line as a warning):",
    );
    let findings = table(OPERATIONS, "| finding | severity |");
    for severity in ["error", "warning"] {
        let of: Vec<&str> = findings
            .iter()
            .filter(|row| row[1] == severity)
            .map(|row| row[0].as_str())
            .collect();
        item(&mut out, &format!("{severity}:"), &(of.join("; ") + "."));
    }
    section(&mut out, "SIGNALS");
    for row in table(CONFIGURATION, "| signal | effect |") {
        item(&mut out, &row[0], &row[1]);
    }
    section(&mut out, "EXIT STATUS");
    let exit = paragraph_from(CONFIGURATION, "Exit status: ");
    paragraph(&mut out, exit.trim_start_matches("Exit status: "));
    section(&mut out, "FILES");
    for (path, what) in FILES {
        item(&mut out, path, what);
    }
    section(&mut out, "SEE ALSO");
    paragraph(
        &mut out,
        "bgjob(1), systemd.exec(5), and the documents in /usr/share/doc/bgjob/docs.",
    );
    out
}

/// The rows of the Markdown table whose header line is `header`.
fn table(doc: &str, header: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(header)
        .unwrap_or_else(|| panic!("no table {header:?} in the documents"));
    doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            // These tables have no `|` inside a cell.
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

/// The paragraph of `doc` that starts with `start`, on one line.
fn paragraph_from(doc: &str, start: &str) -> String {
    let from = doc
        .find(start)
        .unwrap_or_else(|| panic!("no paragraph {start:?} in the documents"));
    doc[from..]
        .split("\n\n")
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn section(out: &mut String, title: &str) {
    out.push_str(&format!(".SH \"{title}\"\n"));
}

fn paragraph(out: &mut String, text: &str) {
    out.push_str(".PP\n");
    out.push_str(&line(&inline(text)));
}

/// A tagged paragraph: the tag in bold.
fn item(out: &mut String, tag: &str, text: &str) {
    out.push_str(".TP\n");
    out.push_str(&line(&format!(
        "\\fB{}\\fR",
        inline(tag).replace("\\fR", "\\fB")
    )));
    out.push_str(&line(&inline(text)));
}

/// One text line: a leading `.` or `'` would be read as a request.
fn line(text: &str) -> String {
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}\n"),
        false => format!("{text}\n"),
    }
}

/// Markdown inline text as roff: escapes, code spans and `**strong**` in
/// bold, links as their text.
fn inline(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace("**", "`");
    let mut out = String::new();
    let mut rest = text.as_str();
    // Links: [text](target) becomes text.
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](").zip(rest[open..].find(')')) {
            Some((mid, close)) if mid < close => {
                out.push_str(&rest[..open]);
                out.push_str(&rest[open + 1..open + mid]);
                rest = &rest[open + close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    bold_code(&out)
}

/// Turns `code` spans into bold; an unpaired backtick becomes a quote.
pub fn bold_code(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let spans: Vec<&str> = line.split('`').collect();
        if spans.len().is_multiple_of(2) {
            out.push_str(&line.replace('`', "'"));
            continue;
        }
        for (i, span) in spans.iter().enumerate() {
            if i % 2 == 1 {
                out.push_str(&format!("\\fB{span}\\fR"));
            } else {
                out.push_str(span);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_roff_without_backticks() {
        assert_eq!(
            inline("see [modules](modules.md): `a\\b` is **it**"),
            "see modules: \\fBa\\eb\\fR is \\fBit\\fR"
        );
        assert_eq!(
            bold_code("it's `x`\none ` alone\n"),
            "it's \\fBx\\fR\none ' alone\n"
        );
        assert_eq!(line(".js files"), "\\&.js files\n");
    }

    #[test]
    fn table_rows_are_read_with_their_empty_cells() {
        let doc = "x\n| a | b | c |\n|---|---|---|\n| `k` | | v |\n\nafter\n";
        assert_eq!(table(doc, "| a | b | c |"), vec![vec!["`k`", "", "v"]]);
        assert_eq!(
            paragraph_from("one\n\nExit: 0 ok,\n1 not\n\nnext", "Exit: "),
            "Exit: 0 ok, 1 not"
        );
    }
}
