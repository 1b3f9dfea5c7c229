//! The machinery every controller kind shares: what hosts a controller and
//! runs it, and what one sync of any kind is made of.
//!
//! * [`Manager`] watches the controller objects of one kind and keeps one
//!   [`Hosted`] controller per object, rebuilt when its spec changes;
//! * [`Hosted`] runs it: subscriptions, work queue, workers, periodic
//!   resync, `Starting`/`Stopping` events;
//! * [`ControllerKind`] is what differs per kind: how to build one from its
//!   spec, what it watches, its sync;
//! * for the syncs: [`SyncError`] (how a failure is retried and reported),
//!   [`exchange`](exchange::exchange) (one hook call, for sync, finalize
//!   and customize alike), [`Finalizer`], [`Claim`] (adopt and release
//!   children or ControllerRevisions), [`desired::group`] (the desired
//!   children of an answer, checked and grouped) and [`Expectations`] (the
//!   creates a sync still waits to see);
//! * for the builds: [`Hooks`], [`discover`] and [`BuildError`].
//!
//! This module never depends on `composite` or `decorator`: the kinds
//! depend on it.

mod build;
pub(crate) mod claim;
pub(crate) mod desired;
mod error;
pub(crate) mod exchange;
pub(crate) mod expectations;
mod finalizer;
mod kind;
mod manager;
mod worker;

pub(crate) use build::{BuildError, Hooks, discover};
pub(crate) use claim::{Claim, Claimable};
pub(crate) use error::SyncError;
pub(crate) use exchange::exchange;
pub(crate) use expectations::Expectations;
pub(crate) use finalizer::Finalizer;
pub(crate) use kind::ControllerKind;
pub(crate) use manager::Manager;
pub(crate) use worker::{Hosted, report, resync_after};
