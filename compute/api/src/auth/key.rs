//! The key tokens are signed with: 32 random bytes in a file of mode 0600, made on
//! first use (atomically: a half-written key never exists) and read after.

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the token key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token key {path} holds {len} bytes, not 32: remove it to make a new one (every token then ends)")]
    Length { path: PathBuf, len: usize },
    #[error("the token key {path} may be read by others (mode {mode:o}): chmod 0600 it")]
    Mode { path: PathBuf, mode: u32 },
    #[error("no randomness for the token key")]
    Random(#[source] getrandom::Error),
    #[error("cannot write the token key")]
    Write(#[source] compute_io::atomic::AtomicError),
    #[error("cannot make the folder of the token key {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The key in `path`, made when the file does not exist.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], KeyError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let read = |source| KeyError::Read {
                path: path.to_owned(),
                source,
            };
            let mode = f.metadata().map_err(read)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Mode {
                    path: path.to_owned(),
                    mode,
                });
            }
            let mut bytes = Vec::new();
            f.by_ref().take(64).read_to_end(&mut bytes).map_err(read)?;
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Length {
                path: path.to_owned(),
                len: bytes.len(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| KeyError::Folder {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key).map_err(KeyError::Random)?;
            let made = compute_io::atomic::create_with(path, 0o600, |f| {
                use std::io::Write;
                f.write_all(&key)
                    .map_err(|source| compute_io::atomic::AtomicError::Write {
                        path: path.to_owned(),
                        source,
                    })
            })
            .map_err(KeyError::Write)?;
            match made {
                Some(()) => {
                    tracing::info!(path = %path.display(), "token key made");
                    Ok(key)
                }
                // Another process made it first: theirs is the key.
                None => load_or_create(path),
            }
        }
        Err(source) => Err(KeyError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}
