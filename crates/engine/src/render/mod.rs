//! Offline rendering: what one sync of a CompositeController would ask its
//! hooks and write, computed from objects given as values instead of from
//! a cluster, with the engine's own request builders, child checks,
//! related-object rules and apply logic.
//!
//! * [`Catalog`]: the resource types known offline (kind, plural, scope),
//!   in place of discovery;
//! * [`CompositeRender`]: the steps of a CompositeController sync that ask
//!   nothing of the API server: the child selector, the observed children
//!   the parent claims, the `customize` and sync requests, the related
//!   objects a `customize` answer selects, and the desired children of a
//!   sync answer, checked and grouped;
//! * [`DecoratorRender`]: the same for a DecoratorController: its
//!   targets (`resources[]` and their selectors), the observed attachments,
//!   the requests, the answer's changes to the target and its desired
//!   attachments;
//! * [`Rollout`]: for a controller with rolling update methods, one
//!   rollout step: the ControllerRevisions the parent claims, the
//!   hypothetical parents the hook is asked about, the claims moved, the
//!   `Updated` condition and the revisions written, decided by the
//!   engine's own rollout code;
//! * [`plan()`]: what child management would do with the observed and
//!   desired children: creates, updates (the object the three-way merge
//!   produces, and what the update method does with it) and deletes;
//!   [`plan_with()`] the same under server-side apply (the apply request,
//!   and its result as far as it can be computed offline).
//!
//! Calling the hooks is left to the caller: requests are bytes in, answers
//! bytes out.

mod catalog;
mod composite;
mod decorator;
mod error;
mod group;
mod plan;
mod rollout;
mod ssa_merge;
mod ssa_plan;

pub use catalog::Catalog;
pub use composite::{CompositeRender, RelatedObjects};
pub use decorator::{DecoratorRender, TargetUpdate};
pub use error::RenderError;
pub use plan::{Plan, SsaApply, Step, StepAction, plan, plan_with};
pub use rollout::{RevisionAction, RevisionStep, Revisions, Rollout};
pub use ssa_merge::applied_result;
