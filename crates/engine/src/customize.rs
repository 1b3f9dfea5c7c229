//! The `customize` hook and related objects, for CompositeControllers and
//! DecoratorControllers alike.
//!
//! A hosted controller with a `customize` hook owns one [`Customizer`]. When a
//! sync needs related objects, [`Customizer::related`]:
//!
//! 1. asks the hook which objects are related to the parent (request
//!    `{controller, parent}`, response `{relatedResources: [...]}`); the
//!    answer is cached per parent UID and `metadata.generation` (and
//!    refreshed after 20 minutes), so it must depend on the parent's spec
//!    only;
//! 2. for each rule, takes the objects from the shared watch cache of the
//!    rule's type, acquiring that cache on first use; a cache that has not
//!    finished its initial list makes the sync end with
//!    [`RelatedError::NotReady`] (a silent, rate-limited retry);
//! 3. selects objects the way Metacontroller does. `names` cannot be
//!    combined with `labelSelector`/`namespaceSelector`, nor `namespace`
//!    with `namespaceSelector` (errors). A `namespaceSelector` (with an
//!    optional `labelSelector`) searches every matching namespace
//!    (namespaced types only); `namespace` with `labelSelector`, or
//!    `namespace` and/or `names`, look in one namespace (or everywhere when
//!    no namespace is given); otherwise the `labelSelector` (absent: all
//!    objects) applies across namespaces. With a `v1` customize hook and a
//!    namespaced parent, related objects come from the parent's namespace
//!    only: naming another namespace, or using a `namespaceSelector`, is an
//!    error. `v2` hooks may select anything.
//!
//! Every add, update (new resourceVersion) or delete of an object in a
//! related cache re-queues the parents whose cached rules match the old or
//! the new state; label changes of a Namespace re-queue the parents whose
//! `namespaceSelector` rules match it. Only parents with a cached answer are
//! considered: a parent that was never synced has nothing to refresh.
//!
//! The sync or finalize hook receives the objects under `related`, keyed
//! `Kind.apiVersion` of the rule and then per the sync hook's version (see
//! [`metacontroller_api::hook_wire::object_key`]; `v1` requests leave out
//! objects from other namespaces of a namespaced parent).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use kube::core::ApiResource;
use metacontroller_api::hook_wire::{CustomizeHookResponse, object_key};
use metacontroller_api::{HookVersion, RelatedResourceRule, RelatedRuleError, RelatedSelection};
use metacontroller_selectors::{Selector, SelectorError};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use crate::Context;
use crate::discovery::ResourceInfo;
use crate::hook_target::ResolvedHook;
use crate::hosted::exchange::{ExchangeError, exchange};
use crate::informer::{EventHandler, Informer, InformerHandle};
use crate::object;
use crate::queue::WorkQueue;

/// How long a customize answer is reused for the same parent generation.
const RESPONSE_TTL: Duration = Duration::from_secs(20 * 60);

/// How often cached answers of parents that are no longer synced are
/// dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Why the related objects of a parent could not be selected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelatedError {
    /// A related cache has not finished its initial list: retry quietly.
    #[error("related objects are not cached yet")]
    NotReady,
    /// The customize hook failed.
    #[error(transparent)]
    Hook(#[from] ExchangeError),
    /// A rule of the customize answer is invalid.
    #[error(transparent)]
    Rule(Arc<RuleError>),
    /// A rule names a resource discovery does not know.
    #[error("discovery: can't find resource {resource} in apiVersion {api_version}")]
    Discovery {
        /// The plural resource name.
        resource: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// A rule asks for objects the parent may not see.
    #[error("{0}")]
    Forbidden(String),
}

/// Why a related-resource rule is invalid.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RuleError {
    /// Its fields can't be combined.
    #[error("{source}: apiVersion={api_version:?} resource={resource:?}")]
    Selection {
        /// The rule's apiVersion.
        api_version: String,
        /// The rule's resource.
        resource: String,
        /// Why.
        #[source]
        source: RelatedRuleError,
    },
    /// A selector can't be re-encoded.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// A selector is invalid.
    #[error("can't convert {what} of related rule for {api_version}/{resource}: {source}")]
    Selector {
        /// `labelSelector` or `namespaceSelector`.
        what: &'static str,
        /// The rule's apiVersion.
        api_version: String,
        /// The rule's resource.
        resource: String,
        /// Why.
        #[source]
        source: SelectorError,
    },
}

/// Related objects selected for one parent: `Kind.apiVersion` of the rule →
/// `namespace/name` (or `name`) → object. Every evaluated rule has an entry,
/// possibly empty.
#[derive(Clone, Debug, Default)]
pub(crate) struct Related {
    pub(crate) groups: BTreeMap<String, BTreeMap<String, Arc<Value>>>,
}

impl Related {
    /// The `related` map of a hook request, keyed for hook `version` and a
    /// parent in `parent_namespace` (`None`: cluster-scoped).
    pub fn keyed(
        &self,
        version: HookVersion,
        parent_namespace: Option<&str>,
    ) -> BTreeMap<&str, BTreeMap<String, &Value>> {
        self.groups
            .iter()
            .map(|(type_key, objects)| {
                let inner = objects
                    .values()
                    .filter_map(|obj| {
                        let key = object_key(
                            version,
                            parent_namespace,
                            object::namespace(obj),
                            object::name(obj),
                        )?;
                        Some((key, &**obj))
                    })
                    .collect();
                (type_key.as_str(), inner)
            })
            .collect()
    }

    /// Number of objects.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }
}

/// A related-resource rule, checked and compiled once per customize answer.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) api_version: String,
    pub(crate) resource: String,
    pub(crate) compiled: Result<Compiled, Arc<RuleError>>,
}

#[derive(Debug)]
pub(crate) struct Compiled {
    selection: RelatedSelection,
    labels: Selector,
    namespace_selector: Selector,
    namespace: Option<String>,
    names: Vec<String>,
}

fn compile_selector(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    what: &'static str,
    rule: &RelatedResourceRule,
) -> Result<Selector, RuleError> {
    let Some(selector) = selector else {
        return Ok(Selector::everything());
    };
    let value = serde_json::to_value(selector).map_err(RuleError::Encode)?;
    Selector::from_label_selector(&value).map_err(|source| RuleError::Selector {
        what,
        api_version: rule.api_version.clone(),
        resource: rule.resource.clone(),
        source,
    })
}

impl Rule {
    pub(crate) fn new(rule: &RelatedResourceRule) -> Rule {
        let compiled = rule
            .selection()
            .map_err(|source| RuleError::Selection {
                api_version: rule.api_version.clone(),
                resource: rule.resource.clone(),
                source,
            })
            .and_then(|selection| {
                Ok(Compiled {
                    selection,
                    labels: compile_selector(rule.label_selector.as_ref(), "labelSelector", rule)?,
                    namespace_selector: compile_selector(
                        rule.namespace_selector.as_ref(),
                        "namespaceSelector",
                        rule,
                    )?,
                    namespace: rule.namespace().map(str::to_owned),
                    names: rule.names().to_vec(),
                })
            })
            .map_err(Arc::new);
        Rule {
            api_version: rule.api_version.clone(),
            resource: rule.resource.clone(),
            compiled,
        }
    }

    fn is_type(&self, info: &ResourceInfo) -> bool {
        self.api_version == info.api_version() && self.resource == info.plural()
    }
}

/// A cached customize answer for one parent.
struct Entry {
    generation: i64,
    queue_key: String,
    /// The parent's namespace when the parent type is namespaced.
    parent_namespace: Option<String>,
    /// The customize hook's version (namespace rules).
    version: HookVersion,
    rules: Arc<Vec<Rule>>,
    fetched: Instant,
    used: Instant,
}

/// One related-type cache this controller subscribed to.
struct Watch {
    handle: InformerHandle,
    subscription: u64,
}

struct State {
    /// By parent UID.
    entries: HashMap<String, Entry>,
    /// Parent queue key → UID.
    by_key: HashMap<String, String>,
    /// By (apiVersion, plural).
    watches: HashMap<(String, String), Watch>,
    /// The Namespace cache, for `namespaceSelector` rules.
    namespaces: Option<Watch>,
    last_sweep: Instant,
    stopped: bool,
}

struct Shared {
    ctx: Arc<Context>,
    hook: ResolvedHook,
    controller: Value,
    queue: Arc<WorkQueue<String>>,
    state: Mutex<State>,
    /// Cached answers not used for this long are dropped by the sweep.
    unused_ttl: Duration,
}

/// See the [module documentation](self).
pub(crate) struct Customizer {
    shared: Option<Arc<Shared>>,
}

#[derive(Serialize)]
pub(crate) struct CustomizeRequest<'a> {
    pub(crate) controller: &'a Value,
    pub(crate) parent: &'a Value,
}

/// The namespace core/v1 resource.
fn namespaces_resource() -> ResourceInfo {
    ResourceInfo {
        api_resource: ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
        },
        namespaced: false,
        has_status: true,
    }
}

impl Customizer {
    /// A customizer calling `hook` (`None`: no customize hook, nothing is
    /// related) with `controller` (the CC or DC as sent to hooks); matching
    /// parents are re-queued on `queue` by their queue key.
    pub fn new(
        ctx: Arc<Context>,
        hook: Option<ResolvedHook>,
        controller: Value,
        queue: Arc<WorkQueue<String>>,
    ) -> Customizer {
        let shared = hook.map(|hook| {
            let unused_ttl = (ctx.config.cache_flush_interval * 2).max(RESPONSE_TTL);
            Arc::new(Shared {
                ctx,
                hook,
                controller,
                queue,
                state: Mutex::new(State {
                    entries: HashMap::new(),
                    by_key: HashMap::new(),
                    watches: HashMap::new(),
                    namespaces: None,
                    last_sweep: Instant::now(),
                    stopped: false,
                }),
                unused_ttl,
            })
        });
        Customizer { shared }
    }

    /// The related objects of `parent` (see the
    /// [module documentation](self)). `parent_namespaced` tells whether the
    /// parent's type is namespaced; `queue_key` is the key under which the
    /// parent is re-queued when a related object changes.
    pub async fn related(
        &self,
        parent: &Value,
        parent_namespaced: bool,
        queue_key: &str,
    ) -> Result<Related, RelatedError> {
        let Some(shared) = &self.shared else {
            return Ok(Related::default());
        };
        let (rules, version) = shared
            .rules_for(parent, parent_namespaced, queue_key)
            .await?;
        let parent_namespace = if parent_namespaced {
            object::namespace(parent)
        } else {
            None
        };
        let mut related = Related::default();
        for rule in rules.iter() {
            shared
                .select(
                    rule,
                    version,
                    parent_namespace,
                    parent_namespaced,
                    &mut related,
                )
                .await?;
        }
        Ok(related)
    }

    /// Drops the cached answer of the parent with `queue_key` (it is gone).
    pub fn forget(&self, queue_key: &str) {
        if let Some(shared) = &self.shared {
            let mut state = shared.state.lock();
            if let Some(uid) = state.by_key.remove(queue_key) {
                state.entries.remove(&uid);
            }
        }
    }

    /// Unsubscribes from every related cache and drops the cached answers.
    pub fn stop(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let (watches, namespaces) = {
            let mut state = shared.state.lock();
            state.stopped = true;
            state.entries.clear();
            state.by_key.clear();
            (
                state.watches.drain().map(|(_, w)| w).collect::<Vec<_>>(),
                state.namespaces.take(),
            )
        };
        for watch in watches.into_iter().chain(namespaces) {
            watch.handle.unsubscribe(watch.subscription);
        }
    }
}

impl Drop for Customizer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn describe(&self) -> String {
        object::name(&self.controller).to_owned()
    }

    /// The rules for `parent`, from the cache or from the hook.
    async fn rules_for(
        &self,
        parent: &Value,
        parent_namespaced: bool,
        queue_key: &str,
    ) -> Result<(Arc<Vec<Rule>>, HookVersion), RelatedError> {
        let uid = object::uid(parent);
        let generation = object::generation(parent);
        let now = Instant::now();
        {
            let mut state = self.state.lock();
            if now.duration_since(state.last_sweep) >= SWEEP_INTERVAL {
                state.last_sweep = now;
                let ttl = self.unused_ttl;
                state
                    .entries
                    .retain(|_, e| now.duration_since(e.used) < ttl);
                let State {
                    entries, by_key, ..
                } = &mut *state;
                by_key.retain(|_, uid| entries.contains_key(uid));
            }
            if let Some(entry) = state.entries.get_mut(uid)
                && entry.generation == generation
                && now.duration_since(entry.fetched) < RESPONSE_TTL
            {
                entry.used = now;
                return Ok((entry.rules.clone(), entry.version));
            }
        }

        let version = self.hook.version;
        let request = CustomizeRequest {
            controller: &self.controller,
            parent,
        };
        let response: CustomizeHookResponse =
            exchange(&self.hook, &request, parent, &self.describe()).await?;
        let rules: Arc<Vec<Rule>> =
            Arc::new(response.related_resources.iter().map(Rule::new).collect());
        let mut state = self.state.lock();
        if !state.stopped {
            let previous = state.entries.insert(
                uid.to_owned(),
                Entry {
                    generation,
                    queue_key: queue_key.to_owned(),
                    parent_namespace: parent_namespaced
                        .then(|| object::namespace(parent).unwrap_or_default().to_owned()),
                    version,
                    rules: rules.clone(),
                    fetched: now,
                    used: now,
                },
            );
            if let Some(previous) = previous
                && previous.queue_key != queue_key
            {
                state.by_key.remove(&previous.queue_key);
            }
            state.by_key.insert(queue_key.to_owned(), uid.to_owned());
        }
        Ok((rules, version))
    }

    /// The shared cache of `info`, subscribing to it on first use.
    fn watch(self: &Arc<Self>, info: &ResourceInfo) -> Result<Arc<Informer>, RelatedError> {
        let key = (info.api_version().to_owned(), info.plural().to_owned());
        let mut state = self.state.lock();
        if state.stopped {
            return Err(RelatedError::NotReady);
        }
        if let Some(watch) = state.watches.get(&key) {
            return Ok(watch.handle.informer().clone());
        }
        let handle = self.ctx.informers.acquire(info);
        let handler: Arc<dyn EventHandler> = Arc::new(RelatedEvents {
            shared: Arc::downgrade(self),
            resource: info.clone(),
        });
        let subscription = handle.subscribe(handler, false);
        let informer = handle.informer().clone();
        tracing::debug!(controller = %self.describe(), api_version = %key.0, resource = %key.1, "watching related resource");
        state.watches.insert(
            key,
            Watch {
                handle,
                subscription,
            },
        );
        Ok(informer)
    }

    /// The Namespace cache, subscribing to it on first use.
    fn watch_namespaces(self: &Arc<Self>) -> Result<Arc<Informer>, RelatedError> {
        let mut state = self.state.lock();
        if state.stopped {
            return Err(RelatedError::NotReady);
        }
        if let Some(watch) = &state.namespaces {
            return Ok(watch.handle.informer().clone());
        }
        let handle = self.ctx.informers.acquire(&namespaces_resource());
        let handler: Arc<dyn EventHandler> = Arc::new(NamespaceEvents {
            shared: Arc::downgrade(self),
        });
        let subscription = handle.subscribe(handler, false);
        let informer = handle.informer().clone();
        state.namespaces = Some(Watch {
            handle,
            subscription,
        });
        Ok(informer)
    }

    /// Adds the objects selected by `rule` to `out`.
    async fn select(
        self: &Arc<Self>,
        rule: &Rule,
        version: HookVersion,
        parent_namespace: Option<&str>,
        parent_namespaced: bool,
        out: &mut Related,
    ) -> Result<(), RelatedError> {
        let compiled = rule
            .compiled
            .as_ref()
            .map_err(|e| RelatedError::Rule(e.clone()))?;
        let info = self
            .ctx
            .resources
            .resolve(&rule.api_version, &rule.resource)
            .await
            .ok_or_else(|| RelatedError::Discovery {
                resource: rule.resource.clone(),
                api_version: rule.api_version.clone(),
            })?;
        // With v1 hooks a namespaced parent only sees its own namespace.
        let restricted = version == HookVersion::V1 && parent_namespaced && info.namespaced;
        let own_namespace = parent_namespace.unwrap_or_default();
        if restricted
            && matches!(
                compiled.selection,
                RelatedSelection::NamespaceAndLabels | RelatedSelection::NamespaceAndNames
            )
            && let Some(ns) = &compiled.namespace
            && ns != own_namespace
        {
            return Err(RelatedError::Forbidden(format!(
                "requested related object namespace {ns} differs from parent object namespace {own_namespace}"
            )));
        }
        if compiled.selection == RelatedSelection::NamespaceSelector {
            if restricted {
                return Err(RelatedError::Forbidden(
                    "namespaceSelector is not supported for namespaced parent in v1 hook version"
                        .to_owned(),
                ));
            }
            if !info.namespaced {
                return Err(RelatedError::Forbidden(
                    "namespaceSelector is only supported for namespaced related resources"
                        .to_owned(),
                ));
            }
        }

        let informer = self.watch(&info)?;
        if !informer.has_synced() {
            return Err(RelatedError::NotReady);
        }
        // Selections run on the cached metadata; only the objects they pick
        // are decoded.
        let namespaced = info.namespaced;
        let namespace = compiled.namespace.as_deref().filter(|_| namespaced);
        let objects: Vec<Arc<Value>> = match compiled.selection {
            RelatedSelection::Labels => informer.select(restricted.then_some(own_namespace), |m| {
                compiled.labels.matches(&m.labels)
            }),
            RelatedSelection::NamespaceAndLabels => {
                informer.select(namespace, |m| compiled.labels.matches(&m.labels))
            }
            RelatedSelection::NamespaceAndNames => informer.select(namespace, |m| {
                compiled.names.is_empty() || compiled.names.iter().any(|n| n == m.name)
            }),
            RelatedSelection::NamespaceSelector => {
                let namespaces = self.watch_namespaces()?;
                if !namespaces.has_synced() {
                    return Err(RelatedError::NotReady);
                }
                namespaces
                    .select(None, |ns| compiled.namespace_selector.matches(&ns.labels))
                    .iter()
                    .flat_map(|ns| {
                        informer.select(Some(object::name(ns)), |m| {
                            compiled.labels.matches(&m.labels)
                        })
                    })
                    .collect()
            }
        };
        let group = out
            .groups
            .entry(metacontroller_api::hook_wire::type_key(
                info.kind(),
                &rule.api_version,
            ))
            .or_default();
        for obj in objects {
            group.insert(object::key(&obj), obj);
        }
        Ok(())
    }

    /// Re-queues the parents whose rules select any of `objects`.
    fn notify(&self, info: &ResourceInfo, objects: &[&Value]) {
        let state = self.state.lock();
        if state.stopped {
            return;
        }
        let namespaces = state.namespaces.as_ref().map(|w| w.handle.informer());
        for entry in state.entries.values() {
            let hit = entry.rules.iter().any(|rule| {
                rule.is_type(info)
                    && rule.compiled.as_ref().is_ok_and(|compiled| {
                        objects.iter().any(|obj| {
                            rule_matches(
                                entry.version,
                                entry.parent_namespace.as_deref(),
                                compiled,
                                info,
                                obj,
                                |ns| namespaces.and_then(|n| n.get(ns)),
                            )
                        })
                    })
            });
            if hit {
                tracing::trace!(controller = %self.describe(), parent = %entry.queue_key, "related object changed");
                self.queue.add(entry.queue_key.clone());
            }
        }
    }

    /// Re-queues the parents with a `namespaceSelector` rule matching any of
    /// the Namespace states `objects`.
    fn notify_namespace(&self, objects: &[&Value]) {
        let state = self.state.lock();
        if state.stopped {
            return;
        }
        for entry in state.entries.values() {
            let hit = entry.rules.iter().any(|rule| {
                rule.compiled.as_ref().is_ok_and(|c| {
                    c.selection == RelatedSelection::NamespaceSelector
                        && objects
                            .iter()
                            .any(|ns| c.namespace_selector.matches_object_labels(ns))
                })
            });
            if hit {
                self.queue.add(entry.queue_key.clone());
            }
        }
    }
}

/// Changes of a related type.
struct RelatedEvents {
    shared: Weak<Shared>,
    resource: ResourceInfo,
}

impl EventHandler for RelatedEvents {
    fn on_add(&self, obj: &Arc<Value>) {
        if let Some(shared) = self.shared.upgrade() {
            shared.notify(&self.resource, &[obj]);
        }
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if object::resource_version(old) == object::resource_version(new) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            shared.notify(&self.resource, &[old, new]);
        }
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.on_add(obj);
    }
}

/// Namespace changes that may change what a `namespaceSelector` selects.
struct NamespaceEvents {
    shared: Weak<Shared>,
}

impl EventHandler for NamespaceEvents {
    fn on_add(&self, obj: &Arc<Value>) {
        if let Some(shared) = self.shared.upgrade() {
            shared.notify_namespace(&[obj]);
        }
    }

    fn on_update(&self, old: &Arc<Value>, new: &Arc<Value>) {
        if old.pointer("/metadata/labels") == new.pointer("/metadata/labels") {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            shared.notify_namespace(&[old, new]);
        }
    }

    fn on_delete(&self, obj: &Arc<Value>) {
        self.on_add(obj);
    }
}

/// Whether `obj` (of type `info`) is selected by `compiled` for a parent in
/// `parent_namespace` (`None`: cluster-scoped) asking with hook `version`;
/// `namespace` looks a Namespace up by name. Mirrors [`Shared::select`],
/// without erroring.
pub(crate) fn rule_matches<N: std::ops::Deref<Target = Value>>(
    version: HookVersion,
    parent_namespace: Option<&str>,
    compiled: &Compiled,
    info: &ResourceInfo,
    obj: &Value,
    namespace: impl Fn(&str) -> Option<N>,
) -> bool {
    let obj_ns = object::namespace(obj).unwrap_or_default();
    let restricted = version == HookVersion::V1 && parent_namespace.is_some() && info.namespaced;
    if restricted && parent_namespace != Some(obj_ns) {
        return false;
    }
    let in_rule_namespace = || match &compiled.namespace {
        Some(ns) if info.namespaced => ns == obj_ns,
        _ => true,
    };
    match compiled.selection {
        RelatedSelection::Labels => compiled.labels.matches_object_labels(obj),
        RelatedSelection::NamespaceAndLabels => {
            in_rule_namespace() && compiled.labels.matches_object_labels(obj)
        }
        RelatedSelection::NamespaceAndNames => {
            in_rule_namespace()
                && (compiled.names.is_empty()
                    || compiled.names.iter().any(|n| n == object::name(obj)))
        }
        RelatedSelection::NamespaceSelector => {
            if restricted || !info.namespaced || !compiled.labels.matches_object_labels(obj) {
                return false;
            }
            namespace(obj_ns)
                .is_some_and(|ns| compiled.namespace_selector.matches_object_labels(&ns))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        Rule::new(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn rule_combinations() {
        let r = rule(
            json!({"apiVersion": "v1", "resource": "configmaps", "names": ["a"], "labelSelector": {}}),
        );
        assert!(
            r.compiled
                .unwrap_err()
                .to_string()
                .contains("cannot have both names and labelSelector/namespaceSelector")
        );
        let r = rule(
            json!({"apiVersion": "v1", "resource": "configmaps", "namespace": "x", "namespaceSelector": {}}),
        );
        assert!(
            r.compiled
                .unwrap_err()
                .to_string()
                .contains("cannot have both namespace and namespaceSelector")
        );
        let r = rule(json!({"apiVersion": "v1", "resource": "configmaps"}));
        let c = r.compiled.unwrap();
        assert_eq!(c.selection, RelatedSelection::Labels);
        assert!(c.labels.is_everything());
        let r = rule(
            json!({"apiVersion": "v1", "resource": "configmaps", "labelSelector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]}}),
        );
        assert!(
            r.compiled
                .unwrap_err()
                .to_string()
                .contains("labelSelector")
        );
    }

    #[test]
    fn related_keys_follow_the_hook_version() {
        let mut related = Related::default();
        let group = related.groups.entry("ConfigMap.v1".into()).or_default();
        for (ns, name) in [("a", "x"), ("b", "y")] {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns}});
            group.insert(format!("{ns}/{name}"), Arc::new(obj));
        }
        related.groups.entry("Secret.v1".into()).or_default();
        assert_eq!(related.len(), 2);
        let v1 = related.keyed(HookVersion::V1, Some("a"));
        assert_eq!(v1["ConfigMap.v1"].keys().collect::<Vec<_>>(), ["x"]);
        assert!(v1["Secret.v1"].is_empty());
        let v2 = related.keyed(HookVersion::V2, Some("a"));
        assert_eq!(
            v2["ConfigMap.v1"].keys().collect::<Vec<_>>(),
            ["a/x", "b/y"]
        );
        let cluster = related.keyed(HookVersion::V1, None);
        assert_eq!(
            cluster["ConfigMap.v1"].keys().collect::<Vec<_>>(),
            ["a/x", "b/y"]
        );
    }
}
