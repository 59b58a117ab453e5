//! The `#cloud-config` subset the agent applies: `hostname`, `fqdn`,
//! `ssh_authorized_keys`, `write_files` and `runcmd`. Every other top-level key is
//! kept by name only, to be reported as not applied (values may hold secrets).

use crate::gunzip;
use base64::Engine;
use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error)]
pub enum CloudConfigError {
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the document is not a mapping")]
    NotAMapping,
    #[error("`{key}`: {problem}")]
    Field { key: String, problem: String },
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
        let field = |problem: &str| CloudConfigError::Field {
            key: key.clone(),
            problem: problem.into(),
        };
        match key.as_str() {
            "hostname" => {
                cfg.hostname = Some(
                    v.as_str()
                        .ok_or_else(|| field("must be a string"))?
                        .to_owned(),
                )
            }
            "fqdn" => {
                cfg.fqdn = Some(
                    v.as_str()
                        .ok_or_else(|| field("must be a string"))?
                        .to_owned(),
                )
            }
            "ssh_authorized_keys" => {
                let list = v.as_sequence().ok_or_else(|| field("must be a list"))?;
                for item in list {
                    cfg.ssh_authorized_keys.push(
                        item.as_str()
                            .ok_or_else(|| field("keys must be strings"))?
                            .to_owned(),
                    );
                }
            }
            "write_files" => {
                let list = v.as_sequence().ok_or_else(|| field("must be a list"))?;
                for item in list {
                    cfg.write_files
                        .push(write_file(item).map_err(|p| field(&p))?);
                }
            }
            "runcmd" => cfg.runcmd = Some(runcmd(&v).map_err(|p| field(&p))?),
            _ => cfg.not_applied.push(key),
        }
    }
    Ok(cfg)
}

fn write_file(item: &Value) -> Result<WriteFile, String> {
    let path = item
        .get("path")
        .and_then(Value::as_str)
        .ok_or("every entry needs a string `path`")?
        .to_owned();
    let raw = match item.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(v) => v
            .as_str()
            .ok_or(format!("{path}: `content` must be a string"))?
            .to_owned(),
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
            .map_err(|e| format!("{path}: bad base64: {e}"))
    };
    let gunzip = |b: Vec<u8>| {
        gunzip::gunzip(&b, gunzip::MAX_UNPACKED_BYTES).map_err(|e| format!("{path}: bad gzip: {e}"))
    };
    let content = match encoding.as_str() {
        "text" | "" => raw.into_bytes(),
        "b64" | "base64" => b64(&raw)?,
        "gz" | "gzip" => gunzip(raw.into_bytes())?,
        "gz+base64" | "gzip+base64" | "gz+b64" | "gzip+b64" => gunzip(b64(&raw)?)?,
        other => return Err(format!("{path}: unknown encoding `{other}`")),
    };
    let mode = match item.get("permissions") {
        None | Some(Value::Null) => 0o644,
        Some(Value::String(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .map_err(|_| format!("{path}: permissions `{s}` is not octal"))?,
        Some(Value::Number(n)) => {
            // YAML reads an unquoted 0644 as decimal 644: take its digits as octal.
            let digits = n.to_string();
            u32::from_str_radix(&digits, 8)
                .map_err(|_| format!("{path}: permissions {digits} is not octal"))?
        }
        Some(_) => return Err(format!("{path}: permissions must be an octal string")),
    };
    if mode > 0o7777 {
        return Err(format!("{path}: permissions {mode:o} out of range"));
    }
    let append = item.get("append").and_then(Value::as_bool).unwrap_or(false);
    Ok(WriteFile {
        path,
        content,
        mode,
        append,
    })
}

fn runcmd(v: &Value) -> Result<String, String> {
    let list = v.as_sequence().ok_or("must be a list")?;
    let mut script = String::from("#!/bin/sh\n");
    for item in list {
        match item {
            Value::String(s) => script.push_str(s),
            Value::Sequence(argv) => {
                let words: Result<Vec<String>, String> = argv
                    .iter()
                    .map(|a| {
                        scalar(a)
                            .map(|s| shell_quote(&s))
                            .ok_or("arguments must be scalars".into())
                    })
                    .collect();
                script.push_str(&words?.join(" "));
            }
            _ => return Err("entries must be strings or lists".into()),
        }
        script.push('\n');
    }
    Ok(script)
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
        assert!(parse(b"#cloud-config\n- a\n").is_err());
    }
}
