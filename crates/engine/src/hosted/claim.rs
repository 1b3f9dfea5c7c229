//! Claiming the objects a parent controls: keep what is ours and still
//! matches, release what is ours and no longer matches, adopt matching
//! orphans.
//!
//! Used for CompositeController children and for ControllerRevisions; the
//! [`Claimable`] of each says how its objects are named and written. Before
//! the first adoption of a sync, one uncached GET checks that the parent
//! still exists with the same UID and is not being deleted (the answer is
//! reused for the rest of the sync). Nothing is adopted or released while
//! the parent is being deleted. Knows nothing of controller kinds.

use std::sync::Arc;

use kube::Api;
use metacontroller_apply::owner::{
    add_owner_reference, controller_uid, make_controller_ref, remove_owner_reference,
};
use metacontroller_selectors::Selector;
use serde_json::Value;

use crate::aggregate::Aggregate;
use crate::dynapi::{self, RequestError};
use crate::object::{self, RawObject};

/// The claimable objects of one type.
pub(crate) trait Claimable {
    /// How an object is named in adoption and release errors.
    fn label(&self, obj: &Value) -> String {
        object::describe(obj)
    }

    /// Where the object is written.
    fn api(&self, obj: &Value) -> Api<RawObject>;

    /// The claimed version of an adopted object: `cached` as observed, or
    /// `written` as the adoption stored it.
    fn adopted(&self, cached: Arc<Value>, written: Value) -> Arc<Value>;

    /// Sees the object a release wrote.
    fn released(&self, _written: Value) {}
}

/// Why the parent may not adopt anything.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecheckError {
    /// The uncached GET failed.
    #[error("can't recheck DeletionTimestamp: {0}")]
    Get(#[source] RequestError),
    /// The parent was replaced by another object of the same name.
    #[error(
        "can't recheck DeletionTimestamp: original {parent} is gone: got uid {got}, wanted {wanted}"
    )]
    Replaced {
        /// The parent.
        parent: String,
        /// The UID found.
        got: String,
        /// The UID expected.
        wanted: String,
    },
    /// The parent is being deleted.
    #[error("{0} has just been deleted")]
    Deleting(String),
}

/// One failed adoption or release.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimError {
    /// The parent may not adopt.
    #[error("can't adopt {what} ({uid}): {source}")]
    Recheck {
        /// The orphan.
        what: String,
        /// Its UID.
        uid: String,
        /// Why adoption is not allowed.
        #[source]
        source: Arc<RecheckError>,
    },
    /// The owner reference could not be added.
    #[error("can't adopt {what}: {source}")]
    Adopt {
        /// The orphan.
        what: String,
        /// The failed write.
        #[source]
        source: RequestError,
    },
    /// The owner reference could not be removed.
    #[error("can't release {what}: {source}")]
    Release {
        /// The object.
        what: String,
        /// The failed write.
        #[source]
        source: RequestError,
    },
}

/// Every failed adoption and release of one claim.
pub(crate) type ClaimErrors = Aggregate<ClaimError>;

/// The claims of one parent during one sync.
pub(crate) struct Claim<'a> {
    parent: &'a Value,
    parent_api: Api<RawObject>,
    can_adopt: Option<Result<(), Arc<RecheckError>>>,
}

impl<'a> Claim<'a> {
    /// Claims for `parent`, re-read through `parent_api` before adopting.
    pub fn new(parent: &'a Value, parent_api: Api<RawObject>) -> Self {
        Claim {
            parent,
            parent_api,
            can_adopt: None,
        }
    }

    /// Claims among `candidates` (objects the parent controls and orphans)
    /// those `selector` matches; returns them in candidate order.
    pub async fn claim(
        &mut self,
        target: &impl Claimable,
        candidates: Vec<Arc<Value>>,
        selector: &Selector,
    ) -> Result<Vec<Arc<Value>>, ClaimErrors> {
        let parent = self.parent;
        let parent_uid = object::uid(parent);
        let parent_deleting = object::is_deleting(parent);
        let mut claimed = Vec::new();
        let mut errors = Vec::new();
        for obj in candidates {
            let matches = selector.matches_object_labels(&obj);
            match controller_uid(&obj) {
                Some(uid) if uid != parent_uid => {}
                Some(_) if matches => claimed.push(obj),
                Some(_) => {
                    if !parent_deleting && let Err(err) = self.release(target, &obj).await {
                        errors.push(err);
                    }
                }
                None => {
                    if parent_deleting || !matches || object::is_deleting(&obj) {
                        continue;
                    }
                    if let Err(source) = self.may_adopt().await {
                        errors.push(ClaimError::Recheck {
                            what: object::describe(&obj),
                            uid: object::uid(&obj).to_owned(),
                            source,
                        });
                        continue;
                    }
                    match self.adopt(target, obj).await {
                        Ok(Some(adopted)) => claimed.push(adopted),
                        Ok(None) => {}
                        Err(err) => errors.push(err),
                    }
                }
            }
        }
        match Aggregate::of(errors) {
            None => Ok(claimed),
            Some(errors) => Err(errors),
        }
    }

    /// The uncached parent check, made once per claim.
    async fn may_adopt(&mut self) -> Result<(), Arc<RecheckError>> {
        if let Some(result) = &self.can_adopt {
            return result.clone();
        }
        let result = recheck(&self.parent_api, self.parent)
            .await
            .map_err(Arc::new);
        self.can_adopt = Some(result.clone());
        result
    }

    /// Adds our controller reference; `None` when the object vanished.
    async fn adopt(
        &self,
        target: &impl Claimable,
        obj: Arc<Value>,
    ) -> Result<Option<Arc<Value>>, ClaimError> {
        let what = target.label(&obj);
        tracing::info!(parent = %object::describe(self.parent), child = %what, "adopting");
        let owner = make_controller_ref(self.parent);
        let result = dynapi::atomic_update(&target.api(&obj), &obj, false, |o| {
            add_owner_reference(o, owner.clone());
            true
        })
        .await;
        match result {
            Ok(written) => Ok(Some(target.adopted(obj, written))),
            Err(err) if err.is_not_found() => Ok(None),
            Err(source) => Err(ClaimError::Adopt { what, source }),
        }
    }

    /// Removes our owner reference from an object that no longer matches.
    async fn release(&self, target: &impl Claimable, obj: &Value) -> Result<(), ClaimError> {
        let what = target.label(obj);
        tracing::info!(parent = %object::describe(self.parent), child = %what, "releasing");
        let parent_uid = object::uid(self.parent);
        let result = dynapi::atomic_update(&target.api(obj), obj, false, |o| {
            remove_owner_reference(o, parent_uid)
        })
        .await;
        match result {
            Ok(written) => {
                target.released(written);
                Ok(())
            }
            Err(err) if err.is_not_found() || err.is_gone() => Ok(()),
            Err(source) => Err(ClaimError::Release { what, source }),
        }
    }
}

/// Uncached check that `parent` still exists with the same UID and is not
/// being deleted.
async fn recheck(api: &Api<RawObject>, parent: &Value) -> Result<(), RecheckError> {
    let fresh = dynapi::get(api, object::name(parent))
        .await
        .map_err(RecheckError::Get)?;
    if object::uid(&fresh) != object::uid(parent) {
        return Err(RecheckError::Replaced {
            parent: object::describe(parent),
            got: object::uid(&fresh).to_owned(),
            wanted: object::uid(parent).to_owned(),
        });
    }
    if object::is_deleting(&fresh) {
        return Err(RecheckError::Deleting(object::describe(parent)));
    }
    Ok(())
}
