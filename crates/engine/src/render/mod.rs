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
//! * [`plan()`]: what child management would do with the observed and
//!   desired children: creates, updates (the object the three-way merge
//!   produces, and what the update method does with it) and deletes.
//!
//! Calling the hooks is left to the caller: requests are bytes in, answers
//! bytes out.

mod catalog;
mod composite;
mod decorator;
mod error;
mod group;
mod plan;

pub use catalog::Catalog;
pub use composite::{CompositeRender, RelatedObjects};
pub use decorator::{DecoratorRender, TargetUpdate};
pub use error::RenderError;
pub use plan::{Plan, Step, StepAction, plan};
