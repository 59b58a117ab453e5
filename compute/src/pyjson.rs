//! JSON bytes exactly as Python's `json.dumps` writes them with its defaults.
//!
//! Nova serialises every document with `json.dumps` (through oslo's `jsonutils`):
//! `", "` and `": "` separators, one line, every character outside printable ASCII
//! escaped as lowercase `\uXXXX` (surrogate pairs above the BMP), floats in `repr`
//! form. Clients that hash `meta_data.json` must see the same bytes from us, so this
//! module is the only place that turns a value into document bytes.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use std::io::{self, Write};

/// Serialises `value` the way Python's `json.dumps(value)` would.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising our own types and `serde_json::Value` into a Vec cannot fail: every
    // map key is a string and writing to memory has no I/O error.
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

/// A `serde_json` formatter with Python's separators, escapes and float spelling.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_u16_escape<W: ?Sized + Write>(w: &mut W, unit: u16) -> io::Result<()> {
    let buf = [
        b'\\',
        b'u',
        HEX[(unit >> 12) as usize & 0xf],
        HEX[(unit >> 8) as usize & 0xf],
        HEX[(unit >> 4) as usize & 0xf],
        HEX[unit as usize & 0xf],
    ];
    w.write_all(&buf)
}

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Fast path: printable ASCII passes through untouched.
        if fragment.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_u16_escape(w, *unit)?;
            }
            start = i + ch.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write_u16_escape(w, u16::from(byte)),
        };
        w.write_all(s)
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for decimal
/// exponents in -4..16, else `d.ddde+XX` with at least two exponent digits.
fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.25e-7", "1e16".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // position of the decimal point within the digits
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

/// Writes one JSON object field by field, in the order given, with Python's
/// separators; it can stop in the middle of a string value so that the caller can
/// splice something in later (the per-request `random_seed`).
#[derive(Debug, Clone, Default)]
pub struct ObjectWriter {
    buf: Vec<u8>,
    fields: usize,
}

impl ObjectWriter {
    pub fn new() -> Self {
        ObjectWriter {
            buf: b"{".to_vec(),
            fields: 0,
        }
    }

    fn key(&mut self, key: &str) {
        if self.fields > 0 {
            self.buf.extend_from_slice(b", ");
        }
        self.fields += 1;
        self.write(key);
        self.buf.extend_from_slice(b": ");
    }

    /// Serialises straight into the buffer (no intermediate allocation).
    fn write<T: Serialize + ?Sized>(&mut self, value: &T) {
        let mark = self.buf.len();
        let mut ser = serde_json::Serializer::with_formatter(&mut self.buf, PythonFormatter);
        if value.serialize(&mut ser).is_err() {
            self.buf.truncate(mark);
            self.buf.extend_from_slice(b"null");
        }
    }

    pub fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.key(key);
        self.write(value);
    }

    /// Writes `key` and the opening quote of its string value, then hands back what
    /// was written so far; the caller supplies the value (which must need no JSON
    /// escaping, like base64) between that and the rest.
    pub fn open_string_field(&mut self, key: &str) -> Vec<u8> {
        self.key(key);
        self.buf.push(b'"');
        std::mem::take(&mut self.buf)
    }

    /// Closes a string opened by [`ObjectWriter::open_string_field`].
    pub fn close_string_field(&mut self) {
        self.buf.push(b'"');
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dumps(v: &serde_json::Value) -> String {
        String::from_utf8(to_vec(v)).expect("ascii output")
    }

    #[test]
    fn separators_and_nesting_match_python() {
        let v = json!({"a": [1, 2, {"b": null}], "c": true, "d": "x"});
        assert_eq!(
            dumps(&v),
            r#"{"a": [1, 2, {"b": null}], "c": true, "d": "x"}"#
        );
        assert_eq!(dumps(&json!({})), "{}");
        assert_eq!(dumps(&json!([])), "[]");
    }

    #[test]
    fn non_ascii_and_controls_are_escaped_like_python() {
        // json.dumps("é\u{7f}\n\x01/😀\"\\") in CPython 3.11:
        let v = json!("é\u{7f}\n\u{1}/😀\"\\");
        assert_eq!(dumps(&v), r#""\u00e9\u007f\n\u0001/\ud83d\ude00\"\\""#);
    }

    #[test]
    fn object_writer_splits_around_a_string() {
        let mut w = ObjectWriter::new();
        w.field("a", &1);
        let head = w.open_string_field("seed");
        w.close_string_field();
        w.field("b", &[1, 2]);
        let tail = w.finish();
        let whole = [head, b"QUJD".to_vec(), tail].concat();
        assert_eq!(
            String::from_utf8(whole).expect("ascii"),
            r#"{"a": 1, "seed": "QUJD", "b": [1, 2]}"#
        );
    }

    #[test]
    fn floats_use_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-300, "-2.5e-300"),
            (123.456, "123.456"),
        ] {
            assert_eq!(python_float_repr(f), want, "{f}");
        }
    }
}
