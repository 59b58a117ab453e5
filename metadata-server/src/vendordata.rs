//! Dynamic vendor data (`--vendordata-dynamic name@URL`): for `vendor_data2.json` the
//! server POSTs Nova's JSON body about the instance to each target and files the JSON
//! answer under the target's name. Connect and read are each bounded by 5 s; any
//! failure gives `{}` for that target and a warning. Answers are kept for a short
//! while (as Nova's metadata cache does) so a booting guest does not fan out per read.

use crate::store::InstanceEntry;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use lru::LruCache;
use serde_json::{json, Map, Value};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a target's answer.
const MAX_ANSWER: usize = 1 << 20;
/// How long one instance's answers are reused (Nova's default cache expiry).
const CACHE_FOR: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum VendorDataError {
    #[error("`{0}` is not name@http://host[:port]/path")]
    BadTarget(String),
    #[error("connecting to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{url}: {message}")]
    Exchange { url: String, message: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered with something that is not a JSON object")]
    NotJson { url: String },
}

/// One `name@URL` target (plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicTarget {
    pub name: String,
    pub url: http::Uri,
}

impl std::str::FromStr for DynamicTarget {
    type Err = VendorDataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VendorDataError::BadTarget(s.to_owned());
        let (name, url) = s.split_once('@').ok_or_else(bad)?;
        let url: http::Uri = url.parse().map_err(|_| bad())?;
        if name.is_empty() || url.scheme_str() != Some("http") || url.host().is_none() {
            return Err(bad());
        }
        Ok(DynamicTarget {
            name: name.to_owned(),
            url,
        })
    }
}

/// Nova's request body for an instance.
pub fn request_body(i: &compute::Instance) -> Vec<u8> {
    let doc = i.document();
    let body = json!({
        "project-id": i.project_id(),
        "instance-id": i.uuid_str(),
        "image-id": doc.image_id,
        "user-data": doc.user_data,
        "hostname": i.hostname(),
        "metadata": i.meta(),
    });
    compute::pyjson::to_vec(&body)
}

async fn post(target: &DynamicTarget, body: Vec<u8>) -> Result<Value, VendorDataError> {
    let url = target.url.to_string();
    let host = target
        .url
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = target.url.port_u16().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| VendorDataError::Connect {
            url: url.clone(),
            message: "timed out".into(),
        })?
        .map_err(|e| VendorDataError::Connect {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let exchange = async {
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        let conn = tokio::spawn(conn);
        let path = target
            .url
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let authority = target.url.authority().map(|a| a.as_str()).unwrap_or(&host);
        let req = http::Request::post(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "openstack-nova-vendordata")
            .body(Full::new(Bytes::from(body)));
        let req = match req {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map(|c| c.to_bytes());
        conn.abort();
        Ok::<_, hyper::Error>(Ok((status, bytes)))
    };
    let (status, bytes) = tokio::time::timeout(READ_TIMEOUT, exchange)
        .await
        .map_err(|_| VendorDataError::Exchange {
            url: url.clone(),
            message: "read timed out".into(),
        })?
        .map_err(|e| VendorDataError::Exchange {
            url: url.clone(),
            message: e.to_string(),
        })?
        .map_err(|message| VendorDataError::Exchange {
            url: url.clone(),
            message,
        })?;
    if !matches!(status.as_u16(), 200..=202) {
        return Err(VendorDataError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let bytes = bytes.map_err(|e| VendorDataError::Exchange {
        url: url.clone(),
        message: e.to_string(),
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(VendorDataError::NotJson { url }),
    }
}

/// The targets and the short-lived cache of rendered `vendor_data2.json` bodies.
pub struct DynamicVendorData {
    targets: Vec<DynamicTarget>,
    cache: Mutex<LruCache<Uuid, (u64, Instant, Bytes)>>,
}

impl DynamicVendorData {
    pub fn new(targets: Vec<DynamicTarget>) -> Self {
        let cap = NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN);
        DynamicVendorData {
            targets,
            cache: Mutex::new(LruCache::new(cap)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// `vendor_data2.json` for the instance: static part plus every target's answer.
    pub async fn vendor_data2(&self, entry: &InstanceEntry, static_json: &[u8]) -> Bytes {
        let uuid = entry.uuid();
        let now = Instant::now();
        if let Some((generation, at, body)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&uuid)
        {
            if *generation == entry.generation && now.duration_since(*at) < CACHE_FOR {
                return body.clone();
            }
        }
        let static_data: Map<String, Value> =
            serde_json::from_slice(static_json).unwrap_or_default();
        let body = match entry.instance() {
            Ok(i) => request_body(&i),
            Err(e) => {
                tracing::error!(instance = %uuid, error = %crate::error_chain(&e), "a stored document no longer parses");
                Vec::new()
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let (t, body) = (t.clone(), body.clone());
            set.spawn(async move { (i, post(&t, body).await) });
        }
        let mut answers = vec![Value::Object(Map::new()); self.targets.len()];
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, Ok(v))) => answers[i] = v,
                Ok((i, Err(e))) => {
                    tracing::warn!(instance = %uuid, target = %self.targets[i].name, error = %crate::error_chain(&e), "dynamic vendor data failed; serving {{}}")
                }
                Err(e) => {
                    tracing::warn!(instance = %uuid, error = %e, "dynamic vendor data task failed")
                }
            }
        }
        let dynamic: Vec<(String, Value)> = self
            .targets
            .iter()
            .map(|t| t.name.clone())
            .zip(answers)
            .collect();
        let out = Bytes::from(compute::metadata::vendor_data2_json(&static_data, &dynamic));
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(uuid, (entry.generation, now, out.clone()));
        out
    }
}
