//! The `#cloud-config` subset the agent applies: `hostname`, `fqdn`,
//! `ssh_authorized_keys`, `write_files` and `runcmd`. Every other top-level key is
//! kept by name only, to be reported as not applied (values may hold secrets).

use base64::Engine;
use compute_io::gunzip::{gunzip, GunzipError};
use serde_yaml_ng::Value;

/// Unpacked user data, or one unpacked `write_files` entry, may not grow past this:
/// a gzip bomb fails here instead of exhausting the guest.
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CloudConfigError {
    #[error("not valid YAML")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the document is not a mapping")]
    NotAMapping,
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("write_files[{index}] has no string `path`")]
    NoPath { index: usize },
    #[error("write_files `{path}`: `content` must be a string")]
    ContentNotText { path: String },
    #[error("write_files `{path}`: `content` is not base64")]
    Base64 {
        path: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("write_files `{path}`: `content` cannot be unpacked")]
    Gzip {
        path: String,
        #[source]
        source: GunzipError,
    },
    #[error("write_files `{path}`: unknown encoding `{encoding}`")]
    Encoding { path: String, encoding: String },
    #[error("write_files `{path}`: permissions `{permissions}` are not an octal mode up to 7777")]
    Permissions { path: String, permissions: String },
}

/// A file from `write_files`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFile {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
    pub append: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudConfig {
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub ssh_authorized_keys: Vec<String>,
    pub write_files: Vec<WriteFile>,
    /// `runcmd` as one shell script, a command a line; `None` when absent.
    pub runcmd: Option<String>,
    /// Top-level keys present but not applied.
    pub not_applied: Vec<String>,
}

pub fn parse(data: &[u8]) -> Result<CloudConfig, CloudConfigError> {
    let doc: Value = serde_yaml_ng::from_slice(data)?;
    let map = match doc {
        Value::Mapping(m) => m,
        Value::Null => return Ok(CloudConfig::default()),
        _ => return Err(CloudConfigError::NotAMapping),
    };
    let mut cfg = CloudConfig::default();
    for (k, v) in map {
        let key = k.as_str().unwrap_or("<non-string key>").to_owned();
        let wrong = |expected| CloudConfigError::WrongType {
            key: key.clone(),
            expected,
        };
        match key.as_str() {
            "hostname" => {
                cfg.hostname = Some(v.as_str().ok_or_else(|| wrong("a string"))?.to_owned())
            }
            "fqdn" => cfg.fqdn = Some(v.as_str().ok_or_else(|| wrong("a string"))?.to_owned()),
            "ssh_authorized_keys" => {
                cfg.ssh_authorized_keys = v
                    .as_sequence()
                    .and_then(|list| {
                        list.iter()
                            .map(|item| item.as_str().map(str::to_owned))
                            .collect()
                    })
                    .ok_or_else(|| wrong("a list of strings"))?;
            }
            "write_files" => {
                let list = v.as_sequence().ok_or_else(|| wrong("a list"))?;
                for (index, item) in list.iter().enumerate() {
                    cfg.write_files.push(write_file(index, item)?);
                }
            }
            "runcmd" => {
                cfg.runcmd = Some(
                    runcmd(&v).ok_or_else(|| wrong("a list of strings or of lists of scalars"))?,
                )
            }
            _ => cfg.not_applied.push(key),
        }
    }
    Ok(cfg)
}

fn write_file(index: usize, item: &Value) -> Result<WriteFile, CloudConfigError> {
    let path = item
        .get("path")
        .and_then(Value::as_str)
        .ok_or(CloudConfigError::NoPath { index })?
        .to_owned();
    let raw = match item.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(v) => match v.as_str() {
            Some(s) => s.to_owned(),
            None => return Err(CloudConfigError::ContentNotText { path }),
        },
    };
    let encoding = item
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("text")
        .to_ascii_lowercase();
    let b64 = |s: &str| {
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|source| CloudConfigError::Base64 {
                path: path.clone(),
                source,
            })
    };
    let unzip = |b: Vec<u8>| {
        gunzip(&b, MAX_UNPACKED_BYTES).map_err(|source| CloudConfigError::Gzip {
            path: path.clone(),
            source,
        })
    };
    let content = match encoding.as_str() {
        "text" | "" => raw.into_bytes(),
        "b64" | "base64" => b64(&raw)?,
        "gz" | "gzip" => unzip(raw.into_bytes())?,
        "gz+base64" | "gzip+base64" | "gz+b64" | "gzip+b64" => unzip(b64(&raw)?)?,
        _ => return Err(CloudConfigError::Encoding { path, encoding }),
    };
    let mode = match item.get("permissions") {
        None | Some(Value::Null) => Some(0o644),
        Some(Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        // YAML reads an unquoted 0644 as decimal 644: take its digits as octal.
        Some(Value::Number(n)) => u32::from_str_radix(&n.to_string(), 8).ok(),
        Some(_) => None,
    };
    let Some(mode) = mode.filter(|m| *m <= 0o7777) else {
        let permissions = match item.get("permissions") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "<not a string or number>".to_owned(),
        };
        return Err(CloudConfigError::Permissions { path, permissions });
    };
    let append = item.get("append").and_then(Value::as_bool).unwrap_or(false);
    Ok(WriteFile {
        path,
        content,
        mode,
        append,
    })
}

/// `runcmd` as a shell script; `None` when it is not a list of strings or of lists of
/// scalar arguments.
fn runcmd(v: &Value) -> Option<String> {
    let mut script = String::from("#!/bin/sh\n");
    for item in v.as_sequence()? {
        match item {
            Value::String(s) => script.push_str(s),
            Value::Sequence(argv) => {
                let words: Option<Vec<String>> = argv
                    .iter()
                    .map(|a| scalar(a).map(|s| shell_quote(&s)))
                    .collect();
                script.push_str(&words?.join(" "));
            }
            _ => return None,
        }
        script.push('\n');
    }
    Some(script)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_is_parsed_and_the_rest_named() {
        let doc = b"#cloud-config\nhostname: h1\nfqdn: h1.example.com\nssh_authorized_keys: ['ssh-ed25519 AAAA k']\nwrite_files:\n  - path: /etc/a\n    content: aGk=\n    encoding: b64\n    permissions: '0600'\n  - path: /etc/b\n    content: plain\nruncmd:\n  - [touch, \"/tmp/it's\"]\n  - echo hi\npackages: [htop]\n";
        let c = parse(doc).expect("parses");
        assert_eq!(c.hostname.as_deref(), Some("h1"));
        assert_eq!(c.fqdn.as_deref(), Some("h1.example.com"));
        assert_eq!(c.ssh_authorized_keys, vec!["ssh-ed25519 AAAA k"]);
        assert_eq!(
            c.write_files[0],
            WriteFile {
                path: "/etc/a".into(),
                content: b"hi".to_vec(),
                mode: 0o600,
                append: false
            }
        );
        assert_eq!(c.write_files[1].mode, 0o644);
        assert_eq!(
            c.runcmd.as_deref(),
            Some("#!/bin/sh\n'touch' '/tmp/it'\\''s'\necho hi\n")
        );
        assert_eq!(c.not_applied, vec!["packages"]);
        assert!(matches!(
            parse(b"#cloud-config\n- a\n"),
            Err(CloudConfigError::NotAMapping)
        ));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = |doc: &str| match parse(doc.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("parsed: {c:?}"),
        };
        assert_eq!(err("hostname: [a]"), "`hostname` must be a string");
        assert_eq!(
            err("ssh_authorized_keys: [a, [b]]"),
            "`ssh_authorized_keys` must be a list of strings"
        );
        assert_eq!(
            err("write_files: [{content: x}]"),
            "write_files[0] has no string `path`"
        );
        assert_eq!(
            err("write_files: [{path: /a, encoding: rot13}]"),
            "write_files `/a`: unknown encoding `rot13`"
        );
        assert_eq!(
            err("write_files: [{path: /a, permissions: '0999'}]"),
            "write_files `/a`: permissions `0999` are not an octal mode up to 7777"
        );
        assert_eq!(
            err("write_files: [{path: /a, permissions: 17777}]"),
            "write_files `/a`: permissions `17777` are not an octal mode up to 7777"
        );
        assert!(matches!(
            parse(b"write_files: [{path: /a, content: '!!', encoding: b64}]"),
            Err(CloudConfigError::Base64 { .. })
        ));
        assert!(matches!(
            parse(b"write_files: [{path: /a, content: aGk=, encoding: gz+b64}]"),
            Err(CloudConfigError::Gzip { .. })
        ));
        assert_eq!(
            err("runcmd: [[echo, {a: b}]]"),
            "`runcmd` must be a list of strings or of lists of scalars"
        );
    }
}
