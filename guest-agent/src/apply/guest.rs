//! Pure edits of the guest's own files: `/etc/passwd` lookups, the `127.0.1.1` line
//! of `/etc/hosts`, merging `authorized_keys`.

/// A user as `/etc/passwd` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

pub fn lookup_user(passwd: &str, name: &str) -> Option<PasswdEntry> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[0] != name {
            return None;
        }
        Some(PasswdEntry {
            name: f[0].into(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].into(),
        })
    })
}

pub fn root_user() -> PasswdEntry {
    PasswdEntry {
        name: "root".into(),
        uid: 0,
        gid: 0,
        home: "/root".into(),
    }
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// `/etc/hosts` with one `127.0.1.1` line naming this host (others kept as they are).
pub fn hosts_with(existing: Option<&str>, fqdn: &str, short: &str) -> String {
    let names = if fqdn == short {
        short.to_owned()
    } else {
        format!("{fqdn} {short}")
    };
    let mut out = String::new();
    let mut placed = false;
    for line in existing.unwrap_or(DEFAULT_HOSTS).lines() {
        if line.split_whitespace().next() == Some("127.0.1.1") {
            if !placed {
                out.push_str(&format!("127.0.1.1\t{names}\n"));
                placed = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push_str(&format!("127.0.1.1\t{names}\n"));
    }
    out
}

/// `authorized_keys` with the new keys appended, none twice. Returns the file and
/// how many keys were added.
pub fn merge_keys(existing: &str, keys: &[String]) -> (String, usize) {
    let mut out = existing.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let mut added = 0;
    for k in keys {
        if !out.lines().any(|l| l.trim() == k.trim()) {
            out.push_str(k.trim());
            out.push('\n');
            added += 1;
        }
    }
    (out, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_files() {
        let pw = "root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000:,,,:/home/debian:/bin/bash\n";
        assert_eq!(
            lookup_user(pw, "debian").map(|u| (u.uid, u.home)),
            Some((1000, "/home/debian".into()))
        );
        assert_eq!(lookup_user(pw, "nobody"), None);
        let h = hosts_with(Some("127.0.0.1 localhost\n127.0.1.1 old\n"), "a.b", "a");
        assert_eq!(h, "127.0.0.1 localhost\n127.0.1.1\ta.b a\n");
        assert!(hosts_with(None, "a", "a").ends_with("127.0.1.1\ta\n"));
        let (k, n) = merge_keys(
            "ssh-rsa A x",
            &["ssh-rsa A x".into(), "ssh-ed25519 B y".into()],
        );
        assert_eq!((k.as_str(), n), ("ssh-rsa A x\nssh-ed25519 B y\n", 1));
    }
}
