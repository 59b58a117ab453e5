//! A test's HTTP/1.1 client for the metadata server: `httptest` on a connection to
//! the server's address, bounded by a timeout.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a request may take before the test fails (a hung server, not speed).
const TIMEOUT: Duration = Duration::from_secs(120);

pub use httptest::Resp;

/// `GET path` from `server` with these headers.
pub fn get(server: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let s = TcpStream::connect_timeout(&server, TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot connect to {server}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    httptest::exchange(s, "GET", path, headers, b"")
}
