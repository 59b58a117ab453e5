//! Compute's version documents (no token needed): `GET /` lists v2.1 (keystoneauth
//! reads its `version`/`min_version` range), `GET /v2.1` describes it. Self links
//! are absolute, from the URL the client used.

use crate::microversion::{MAX, MIN};
use crate::{ApiRequest, ApiResponse};
use serde_json::{json, Value};

fn entry(req: &ApiRequest) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX.to_string(),
        "min_version": MIN.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}/", req.urls.compute)}],
    })
}

/// `GET /`.
pub fn root(req: &ApiRequest) -> ApiResponse {
    ApiResponse::ok(json!({"versions": [entry(req)]}))
}

/// `GET /v2.1`.
pub fn v21_doc(req: &ApiRequest) -> Value {
    let mut doc = entry(req);
    if let Some(links) = doc["links"].as_array_mut() {
        links.push(json!({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}));
    }
    doc["media-types"] = json!([{
        "base": "application/json",
        "type": "application/vnd.openstack.compute+json;version=2.1",
    }]);
    json!({"version": doc})
}

pub fn v21(req: &ApiRequest) -> ApiResponse {
    ApiResponse::ok(v21_doc(req))
}
