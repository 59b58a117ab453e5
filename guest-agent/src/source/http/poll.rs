//! Looking at `meta_data.json` for changes (`guest-agent watch`): the service's
//! `?wait_for_change=true` long poll, with the token and version the client
//! negotiated.

use super::{MetadataSource, Tree, TOKEN_HEADER};
use crate::source::{SourceError, MAX_DOCUMENT_BYTES};
use std::time::Duration;

/// What one look at `meta_data.json` for `guest-agent watch` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    /// Its `ETag` (`None` from a service that sends none: then every look counts
    /// as a change).
    pub etag: Option<String>,
}

/// Extra time a long poll gets beyond the wait it asked the service for.
const POLL_MARGIN: Duration = Duration::from_secs(10);

impl MetadataSource {
    /// `meta_data.json` of the negotiated OpenStack version: with `last_etag`,
    /// held by the service until it differs from that tag or `wait` passes
    /// (`?wait_for_change=true`); without, at once. One attempt, no retries (the
    /// watcher backs off); the body is read (bounded) and dropped.
    pub fn poll_meta_data(
        &self,
        last_etag: Option<&str>,
        wait: Duration,
    ) -> Result<Polled, SourceError> {
        let Tree::OpenStack(v) = &self.tree else {
            return Err(SourceError::Unsupported("watching without /openstack"));
        };
        let mut path = format!("/openstack/{v}/meta_data.json");
        if let Some(tag) = last_etag {
            let tag: String = tag
                .trim_matches('"')
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            path.push_str(&format!(
                "?wait_for_change=true&timeout_sec={}&last_etag={tag}",
                wait.as_secs().max(1)
            ));
        }
        let url = self.url(&path);
        let mut req = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(wait + POLL_MARGIN))
            .build();
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        let failed = |e: ureq::Error| SourceError::Request {
            url: url.clone(),
            source: Box::new(e),
        };
        let mut response = req.call().map_err(failed)?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        response
            .body_mut()
            .with_config()
            .limit(MAX_DOCUMENT_BYTES)
            .read_to_vec()
            .map_err(failed)?;
        match status {
            200 => Ok(Polled { etag }),
            status => Err(self.status_error(&path, status)),
        }
    }
}
