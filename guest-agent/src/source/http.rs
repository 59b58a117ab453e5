//! [`MetadataSource`]: the metadata service over HTTP.
//!
//! Asks for an IMDSv2 token first and falls back to plain GETs when the server
//! answers 403, 404 or 405; negotiates the newest OpenStack version both sides know
//! from the `/openstack` listing, and reads the EC2 tree when there is no
//! `/openstack`. Connection errors, 408, 429 and 5xx are retried with exponential
//! backoff, all within one overall deadline. The token is never logged.

mod poll;
pub use poll::Polled;

use super::{
    content_file, LastAttempt, PasswordPost, Provider, SourceError, MAX_CONTENT_BYTES,
    MAX_DOCUMENT_BYTES,
};
use compute::metadata::{MetaDataDocument, OpenStackVersion};
use std::time::{Duration, Instant};

pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254";
const TOKEN_TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
const TOKEN_TTL: &str = "21600";

/// How long to keep trying and how to back off.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Everything the source does, together, ends by then.
    pub deadline: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// One request's own limit (less when the deadline is nearer).
    pub per_request: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(30),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            per_request: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
enum Tree {
    OpenStack(String),
    Ec2,
}

/// A connection to the metadata service, after version negotiation.
pub struct MetadataSource {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    tree: Tree,
    policy: RetryPolicy,
    until: Instant,
}

impl std::fmt::Debug for MetadataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataSource")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tree", &self.tree)
            .finish()
    }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

enum Method<'a> {
    Get,
    PutToken,
    Post(&'a [u8]),
}

impl MetadataSource {
    /// Gets a token if the server offers one, then picks the tree and version.
    pub fn connect(base_url: &str, policy: RetryPolicy) -> Result<Self, SourceError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(policy.per_request))
            .build()
            .into();
        let mut src = MetadataSource {
            agent,
            base: base_url.trim_end_matches('/').to_owned(),
            token: None,
            tree: Tree::Ec2,
            policy,
            until: Instant::now() + policy.deadline,
        };
        let answer = src.request(Method::PutToken, "/latest/api/token", 4096)?;
        if answer.status == 200 {
            let token = String::from_utf8_lossy(&answer.body).trim().to_owned();
            if !token.is_empty() {
                src.token = Some(token);
            }
        }
        // 403/404/405 (and anything else non-retryable): plain GETs from here on.
        let listing = src.request(Method::Get, "/openstack", 64 * 1024)?;
        src.tree = match listing.status {
            200 => Tree::OpenStack(negotiate(&String::from_utf8_lossy(&listing.body))),
            404 => Tree::Ec2,
            status => return Err(src.status_error("/openstack", status)),
        };
        Ok(src)
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `openstack/<version>` or `ec2` (the tree documents are read from).
    pub fn tree(&self) -> String {
        match &self.tree {
            Tree::OpenStack(v) => format!("openstack/{v}"),
            Tree::Ec2 => "ec2/latest".into(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn status_error(&self, path: &str, status: u16) -> SourceError {
        SourceError::Status {
            url: self.url(path),
            status,
        }
    }

    /// One request, retried on connection errors, 408, 429 and 5xx until the deadline.
    fn request(&self, method: Method<'_>, path: &str, limit: u64) -> Result<Answer, SourceError> {
        let url = self.url(path);
        let mut backoff = self.policy.first_backoff;
        let mut last = LastAttempt::None;
        loop {
            let left = self.until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SourceError::Deadline {
                    url,
                    deadline: self.policy.deadline,
                    last,
                });
            }
            match self.attempt(&method, &url, limit, left.min(self.policy.per_request)) {
                Ok(a) if retryable(a.status) => last = LastAttempt::Status(a.status),
                Ok(a) => return Ok(a),
                Err(ureq::Error::BodyExceedsLimit(_)) => {
                    return Err(SourceError::TooLarge { path: url, limit })
                }
                Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Http(_))) => {
                    return Err(SourceError::Request {
                        url,
                        source: Box::new(e),
                    })
                }
                Err(e) => last = LastAttempt::Failed(Box::new(e)),
            }
            let left = self.until.saturating_duration_since(Instant::now());
            std::thread::sleep(backoff.min(left));
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    fn attempt(
        &self,
        method: &Method<'_>,
        url: &str,
        limit: u64,
        timeout: Duration,
    ) -> Result<Answer, ureq::Error> {
        let mut response = match method {
            Method::Get => {
                let mut req = self
                    .agent
                    .get(url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build();
                if let Some(t) = &self.token {
                    req = req.header(TOKEN_HEADER, t);
                }
                req.call()?
            }
            Method::PutToken => self
                .agent
                .put(url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header(TOKEN_TTL_HEADER, TOKEN_TTL)
                .send_empty()?,
            Method::Post(body) => {
                let mut req = self
                    .agent
                    .post(url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build();
                if let Some(t) = &self.token {
                    req = req.header(TOKEN_HEADER, t);
                }
                req.send(*body)?
            }
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()?;
        Ok(Answer { status, body })
    }

    /// A document of the negotiated tree: `Ok(None)` on 404.
    fn get_optional(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let a = self.request(Method::Get, path, limit)?;
        match a.status {
            200 => Ok(Some(a.body)),
            404 => Ok(None),
            status => Err(self.status_error(path, status)),
        }
    }

    fn openstack(&self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match &self.tree {
            Tree::OpenStack(v) => {
                self.get_optional(&format!("/openstack/{v}/{name}"), MAX_DOCUMENT_BYTES)
            }
            Tree::Ec2 => Ok(None),
        }
    }

    /// Builds `meta_data.json` from the EC2 tree: instance id, hostname and keys.
    fn ec2_meta_data(&self) -> Result<Option<Vec<u8>>, SourceError> {
        let leaf = |key: &str| -> Result<Option<String>, SourceError> {
            Ok(self
                .get_optional(&format!("/latest/meta-data/{key}"), 64 * 1024)?
                .map(|b| String::from_utf8_lossy(&b).trim().to_owned()))
        };
        let Some(id) = leaf("instance-id")? else {
            return Ok(None);
        };
        let mut doc = MetaDataDocument {
            uuid: id,
            hostname: leaf("local-hostname")?,
            ..Default::default()
        };
        if let Some(listing) = leaf("public-keys")? {
            for line in listing.lines() {
                let (index, name) = line.split_once('=').unwrap_or((line, line));
                if let Some(key) = leaf(&format!("public-keys/{index}/openssh-key"))? {
                    doc.public_keys.insert(name.to_owned(), key);
                }
            }
        }
        serde_json::to_vec(&doc)
            .map(Some)
            .map_err(SourceError::Ec2MetaData)
    }
}

/// Worth another try: timeouts, throttling and server errors, except those that
/// say the server will never do it (501 Not Implemented, 505 version unsupported).
fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429) || (status >= 500 && !matches!(status, 501 | 505))
}

/// The newest OpenStack version in a listing that this agent knows, else `latest`.
fn negotiate(listing: &str) -> String {
    listing
        .lines()
        .filter_map(|l| l.trim().parse::<OpenStackVersion>().ok())
        .max()
        .map(|v| v.as_str().to_owned())
        .unwrap_or_else(|| "latest".into())
}

impl Provider for MetadataSource {
    fn describe(&self) -> String {
        let token = if self.token.is_some() {
            "IMDSv2 token"
        } else {
            "no token"
        };
        format!("metadata service {} ({}, {token})", self.base, self.tree())
    }

    fn meta_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        match self.tree {
            Tree::OpenStack(_) => self.openstack("meta_data.json"),
            Tree::Ec2 => self.ec2_meta_data(),
        }
    }

    fn network_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        self.openstack("network_data.json")
    }

    fn vendor_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        self.openstack("vendor_data.json")
    }

    fn user_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        match self.tree {
            Tree::OpenStack(_) => self.openstack("user_data"),
            Tree::Ec2 => self.get_optional("/latest/user-data", MAX_DOCUMENT_BYTES),
        }
    }

    fn content(&mut self, content_path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let name = content_file(content_path)?;
        self.get_optional(&format!("/openstack/{name}"), MAX_CONTENT_BYTES)
    }

    fn post_password(&mut self, blob: &str) -> Result<PasswordPost, SourceError> {
        let Tree::OpenStack(v) = &self.tree else {
            return Err(SourceError::Unsupported("a password without /openstack"));
        };
        let path = format!("/openstack/{v}/password");
        let a = self.request(Method::Post(blob.as_bytes()), &path, 4096)?;
        match a.status {
            200..=299 => Ok(PasswordPost::Stored),
            409 => Ok(PasswordPost::AlreadySet),
            status => Err(self.status_error(&path, status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_newest_known_version() {
        assert_eq!(
            negotiate("2012-08-10\n2016-06-30\n2099-01-01\nlatest"),
            "2016-06-30"
        );
        assert_eq!(negotiate("2099-01-01\nlatest"), "latest");
    }
}
