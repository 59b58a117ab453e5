//! How deep a JSON text nests, measured on its bytes before any parser sees it, so
//! that a body of ten thousand `[` costs a scan, not a recursion.

/// The deepest nesting of arrays and objects in `text` (strings and escapes
/// skipped); malformed text is measured as far as it goes.
pub fn depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::depth;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert_eq!(depth(b"{}"), 1);
        assert_eq!(depth(br#"{"a": [1, {"b": "[[[["}]}"#), 3);
        assert_eq!(depth(br#"{"a": "\"[[["}"#), 1);
        assert_eq!(depth(&[b'['; 10_000]), 10_000);
        assert_eq!(depth(b"null"), 0);
    }
}
