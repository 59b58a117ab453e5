//! User and vendor data: unpacking (gzip, MIME multipart) into parts the agent acts on.
//!
//! Pure: bytes in, parts out. A `#!` script becomes a [`Part::Script`], a
//! `#cloud-config` document a [`Part::CloudConfig`] (see [`crate::cloudconfig`]), and
//! anything else is named as not applied. Sizes and nesting are bounded, so a gzip
//! bomb or a deeply nested multipart cannot exhaust the guest.

use crate::cloudconfig::{self, CloudConfig, MAX_UNPACKED_BYTES};
use compute_io::gunzip::{gunzip, is_gzip, GunzipError};

const MAX_DEPTH: usize = 4;
const MAX_PARTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    #[error(transparent)]
    Gzip(#[from] GunzipError),
    #[error("MIME multipart is malformed")]
    Mime(#[from] mailparse::MailParseError),
    #[error("MIME parts nest deeper than {MAX_DEPTH} or number more than {MAX_PARTS}")]
    TooComplex,
    #[error("#cloud-config")]
    CloudConfig(#[from] cloudconfig::CloudConfigError),
}

/// One thing to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// A `#!` script, run once per instance. `name` orders and names it.
    Script {
        name: String,
        body: Vec<u8>,
    },
    CloudConfig(CloudConfig),
    /// Data the agent does not act on, described without its contents.
    Ignored(String),
}

/// Unpacks user data (or the `cloud-init` string of vendor data) into parts, in order.
pub fn parse(data: &[u8], label: &str) -> Result<Vec<Part>, UserDataError> {
    let mut parts = Vec::new();
    unpack(data, label, 0, &mut parts)?;
    Ok(parts)
}

fn unpack(
    data: &[u8],
    label: &str,
    depth: usize,
    out: &mut Vec<Part>,
) -> Result<(), UserDataError> {
    if depth > MAX_DEPTH || out.len() >= MAX_PARTS {
        return Err(UserDataError::TooComplex);
    }
    if is_gzip(data) {
        let unpacked = gunzip(data, MAX_UNPACKED_BYTES)?;
        return unpack(&unpacked, label, depth + 1, out);
    }
    if data.starts_with(b"#!") {
        out.push(Part::Script {
            name: script_name(label, out.len()),
            body: data.to_vec(),
        });
        return Ok(());
    }
    if starts_with_line(data, "#cloud-config") {
        out.push(Part::CloudConfig(cloudconfig::parse(data)?));
        return Ok(());
    }
    if looks_like_mime(data) {
        let mail = mailparse::parse_mail(data)?;
        return mime_parts(&mail, label, depth, out);
    }
    let what = if data.is_empty() {
        "empty data".to_owned()
    } else {
        "data in a format the agent does not handle".to_owned()
    };
    out.push(Part::Ignored(format!(
        "{label}: {what} ({} bytes)",
        data.len()
    )));
    Ok(())
}

fn mime_parts(
    mail: &mailparse::ParsedMail<'_>,
    label: &str,
    depth: usize,
    out: &mut Vec<Part>,
) -> Result<(), UserDataError> {
    if !mail.subparts.is_empty() {
        for sub in &mail.subparts {
            mime_parts(sub, label, depth + 1, out)?;
        }
        return Ok(());
    }
    if out.len() >= MAX_PARTS || depth > MAX_DEPTH {
        return Err(UserDataError::TooComplex);
    }
    let ctype = mail.ctype.mimetype.to_ascii_lowercase();
    let body = mail.get_body_raw()?;
    match ctype.as_str() {
        "text/x-shellscript" | "text/x-shellscript-per-instance" => out.push(Part::Script {
            name: script_name(label, out.len()),
            body,
        }),
        "text/cloud-config" => out.push(Part::CloudConfig(cloudconfig::parse(&body)?)),
        "application/gzip"
        | "application/x-gzip"
        | "text/x-gzip"
        | "text/plain"
        | "text/x-not-multipart" => unpack(&body, label, depth + 1, out)?,
        other => out.push(Part::Ignored(format!(
            "{label}: MIME part of type {other} is not applied"
        ))),
    }
    Ok(())
}

fn script_name(label: &str, index: usize) -> String {
    format!("{label}-{index:03}")
}

fn starts_with_line(data: &[u8], word: &str) -> bool {
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(first).trim_end() == word
}

fn looks_like_mime(data: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&data[..data.len().min(1024)]).to_ascii_lowercase();
    head.starts_with("content-type:") || head.starts_with("mime-version:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn scripts_gzip_and_mime() {
        let parts = parse(b"#!/bin/sh\necho hi\n", "user-data").expect("parses");
        assert!(matches!(&parts[..], [Part::Script { name, .. }] if name == "user-data-000"));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"#!/bin/sh\necho zipped\n")
            .expect("in memory");
        let parts = parse(&gz.finish().expect("in memory"), "user-data").expect("parses");
        assert!(matches!(&parts[..], [Part::Script { body, .. }] if body.ends_with(b"zipped\n")));

        let mime = b"Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n--XX\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho one\n--XX\nContent-Type: text/cloud-config\n\n#cloud-config\nhostname: mimehost\n--XX\nContent-Type: text/x-include-url\n\nhttp://example.com/\n--XX--\n";
        let parts = parse(mime, "user-data").expect("parses");
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert!(matches!(&parts[0], Part::Script { .. }));
        assert!(
            matches!(&parts[1], Part::CloudConfig(c) if c.hostname.as_deref() == Some("mimehost"))
        );
        assert!(matches!(&parts[2], Part::Ignored(_)));
    }

    #[test]
    fn gzip_bombs_are_refused() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..17 {
            gz.write_all(&zeros).expect("in memory");
        }
        let err = parse(&gz.finish().expect("in memory"), "user-data").expect_err("too large");
        assert!(matches!(
            err,
            UserDataError::Gzip(GunzipError::TooLarge { .. })
        ));
    }
}
