//! Compute microversions: what a request asks for (`OpenStack-API-Version: compute
//! X.Y`, else the legacy `X-OpenStack-Nova-API-Version`, else the minimum), the range
//! announced, and the named deltas a response shape depends on.
//!
//! Nova's rules: no header is the minimum (2.1); the new header wins over the
//! legacy one; `latest` is the maximum; a malformed version is 400; one outside the
//! range is 406. A handler never compares numbers by hand: it asks
//! `call.version().at_least(deltas::FLAVOR_DESCRIPTION)` or shapes its body with
//! [`crate::shape::Shape::since`], naming the delta from [`deltas`].

use http::HeaderMap;

/// A compute API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

/// Shorthand for the tables below.
pub const fn v(major: u16, minor: u16) -> ApiVersion {
    ApiVersion { major, minor }
}

/// The oldest version served (also what a request without a header gets).
pub const MIN: ApiVersion = v(2, 1);
/// The newest version served (Nova 2024.1/2024.2, openstacksdk 4.0 to 4.6's Server).
pub const MAX: ApiVersion = v(2, 96);

/// The request header (the service name, then the version).
pub const HEADER: &str = "openstack-api-version";
/// The legacy request and response header (the version alone).
pub const LEGACY_HEADER: &str = "x-openstack-nova-api-version";

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl ApiVersion {
    /// Parses `X.Y` (no leading zeros beyond a lone `0`, as Nova's pattern).
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        let num = |t: &str| -> Option<u16> {
            let ok = !t.is_empty()
                && t.len() <= 4
                && t.bytes().all(|c| c.is_ascii_digit())
                && (t == "0" || !t.starts_with('0'));
            if ok {
                t.parse().ok()
            } else {
                None
            }
        };
        Some(v(num(a)?, num(b)?))
    }

    /// Whether this version has the change `delta` made.
    pub fn at_least(self, delta: ApiVersion) -> bool {
        self >= delta
    }
}

/// Why a request's version cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// 400, Nova's `InvalidAPIVersionString`.
    #[error("API Version String {0} is of invalid format. Must be of format MajorNum.MinorNum.")]
    Malformed(String),
    /// 406, Nova's `InvalidGlobalAPIVersion`.
    #[error("Version {0} is not supported by the API. Minimum is {MIN} and maximum is {MAX}.")]
    Unsupported(String),
}

/// The version a request asks for, as Nova negotiates it.
pub fn negotiate(headers: &HeaderMap) -> Result<ApiVersion, VersionError> {
    let from_new = headers
        .get_all(HEADER)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .find_map(|item| {
            let mut words = item.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(service), Some(version), None) if service.eq_ignore_ascii_case("compute") => {
                    Some(version.to_owned())
                }
                _ => None,
            }
        });
    let asked = match from_new {
        Some(v) => Some(v),
        None => match headers.get(LEGACY_HEADER) {
            Some(h) => Some(
                h.to_str()
                    .map_err(|_| VersionError::Malformed("(not text)".into()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        },
    };
    let Some(asked) = asked else {
        return Ok(MIN);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let shown: String = asked.chars().take(32).collect();
    let version =
        ApiVersion::parse(&asked).ok_or_else(|| VersionError::Malformed(shown.clone()))?;
    if version < MIN || version > MAX {
        return Err(VersionError::Unsupported(shown));
    }
    Ok(version)
}

/// The changes of the implemented resources, by the version that made them (Nova's
/// `api_version_request.py` history). Name each new one here, beside its number.
pub mod deltas {
    use super::{v, ApiVersion};

    /// Keypairs: `type`; create answers 201, delete 204.
    pub const KEYPAIR_TYPE: ApiVersion = v(2, 2);
    /// Keypairs: an admin may act for another user (`user_id`).
    pub const KEYPAIR_USER_ID: ApiVersion = v(2, 10);
    /// Keypairs: `limit` and `marker` on the list, `keypairs_links`.
    pub const KEYPAIR_PAGING: ApiVersion = v(2, 35);
    /// Limits: the network quotas (floating IPs, security groups) leave.
    pub const LIMITS_NO_NETWORK: ApiVersion = v(2, 36);
    /// Flavors: `description`.
    pub const FLAVOR_DESCRIPTION: ApiVersion = v(2, 55);
    /// Limits: personality (injected files) leaves.
    pub const LIMITS_NO_PERSONALITY: ApiVersion = v(2, 57);
    /// Flavors: `extra_specs` in the flavor itself.
    pub const FLAVOR_EXTRA_SPECS: ApiVersion = v(2, 61);
    /// Flavors: `swap` is `0`, not `""`, when there is none.
    pub const FLAVOR_SWAP_INTEGER: ApiVersion = v(2, 75);
    /// Keypairs: the server no longer generates keys (`public_key` required).
    pub const KEYPAIR_NO_GENERATION: ApiVersion = v(2, 92);
    /// Servers: `locked`.
    pub const SERVER_LOCKED: ApiVersion = v(2, 9);
    /// Servers: `description`.
    pub const SERVER_DESCRIPTION: ApiVersion = v(2, 19);
    /// Servers: `tags`.
    pub const SERVER_TAGS: ApiVersion = v(2, 26);
    /// Servers: `networks` is required on create (a list, `auto` or `none`).
    pub const SERVER_NETWORKS_REQUIRED: ApiVersion = v(2, 37);
    /// Servers: createImage answers `{"image_id"}` and no `Location`.
    pub const SERVER_IMAGE_ID_BODY: ApiVersion = v(2, 45);
    /// Servers: `flavor` is the embedded flavor (no id).
    pub const SERVER_FLAVOR_EMBEDDED: ApiVersion = v(2, 47);
    /// Servers: `personality` (injected files) leaves create and rebuild.
    pub const SERVER_NO_PERSONALITY: ApiVersion = v(2, 57);
    /// Servers: `trusted_image_certificates`.
    pub const SERVER_TRUSTED_CERTS: ApiVersion = v(2, 63);
    /// Servers: `server_groups` (show, update, rebuild).
    pub const SERVER_GROUPS: ApiVersion = v(2, 71);
    /// Servers: `locked_reason`.
    pub const SERVER_LOCKED_REASON: ApiVersion = v(2, 73);
    /// Servers: update and rebuild answer the whole server.
    pub const SERVER_FULL_UPDATE: ApiVersion = v(2, 75);
    /// Servers: `OS-EXT-SRV-ATTR:hostname` for everyone.
    pub const SERVER_HOSTNAME: ApiVersion = v(2, 90);
    /// Servers: `pinned_availability_zone`.
    pub const SERVER_PINNED_AZ: ApiVersion = v(2, 96);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, val) in pairs {
            h.append(*k, HeaderValue::from_static(val));
        }
        h
    }

    #[test]
    fn negotiation_is_novas() {
        assert_eq!(negotiate(&with(&[])), Ok(MIN));
        assert_eq!(negotiate(&with(&[(HEADER, "compute 2.55")])), Ok(v(2, 55)));
        assert_eq!(negotiate(&with(&[(LEGACY_HEADER, "2.10")])), Ok(v(2, 10)));
        assert_eq!(
            negotiate(&with(&[(HEADER, "compute 2.61"), (LEGACY_HEADER, "2.2")])),
            Ok(v(2, 61)),
            "the new header wins"
        );
        assert_eq!(
            negotiate(&with(&[(HEADER, "volume 3.5"), (LEGACY_HEADER, "2.2")])),
            Ok(v(2, 2)),
            "another service's entry is not ours"
        );
        assert_eq!(negotiate(&with(&[(HEADER, "compute latest")])), Ok(MAX));
        assert_eq!(
            negotiate(&with(&[(HEADER, "compute 2.97")])),
            Err(VersionError::Unsupported("2.97".into()))
        );
        assert_eq!(
            negotiate(&with(&[(HEADER, "compute 3.0")])),
            Err(VersionError::Unsupported("3.0".into()))
        );
        for bad in ["2", "2.x", "2.01", "", "2.1.1", "-2.1"] {
            let h = with(&[]);
            let mut h = h;
            h.insert(LEGACY_HEADER, HeaderValue::from_str(bad).expect("value"));
            assert!(
                matches!(negotiate(&h), Err(VersionError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            VersionError::Unsupported("2.97".into()).to_string(),
            "Version 2.97 is not supported by the API. Minimum is 2.1 and maximum is 2.96."
        );
    }
}
