//! Tests' HTTP/1.1 client for our servers: one request per connection
//! (`Connection: close`) on a stream the test opened (from the source address it
//! wants, with its timeouts), read to the end, the head split from the body and the
//! body checked against its `Content-Length`. Written on a bare socket so that a
//! test sees exactly the bytes the server sent.
//!
//! Also the port a server logged for a socket it bound to port 0.
//!
//! It panics on anything malformed: it is for tests only.

use std::io::{Read, Write};

/// A response as it came.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` with these headers and body on `stream` (Host
/// 169.254.169.254, `Connection: close`; a `Content-Length` when there is a body or
/// the method is POST or PUT) and reads the response to the end.
pub fn exchange<S: Read + Write>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .expect("writing the request");
    stream.write_all(body).expect("writing the request body");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading the response to {method} {path}: {e}"));
    parse(&raw, method == "HEAD")
}

/// Splits a whole response; unless it answers a HEAD (`head`) or is a 304, its
/// body must be as long as its `Content-Length` says.
pub fn parse(raw: &[u8], head: bool) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head_text = std::str::from_utf8(&raw[..split]).expect("an ASCII head");
    let mut lines = head_text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head_text}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {l:?} in {head_text}"));
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let resp = Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    // A 304 has no body, and no length to check.
    if !head && resp.status != 304 {
        let len: usize = resp
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {head_text}"));
        assert_eq!(len, resp.body.len(), "Content-Length matches the body");
    }
    resp
}

/// The port in a server's log line `... listener=ADDR ...`: how `metadata-server`
/// reports the port the kernel gave a socket asked for on port 0. A test that
/// binds port 0 and reads the port back cannot lose a port it chose to another
/// process before the server bound it.
pub fn listener_port(line: &str) -> Option<u16> {
    let addr = line.split(" listener=").nth(1)?.split_whitespace().next()?;
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_of_a_listener_line() {
        let line = "2026-12-02T20:01:02Z  INFO metadata_server: listening listener=127.0.0.2:40123";
        assert_eq!(listener_port(line), Some(40123));
        let bound = "INFO bound listener opened listener=127.0.0.1:3 (instance d8e0)";
        assert_eq!(listener_port(bound), Some(3));
        assert_eq!(
            listener_port("INFO listening listener=/run/x.sock (instance d8e0)"),
            None
        );
        assert_eq!(listener_port("INFO stopped"), None);
    }

    #[test]
    fn a_response_is_split_and_its_length_checked() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"x\"\r\n\r\nhi",
            false,
        );
        assert_eq!((r.status, r.text().as_str()), (200, "hi"));
        assert_eq!(r.header("etag"), Some("\"x\""));
        let head = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
        assert!(head.body.is_empty());
    }

    #[test]
    #[should_panic(expected = "Content-Length matches the body")]
    fn a_short_body_fails_the_test() {
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false);
    }
}
