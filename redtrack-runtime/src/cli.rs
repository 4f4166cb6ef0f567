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
//! Commands: `setup`, `ddl`, `load`, `status`, `errors`, `split-shards`, `migrate` (see
//! `--help`). Configuration comes from the environment ([`Config::from_env`]); logs go to
//! stderr, filtered by `RUST_LOG` (default `info,tokio_postgres=warn`).
//!
//! Exit codes: [`EXIT_OK`], [`EXIT_FAILED`] (a load or another operation failed),
//! [`EXIT_USAGE`] (bad arguments, unknown table, bad configuration), [`EXIT_REFUSED`]
//! (`migrate` found changes it will not apply).

use std::ffi::OsString;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::marker::PhantomData;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::broker::{AnyBroker, Broker, ShardReader, StartingPosition};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::RedTrackEvent;
use crate::loader::{FollowReport, KeptReject, LoadReport, Loader, ShardStatus};
use crate::migrate;
use crate::schema::{Dialect, TableSchema};
use crate::text::error_chain;
use crate::warehouse::{kinesis_loads_ddl, AnyWarehouse, Warehouse};

/// The command did what was asked.
pub const EXIT_OK: u8 = 0;
/// A load, or another operation against the broker, stage or warehouse, failed.
pub const EXIT_FAILED: u8 = 1;
/// The arguments or the configuration are wrong (clap's own code for usage errors).
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

#[derive(Parser, Debug)]
#[command(about = "Event tracking into Amazon Redshift through Amazon Kinesis")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create kinesis_loads, the tables and the streams; idempotent.
    Setup {
        /// Only this table (default: every registered table).
        #[arg(long)]
        table: Option<String>,
        /// Shards of each new stream.
        #[arg(long, default_value_t = 1)]
        shards: u32,
    },
    /// Print the CREATE TABLE statements.
    Ddl {
        /// The SQL dialect.
        #[arg(long, value_enum, default_value_t = DialectArg::Redshift)]
        dialect: DialectArg,
        /// Only this table (default: every registered table, and kinesis_loads).
        #[arg(long)]
        table: Option<String>,
    },
    /// Load a table's stream into the warehouse: one pass, or continuously with --follow.
    Load {
        /// The table.
        #[arg(long)]
        table: String,
        /// Keep loading until SIGINT/SIGTERM (which stop between loads).
        #[arg(long)]
        follow: bool,
        /// Seconds between loads with --follow.
        #[arg(long, default_value_t = 60.0)]
        interval: f64,
        /// Print each load's report as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Per table and shard: the last loaded sequence number and time, the lag, open or closed.
    Status {
        /// Only this table.
        #[arg(long)]
        table: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Recent rows the warehouse rejected, with column, value and reason.
    Errors {
        /// The table.
        #[arg(long)]
        table: String,
        /// How many rows.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Split every open shard of the table's stream in two.
    SplitShards {
        /// The table.
        #[arg(long)]
        table: String,
    },
    /// Compare the struct with the warehouse's table and print (or --apply) the changes.
    Migrate {
        /// The table.
        #[arg(long)]
        table: String,
        /// Run the statements (default: only print them).
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DialectArg {
    Redshift,
    Postgres,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Redshift => Dialect::Redshift,
            DialectArg::Postgres => Dialect::Postgres,
        }
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
            Error::Config(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        Failure {
            code,
            message: error_chain(&e),
        }
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
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn")
                }),
            )
            .with_writer(std::io::stderr)
            .try_init();
        self.run_with(std::env::args_os(), Config::from_env).await
    }

    /// Runs with `args` (the first is the program name) and the configuration from `config`
    /// (called only by commands that need one), printing to stdout and stderr.
    pub async fn run_with<I, T>(self, args: I, config: impl FnOnce() -> Result<Config>) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let code = self
            .run_to(args, config, &mut std::io::stdout(), &mut std::io::stderr())
            .await;
        ExitCode::from(code)
    }

    /// Like [`Cli::run_with`], printing to `out` and `err`; returns the exit code.
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

    async fn execute(
        &self,
        command: Command,
        config: impl FnOnce() -> Result<Config>,
        mut out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> std::result::Result<u8, Failure> {
        match command {
            Command::Ddl { dialect, table } => {
                let dialect = Dialect::from(dialect);
                if table.is_none() {
                    write_out(&mut out, &format!("{};\n", kinesis_loads_ddl(dialect)))?;
                }
                for t in self.tables(table.as_deref())? {
                    write_out(
                        &mut out,
                        &format!("\n{};\n", t.schema().create_table_sql(dialect)),
                    )?;
                }
                Ok(EXIT_OK)
            }
            Command::Setup { table, shards } => {
                let tables = self.tables(table.as_deref())?;
                let config = config()?;
                let loader = Loader::new(config).await?;
                let client = loader.warehouse().connect().await?;
                let mut bookkeeping = Vec::new();
                for name in ["kinesis_loads", "redtrack_load_rejects"] {
                    bookkeeping.push((
                        name,
                        !migrate::read_columns(&client, name).await?.is_empty(),
                    ));
                }
                for t in tables {
                    let name = t.schema().name;
                    let existed = !migrate::read_columns(&client, name).await?.is_empty();
                    t.setup(&loader).await?;
                    for (name, existed) in bookkeeping.drain(..) {
                        write_out(&mut out, &format!("table {name}: {}\n", said(existed)))?;
                    }
                    write_out(&mut out, &format!("table {name}: {}\n", said(existed)))?;
                    let stream = loader.config().stream_name(name);
                    let existed = stream_exists(loader.broker(), &stream).await?;
                    loader.broker().create_stream(&stream, shards).await?;
                    write_out(&mut out, &format!("stream {stream}: {}\n", said(existed)))?;
                }
                Ok(EXIT_OK)
            }
            Command::Load {
                table,
                follow,
                interval,
                json,
            } => {
                let t = self.table(&table)?;
                if !(interval.is_finite() && interval >= 0.0) {
                    return Err(Failure::usage(format!(
                        "--interval {interval} is not a number of seconds"
                    )));
                }
                let loader = Loader::new(config()?).await?;
                if follow {
                    let report = t.follow(&loader, Duration::from_secs_f64(interval)).await?;
                    let line = if json {
                        json!({"table": t.schema().name, "loads": report.loads,
                            "records": report.records, "rejected": report.rejected,
                            "retried": report.retried})
                        .to_string()
                    } else {
                        format!(
                            "{}: stopped after {} loads: {} events loaded, {} rejected, {} retried",
                            t.schema().name,
                            report.loads,
                            report.records,
                            report.rejected,
                            report.retried
                        )
                    };
                    write_out(&mut out, &format!("{line}\n"))?;
                    return Ok(EXIT_OK);
                }
                let name = t.schema().name;
                let mut load = t.load(&loader);
                let result = match progress(name, json) {
                    Some(bar) => {
                        let mut tick = tokio::time::interval(Duration::from_millis(200));
                        let result = loop {
                            tokio::select! {
                                r = &mut load => break r,
                                _ = tick.tick() => bar.set_message(format!(
                                    "loading {name}: {} records read",
                                    loader.records_read()
                                )),
                            }
                        };
                        bar.finish_and_clear();
                        result
                    }
                    None => load.await,
                };
                let report = result?;
                write_out(
                    &mut out,
                    &format!("{}\n", load_summary(t.schema(), &report, json)),
                )?;
                Ok(EXIT_OK)
            }
            Command::Status { table, json } => {
                let tables = self.tables(table.as_deref())?;
                let loader = Loader::new(config()?).await?;
                let mut rows = Vec::new();
                for t in tables {
                    let stream = loader.config().stream_name(t.schema().name);
                    for s in t.status(&loader).await? {
                        let lag = if s.done {
                            Some(0)
                        } else {
                            lag_ms(loader.broker(), &stream, &s).await?
                        };
                        rows.push((t.schema().name, s, lag));
                    }
                }
                if json {
                    let list: Vec<_> = rows
                        .iter()
                        .map(|(table, s, lag)| {
                            json!({
                                "table": table,
                                "shard_id": s.shard.shard_id,
                                "open": !s.shard.is_closed(),
                                "done": s.done,
                                "last_sequence_number": s.checkpoint.as_ref().map(|c| &c.sequence_number),
                                "last_load": s.checkpoint.as_ref().map(|c| &c.load_timestamp),
                                "millis_behind_latest": lag,
                            })
                        })
                        .collect();
                    write_out(&mut out, &format!("{}\n", serde_json::Value::from(list)))?;
                } else {
                    write_out(
                        &mut out,
                        &format!(
                            "{:<24} {:<24} {:<7} {:<28} {:<12} {}\n",
                            "TABLE",
                            "SHARD",
                            "STATE",
                            "LAST LOAD (UTC)",
                            "LAG",
                            "LAST SEQUENCE NUMBER"
                        ),
                    )?;
                    for (table, s, lag) in &rows {
                        let state = match (s.shard.is_closed(), s.done) {
                            (false, _) => "open",
                            (true, true) => "done",
                            (true, false) => "closed",
                        };
                        let (last_load, seq) = match &s.checkpoint {
                            Some(c) => (c.load_timestamp.as_str(), c.sequence_number.as_str()),
                            None => ("never", "-"),
                        };
                        let lag = lag.map_or("unknown".to_owned(), |ms| format!("{ms} ms"));
                        write_out(
                            &mut out,
                            &format!(
                                "{table:<24} {:<24} {state:<7} {last_load:<28} {lag:<12} {seq}\n",
                                s.shard.shard_id
                            ),
                        )?;
                    }
                }
                Ok(EXIT_OK)
            }
            Command::Errors { table, limit, json } => {
                let t = self.table(&table)?;
                let loader = Loader::new(config()?).await?;
                let rejects = t.rejects(&loader, limit).await?;
                if json {
                    let list: Vec<_> = rejects
                        .iter()
                        .map(|r| {
                            json!({"load_id": r.load_id, "rejected_at": r.rejected_at,
                                "file": r.row.file, "line": r.row.line, "column": r.row.column,
                                "value": r.row.value, "reason": r.row.reason})
                        })
                        .collect();
                    write_out(&mut out, &format!("{}\n", serde_json::Value::from(list)))?;
                } else if rejects.is_empty() {
                    write_out(
                        &mut out,
                        &format!("{}: no rejected rows\n", t.schema().name),
                    )?;
                } else {
                    for r in &rejects {
                        let column = if r.row.column.is_empty() {
                            "(row)"
                        } else {
                            r.row.column.as_str()
                        };
                        write_out(
                            &mut out,
                            &format!(
                                "{} load {}: column {column}: {}\n    value: {}\n    at {} line {}\n",
                                r.rejected_at, r.load_id, r.row.reason, r.row.value, r.row.file, r.row.line
                            ),
                        )?;
                    }
                }
                Ok(EXIT_OK)
            }
            Command::SplitShards { table } => {
                let t = self.table(&table)?;
                let config = config()?;
                let broker = AnyBroker::from_config(&config).await?;
                let stream = config.stream_name(t.schema().name);
                let n = broker.split_shards(&stream).await?;
                write_out(&mut out, &format!("stream {stream}: split {n} shards\n"))?;
                Ok(EXIT_OK)
            }
            Command::Migrate { table, apply } => {
                let t = self.table(&table)?;
                let config = config()?;
                let warehouse = AnyWarehouse::from_config(&config).await?;
                let dialect = warehouse.dialect();
                let client = warehouse.connect().await?;
                let existing = migrate::read_columns(&client, t.schema().name).await?;
                let plan = migrate::plan(t.schema(), &existing);
                for note in &plan.notes {
                    write_out(&mut out, &format!("-- note: {note}\n"))?;
                }
                if !plan.refusals.is_empty() {
                    for r in &plan.refusals {
                        write_out(
                            err,
                            &format!("{}: refused: table `{}`, {r}\n", self.name, t.schema().name),
                        )?;
                    }
                    write_out(err, &format!("{}: nothing was changed\n", self.name))?;
                    return Ok(EXIT_REFUSED);
                }
                if plan.is_empty() {
                    write_out(&mut out, &format!("-- {}: up to date\n", t.schema().name))?;
                    return Ok(EXIT_OK);
                }
                let statements = plan.statements(dialect);
                for sql in &statements {
                    write_out(&mut out, &format!("{sql};\n"))?;
                }
                if apply {
                    for sql in &statements {
                        client.batch_execute(sql).await.map_err(|e| {
                            Failure::from(crate::warehouse::db_error(
                                &format!("migrating `{}` with `{sql}`", t.schema().name),
                                e,
                            ))
                        })?;
                    }
                    write_out(
                        &mut out,
                        &format!("-- applied {} statements\n", statements.len()),
                    )?;
                } else {
                    write_out(&mut out, "-- not applied; run again with --apply\n")?;
                }
                Ok(EXIT_OK)
            }
        }
    }
}

fn said(existed: bool) -> &'static str {
    if existed {
        "already there"
    } else {
        "created"
    }
}

fn write_out(out: &mut dyn Write, text: &str) -> std::result::Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::from(Error::Io(e)))
}

/// Whether the stream exists: ListShards answers with shards.
async fn stream_exists(broker: &AnyBroker, stream: &str) -> Result<bool> {
    match broker.list_shards(stream).await {
        Ok(shards) => Ok(!shards.is_empty()),
        Err(Error::Broker { code, .. }) if code.contains("ResourceNotFound") => Ok(false),
        Err(e) => Err(e),
    }
}

/// How far the shard's unloaded records reach behind its tip (Kinesis' MillisBehindLatest for a
/// read from the checkpoint); `None` where the broker does not say.
async fn lag_ms(broker: &AnyBroker, stream: &str, s: &ShardStatus) -> Result<Option<i64>> {
    let from = match &s.checkpoint {
        Some(c) => StartingPosition::AfterSequenceNumber(c.sequence_number.clone()),
        None => StartingPosition::TrimHorizon,
    };
    let mut reader = broker.read_shard(stream, &s.shard.shard_id, from).await?;
    Ok(reader.next_batch(1).await?.millis_behind_latest)
}

/// A spinner on a terminal (none for JSON output or when stderr is not a terminal).
fn progress(table: &str, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        tracing::info!(table, "loading");
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!("loading {table}"));
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

fn load_summary(schema: &TableSchema, r: &LoadReport, json: bool) -> String {
    if json {
        return json!({
            "table": schema.name,
            "records": r.records,
            "rejected": r.rejected,
            "kinesis_records": r.kinesis_records,
            "bytes": r.bytes,
            "load_id": r.load_id,
            "manifest": r.manifest_url,
            "more": r.more,
            "elapsed_ms": u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
            "ranges": r.ranges.iter().map(|g| json!({"shard_id": g.shard_id, "first": g.first,
                "last": g.last, "records": g.records})).collect::<Vec<_>>(),
        })
        .to_string();
    }
    let mut line = format!(
        "{}: {} events loaded from {} shards in {:.1} s",
        schema.name,
        r.records,
        r.ranges.len(),
        r.elapsed.as_secs_f64()
    );
    if r.rejected > 0 {
        line.push_str(&format!(
            "; {} rejected (see `errors --table {}`)",
            r.rejected, schema.name
        ));
    }
    if r.more {
        line.push_str("; more waiting (a per-load limit was reached)");
    }
    line
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// The generic loader calls of one registered type, behind a trait object.
trait TableOps {
    fn schema(&self) -> &'static TableSchema;
    fn setup<'a>(&self, loader: &'a Loader) -> Fut<'a, ()>;
    fn load<'a>(&self, loader: &'a Loader) -> Fut<'a, LoadReport>;
    fn follow<'a>(&self, loader: &'a Loader, interval: Duration) -> Fut<'a, FollowReport>;
    fn status<'a>(&self, loader: &'a Loader) -> Fut<'a, Vec<ShardStatus>>;
    fn rejects<'a>(&self, loader: &'a Loader, limit: u32) -> Fut<'a, Vec<KeptReject>>;
}

struct Ops<E>(PhantomData<fn() -> E>);

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
    fn follow<'a>(&self, loader: &'a Loader, interval: Duration) -> Fut<'a, FollowReport> {
        Box::pin(loader.load_follow::<E>(interval))
    }
    fn status<'a>(&self, loader: &'a Loader) -> Fut<'a, Vec<ShardStatus>> {
        Box::pin(loader.status::<E>())
    }
    fn rejects<'a>(&self, loader: &'a Loader, limit: u32) -> Fut<'a, Vec<KeptReject>> {
        Box::pin(loader.rejects::<E>(limit))
    }
}
