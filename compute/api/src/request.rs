//! A request as handlers see it: the method, the path below the service's version
//! prefix (percent-decoded segments), the query, the headers, the body (already
//! bounded in size), the negotiated microversion and the public URLs for links.
//! Parsing the body is the handler's call ([`ApiRequest::json`]), under the nesting
//! limit, with errors in Nova's words.

use crate::error::ApiError;
use crate::microversion::ApiVersion;
use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

/// The public URLs of the three services, as this request should see them (for
/// links and the catalog), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    /// `http://HOST:8774` (bookmark links).
    pub compute_root: String,
    /// `http://HOST:8774/v2.1`.
    pub compute: String,
    /// `http://HOST:9292`.
    pub image: String,
    /// `http://HOST:5000/v3`.
    pub identity: String,
}

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The path below the version prefix (`["flavors", "1", "os-extra_specs"]`).
    pub segments: Vec<String>,
    /// The query, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The compute microversion (the minimum on the other services).
    pub version: ApiVersion,
    pub urls: Urls,
    /// How deep a JSON body may nest.
    pub max_json_depth: usize,
}

impl ApiRequest {
    /// The first value of a query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (checked for depth first), then as `T`; a refusal names
    /// what is wrong.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let value = self.json_value()?;
        serde_json::from_value(value)
            .map_err(|e| ApiError::BadRequest(format!("Invalid input for the request body: {e}")))
    }

    /// The body as a JSON value, or `null` when empty.
    pub fn json_value(&self) -> Result<serde_json::Value, ApiError> {
        if let Some(ct) = self.headers.get(http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !self.body.is_empty() && !ct.is_empty() && !ct.contains("json") {
                return Err(ApiError::MediaType(ct.chars().take(64).collect()));
            }
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        if crate::jsonlimit::depth(&self.body) > self.max_json_depth {
            return Err(ApiError::BadRequest(format!(
                "The request body nests deeper than {} levels.",
                self.max_json_depth
            )));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::BadRequest(format!("Malformed request body: {e}")))
    }
}

/// Splits a path into percent-decoded segments (empty ones dropped: `//` and a
/// trailing `/` are the same path); `None` when a segment is not UTF-8.
pub fn segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect()
}

/// Parses a query string (`+` is a space); pairs that do not decode are dropped.
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_decode() {
        assert_eq!(
            segments("/v2.1//os-keypairs/my%20key/").expect("utf-8"),
            ["v2.1", "os-keypairs", "my key"]
        );
        assert_eq!(segments("/%ff"), None);
        assert_eq!(
            parse_query(Some("is_public=None&name=a+b&x=%2F&bad=%zz")),
            [
                ("is_public".to_owned(), "None".to_owned()),
                ("name".to_owned(), "a b".to_owned()),
                ("x".to_owned(), "/".to_owned())
            ]
        );
        assert_eq!(percent_decode("100%", false).as_deref(), Some("100%"));
        assert_eq!(percent_decode("%4", false).as_deref(), Some("%4"));
    }
}
