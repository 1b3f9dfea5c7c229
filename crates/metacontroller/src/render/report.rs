//! What `render` prints for one parent: the desired children and status,
//! and the plan (see [`Report`]), as YAML, JSON or a readable diff.

use metacontroller_engine::render::{Plan, RevisionStep, StepAction};
use metacontroller_engine::ssa::ApplyOptions;
use serde_json::{Map, Value, json};

use super::linediff;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The report as YAML.
    Yaml,
    /// The report as JSON.
    Json,
    /// A readable summary: each step with its object or change.
    Diff,
}

/// The rendering of one parent.
pub struct Report {
    /// `Kind namespace/name` of the parent.
    pub parent: String,
    /// `sync` or `finalize`.
    pub hook: &'static str,
    /// The desired children, as the engine applies them.
    pub children: Vec<Value>,
    /// The parent's status after the sync.
    pub status: Value,
    /// The parent's status before.
    pub old_status: Option<Value>,
    /// Whether the status is written.
    pub status_changes: bool,
    /// `resyncAfterSeconds` of the answer.
    pub resync_after_seconds: f64,
    /// Whether a finalize answer said `finalized`.
    pub finalized: bool,
    /// Whether the controller's finalizer would be added (the parent lacks
    /// it and there is a finalize hook).
    pub add_finalizer: bool,
    /// Whether the controller's finalizer would be removed.
    pub remove_finalizer: bool,
    /// Desired children the parent can't own.
    pub refused: Vec<String>,
    /// Whether children are managed at all (not for a parent being deleted
    /// without the controller's finalizer).
    pub manages_children: bool,
    /// The child steps.
    pub plan: Plan,
    /// The ControllerRevision steps of a rolling update (none without one).
    pub revisions: Vec<RevisionStep>,
    /// How children are written.
    pub apply: ApplyOptions,
    /// A DecoratorController's target: children are its attachments.
    pub decorator: bool,
    /// A DecoratorController's target before and after its labels,
    /// annotations or finalizers change (none when they don't).
    pub metadata_change: Option<(Value, Value)>,
}

impl Report {
    /// Whether the sync would write anything.
    pub fn changes(&self) -> bool {
        self.status_changes
            || self.add_finalizer
            || self.remove_finalizer
            || self.metadata_change.is_some()
            || self.plan.writes()
            || self.revisions.iter().any(|r| r.action.writes())
    }

    /// Whether the sync would report an error.
    pub fn failed(&self) -> bool {
        !self.refused.is_empty()
            || self
                .plan
                .steps
                .iter()
                .any(|s| matches!(s.action, StepAction::Error(_)))
    }

    /// The report as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut desired = Map::new();
        let children = if self.decorator {
            "attachments"
        } else {
            "children"
        };
        desired.insert(children.into(), Value::Array(self.children.clone()));
        desired.insert("status".into(), self.status.clone());
        if self.resync_after_seconds > 0.0 {
            desired.insert(
                "resyncAfterSeconds".into(),
                json!(self.resync_after_seconds),
            );
        }
        if self.hook == "finalize" {
            desired.insert("finalized".into(), Value::Bool(self.finalized));
        }
        let steps: Vec<Value> = self
            .plan
            .steps
            .iter()
            .map(|step| {
                let mut out = Map::new();
                out.insert("action".into(), json!(step.action.as_str()));
                out.insert(
                    (if self.decorator {
                        "attachment"
                    } else {
                        "child"
                    })
                    .into(),
                    json!(format!("{} {}", step.type_key, step.key)),
                );
                out.insert("updateStrategy".into(), json!(step.method.as_str()));
                if let StepAction::Error(err) = &step.action {
                    out.insert("error".into(), json!(err));
                }
                if let Some(ssa) = &step.ssa {
                    let mut apply = Map::new();
                    apply.insert("fieldManager".into(), json!(ssa.field_manager));
                    apply.insert("force".into(), json!(true));
                    if ssa.removes_last_applied {
                        apply.insert("removesLastApplied".into(), json!(true));
                    }
                    apply.insert("object".into(), ssa.object.clone());
                    out.insert("serverSideApply".into(), Value::Object(apply));
                    if let (Some(_), Some(result)) = (&step.observed, &step.applied) {
                        out.insert("result".into(), result.clone());
                    }
                }
                match (&step.observed, &step.applied) {
                    (None, Some(applied)) => {
                        out.insert("object".into(), applied.clone());
                    }
                    (Some(observed), Some(applied)) => {
                        out.insert(
                            "diff".into(),
                            json!(linediff::diff(&yaml(observed), &yaml(applied))),
                        );
                    }
                    _ => {}
                }
                Value::Object(out)
            })
            .collect();
        let mut plan = Map::new();
        plan.insert(children.into(), Value::Array(steps));
        plan.insert(
            (if self.decorator {
                "unchangedAttachments"
            } else {
                "unchangedChildren"
            })
            .into(),
            json!(self.plan.unchanged),
        );
        if !self.revisions.is_empty() {
            plan.insert(
                "revisions".into(),
                Value::Array(self.revisions.iter().map(revision_value).collect()),
            );
        }
        if let Some((before, after)) = &self.metadata_change {
            plan.insert(
                "object".into(),
                json!({"action": "update", "diff": linediff::diff(&yaml(before), &yaml(after))}),
            );
        }
        if !self.manages_children {
            plan.insert("childrenManaged".into(), Value::Bool(false));
        }
        plan.insert(
            "status".into(),
            json!(if self.status_changes {
                "update"
            } else {
                "unchanged"
            }),
        );
        if self.add_finalizer {
            plan.insert("finalizer".into(), json!("add"));
        } else if self.remove_finalizer {
            plan.insert("finalizer".into(), json!("remove"));
        }
        if self.apply.is_server_side() {
            plan.insert("applyStrategy".into(), json!(self.apply.strategy.as_str()));
        }
        let mut root = Map::new();
        root.insert(
            (if self.decorator { "object" } else { "parent" }).into(),
            json!(self.parent),
        );
        root.insert("hook".into(), json!(self.hook));
        root.insert("desired".into(), Value::Object(desired));
        if !self.refused.is_empty() {
            root.insert("refused".into(), json!(self.refused));
        }
        root.insert("plan".into(), Value::Object(plan));
        Value::Object(root)
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Yaml => yaml(&self.to_value()),
            Format::Json => {
                let mut text = serde_json::to_string_pretty(&self.to_value()).unwrap_or_default();
                text.push('\n');
                text
            }
            Format::Diff => self.diff(),
        }
    }

    fn diff(&self) -> String {
        let mut out = format!("# {} ({} hook)\n", self.parent, self.hook);
        if self.apply.is_server_side() {
            out.push_str(&format!(
                "# server-side apply as {}: results computed offline from managedFields, without the schema\n",
                self.apply.field_manager
            ));
        }
        for err in &self.refused {
            out.push_str(&format!("refused: {err}\n"));
        }
        if !self.manages_children {
            out.push_str("children: not managed (parent being deleted without the finalizer)\n");
        }
        for step in &self.plan.steps {
            out.push_str(&format!(
                "{} {} {} ({})\n",
                step.action.as_str(),
                step.type_key,
                step.key,
                step.method.as_str()
            ));
            if let StepAction::Error(err) = &step.action {
                out.push_str(&format!("  {err}\n"));
            }
            if let Some(ssa) = &step.ssa {
                out.push_str(&format!(
                    "  server-side apply, field manager {}, force{}\n",
                    ssa.field_manager,
                    if ssa.removes_last_applied {
                        ", after removing the last-applied annotation"
                    } else {
                        ""
                    }
                ));
            }
            match (&step.observed, &step.applied) {
                (None, Some(applied)) => {
                    for line in yaml(applied).lines() {
                        out.push_str(&format!("+ {line}\n"));
                    }
                }
                (Some(observed), Some(applied)) => {
                    out.push_str(&linediff::diff(&yaml(observed), &yaml(applied)));
                }
                (Some(observed), None) => {
                    for line in yaml(observed).lines() {
                        out.push_str(&format!("- {line}\n"));
                    }
                }
                (None, None) => {}
            }
        }
        if self.plan.unchanged > 0 {
            out.push_str(&format!("unchanged: {} children\n", self.plan.unchanged));
        }
        for rev in &self.revisions {
            out.push_str(&format!(
                "{} ControllerRevision {}{}\n",
                rev.action.as_str(),
                rev.name,
                if rev.latest { " (latest)" } else { "" }
            ));
            match (&rev.observed, &rev.object) {
                (None, Some(obj)) => {
                    for line in yaml(obj).lines() {
                        out.push_str(&format!("+ {line}\n"));
                    }
                }
                (Some(observed), Some(obj)) if rev.action.writes() => {
                    out.push_str(&linediff::diff(&yaml(observed), &yaml(obj)));
                }
                _ => {}
            }
        }
        if let Some((before, after)) = &self.metadata_change {
            out.push_str("update object\n");
            out.push_str(&linediff::diff(&yaml(before), &yaml(after)));
        }
        if self.status_changes {
            out.push_str("update status\n");
            let old = self.old_status.as_ref().map(yaml).unwrap_or_default();
            out.push_str(&linediff::diff(&old, &yaml(&self.status)));
        } else {
            out.push_str("status: unchanged\n");
        }
        if self.add_finalizer {
            out.push_str("add finalizer\n");
        }
        if self.remove_finalizer {
            out.push_str("remove finalizer\n");
        }
        out
    }
}

/// A revision step in the report: its action, name, whether it is the
/// latest, the children it claims, and the object created or the change.
fn revision_value(rev: &RevisionStep) -> Value {
    let mut out = Map::new();
    out.insert("action".into(), json!(rev.action.as_str()));
    out.insert("revision".into(), json!(rev.name));
    out.insert("latest".into(), json!(rev.latest));
    let claims = rev
        .object
        .as_ref()
        .or(rev.observed.as_ref())
        .and_then(|o| o.get("children"))
        .cloned()
        .unwrap_or_else(|| json!([]));
    out.insert("children".into(), claims);
    match (&rev.observed, &rev.object) {
        (None, Some(obj)) => {
            out.insert("object".into(), obj.clone());
        }
        (Some(observed), Some(obj)) if rev.action.writes() => {
            out.insert(
                "diff".into(),
                json!(linediff::diff(&yaml(observed), &yaml(obj))),
            );
        }
        _ => {}
    }
    Value::Object(out)
}

/// `value` as YAML.
pub fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}
