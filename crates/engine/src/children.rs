//! Bringing observed children (or attachments) to the desired set, with
//! dynamic apply or, when [`ApplyOptions`] say so, server-side apply
//! ([`crate::ssa`], which documents its own create and update steps).
//!
//! 1. Observed children missing from the desired set are deleted (background
//!    propagation, UID precondition); children already terminating are left
//!    alone.
//! 2. Desired children that do not exist are created with the
//!    `metacontroller.k8s.io/last-applied-configuration` annotation (set
//!    before the owner reference is added) and a controller owner reference
//!    with `blockOwnerDeletion: true`; `AlreadyExists` is ignored.
//! 3. Desired children that exist are merged three-way
//!    ([`metacontroller_apply::apply_update`]); when that changes anything,
//!    the update method decides: `OnDelete` leaves the child alone,
//!    `Recreate` deletes it (the next sync creates it again), `InPlace` PUTs
//!    the merged object with the observed resourceVersion (NotFound and
//!    Conflict are ignored: the next sync retries). Children pending
//!    deletion are never updated. The rolling methods behave like their
//!    non-rolling counterparts here: the rollout has already decided which
//!    revision's desired state each child gets.
//!
//! Operations are independent: a failure is remembered and the others go on.
//! Step 1 is the same for both apply strategies.
//!
//! Whether step 3 changes anything is decided as Metacontroller's
//! `DynamicApply.Apply` (`pkg/controller/common/manage_children.go`)
//! decides it: the merged object, with the new last-applied annotation,
//! is compared structurally with the observed child, so a desired field
//! holding `{}`, `[]` or `null` differs from a missing one and is written
//! (even where the API server then drops it again, as for empty maps of
//! built-in types: Metacontroller makes the same no-op write on every
//! sync). Only numbers compare by value, as the hook's are normalised
//! first (`1.0` is sent and stored as `1`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kube::Client;
use metacontroller_api::hook_wire::object_key;
use metacontroller_api::{ChildUpdateMethod, HookVersion};
use metacontroller_apply::{DynamicApplyError, apply_update, claim_ownership, set_last_applied};
use serde_json::Value;

use crate::aggregate::Aggregate;
use crate::discovery::ResourceInfo;
use crate::dynapi::{self, RequestError};
use crate::hosted::Expectations;
use crate::journal;
use crate::object;
use crate::ownership::OwnershipError;
use crate::ssa::{self, ApplyOptions, SsaError};

/// How many writes of one sync run concurrently.
const CONCURRENCY: usize = 8;

/// Children of one type: keyed `namespace/name` (or `name`).
pub struct ChildGroup<T> {
    /// The type.
    pub resource: ResourceInfo,
    /// The update method for this type.
    pub method: ChildUpdateMethod,
    /// The objects.
    pub objects: BTreeMap<String, T>,
}

/// Children by type key `Kind.apiVersion`.
pub type Children<T> = HashMap<String, ChildGroup<T>>;

/// One failed child operation, or a desired child refused.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// A delete failed.
    #[error("can't delete {what}: {source}")]
    Delete {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
    /// A create failed.
    #[error("can't create {what}: {source}")]
    Create {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
    /// An update failed.
    #[error("can't update {what}: {source}")]
    Update {
        /// The child.
        what: String,
        /// The failed request.
        #[source]
        source: RequestError,
    },
    /// The three-way merge (or the last-applied annotation) failed.
    #[error("can't update {what}: {source}")]
    Merge {
        /// The child.
        what: String,
        /// Why.
        #[source]
        source: DynamicApplyError,
    },
    /// The last-applied annotation could not be set on a new child.
    #[error(transparent)]
    LastApplied(DynamicApplyError),
    /// A server-side apply write failed.
    #[error(transparent)]
    ServerSide(#[from] SsaError),
    /// The parent can't own the desired child.
    #[error(transparent)]
    Refused(#[from] OwnershipError),
}

/// The operations of [`manage_children`] that failed (and the desired
/// children refused before).
pub type ChildErrors = Aggregate<ChildError>;

/// The objects of `observed` as a hook request lists them: an entry for
/// each of `type_keys` (possibly empty), objects keyed per hook `version`
/// for a parent in `parent_namespace`.
pub fn hook_map<'a>(
    observed: &'a Children<Arc<Value>>,
    type_keys: impl Iterator<Item = &'a str>,
    version: HookVersion,
    parent_namespace: Option<&str>,
) -> BTreeMap<&'a str, BTreeMap<String, &'a Value>> {
    let mut map: BTreeMap<&str, BTreeMap<String, &Value>> = BTreeMap::new();
    for type_key in type_keys {
        let objects = map.entry(type_key).or_default();
        let Some(group) = observed.get(type_key) else {
            continue;
        };
        for obj in group.objects.values() {
            if let Some(key) = object_key(
                version,
                parent_namespace,
                object::namespace(obj),
                object::name(obj),
            ) {
                objects.insert(key, &**obj);
            }
        }
    }
    map
}

enum Op<'a> {
    Delete(&'a ResourceInfo, &'a Value),
    Create(&'a ResourceInfo, &'a Value),
    Update(&'a ResourceInfo, ChildUpdateMethod, &'a Value, &'a Value),
}

/// Applies the desired children with `apply`; returns the aggregated error
/// of the operations that failed.
///
/// With `expectations`, the creates are recorded there under the parent's
/// UID before they are sent, and each one that fails is taken off again
/// (see [`Expectations`]). Only dynamic apply's creates are counted: each
/// one that succeeds made a new object whose watch event will come. A
/// server-side apply "create" may instead have updated an object the cache
/// already held without this parent claiming it, which brings no add event.
pub(crate) async fn manage_children(
    client: &Client,
    apply: &ApplyOptions,
    parent: &Value,
    observed: &Children<Arc<Value>>,
    desired: &Children<Value>,
    expectations: Option<&Expectations>,
) -> Result<(), ChildErrors> {
    let mut errors = Vec::new();
    let expectations = expectations.filter(|_| !apply.is_server_side());

    let deletes: Vec<Op<'_>> = observed
        .iter()
        .flat_map(|(type_key, group)| {
            let wanted = desired.get(type_key);
            group.objects.iter().filter_map(move |(key, obj)| {
                let keep = wanted.is_some_and(|d| d.objects.contains_key(key));
                (!keep && !object::is_deleting(obj)).then_some(Op::Delete(&group.resource, obj))
            })
        })
        .collect();
    errors.extend(run(client, apply, parent, deletes, None).await);

    let mut writes = Vec::new();
    for (type_key, group) in desired {
        let seen = observed.get(type_key);
        for (key, obj) in &group.objects {
            match seen.and_then(|o| o.objects.get(key)) {
                Some(current) => {
                    writes.push(Op::Update(&group.resource, group.method, current, obj))
                }
                None => writes.push(Op::Create(&group.resource, obj)),
            }
        }
    }
    if let Some(expectations) = expectations {
        let creates = writes
            .iter()
            .filter(|op| matches!(op, Op::Create(..)))
            .count();
        expectations.expect(object::uid(parent), creates);
    }
    errors.extend(run(client, apply, parent, writes, expectations).await);

    match Aggregate::of(errors) {
        None => Ok(()),
        Some(errors) => Err(errors),
    }
}

async fn run(
    client: &Client,
    apply: &ApplyOptions,
    parent: &Value,
    ops: Vec<Op<'_>>,
    expectations: Option<&Expectations>,
) -> Vec<ChildError> {
    let mut errors = Vec::new();
    let mut pending = FuturesUnordered::new();
    let mut ops = ops.into_iter();
    loop {
        while pending.len() < CONCURRENCY {
            match ops.next() {
                Some(op) => pending.push(execute(client, apply, parent, op, expectations)),
                None => break,
            }
        }
        match pending.next().await {
            Some(Err(err)) => errors.push(err),
            Some(Ok(())) => {}
            None => return errors,
        }
    }
}

async fn execute(
    client: &Client,
    apply: &ApplyOptions,
    parent: &Value,
    op: Op<'_>,
    expectations: Option<&Expectations>,
) -> Result<(), ChildError> {
    match op {
        Op::Delete(resource, obj) => delete(client, parent, resource, obj, "not desired").await,
        Op::Create(resource, desired) if apply.is_server_side() => {
            let result = ssa::create(client, parent, resource, desired, apply).await;
            journal::scope::action("apply", desired, None, &result);
            Ok(result?)
        }
        Op::Create(resource, desired) => {
            let created = create(client, parent, resource, desired).await;
            if !matches!(created, Ok(Created::New))
                && let Some(expectations) = expectations
            {
                // No new object, so no event to wait for.
                expectations.observed(object::uid(parent));
            }
            created.map(|_| ())
        }
        Op::Update(resource, method, observed, desired) if apply.is_server_side() => {
            Ok(ssa::update(client, parent, resource, method, observed, desired, apply).await?)
        }
        Op::Update(resource, method, observed, desired) => {
            update(client, parent, resource, method, observed, desired).await
        }
    }
}

async fn delete(
    client: &Client,
    parent: &Value,
    resource: &ResourceInfo,
    obj: &Value,
    why: &str,
) -> Result<(), ChildError> {
    let api = dynapi::api(client, resource, object::namespace(obj));
    tracing::info!(parent = %object::describe(parent), child = %object::describe(obj), reason = why, "deleting child");
    let result = match dynapi::delete_background(&api, object::name(obj), object::uid(obj)).await {
        Ok(()) => Ok(()),
        Err(err) if err.is_not_found() => Ok(()),
        Err(source) => Err(ChildError::Delete {
            what: object::describe(obj),
            source,
        }),
    };
    journal::scope::action("delete", obj, None, &result);
    result
}

/// What a create did.
enum Created {
    /// Made a new object.
    New,
    /// Found the name taken.
    AlreadyExists,
}

async fn create(
    client: &Client,
    parent: &Value,
    resource: &ResourceInfo,
    desired: &Value,
) -> Result<Created, ChildError> {
    let mut obj = desired.clone();
    set_last_applied(&mut obj, desired).map_err(ChildError::LastApplied)?;
    claim_ownership(&mut obj, parent);
    let api = dynapi::api(client, resource, object::namespace(&obj));
    tracing::info!(parent = %object::describe(parent), child = %object::describe(desired), "creating child");
    let result = match dynapi::create_unread(&api, &obj).await {
        Ok(()) => Ok(Created::New),
        Err(err) if err.is_already_exists() => {
            tracing::info!(child = %object::describe(desired), "child already exists");
            Ok(Created::AlreadyExists)
        }
        Err(source) => Err(ChildError::Create {
            what: object::describe(desired),
            source,
        }),
    };
    let outcome = result.as_ref().map(|_| ()).map_err(ToString::to_string);
    journal::scope::action("create", desired, None, &outcome);
    result
}

async fn update(
    client: &Client,
    parent: &Value,
    resource: &ResourceInfo,
    method: ChildUpdateMethod,
    observed: &Value,
    desired: &Value,
) -> Result<(), ChildError> {
    let new_obj = match apply_update(observed, desired) {
        Ok(None) => return Ok(()),
        Ok(Some(new_obj)) => new_obj,
        Err(source) => {
            return Err(ChildError::Merge {
                what: object::describe(observed),
                source,
            });
        }
    };
    // Metacontroller logs the change it is about to write at verbosity 5
    // (`--zap-log-level=5` maps onto the engine's trace events).
    let tracing = tracing::enabled!(tracing::Level::TRACE);
    let diff =
        (tracing || journal::scope::watching()).then(|| json_patch::diff(observed, &new_obj));
    if let Some(diff) = diff.as_ref().filter(|_| tracing) {
        tracing::trace!(
            child = %object::describe(observed),
            diff = %serde_json::to_string(diff).unwrap_or_default(),
            "child diff"
        );
    }
    if object::is_deleting(observed) {
        tracing::info!(child = %object::describe(observed), "not updating child: pending deletion");
        return Ok(());
    }
    match method.without_rolling() {
        ChildUpdateMethod::Recreate => {
            delete(
                client,
                parent,
                resource,
                observed,
                "Recreate update strategy",
            )
            .await
        }
        ChildUpdateMethod::InPlace => {
            let api = dynapi::api(client, resource, object::namespace(observed));
            tracing::info!(parent = %object::describe(parent), child = %object::describe(observed), "updating child in place");
            let result = match dynapi::replace(&api, new_obj).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_not_found() || err.is_conflict() => {
                    tracing::debug!(child = %object::describe(observed), error = %err, "child update skipped");
                    Ok(())
                }
                Err(source) => Err(ChildError::Update {
                    what: object::describe(observed),
                    source,
                }),
            };
            let diff = diff.map(|d| serde_json::to_value(d).unwrap_or_default());
            journal::scope::action("update", observed, diff, &result);
            result
        }
        _ => {
            tracing::trace!(child = %object::describe(observed), "not updating child: OnDelete update strategy");
            Ok(())
        }
    }
}
