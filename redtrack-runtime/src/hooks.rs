//! Named phases of a load, and the test hook that stops a loader at one of them.
//!
//! With `REDTRACK_TEST_PAUSE_AT=<phase>` in its environment, a loader that reaches that phase
//! prints `REDTRACK_PAUSED <phase>` on stderr and sleeps forever, so a crash test can SIGKILL it
//! exactly there. Without the variable [`pause_at`] does nothing.

use std::io::Write;
use std::time::Duration;

/// The environment variable of the test hook.
pub const PAUSE_ENV: &str = "REDTRACK_TEST_PAUSE_AT";

/// The marker printed on stderr when the hook pauses.
pub const PAUSE_MARKER: &str = "REDTRACK_PAUSED";

/// A point in a load where a crash must leave nothing half done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
