//! Changing an instance's metadata after boot (`compute meta-set` and
//! `meta-delete`, the Compute API's server metadata calls): the stored document in,
//! the new document out, checked as a whole (Nova's metadata limits and every rule
//! of an instance document). Pure: the store applies it under its row lock.

use crate::instance::{Instance, InstanceDocument, InstanceError};
use crate::quota::{self, QuotaError};

/// One change to an instance's metadata, as Nova's calls make them.
#[derive(Debug, Clone, Copy)]
pub enum MetaEdit<'a> {
    /// Sets these keys, keeping the others (`meta-set`; `POST .../metadata`,
    /// `PUT .../metadata/{key}`).
    Set(&'a [(String, String)]),
    /// Replaces the whole metadata (`PUT .../metadata`).
    Replace(&'a [(String, String)]),
    /// Deletes keys, each of which must exist (`meta-delete`;
    /// `DELETE .../metadata/{key}`).
    Delete(&'a [String]),
}

#[derive(Debug, thiserror::Error)]
pub enum MetaEditError {
    #[error("the stored document does not load")]
    Stored(#[source] InstanceError),
    #[error("no metadata key {0:?}")]
    NoKey(String),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error("the changed document is invalid")]
    Invalid(#[source] InstanceError),
    #[error("the changed document does not serialize")]
    Serialize(#[source] serde_json::Error),
}

/// `document` (JSON, as stored) with `edit` applied, as JSON.
pub fn edit_metadata(document: &str, edit: MetaEdit<'_>) -> Result<String, MetaEditError> {
    let mut doc =
        InstanceDocument::from_json(document.as_bytes()).map_err(MetaEditError::Stored)?;
    match edit {
        MetaEdit::Set(items) => {
            for (k, v) in items {
                doc.meta.insert(k.clone(), v.clone());
            }
        }
        MetaEdit::Replace(items) => {
            doc.meta = items.iter().cloned().collect();
        }
        MetaEdit::Delete(keys) => {
            for k in keys {
                if doc.meta.shift_remove(k).is_none() {
                    return Err(MetaEditError::NoKey(k.clone()));
                }
            }
        }
    }
    quota::check_metadata(doc.meta.iter())?;
    let instance = Instance::new(doc).map_err(MetaEditError::Invalid)?;
    serde_json::to_string(instance.document()).map_err(MetaEditError::Serialize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        let doc = include_str!("../tests/fixtures/basic.json");
        serde_json::to_string(&InstanceDocument::from_json(doc.as_bytes()).expect("fixture"))
            .expect("json")
    }

    fn meta(doc: &str) -> Vec<(String, String)> {
        let d = InstanceDocument::from_json(doc.as_bytes()).expect("doc");
        d.meta.into_iter().collect()
    }

    #[test]
    fn set_replace_and_delete_act_as_novas_calls() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let before = meta(&base());
        let set = edit_metadata(&base(), MetaEdit::Set(&[kv("role", "db")])).expect("set");
        let after = meta(&set);
        assert_eq!(
            after.len(),
            before.len() + usize::from(!before.iter().any(|(k, _)| k == "role"))
        );
        assert!(after.contains(&kv("role", "db")));
        let replaced = edit_metadata(&set, MetaEdit::Replace(&[kv("only", "1")])).expect("replace");
        assert_eq!(meta(&replaced), vec![kv("only", "1")]);
        let deleted = edit_metadata(&replaced, MetaEdit::Delete(&["only".into()])).expect("delete");
        assert!(meta(&deleted).is_empty());
    }

    #[test]
    fn a_missing_key_or_a_broken_limit_is_refused() {
        let err = edit_metadata(&base(), MetaEdit::Delete(&["nope".into()])).expect_err("no key");
        assert_eq!(err.to_string(), "no metadata key \"nope\"");
        let long = ("k".repeat(256), "v".to_owned());
        let err = edit_metadata(&base(), MetaEdit::Set(&[long])).expect_err("too long");
        assert!(
            matches!(err, MetaEditError::Quota(QuotaError::MetadataKey { .. })),
            "{err}"
        );
        let err = edit_metadata("{", MetaEdit::Set(&[])).expect_err("not json");
        assert!(matches!(err, MetaEditError::Stored(_)), "{err}");
    }
}
