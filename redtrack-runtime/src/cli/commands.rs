//! One function per command: what it does, against the broker, the stage and the warehouse; what
//! it prints is in `output`.

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, SystemTime};

use futures::FutureExt;

use super::output::{self, write_out, Spinner};
use super::table::{Shutdown, TableOps};
use super::{Failure, EXIT_OK, EXIT_REFUSED};
use crate::broker::{AnyBroker, Broker};
use crate::config::Config;
use crate::error::Result;
use crate::loader::dedupe::dedupe_ddl;
use crate::loader::{dedupe_table, kinesis_loads_ddl, load_rejects_ddl, Loader};
use crate::migrate;
use crate::schema::{Dialect, KINESIS_LOADS, LOAD_REJECTS};
use crate::stage::{AnyStage, Stage};
use crate::warehouse::{AnyWarehouse, Warehouse};

/// The result of a command: its exit code, or a failure with its own.
pub(super) type Outcome = std::result::Result<u8, Failure>;

/// `ddl`: the CREATE TABLE statements of every table `setup` creates; with `--table`, that
/// table's, saying which are left out.
pub(super) fn ddl(
    tables: &[&dyn TableOps],
    dialect: Dialect,
    one_table: bool,
    out: &mut dyn Write,
) -> Outcome {
    let mut text = String::new();
    if one_table {
        text.push_str(&format!(
            "-- {KINESIS_LOADS} and {LOAD_REJECTS}, which `setup` also creates, are left out \
             with --table; `ddl` without it prints them\n"
        ));
    } else {
        text.push_str(&format!("{};\n\n", kinesis_loads_ddl(dialect)));
        text.push_str(&format!("{};\n\n", load_rejects_ddl(dialect)));
    }
    let statements: Vec<String> = tables
        .iter()
        .map(|t| {
            let schema = t.schema();
            format!(
                "{};\n\n{};\n",
                schema.create_table_sql(dialect),
                dedupe_ddl(schema.name, dialect)
            )
        })
        .collect();
    text.push_str(&statements.join("\n"));
    write_out(out, &text)?;
    Ok(EXIT_OK)
}

/// `setup`: checks the stage; creates the bookkeeping tables, each table and its stream; says
/// what it created and what was already there (an existing stream with its shard count).
pub(super) async fn setup(
    tables: &[&dyn TableOps],
    config: Config,
    shards: u32,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
    match loader.stage() {
        AnyStage::S3(s3) => {
            s3.check().await?;
            let url = s3.url("");
            write_out(
                out,
                &format!("stage {}: reachable\n", url.trim_end_matches('/')),
            )?;
        }
        other => {
            let url = other.url("");
            write_out(
                out,
                &format!("stage {}: ready\n", url.trim_end_matches('/')),
            )?
        }
    }
    let client = loader.warehouse().connect().await?;
    let mut bookkeeping = Vec::new();
    for name in [KINESIS_LOADS, LOAD_REJECTS] {
        bookkeeping.push((
            name,
            !migrate::read_columns(&client, name).await?.is_empty(),
        ));
    }
    for t in tables {
        let name = t.schema().name;
        let ids = dedupe_table(name);
        let existed = !migrate::read_columns(&client, name).await?.is_empty();
        let ids_existed = !migrate::read_columns(&client, &ids).await?.is_empty();
        t.setup(&loader).await?;
        for (name, existed) in bookkeeping.drain(..) {
            write_out(out, &format!("table {name}: {}\n", output::said(existed)))?;
        }
        write_out(out, &format!("table {name}: {}\n", output::said(existed)))?;
        write_out(
            out,
            &format!("table {ids}: {}\n", output::said(ids_existed)),
        )?;
        let stream = loader.config().stream_name(name);
        let before = open_shards(loader.broker(), &stream).await?;
        loader.broker().create_stream(&stream, shards).await?;
        let line = match before {
            Some(n) => format!(
                "stream {stream}: already there, {n} open shard{} (--shards applies to new \
                 streams; `split-shards` doubles them)",
                if n == 1 { "" } else { "s" }
            ),
            None => {
                let n = open_shards(loader.broker(), &stream).await?.unwrap_or(0);
                format!(
                    "stream {stream}: created with {n} shard{}",
                    if n == 1 { "" } else { "s" }
                )
            }
        };
        write_out(out, &format!("{line}\n"))?;
    }
    Ok(EXIT_OK)
}

/// `load`: one pass per table with a spinner, or loading every table continuously until
/// SIGINT/SIGTERM with a summary line per pass. Every table is loaded even when one fails; the
/// failures are said on `err`, and the exit code is the first failure's.
pub(super) async fn load(
    program: &str,
    tables: &[&dyn TableOps],
    config: Config,
    follow: Option<Duration>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
    let mut failures: Vec<(&'static str, Failure)> = Vec::new();
    if let Some(interval) = follow {
        let shutdown: Shutdown = super::shutdown_signal().boxed().shared();
        let out = RefCell::new(out);
        let follows = tables.iter().map(|t| {
            let schema = t.schema();
            let out = &out;
            let each = Box::new(move |pass: std::result::Result<&_, &_>| {
                let line = match pass {
                    Ok(report) => output::load_summary(schema, report, json),
                    Err(e) => output::retry_summary(schema, e, json),
                };
                // Standard output gone: the log still says what happens.
                let _ = write_out(&mut **out.borrow_mut(), &format!("{line}\n"));
            });
            t.follow(&loader, interval, shutdown.clone(), each)
                .map(move |r| (schema, r))
        });
        for (schema, result) in futures::future::join_all(follows).await {
            match result {
                Ok(report) => write_out(
                    &mut **out.borrow_mut(),
                    &format!("{}\n", output::follow_summary(schema, &report, json)),
                )?,
                Err(e) => failures.push((schema.name, Failure::from(e))),
            }
        }
    } else {
        for t in tables {
            let schema = t.schema();
            let name = schema.name;
            let mut load = t.load(&loader);
            let result = match Spinner::start(format!("loading {name}"), json) {
                Some(spinner) => {
                    let mut tick = tokio::time::interval(Duration::from_millis(200));
                    loop {
                        tokio::select! {
                            r = &mut load => break r,
                            _ = tick.tick() => spinner.set_message(format!(
                                "loading {name}: {} records read",
                                loader.records_read()
                            )),
                        }
                    }
                }
                None => {
                    tracing::info!(table = name, "loading");
                    load.await
                }
            };
            match result {
                Ok(report) => write_out(
                    out,
                    &format!("{}\n", output::load_summary(schema, &report, json)),
                )?,
                Err(e) => failures.push((name, Failure::from(e))),
            }
        }
    }
    match failures.len() {
        0 => Ok(EXIT_OK),
        1 if tables.len() == 1 => Err(failures.remove(0).1),
        _ => {
            for (table, f) in &failures {
                write_out(err, &format!("{program}: error: {table}: {}\n", f.message))?;
            }
            Ok(failures[0].1.code)
        }
    }
}

/// `status`: every shard of each table's stream, how far it was loaded, what waits.
pub(super) async fn status(
    tables: &[&dyn TableOps],
    config: Config,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
    let mut rows = Vec::new();
    for t in tables {
        for s in t.status(&loader).await? {
            rows.push((t.schema().name, s));
        }
    }
    write_out(out, &output::status(&rows, json, SystemTime::now()))?;
    Ok(EXIT_OK)
}

/// `errors`: the most recent rejected rows of a table.
pub(super) async fn errors(
    t: &dyn TableOps,
    config: Config,
    limit: u32,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
    let rejects = t.rejects(&loader, limit).await?;
    write_out(out, &output::rejects(t.schema(), &rejects, json))?;
    Ok(EXIT_OK)
}

/// `redrive`: the table's kept rejects loaded again, each once; what still does not fit, with
/// today's reason.
pub(super) async fn redrive(
    t: &dyn TableOps,
    config: Config,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
    let report = t.redrive(&loader).await?;
    let table = t.schema().name;
    let text = if json {
        let still: Vec<_> = report
            .still_rejected
            .iter()
            .map(|r| {
                let source = r.source.as_ref();
                serde_json::json!({"shard_id": source.map(|s| &s.shard_id),
                    "sequence_number": source.map(|s| s.sequence_number.as_str()),
                    "column": r.column, "value": r.value, "reason": r.reason})
            })
            .collect();
        format!(
            "{}\n",
            serde_json::json!({"table": table, "redriven": report.redriven,
                "still_rejected": still, "redrive_ids": report.redrive_ids})
        )
    } else {
        let mut text = format!(
            "{table}: loaded {} kept rejects again; {} still do not fit\n",
            report.redriven,
            report.still_rejected.len()
        );
        for r in &report.still_rejected {
            let at = match &r.source {
                Some(s) => format!("shard {} sequence number {}", s.shard_id, s.sequence_number),
                None => format!("{} line {}", r.file, r.line),
            };
            let column = if r.column.is_empty() {
                "(record)"
            } else {
                &r.column
            };
            text.push_str(&format!("  {at}: column {column}: {}\n", r.reason));
        }
        text
    };
    write_out(out, &text)?;
    Ok(EXIT_OK)
}

/// `split-shards`: every open shard of the table's stream in two.
pub(super) async fn split_shards(t: &dyn TableOps, config: Config, out: &mut dyn Write) -> Outcome {
    let broker = AnyBroker::from_config(&config).await?;
    let stream = config.stream_name(t.schema().name);
    let n = broker.split_shards(&stream).await?;
    write_out(out, &format!("stream {stream}: split {n} shards\n"))?;
    Ok(EXIT_OK)
}

/// `migrate`: the plan that brings the table up to date, printed, and run with `--apply`; the
/// refusals on stderr with nothing changed.
pub(super) async fn migrate(
    program: &str,
    t: &dyn TableOps,
    config: Config,
    apply: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    let schema = t.schema();
    let warehouse = AnyWarehouse::from_config(&config).await?;
    let dialect = warehouse.dialect();
    let mut client = warehouse.connect().await?;
    let existing = migrate::read_columns_for(&client, schema.name, dialect).await?;
    if existing.is_empty() {
        return Err(Failure::from(crate::error::Error::Missing {
            missing: crate::error::Missing::Table {
                table: schema.name.to_owned(),
            },
            source: None,
        }));
    }
    let plan = migrate::plan(schema, &existing);
    for note in &plan.notes {
        write_out(out, &format!("-- note: {note}\n"))?;
    }
    if !plan.refusals.is_empty() {
        for r in &plan.refusals {
            write_out(
                err,
                &format!("{program}: refused: table `{}`, {r}\n", schema.name),
            )?;
        }
        write_out(err, &format!("{program}: nothing was changed\n"))?;
        return Ok(EXIT_REFUSED);
    }
    if plan.is_empty() {
        write_out(out, &format!("-- {}: up to date\n", schema.name))?;
        return Ok(EXIT_OK);
    }
    let statements = plan.statements(dialect);
    for sql in &statements {
        write_out(out, &format!("{sql};\n"))?;
    }
    if apply {
        let applied = plan.apply(&mut client, dialect).await?;
        write_out(
            out,
            &format!("-- applied {} statements\n", applied.statements.len()),
        )?;
    } else {
        write_out(out, "-- not applied; run again with --apply\n")?;
    }
    Ok(EXIT_OK)
}

/// How many open shards the stream has; `None` if it does not exist.
async fn open_shards(broker: &AnyBroker, stream: &str) -> Result<Option<usize>> {
    match broker.list_shards(stream).await {
        Ok(shards) if shards.is_empty() => Ok(None),
        Ok(shards) => Ok(Some(shards.iter().filter(|s| !s.is_closed()).count())),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}
