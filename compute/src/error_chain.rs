//! An error and its causes on one line, `outer: inner: ...`: the one way the
//! workspace prints an error chain in a log line, a report or a test message. Our
//! errors never quote their cause (the chain is printed once, here); a layer of
//! another crate that does is not printed twice.

/// `e` and each of its sources, `: `-separated; a cause whose text the line above
/// already holds is left out.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut above = out.clone();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !above.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        above = text;
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot write /x")]
        Write(#[source] std::io::Error),
        #[error("quoting: {0}")]
        Quoting(#[source] std::io::Error),
    }

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::other("disk full");
        assert_eq!(
            error_chain(&Outer::Write(io())),
            "cannot write /x: disk full"
        );
        assert_eq!(error_chain(&Outer::Quoting(io())), "quoting: disk full");
    }
}
