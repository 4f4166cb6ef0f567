//! The `redtrack` command line as a library: the schema lives in the application's own structs,
//! so the application builds its own binary from the event types it registers.
//!
//! ```no_run
//! # use redtrack_runtime as redtrack;
//! # struct PageView;
//! # impl redtrack::RedTrackEvent for PageView {
//! #     const TABLE_NAME: &'static str = "page_views";
//! #     fn schema() -> &'static redtrack::TableSchema { unimplemented!() }
//! #     fn encode_json(&self, _: &mut Vec<u8>) -> Result<(), redtrack::EncodeError> { Ok(()) }
//! # }
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     redtrack::cli::Cli::new("myapp-redtrack")
//!         .register::<PageView>() // one line per #[derive(RedTrackEvent)] struct
//!         .run()
//!         .await
//! }
//! ```
//!
//! Commands: `setup`, `ddl`, `load`, `status`, `errors`, `redrive`, `split-shards`, `migrate` (see
//! `--help`). Configuration comes from the environment ([`Config::from_env`]); what a command
//! needs is checked before it calls any service, and everything missing or wrong is said at once
//! (exit code 2). Logs go to stderr, filtered by `RUST_LOG` (default
//! `info,tokio_postgres=warn,aws_config=error`): plain lines when stderr is not a terminal (or
//! `NO_COLOR` is set), coloured on a terminal, where a spinner shows a load's progress and log
//! lines are written around it. The command line owns the process's signals: `load --follow`
//! stops between loads on SIGINT or SIGTERM ([`shutdown_signal`]).
//!
//! Built only with the `cli` cargo feature (on by default), which brings clap, indicatif and
//! tracing-subscriber; an application that only writes events can turn it off.
//!
//! Rooms: `args` (clap), `commands` (one function per command), `output` (text, JSON, the
//! spinner), `table` (the registered event types behind a trait object).
//!
//! Exit codes: [`EXIT_OK`], [`EXIT_FAILED`] (a load or another operation failed),
//! [`EXIT_USAGE`] (bad arguments, unknown table, bad configuration, a step not taken yet:
//! `setup`, `migrate --apply`), [`EXIT_REFUSED`] (`migrate` found changes it will not apply).

mod args;
mod commands;
mod output;
mod table;

use std::ffi::OsString;
use std::io::Write;
use std::marker::PhantomData;
use std::process::ExitCode;

use args::{Args, Command};
use table::{Ops, TableOps};

use crate::config::{self, Config, Needs};
use crate::error::{Error, Result};
use crate::event::RedTrackEvent;
use crate::schema::Dialect;
use crate::text::error_chain;

/// The command did what was asked.
pub const EXIT_OK: u8 = 0;
/// A load, or another operation against the broker, stage or warehouse, failed.
pub const EXIT_FAILED: u8 = 1;
/// The arguments or the configuration are wrong, or a step comes first (`setup`, `migrate
/// --apply`): clap's own code for usage errors.
pub const EXIT_USAGE: u8 = 2;
/// `migrate` found differences it refuses to apply; nothing was changed.
pub const EXIT_REFUSED: u8 = 3;

/// The `redtrack` command line for the registered event types.
#[must_use = "a Cli does nothing until .run()"]
pub struct Cli {
    name: String,
    tables: Vec<Box<dyn TableOps>>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tables.iter().map(|t| t.schema().name).collect();
        f.debug_struct("Cli")
            .field("name", &self.name)
            .field("tables", &names)
            .finish()
    }
}

/// An error of the command line: the exit code says which kind.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match e {
            Error::Config(_) | Error::Missing { .. } => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        let message = match e {
            // The step to take says it all; the warehouse's own words are its source.
            Error::Missing { .. } => e.to_string(),
            _ => error_chain(&e),
        };
        Failure { code, message }
    }
}

impl Cli {
    /// A command line called `name` (shown in `--help`), with no tables yet.
    pub fn new(name: impl Into<String>) -> Cli {
        Cli {
            name: name.into(),
            tables: Vec::new(),
        }
    }

    /// Adds the table of `E`.
    pub fn register<E: RedTrackEvent + 'static>(mut self) -> Cli {
        self.tables.push(Box::new(Ops::<E>(PhantomData)));
        self
    }

    /// Runs with the process's arguments and environment; logs to stderr by `RUST_LOG`.
    pub async fn run(self) -> ExitCode {
        self.run_args(std::env::args_os()).await
    }

    /// Like [`Cli::run`], with `args` (the first is the program name) instead of the process's.
    pub async fn run_args<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        init_logging();
        let code = self
            .run_from(
                args,
                None::<fn() -> Result<Config>>,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .await;
        ExitCode::from(code)
    }

    /// Runs with `args` (the first is the program name) and the configuration from `config`
    /// (called only by commands that need one), printing to stdout and stderr, with the logging
    /// [`Cli::run`] sets up (unless the application installed a subscriber of its own).
    pub async fn run_with<I, T>(self, args: I, config: impl FnOnce() -> Result<Config>) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        init_logging();
        let code = self
            .run_to(args, config, &mut std::io::stdout(), &mut std::io::stderr())
            .await;
        ExitCode::from(code)
    }

    /// Like [`Cli::run_with`], printing to `out` and `err`, without setting up logging; returns
    /// the exit code.
    pub async fn run_to<I, T>(
        self,
        args: I,
        config: impl FnOnce() -> Result<Config>,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        self.run_from(args, Some(config), out, err).await
    }

    /// Runs with the configuration from `config`, or else from the environment.
    async fn run_from<I, T, F>(
        self,
        args: I,
        config: Option<F>,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
        F: FnOnce() -> Result<Config>,
    {
        let parsed = <Args as clap::CommandFactory>::command()
            .name(self.name.clone())
            .bin_name(self.name.clone())
            .try_get_matches_from(args)
            .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m));
        let args = match parsed {
            Ok(a) => a,
            Err(e) => {
                // --help and --version are "errors" that go to stdout with success.
                let text = e.render().to_string();
                return if e.use_stderr() {
                    let _ = err.write_all(text.as_bytes());
                    EXIT_USAGE
                } else {
                    let _ = out.write_all(text.as_bytes());
                    EXIT_OK
                };
            }
        };
        let config = ConfigSource(config);
        match self.execute(args.command, config, out, err).await {
            Ok(code) => code,
            Err(f) => {
                let _ = writeln!(err, "{}: error: {}", self.name, f.message);
                f.code
            }
        }
    }

    fn table(&self, name: &str) -> std::result::Result<&dyn TableOps, Failure> {
        let wanted = name.to_ascii_lowercase();
        self.tables
            .iter()
            .find(|t| t.schema().name == wanted)
            .map(|t| t.as_ref())
            .ok_or_else(|| {
                let known: Vec<&str> = self.tables.iter().map(|t| t.schema().name).collect();
                Failure::usage(format!(
                    "no registered table `{name}`; this binary knows: {}",
                    known.join(", ")
                ))
            })
    }

    fn tables(&self, only: Option<&str>) -> std::result::Result<Vec<&dyn TableOps>, Failure> {
        match only {
            Some(name) => Ok(vec![self.table(name)?]),
            None => Ok(self.tables.iter().map(|t| t.as_ref()).collect()),
        }
    }

    async fn execute<F: FnOnce() -> Result<Config>>(
        &self,
        command: Command,
        config: ConfigSource<F>,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::result::Result<u8, Failure> {
        match command {
            Command::Ddl { dialect, table } => {
                let tables = self.tables(table.as_deref())?;
                commands::ddl(&tables, Dialect::from(dialect), table.is_some(), out)
            }
            Command::Setup { table, shards } => {
                let tables = self.tables(table.as_deref())?;
                let config = config.get(Needs::LOADER).await?;
                commands::setup(&tables, config, shards, out).await
            }
            Command::Load {
                table,
                all,
                follow,
                interval,
                json,
                knobs,
            } => {
                let tables = match (&table, all) {
                    (Some(name), false) => vec![self.table(name)?],
                    _ => self.tables(None)?,
                };
                let follow = match follow {
                    true => Some(args::seconds("--interval", interval)?),
                    false => None,
                };
                let config = knobs.apply(config.get(Needs::LOADER).await?)?;
                commands::load(&self.name, &tables, config, follow, json, out, err).await
            }
            Command::Status { table, json } => {
                let tables = self.tables(table.as_deref())?;
                let config = config.get(Needs::LOADER).await?;
                commands::status(&tables, config, json, out).await
            }
            Command::Errors { table, limit, json } => {
                let t = self.table(&table)?;
                let config = config.get(Needs::LOADER).await?;
                commands::errors(t, config, limit, json, out).await
            }
            Command::Redrive { table, json } => {
                let t = self.table(&table)?;
                let config = config.get(Needs::LOADER).await?;
                commands::redrive(t, config, json, out).await
            }
            Command::SplitShards { table } => {
                let t = self.table(&table)?;
                let config = config.get(Needs::WRITER).await?;
                commands::split_shards(t, config, out).await
            }
            Command::Migrate { table, apply } => {
                let t = self.table(&table)?;
                let config = config.get(Needs::WAREHOUSE).await?;
                commands::migrate(&self.name, t, config, apply, out, err).await
            }
        }
    }
}

/// Where the configuration comes from: the application's function, or (`None`) the
/// environment.
struct ConfigSource<F>(Option<F>);

impl<F: FnOnce() -> Result<Config>> ConfigSource<F> {
    /// The configuration, checked for what the command `needs`, AWS settings included, before
    /// any call to a service: everything missing or wrong in one [`Error::Config`].
    async fn get(self, needs: Needs) -> Result<Config> {
        let (config, mut problems, kinds_known) = match self.0 {
            None => {
                let read = config::read_lookup(|k| std::env::var(k).ok(), needs);
                (read.config, read.problems, read.kinds_known)
            }
            Some(f) => {
                let config = f()?;
                let problems = config.problems(needs);
                (config, problems, true)
            }
        };
        if kinds_known {
            let aws = crate::aws::Aws::default();
            problems.extend(aws.problems(&config, config.aws_needs(needs)).await);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(config::config_error(problems))
        }
    }
}

/// The default log filter: redtrack's progress, warnings of the rest.
const DEFAULT_LOG_FILTER: &str = "info,tokio_postgres=warn,aws_config=error";

/// Logs to stderr by `RUST_LOG` (default [`DEFAULT_LOG_FILTER`]): plain lines off a terminal,
/// around the spinner on one. Does nothing if the process already has a subscriber.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(output::stderr_is_a_terminal())
        .with_writer(output::LogWriter)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM (on systems without SIGTERM, on Ctrl-C): what `load --follow`
/// stops on. The library installs no signal handler of its own; an application that calls
/// [`Loader::load_follow`](crate::Loader::load_follow) can pass this, or its own shutdown.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
