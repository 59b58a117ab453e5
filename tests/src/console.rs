//! Reading what a guest printed on its serial console: the text between a begin and
//! an end marker, split into sections that start with `=== <name>` lines, and its
//! whole lines so far.

use std::collections::BTreeMap;

/// A serial console as far as its last newline, without carriage returns. QEMU
/// writes the console a few bytes at a time, so a read can end inside a line; a
/// test that waits for a marker and then reads the rest of its line must not see
/// half of it.
pub fn whole_lines(console: &str) -> String {
    let end = console.rfind('\n').map_or(0, |i| i + 1);
    console[..end].replace('\r', "")
}

/// Each section's non-empty lines, by name, from the first `begin` marker line to the
/// next `end` marker line; None when either marker is missing. Carriage returns are
/// dropped (the serial console writes `\r\n`).
pub fn sections(console: &str, begin: &str, end: &str) -> Option<BTreeMap<String, Vec<String>>> {
    let text = console.replace('\r', "");
    let start = text.find(&format!("{begin}\n"))? + begin.len() + 1;
    let body = &text[start..];
    let body = &body[..body.find(end)?];
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in body.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            current = name.to_owned();
            out.entry(current.clone()).or_default();
        } else if !line.is_empty() {
            out.entry(current.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_is_read_to_its_last_whole_line() {
        assert_eq!(whole_lines("GUEST-BOOT a\r\nGUEST-TI"), "GUEST-BOOT a\n");
        assert_eq!(whole_lines("GUEST-TI"), "");
    }

    #[test]
    fn sections_between_markers() {
        let log = "noise\r\n=B=\r\n=== a\r\n1\r\n\r\n2\r\n=== b\r\n=E=\r\n=== c\r\n";
        let s = sections(log, "=B=", "=E=").expect("markers");
        assert_eq!(s["a"], ["1", "2"]);
        assert!(s["b"].is_empty());
        assert!(!s.contains_key("c"));
        assert!(sections("=B=\n=== a\n", "=B=", "=E=").is_none());
    }
}
