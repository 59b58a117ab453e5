//! Response bodies whose keys depend on the microversion, written once: a
//! [`Shape`] is a JSON object built key by key, where a key can be
//! [`since`](Shape::since) a delta (present from that version on) or
//! [`until`](Shape::until) one (present before it), so that every shape of a
//! resource reads as one list beside Nova's history.
//!
//! ```
//! use compute_api::microversion::{deltas, v};
//! use compute_api::shape::Shape;
//! let body = Shape::new(v(2, 60))
//!     .field("name", "m1.tiny")
//!     .since(deltas::FLAVOR_DESCRIPTION, "description", serde_json::Value::Null)
//!     .since(deltas::FLAVOR_EXTRA_SPECS, "extra_specs", serde_json::json!({}))
//!     .build();
//! assert_eq!(body, serde_json::json!({"name": "m1.tiny", "description": null}));
//! ```

use crate::microversion::ApiVersion;
use serde_json::{Map, Value};

/// A JSON object under construction for one request's version.
#[derive(Debug, Clone)]
pub struct Shape {
    version: ApiVersion,
    map: Map<String, Value>,
}

impl Shape {
    pub fn new(version: ApiVersion) -> Shape {
        Shape {
            version,
            map: Map::new(),
        }
    }

    /// A key at every version.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Shape {
        self.map.insert(key.to_owned(), value.into());
        self
    }

    /// A key from version `delta` on.
    pub fn since(self, delta: ApiVersion, key: &str, value: impl Into<Value>) -> Shape {
        if self.version.at_least(delta) {
            self.field(key, value)
        } else {
            self
        }
    }

    /// A key before version `delta` only (the delta removed it).
    pub fn until(self, delta: ApiVersion, key: &str, value: impl Into<Value>) -> Shape {
        if self.version.at_least(delta) {
            self
        } else {
            self.field(key, value)
        }
    }

    /// One value before `delta`, another from it on.
    pub fn changed(
        self,
        delta: ApiVersion,
        key: &str,
        before: impl Into<Value>,
        after: impl Into<Value>,
    ) -> Shape {
        if self.version.at_least(delta) {
            self.field(key, after)
        } else {
            self.field(key, before)
        }
    }

    pub fn build(self) -> Value {
        Value::Object(self.map)
    }
}
