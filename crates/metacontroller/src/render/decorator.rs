//! One sync of a DecoratorController target, offline: the same steps as
//! for a CompositeController parent, with the target's own label,
//! annotation and status changes and its attachments.

use metacontroller_api::HookedController;
use metacontroller_engine::object;
use metacontroller_engine::render::{Catalog, DecoratorRender, RelatedObjects, plan_with};
use serde_json::Value;

use super::RenderArgs;
use super::hook::{self, Transport};
use super::input::Inputs;
use super::report::Report;

/// Renders the sync of `target`.
pub async fn render_target(
    render: &DecoratorRender,
    catalog: &Catalog,
    inputs: &Inputs,
    transport: &Transport,
    target: &Value,
    args: &RenderArgs,
) -> anyhow::Result<Report> {
    let dc = render.controller();
    let add_finalizer = dc.finalize_hook().is_some()
        && !object::is_deleting(target)
        && !args.deleting
        && !object::has_finalizer(target, render.finalizer_name());
    let apply = args.apply()?;
    let target = render.prepare_target(target, args.deleting);
    let observed = render.observed(&target, &inputs.objects);

    let (hook_name, hook) = hook::sync_or_finalize(dc, render.finalizing(&target))?;
    let finalizing = hook_name == "finalize";

    let related = match dc.customize_hook() {
        None => RelatedObjects::default(),
        Some(customize) => {
            let body = render.customize_request(&target)?;
            let answer = hook::call(transport, "customize", customize, body).await?;
            let answer = render.decode_customize(&answer, customize.response_unmarshall_mode())?;
            render.related(
                &answer,
                customize.version(),
                &target,
                &inputs.objects,
                catalog,
            )?
        }
    };

    let body = render.sync_request(&target, &observed, &related, hook.version(), finalizing)?;
    let answer = hook::call(transport, hook_name, hook, body).await?;
    let answer = render.decode_sync(&answer, hook.response_unmarshall_mode())?;

    let update = render.target_update(&target, &answer);
    let remove_finalizer = object::has_finalizer(&target, render.finalizer_name())
        && !object::has_finalizer(&update.updated, render.finalizer_name());
    // Labels and annotations, shown as a diff of the object's metadata
    // (the finalizer change is reported on its own).
    let metadata_change = {
        let mut after = update.updated.clone();
        if remove_finalizer {
            object::add_finalizer(&mut after, render.finalizer_name());
        }
        let before = target.get("metadata").cloned().unwrap_or_default();
        let after = after.get("metadata").cloned().unwrap_or_default();
        (before != after).then_some((before, after))
    };
    let status = update.updated.get("status").cloned().unwrap_or(Value::Null);
    let (desired, refused) = render.desired(&target, answer.attachments.clone(), catalog)?;
    let manages_children = render.manages_attachments(&target);
    let plan = if manages_children {
        plan_with(&target, &observed, &desired, &apply)
    } else {
        Default::default()
    };
    let mut type_keys: Vec<&String> = desired.keys().collect();
    type_keys.sort();
    let children = type_keys
        .into_iter()
        .flat_map(|k| desired[k].objects.values().cloned())
        .collect();
    Ok(Report {
        parent: object::describe(&target),
        hook: hook_name,
        children,
        status,
        old_status: target.get("status").cloned(),
        status_changes: update.status_changed,
        resync_after_seconds: answer.resync_after_seconds,
        finalized: answer.finalized,
        add_finalizer,
        remove_finalizer,
        refused,
        manages_children,
        plan,
        revisions: Vec::new(),
        apply,
        decorator: true,
        metadata_change,
    })
}
