//! Header names the service reads, in one place: the IMDSv2 token headers in both
//! the AWS and the Firecracker spellings, and the proxy headers. HTTP header names are
//! case-insensitive; these are the lowercase forms `http::HeaderMap` looks up.

/// Where a client sends its token on later requests (AWS first, then Firecracker).
pub const TOKEN: [&str; 2] = ["x-aws-ec2-metadata-token", "x-metadata-token"];

/// Where a client asks for a token's lifetime on `PUT /latest/api/token`.
pub const TOKEN_TTL: [&str; 2] = [
    "x-aws-ec2-metadata-token-ttl-seconds",
    "x-metadata-token-ttl-seconds",
];

/// The address a proxy forwarded the request for.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// Neutron metadata proxy headers.
pub const INSTANCE_ID: &str = "x-instance-id";
pub const TENANT_ID: &str = "x-tenant-id";
pub const INSTANCE_ID_SIGNATURE: &str = "x-instance-id-signature";

/// The first of `names` present in `headers`, as text (`None` when absent or not
/// visible ASCII).
pub fn first<'a>(headers: &'a http::HeaderMap, names: &[&str]) -> Option<Result<&'a str, ()>> {
    names
        .iter()
        .find_map(|n| headers.get(*n))
        .map(|v| v.to_str().map_err(|_| ()))
}

/// Whether any of `names` is present.
pub fn any(headers: &http::HeaderMap, names: &[&str]) -> bool {
    names.iter().any(|n| headers.contains_key(*n))
}
