//! Header names the service reads, and how it looks them up, in one place: the
//! IMDSv2 token headers in both the AWS and the Firecracker spellings, and the
//! proxy headers. HTTP header names are case-insensitive; these are the lowercase
//! forms, made once (a lookup by a string would parse and lowercase the name on every
//! request).

use http::HeaderName;

/// Where a client sends its token on later requests (AWS first, then Firecracker).
pub const TOKEN: [HeaderName; 2] = [
    HeaderName::from_static("x-aws-ec2-metadata-token"),
    HeaderName::from_static("x-metadata-token"),
];

/// Where a client asks for a token's lifetime on `PUT /latest/api/token`.
pub const TOKEN_TTL: [HeaderName; 2] = [
    HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds"),
    HeaderName::from_static("x-metadata-token-ttl-seconds"),
];

/// The address a proxy forwarded the request for.
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Neutron metadata proxy headers.
pub const INSTANCE_ID: HeaderName = HeaderName::from_static("x-instance-id");
pub const TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");
pub const INSTANCE_ID_SIGNATURE: HeaderName = HeaderName::from_static("x-instance-id-signature");
/// All three: a request carrying any of them is a signed one.
pub const SIGNED: [HeaderName; 3] = [INSTANCE_ID, TENANT_ID, INSTANCE_ID_SIGNATURE];

/// Up to this many distinct names, a request's headers are scanned rather than
/// hashed into: a guest sends a handful, and every request asks after several
/// names that are mostly absent, each of which a lookup would hash.
const SCAN_UP_TO: usize = 8;

/// The value of `name`, if present (the first, when repeated).
pub fn get<'a>(headers: &'a http::HeaderMap, name: &HeaderName) -> Option<&'a http::HeaderValue> {
    if headers.keys_len() <= SCAN_UP_TO {
        headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    } else {
        headers.get(name)
    }
}

/// A header that may appear once came more than once, or is not visible ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The one value of `name` (`Ok(None)` when absent).
pub fn single<'a>(
    headers: &'a http::HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, Malformed> {
    if headers.keys_len() <= SCAN_UP_TO {
        only(headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v))
    } else {
        only(headers.get_all(name).iter())
    }
}

fn only<'a>(
    mut values: impl Iterator<Item = &'a http::HeaderValue>,
) -> Result<Option<&'a str>, Malformed> {
    let first = values.next();
    if values.next().is_some() {
        return Err(Malformed);
    }
    first.map(|v| v.to_str().map_err(|_| Malformed)).transpose()
}

/// The first of `names` present in `headers`, as text (`None` when absent or not
/// visible ASCII).
pub fn first<'a>(
    headers: &'a http::HeaderMap,
    names: &[HeaderName],
) -> Option<Result<&'a str, ()>> {
    names
        .iter()
        .find_map(|n| get(headers, n))
        .map(|v| v.to_str().map_err(|_| ()))
}

/// Whether any of `names` is present.
pub fn any(headers: &http::HeaderMap, names: &[HeaderName]) -> bool {
    names.iter().any(|n| get(headers, n).is_some())
}
