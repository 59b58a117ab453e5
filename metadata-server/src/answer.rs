//! The metadata answer as a plain function: a parsed request and who is asking go in,
//! an [`Outcome`] comes out. No sockets, no clock (the time is passed in), no RNG (a
//! fresh `random_seed` is spliced in by the caller), no files: answers that need I/O
//! (the password store, dynamic vendor data) come back as outcomes naming the work.

use crate::cache::{RenderCache, TreeMemo};
use crate::identity::{Identity, Rejection};
use crate::reply::{Allow, Reply, HTML, TEXT};
use crate::store::InstanceEntry;
use crate::token::{parse_ttl, TokenAuthority};
use crate::token_headers as h;
use bytes::Bytes;
use compute::metadata::{Entry, LiveLeaf, MetadataPath, Segment};
use http::{HeaderMap, Method, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Nova's bound on a posted password.
pub const MAX_PASSWORD_LEN: usize = 1020;

/// Whether IMDSv2 tokens are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenMode {
    /// Plain GETs work; a token, when sent, must be valid.
    Optional,
    /// Every request but the token PUT needs a valid token (else 401).
    Required,
}

/// The parts of a request the answer depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a Method,
    /// The normalised path; `None` when the raw path names nothing (too long, bad
    /// percent-encoding).
    pub path: Option<&'a MetadataPath>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// What to do.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// Answer with the instance's stored password (empty `text/html` when none).
    PasswordGet(Uuid),
    /// Store `body` as the password unless one is stored (then 409).
    PasswordPost(Uuid, Bytes),
    /// `vendor_data2.json` with dynamic targets: fetch them, then render.
    VendorData2 {
        entry: Arc<InstanceEntry>,
        static_json: Bytes,
    },
    /// A signed form of the instance identity `document` (signed once, then cached).
    Identity {
        instance: Uuid,
        leaf: LiveLeaf,
        document: Bytes,
    },
    /// The instance's maintenance events (scheduled or history), from the event store.
    Events {
        instance: Uuid,
        leaf: LiveLeaf,
    },
}

/// Everything about the deployment the answer needs.
pub struct Responder {
    pub cache: RenderCache,
    pub tokens: TokenAuthority,
    pub token_mode: TokenMode,
    pub token_mode_for: HashMap<Uuid, TokenMode>,
    pub dynamic_vendor_data: bool,
}

const GET_HEAD: Allow = Allow::GetHead;
/// What the token path allows, as AWS's `Allow` says.
const TOKEN_METHODS: Allow = Allow::OptionsPut;
const TOKEN_PATH: [&str; 4] = ["ec2", "latest", "api", "token"];

/// `PUT /<version>/api/token` with a version other than `latest`: AWS refuses it.
fn is_versioned_token_path(segs: &[Segment]) -> bool {
    segs.len() == 4
        && segs[0] == "ec2"
        && segs[1] != "latest"
        && segs[2] == "api"
        && segs[3] == "token"
}

fn is_read(m: &Method) -> bool {
    m == Method::GET || m == Method::HEAD
}

impl Responder {
    /// The answer; `memo` is the asking connection's last tree (start with the default).
    pub fn answer(
        &self,
        req: RequestParts<'_>,
        who: &Identity<'_>,
        now: u64,
        memo: &mut TreeMemo,
    ) -> Outcome {
        Outcome::Reply(match self.route(req, who, now, memo) {
            Ok(outcome) => return outcome,
            Err(reply) => reply,
        })
    }

    fn route(
        &self,
        req: RequestParts<'_>,
        who: &Identity<'_>,
        now: u64,
        memo: &mut TreeMemo,
    ) -> Result<Outcome, Reply> {
        let path = req.path.ok_or_else(Reply::not_found)?;
        let segs = path.segments();
        if segs == TOKEN_PATH {
            return self.issue_token(req, who, now).map(Outcome::Reply);
        }
        if req.method == Method::PUT && is_versioned_token_path(segs) {
            return Err(Reply::error(StatusCode::FORBIDDEN));
        }
        let settings = self.cache.settings();
        let entry = match who {
            Identity::Instance(e) => {
                self.check_token(req, e, now)?;
                e
            }
            Identity::Rejected(_) | Identity::Unknown => {
                let listing = if path.is_ec2_versions() {
                    settings.ec2_versions_listing()
                } else if path.is_openstack_versions() && matches!(who, Identity::Unknown) {
                    settings.openstack_versions_listing()
                } else if let Identity::Rejected(r) = who {
                    return Err(rejection(*r));
                } else {
                    return Err(Reply::not_found());
                };
                if !is_read(req.method) {
                    return Err(Reply::method_not_allowed(GET_HEAD));
                }
                return Ok(Outcome::Reply(Reply::ok(TEXT, listing)));
            }
        };
        let mut memo_tree = self.cache.tree_memo(entry, segs, memo).map_err(|e| {
            tracing::error!(instance = %entry.uuid(), error = %crate::error_chain(&e), "a stored document no longer parses");
            Reply::error(StatusCode::INTERNAL_SERVER_ERROR)
        })?;
        let tree = memo_tree.tree;
        let found = tree.lookup(segs).ok_or_else(Reply::not_found)?;
        if let Entry::Password = found {
            let uuid = entry.uuid();
            return match *req.method {
                Method::GET | Method::HEAD => Ok(Outcome::PasswordGet(uuid)),
                Method::POST => Ok(Outcome::PasswordPost(uuid, req.body.clone())),
                _ => Err(Reply::error(StatusCode::BAD_REQUEST)),
            };
        }
        if !is_read(req.method) {
            return Err(Reply::method_not_allowed(GET_HEAD));
        }
        match found {
            Entry::Dir(d) => d
                .listing
                .clone()
                .map(|l| Outcome::Reply(Reply::ok(TEXT, l).with_etag(memo_tree.etag(found))))
                .ok_or_else(Reply::not_found),
            Entry::File(f) => {
                let is_vd2 =
                    segs.len() == 3 && segs[0] == "openstack" && segs[2] == "vendor_data2.json";
                if is_vd2 && self.dynamic_vendor_data {
                    let static_json = tree
                        .lookup(&[segs[0].as_str(), segs[1].as_str(), "vendor_data.json"])
                        .and_then(|e| match e {
                            Entry::File(f) => Some(f.body.with_seed("")),
                            _ => None,
                        })
                        .unwrap_or_else(|| Bytes::from_static(b"{}"));
                    return Ok(Outcome::VendorData2 {
                        entry: Arc::clone(entry),
                        static_json,
                    });
                }
                Ok(Outcome::Reply(
                    Reply::file(f).with_etag(memo_tree.etag(found)),
                ))
            }
            Entry::Live(leaf) => live(entry, tree, segs, *leaf),
            Entry::Password => Err(Reply::not_found()),
        }
    }

    /// The lifetime left on the request's token, when it carries a valid one for the
    /// caller: AWS echoes it in `X-aws-ec2-metadata-token-ttl-seconds`.
    pub fn token_ttl(&self, headers: &HeaderMap, who: &Identity<'_>, now: u64) -> Option<u32> {
        let entry = who.instance()?;
        match h::first(headers, &h::TOKEN)? {
            Ok(token) => self
                .tokens
                .remaining(token, entry.uuid(), now)
                .ok()
                .and_then(|secs| u32::try_from(secs).ok()),
            Err(()) => None,
        }
    }

    fn mode_for(&self, uuid: &Uuid) -> TokenMode {
        self.token_mode_for
            .get(uuid)
            .copied()
            .unwrap_or(self.token_mode)
    }

    fn check_token(
        &self,
        req: RequestParts<'_>,
        entry: &InstanceEntry,
        now: u64,
    ) -> Result<(), Reply> {
        let uuid = entry.uuid();
        match h::first(req.headers, &h::TOKEN) {
            Some(Ok(token)) => self
                .tokens
                .verify(token, uuid, now)
                .map_err(|_| Reply::error(StatusCode::UNAUTHORIZED)),
            Some(Err(())) => Err(Reply::error(StatusCode::UNAUTHORIZED)),
            None if self.mode_for(&uuid) == TokenMode::Required => {
                Err(Reply::error(StatusCode::UNAUTHORIZED))
            }
            None => Ok(()),
        }
    }

    fn issue_token(
        &self,
        req: RequestParts<'_>,
        who: &Identity<'_>,
        now: u64,
    ) -> Result<Reply, Reply> {
        if req.method == Method::OPTIONS {
            return Ok(Reply {
                allow: Some(TOKEN_METHODS),
                ..Reply::ok(TEXT, Bytes::new())
            });
        }
        if req.method != Method::PUT {
            return Err(Reply::method_not_allowed(TOKEN_METHODS));
        }
        // A token must not leave the host through a proxy (AWS answers 403).
        if h::get(req.headers, &h::FORWARDED_FOR).is_some() {
            return Err(Reply::error(StatusCode::FORBIDDEN));
        }
        let entry = match who {
            Identity::Instance(e) => e,
            Identity::Rejected(r) => return Err(rejection(*r)),
            Identity::Unknown => return Err(Reply::not_found()),
        };
        let ttl = match h::first(req.headers, &h::TOKEN_TTL) {
            Some(Ok(v)) => parse_ttl(Some(v)),
            Some(Err(())) => parse_ttl(Some("")),
            None => parse_ttl(None),
        }
        .map_err(|_| Reply::error(StatusCode::BAD_REQUEST))?;
        let token = self.tokens.issue(entry.uuid(), ttl, now);
        Ok(Reply {
            hop_limited: true,
            token_ttl: Some(ttl),
            ..Reply::ok(TEXT, Bytes::from(token))
        })
    }
}

/// A leaf the server fills: the identity forms need the sibling document's bytes.
fn live(
    entry: &InstanceEntry,
    tree: &compute::MetadataTree,
    segs: &[Segment],
    leaf: LiveLeaf,
) -> Result<Outcome, Reply> {
    let instance = entry.uuid();
    match leaf {
        LiveLeaf::MaintenanceScheduled | LiveLeaf::MaintenanceHistory => {
            Ok(Outcome::Events { instance, leaf })
        }
        LiveLeaf::IdentitySignature | LiveLeaf::IdentityPkcs7 | LiveLeaf::IdentityRsa2048 => {
            let (_, dir) = segs.split_last().ok_or_else(Reply::not_found)?;
            let mut at: Vec<&str> = dir.iter().map(Segment::as_str).collect();
            at.push("document");
            match tree.lookup(&at) {
                Some(Entry::File(f)) => Ok(Outcome::Identity {
                    instance,
                    leaf,
                    document: f.body.with_seed(""),
                }),
                _ => Err(Reply::not_found()),
            }
        }
    }
}

fn rejection(r: Rejection) -> Reply {
    Reply::error(match r {
        Rejection::BadHeaders => StatusCode::BAD_REQUEST,
        Rejection::BadSignature => StatusCode::FORBIDDEN,
        Rejection::NoSuchInstance => StatusCode::NOT_FOUND,
    })
}

/// The password answers, once the store has spoken.
pub fn password_get_reply(stored: Option<Vec<u8>>) -> Reply {
    Reply::ok(HTML, stored.map(Bytes::from).unwrap_or_default())
}

/// Whether a posted password may be stored (`None`) or the refusal.
pub fn password_post_check(body: &[u8], already_set: bool) -> Option<Reply> {
    if already_set {
        return Some(Reply::error(StatusCode::CONFLICT));
    }
    (body.len() > MAX_PASSWORD_LEN).then(|| Reply::error(StatusCode::BAD_REQUEST))
}
