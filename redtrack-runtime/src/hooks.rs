//! Named phases of a load, and the test hook that stops a loader at one of them.
//!
//! Only with the `test-hooks` cargo feature (which redtrack's own tests enable, and no
//! application should): with `REDTRACK_TEST_PAUSE_AT=<phase>` in its environment, a loader that
//! reaches that phase prints `REDTRACK_PAUSED <phase>` on stderr and sleeps forever, so a crash
//! test can SIGKILL it exactly there. Without the feature [`pause_at`] compiles to nothing: a
//! production binary has no variable that can make it stop.

#[cfg(feature = "test-hooks")]
use std::io::Write;
#[cfg(feature = "test-hooks")]
use std::time::Duration;

/// The environment variable of the test hook.
#[cfg(feature = "test-hooks")]
pub const PAUSE_ENV: &str = "REDTRACK_TEST_PAUSE_AT";

/// The marker printed on stderr when the hook pauses.
#[cfg(feature = "test-hooks")]
pub const PAUSE_MARKER: &str = "REDTRACK_PAUSED";

/// A point in a load where a crash must leave nothing half done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "test-hooks"), allow(unreachable_pub, dead_code))]
pub enum Phase {
    /// Some records read from the shards, none staged yet.
    Read,
    /// Some staged files uploaded, the manifest not yet.
    Upload,
    /// Inside the transaction, the COPY under way.
    Copy,
    /// COPY and the `kinesis_loads` rows done, COMMIT not yet sent.
    Commit,
    /// Right after COMMIT.
    Committed,
}

#[cfg(feature = "test-hooks")]
impl Phase {
    /// Every phase, in load order.
    pub const ALL: [Phase; 5] = [
        Phase::Read,
        Phase::Upload,
        Phase::Copy,
        Phase::Commit,
        Phase::Committed,
    ];

    /// The phase's name in `REDTRACK_TEST_PAUSE_AT`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Read => "read",
            Phase::Upload => "upload",
            Phase::Copy => "copy",
            Phase::Commit => "commit",
            Phase::Committed => "committed",
        }
    }
}

/// Pauses forever if `REDTRACK_TEST_PAUSE_AT` names `phase` (a test hook; see the module docs).
#[cfg(feature = "test-hooks")]
pub(crate) async fn pause_at(phase: Phase) {
    let Ok(want) = std::env::var(PAUSE_ENV) else {
        return;
    };
    if want != phase.name() {
        return;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{PAUSE_MARKER} {}", phase.name());
    let _ = err.flush();
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Without the `test-hooks` feature: nothing, and no environment variable is read.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) async fn pause_at(phase: Phase) {
    let _ = phase;
}
