//! Hostnames: Nova's derivation from a display name, and the RFC 1123 label check.

/// Derives a hostname from a display name the way Nova's `sanitize_hostname` does:
/// drop characters beyond Latin-1, cut to 63, turn space, `_` and `.` into `-`, drop
/// every other character that is not a word character, lowercase, trim `-`.
/// Unlike Nova we also drop non-ASCII letters, so the result is always a valid label.
/// An empty result becomes `Server-<uuid>`, Nova's default.
pub fn sanitize_hostname(name: &str, uuid: &str) -> String {
    let latin1: String = name
        .chars()
        .filter(|c| (*c as u32) <= 0xff)
        .take(63)
        .collect();
    let mut out = String::with_capacity(latin1.len());
    for c in latin1.chars() {
        match c {
            ' ' | '_' | '.' => out.push('-'),
            c if c.is_ascii_alphanumeric() || c == '-' => out.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        format!("Server-{uuid}")
    } else {
        trimmed.to_owned()
    }
}

/// An RFC 1123 label: 1 to 63 of `A-Za-z0-9-`, not starting or ending with `-`.
pub fn is_valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_like_nova() {
        let u = "d8e02d56-2648-49a3-bf97-6be8f1204f38";
        assert_eq!(sanitize_hostname("test", u), "test");
        assert_eq!(sanitize_hostname("My Web_Server.01", u), "my-web-server-01");
        assert_eq!(sanitize_hostname("--a!b@c--", u), "abc");
        assert_eq!(sanitize_hostname("日本", u), format!("Server-{u}"));
        assert_eq!(sanitize_hostname(&"x".repeat(70), u).len(), 63);
        assert!(is_valid_hostname(&sanitize_hostname("  weird  name  ", u)));
    }

    #[test]
    fn label_rules() {
        assert!(is_valid_hostname("web-01"));
        assert!(!is_valid_hostname("-web"));
        assert!(!is_valid_hostname("web_01"));
        assert!(!is_valid_hostname("a.b"));
        assert!(!is_valid_hostname(&"a".repeat(64)));
        assert!(!is_valid_hostname(""));
    }
}
