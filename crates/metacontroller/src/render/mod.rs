//! `metacontroller render`: one sync of a CompositeController or a
//! DecoratorController ([`decorator`]), offline.
//!
//! The controller, the CRDs of its types, its parents and (optionally) the
//! observed children and related objects are read from files (see
//! [`input`]). For each parent the hooks are called as the engine calls
//! them ([`hook`]: the spec's URL, `--hook-url`, or `--hook-exec`), with
//! request bodies built by the engine's own code
//! ([`metacontroller_engine::render`]): `customize` first when the
//! controller has one (its related objects are picked from the input
//! files), then `sync`, or `finalize` with `--deleting`. The answer goes
//! through the engine's checks, and the plan (what child management would
//! create, update, delete) is computed with the engine's dynamic-apply
//! logic ([`metacontroller_engine::render::plan`]), or, with
//! `--apply-strategy=server-side-apply`, as the apply requests it would
//! send and their results as far as they can be computed offline
//! ([`metacontroller_engine::render::plan_with`]). What is printed is a
//! [`report::Report`] per parent.
//!
//! Exit status: 0 when the sync would write nothing, 2 when it would, 1
//! when a hook failed or answered something the engine refuses (the reason
//! on standard error). With `--check DIR` the reports are compared with
//! golden files instead (see [`golden`]): 0 when they all match, 1 when
//! one differs or is missing; `--update` writes them.

mod decorator;
mod golden;
mod hook;
mod input;
mod linediff;
mod report;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use metacontroller_api::{CompositeController, DecoratorController, HookVersion, HookedController};
use metacontroller_engine::ApplyStrategy;
use metacontroller_engine::discovery::ResourceInfo;
use metacontroller_engine::object;
use metacontroller_engine::render::{
    Catalog, CompositeRender, DecoratorRender, RelatedObjects, plan_with,
};
use metacontroller_engine::ssa::ApplyOptions;
use serde_json::Value;

use hook::Transport;
use input::Inputs;
use report::{Format, Report};

/// Flags of `render`.
#[derive(Args, Clone)]
pub struct RenderArgs {
    /// YAML or JSON files, or directories of them: the controller, CRDs,
    /// parents, observed children and related objects.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Only this parent (`name` or `namespace/name`).
    #[arg(long)]
    parent: Option<String>,
    /// Call the sync and finalize hooks at this URL instead of the spec's.
    #[arg(long, conflicts_with = "hook_exec")]
    hook_url: Option<String>,
    /// Call the customize hook at this URL instead of the spec's.
    #[arg(long, conflicts_with = "hook_exec")]
    customize_url: Option<String>,
    /// Run this shell command for each hook call: the request JSON on its
    /// standard input, the answer JSON on its standard output,
    /// METACONTROLLER_HOOK=sync|finalize|customize in its environment.
    #[arg(long)]
    hook_exec: Option<String>,
    /// Render the parent as being deleted (the finalize hook, if any).
    #[arg(long)]
    deleting: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: Format,
    /// Compare the reports with the golden files in this directory.
    #[arg(long)]
    check: Option<PathBuf>,
    /// With --check: write the golden files instead of comparing.
    #[arg(long, requires = "check")]
    update: bool,
    /// How the engine writes children: dynamic-apply or
    /// server-side-apply (as the engine's flag).
    #[arg(long, default_value = "dynamic-apply")]
    apply_strategy: String,
    /// Field manager of server-side applies (as the engine's flag).
    #[arg(long, default_value = "metacontroller")]
    apply_strategy_ssa_field_manager: String,
}

impl RenderArgs {
    /// The apply options of `--apply-strategy` and
    /// `--apply-strategy-ssa-field-manager`.
    fn apply(&self) -> anyhow::Result<ApplyOptions> {
        let strategy: ApplyStrategy = self.apply_strategy.parse()?;
        if self.apply_strategy_ssa_field_manager.is_empty() {
            bail!("--apply-strategy-ssa-field-manager must not be empty");
        }
        Ok(ApplyOptions {
            strategy,
            field_manager: self.apply_strategy_ssa_field_manager.clone(),
        })
    }
}

/// The controller being rendered.
enum Renderer {
    Composite(Box<CompositeRender>),
    Decorator(Box<DecoratorRender>),
}

impl Renderer {
    /// Whether `obj` is of the parent (target) type(s).
    fn is_parent_type(&self, obj: &Value) -> bool {
        match self {
            Renderer::Composite(r) => {
                let t = r.parent_type();
                object::kind(obj) == t.kind() && object::api_version(obj) == t.api_version()
            }
            Renderer::Decorator(r) => r.is_target_type(obj),
        }
    }

    fn parent_kinds(&self) -> String {
        match self {
            Renderer::Composite(r) => r.parent_type().kind().to_owned(),
            Renderer::Decorator(_) => "target".to_owned(),
        }
    }

    fn wants(&self, obj: &Value) -> bool {
        match self {
            Renderer::Composite(r) => r.wants(obj),
            Renderer::Decorator(r) => r.wants(obj),
        }
    }

    fn selector_name(&self) -> &'static str {
        match self {
            Renderer::Composite(_) => "parentResource.labelSelector",
            Renderer::Decorator(_) => "the selectors of its resources[] rule",
        }
    }
}

/// Exit status: nothing to do.
const CONVERGED: i32 = 0;
/// Exit status: an error.
const FAILED: i32 = 1;
/// Exit status: changes planned.
const CHANGES: i32 = 2;

/// Runs `render`; returns the exit status.
pub async fn main(args: RenderArgs) -> i32 {
    match run(&args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            FAILED
        }
    }
}

/// The built-in types plus the input CRDs' types.
fn catalog(inputs: &Inputs) -> Catalog {
    let mut catalog = Catalog::new(
        metacontroller_apiserver::builtin_resources()
            .into_iter()
            .map(|info| ResourceInfo {
                api_resource: kube::core::ApiResource {
                    api_version: info.api_version(),
                    group: info.group.clone(),
                    version: info.version.clone(),
                    kind: info.kind.clone(),
                    plural: info.plural.clone(),
                },
                namespaced: info.namespaced,
                has_status: info.status,
            }),
    );
    for crd in &inputs.crds {
        catalog.insert_crd(crd);
    }
    catalog
}

async fn run(args: &RenderArgs) -> anyhow::Result<i32> {
    let inputs = Inputs::sort(input::read_objects(&args.files)?);
    let controller = match inputs.controllers.as_slice() {
        [one] => one,
        [] => bail!("no CompositeController or DecoratorController in the input"),
        _ => bail!("more than one controller in the input"),
    };
    let catalog = catalog(&inputs);
    let render = if controller["kind"] == "DecoratorController" {
        let dc: DecoratorController =
            serde_json::from_value(controller.clone()).context("invalid DecoratorController")?;
        Renderer::Decorator(Box::new(DecoratorRender::new(&dc, &catalog)?))
    } else {
        let cc: CompositeController =
            serde_json::from_value(controller.clone()).context("invalid CompositeController")?;
        Renderer::Composite(Box::new(CompositeRender::new(&cc, &catalog)?))
    };
    let transport = match &args.hook_exec {
        Some(command) => Transport::Exec(command.clone()),
        None => Transport::Http {
            sync: args.hook_url.clone(),
            customize: args.customize_url.clone(),
        },
    };

    let mut parents: Vec<&Value> = inputs
        .objects
        .iter()
        .filter(|o| render.is_parent_type(o))
        .filter(|o| {
            args.parent
                .as_deref()
                .is_none_or(|p| p == object::key(o) || p == object::name(o))
        })
        .collect();
    parents.sort_by_key(|o| object::key(o));
    if parents.is_empty() {
        bail!(
            "no {} {} in the input",
            render.parent_kinds(),
            args.parent.as_deref().unwrap_or("parent")
        );
    }

    let mut code = CONVERGED;
    for parent in parents {
        if !render.wants(parent) {
            eprintln!(
                "skipped: {} does not match {}",
                object::describe(parent),
                render.selector_name()
            );
            continue;
        }
        let rendered = match &render {
            Renderer::Composite(r) => {
                render_parent(r, &catalog, &inputs, &transport, parent, args).await
            }
            Renderer::Decorator(r) => {
                decorator::render_target(r, &catalog, &inputs, &transport, parent, args).await
            }
        };
        let report = match rendered {
            Ok(report) => report,
            Err(err) => {
                eprintln!("error: {}: {err:#}", object::describe(parent));
                code = FAILED;
                continue;
            }
        };
        for err in &report.refused {
            eprintln!("error: {}: {err}", report.parent);
        }
        for step in &report.plan.steps {
            if let metacontroller_engine::render::StepAction::Error(err) = &step.action {
                eprintln!("error: {}: {err}", report.parent);
            }
        }
        let this = if report.failed() {
            FAILED
        } else if report.changes() {
            CHANGES
        } else {
            CONVERGED
        };
        match &args.check {
            None => {
                print!("{}", report.render(args.output));
                if args.output == Format::Yaml {
                    println!("---");
                }
                if code != FAILED && this != CONVERGED {
                    code = this;
                }
            }
            Some(dir) => {
                let text = report.render(Format::Yaml);
                let path = golden::path(dir, object::namespace(parent), object::name(parent));
                if args.update {
                    golden::update(&path, &text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                    continue;
                }
                match golden::check(&path, &text)
                    .with_context(|| format!("reading {}", path.display()))?
                {
                    golden::Outcome::Same => {
                        eprintln!("ok: {} matches {}", report.parent, path.display())
                    }
                    golden::Outcome::Missing => {
                        eprintln!(
                            "error: {}: no golden file {} (run with --update)",
                            report.parent,
                            path.display()
                        );
                        code = FAILED;
                    }
                    golden::Outcome::Differs(diff) => {
                        eprintln!(
                            "error: {}: the rendering differs from {}:",
                            report.parent,
                            path.display()
                        );
                        print!("{diff}");
                        code = FAILED;
                    }
                }
            }
        }
    }
    Ok(code)
}

async fn render_parent(
    render: &CompositeRender,
    catalog: &Catalog,
    inputs: &Inputs,
    transport: &Transport,
    parent: &Value,
    args: &RenderArgs,
) -> anyhow::Result<Report> {
    let cc = render.controller();
    let apply = args.apply()?;
    let add_finalizer = cc.finalize_hook().is_some()
        && render.selected(parent)
        && !object::is_deleting(parent)
        && !args.deleting
        && !object::has_finalizer(parent, render.finalizer_name());
    let parent = render.prepare_parent(parent, args.deleting);
    let selector = render.selector(&parent)?;
    let observed = render.observed(&parent, &selector, &inputs.objects);

    let (hook_name, hook) = hook::sync_or_finalize(cc, render.finalizing(&parent))?;
    let finalizing = hook_name == "finalize";

    let related = match cc.customize_hook() {
        None => RelatedObjects::default(),
        Some(customize) => {
            let body = render.customize_request(&parent)?;
            let answer = hook::call(transport, "customize", customize, body).await?;
            let answer = render.decode_customize(&answer, customize.response_unmarshall_mode())?;
            render.related(
                &answer,
                customize.version(),
                &parent,
                &inputs.objects,
                catalog,
            )?
        }
    };

    let version: HookVersion = hook.version();
    let mode = hook.response_unmarshall_mode();
    let (answer, revisions) = if render.uses_revisions(&parent) {
        // A rolling update: the hook is asked about the parent and about
        // each older revision's hypothetical parent.
        let revisions = render.revisions(&parent, &selector, &inputs.objects)?;
        let mut answers = Vec::new();
        for p in revisions.parents(&parent) {
            let body = render.sync_request(p, &observed, &related, version, finalizing)?;
            let answer = hook::call(transport, hook_name, hook, body).await?;
            answers.push(render.decode_sync(&answer, mode)?);
        }
        let rollout = render.roll(&parent, revisions, answers, &observed, &apply)?;
        (rollout.answer, rollout.revisions)
    } else {
        let body = render.sync_request(&parent, &observed, &related, version, finalizing)?;
        let answer = hook::call(transport, hook_name, hook, body).await?;
        (render.decode_sync(&answer, mode)?, Vec::new())
    };

    // The finalizer goes when the hook says `finalized`, and at once when
    // the controller has no finalize hook (any more).
    let remove_finalizer = object::has_finalizer(&parent, render.finalizer_name())
        && (answer.finalized || cc.finalize_hook().is_none());
    let status = render.status(&parent, &answer);
    let status_changes = render.status_changes(&parent, &status);
    let (desired, refused) =
        render.desired(&parent, &selector, answer.children.clone(), catalog)?;
    let manages_children = render.manages_children(&parent);
    let plan = if manages_children {
        plan_with(&parent, &observed, &desired, &apply)
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
        parent: object::describe(&parent),
        hook: hook_name,
        children,
        status,
        old_status: parent.get("status").cloned(),
        status_changes,
        resync_after_seconds: answer.resync_after_seconds,
        finalized: answer.finalized,
        add_finalizer,
        remove_finalizer,
        refused,
        manages_children,
        plan,
        revisions,
        apply,
        decorator: false,
        metadata_change: None,
    })
}
