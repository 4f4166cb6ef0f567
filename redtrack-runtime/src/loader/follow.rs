//! Loading continuously, until the caller says stop.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;

use super::{FollowReport, LoadReport, Loader};
use crate::broker::Broker;
use crate::error::Result;
use crate::event::RedTrackEvent;
use crate::stage::Stage;
use crate::warehouse::Warehouse;

/// The longest wait before a failed pass is tried again.
const RETRY_WAIT: Duration = Duration::from_secs(5);

impl<B: Broker, S: Stage, W: Warehouse> Loader<B, S, W> {
    /// Loads continuously: a pass, then another at once if a limit cut it short, else after
    /// `interval`; until `shutdown` resolves, which stops it between passes (a pass under way
    /// finishes or fails whole, so nothing is left half done). Retryable failures (conflicts
    /// with other loaders, lost connections) are logged and tried again after at most 5 s;
    /// others end the loop with the error.
    ///
    /// The library installs no signal handler: the command line passes SIGINT/SIGTERM
    /// (`cli::shutdown_signal`), an application its own shutdown (a channel, a cancellation
    /// token's `cancelled()`).
    ///
    /// ```no_run
    /// # async fn run<E: redtrack_runtime::RedTrackEvent>(loader: redtrack_runtime::Loader) -> redtrack_runtime::Result<()> {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// # drop(stop);
    /// let report = loader
    ///     .load_follow::<E>(std::time::Duration::from_secs(60), async {
    ///         let _ = stopped.await;
    ///     })
    ///     .await?;
    /// println!("{} loads, {} events", report.loads, report.records);
    /// # Ok(()) }
    /// ```
    pub async fn load_follow<E: RedTrackEvent>(
        &self,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
    ) -> Result<FollowReport> {
        self.load_follow_with::<E>(interval, shutdown, |_| {}).await
    }

    /// [`Loader::load_follow`], calling `each` after every pass with what it did: the report of
    /// a pass that committed or found nothing, or the retryable error of one that will be tried
    /// again (a failure that ends the loop is returned instead). The command line prints one
    /// summary per pass with it.
    pub async fn load_follow_with<E: RedTrackEvent>(
        &self,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
        mut each: impl FnMut(std::result::Result<&LoadReport, &crate::error::Error>),
    ) -> Result<FollowReport> {
        let shutdown = shutdown.fuse();
        futures::pin_mut!(shutdown);
        let mut report = FollowReport::default();
        // Asked to stop before the first pass?
        if (&mut shutdown).now_or_never().is_some() {
            return Ok(report);
        }
        let mut stopping = false;
        loop {
            let load = self.load::<E>();
            futures::pin_mut!(load);
            // A shutdown during the pass lets it finish.
            let result = loop {
                tokio::select! {
                    r = &mut load => break r,
                    () = &mut shutdown, if !stopping => stopping = true,
                }
            };
            let wait = match result {
                Ok(r) => {
                    each(Ok(&r));
                    report.loads += 1;
                    report.records += r.records;
                    report.rejected += r.rejected;
                    report.twins += r.twins;
                    if r.more {
                        Duration::ZERO
                    } else {
                        interval
                    }
                }
                Err(e) if e.is_retryable() => {
                    each(Err(&e));
                    report.retried += 1;
                    tracing::warn!(table = E::TABLE_NAME, error = %e, "load failed; trying again");
                    interval.min(RETRY_WAIT)
                }
                Err(e) => return Err(e),
            };
            if stopping {
                return Ok(report);
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return Ok(report),
            }
        }
    }
}
