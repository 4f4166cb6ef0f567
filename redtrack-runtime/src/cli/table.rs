//! The registered event types behind a trait object: the loader's generic calls of each, so one
//! command line serves every table of the application.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::RedTrackEvent;
use crate::loader::{FollowReport, KeptReject, LoadReport, Loader, RedriveReport, ShardStatus};
use crate::schema::TableSchema;

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// The signal every table's continuous loader stops on (one, shared).
pub(super) type Shutdown = futures::future::Shared<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// What a continuous loader calls after each pass.
pub(super) type Each<'a> = Box<dyn FnMut(std::result::Result<&LoadReport, &Error>) + 'a>;

/// The loader's calls for one registered type.
pub(super) trait TableOps {
    fn schema(&self) -> &'static TableSchema;
    fn setup<'a>(&self, loader: &'a Loader) -> Fut<'a, ()>;
    fn load<'a>(&self, loader: &'a Loader) -> Fut<'a, LoadReport>;
    fn follow<'a>(
        &self,
        loader: &'a Loader,
        interval: Duration,
        shutdown: Shutdown,
        each: Each<'a>,
    ) -> Fut<'a, FollowReport>;
    fn status<'a>(&self, loader: &'a Loader) -> Fut<'a, Vec<ShardStatus>>;
    fn rejects<'a>(&self, loader: &'a Loader, limit: u32) -> Fut<'a, Vec<KeptReject>>;
    fn redrive<'a>(&self, loader: &'a Loader) -> Fut<'a, RedriveReport>;
}

/// [`TableOps`] of the event type `E`.
pub(super) struct Ops<E>(pub(super) PhantomData<fn() -> E>);

impl<E: RedTrackEvent + 'static> TableOps for Ops<E> {
    fn schema(&self) -> &'static TableSchema {
        E::schema()
    }
    fn setup<'a>(&self, loader: &'a Loader) -> Fut<'a, ()> {
        Box::pin(loader.setup::<E>())
    }
    fn load<'a>(&self, loader: &'a Loader) -> Fut<'a, LoadReport> {
        Box::pin(loader.load::<E>())
    }
    fn follow<'a>(
        &self,
        loader: &'a Loader,
        interval: Duration,
        shutdown: Shutdown,
        each: Each<'a>,
    ) -> Fut<'a, FollowReport> {
        Box::pin(loader.load_follow_with::<E>(interval, shutdown, each))
    }
    fn status<'a>(&self, loader: &'a Loader) -> Fut<'a, Vec<ShardStatus>> {
        Box::pin(loader.status::<E>())
    }
    fn rejects<'a>(&self, loader: &'a Loader, limit: u32) -> Fut<'a, Vec<KeptReject>> {
        Box::pin(loader.rejects::<E>(limit))
    }
    fn redrive<'a>(&self, loader: &'a Loader) -> Fut<'a, RedriveReport> {
        Box::pin(loader.redrive::<E>())
    }
}
