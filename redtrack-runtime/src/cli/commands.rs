//! One function per command: what it does, against the broker, the stage and the warehouse; what
//! it prints is in `output`.

use std::io::Write;
use std::time::Duration;

use super::output::{self, write_out};
use super::table::TableOps;
use super::{Failure, EXIT_OK, EXIT_REFUSED};
use crate::broker::{AnyBroker, Broker, ShardReader, StartingPosition};
use crate::config::Config;
use crate::error::Result;
use crate::loader::{kinesis_loads_ddl, Loader, ShardStatus};
use crate::migrate;
use crate::schema::{Dialect, KINESIS_LOADS, LOAD_REJECTS};
use crate::warehouse::{db_error, AnyWarehouse, Warehouse};

/// The result of a command: its exit code, or a failure with its own.
pub(super) type Outcome = std::result::Result<u8, Failure>;

/// `ddl`: the CREATE TABLE statements (with `kinesis_loads` unless one table was asked for).
pub(super) fn ddl(
    tables: &[&dyn TableOps],
    dialect: Dialect,
    with_bookkeeping: bool,
    out: &mut dyn Write,
) -> Outcome {
    if with_bookkeeping {
        write_out(out, &format!("{};\n", kinesis_loads_ddl(dialect)))?;
    }
    for t in tables {
        write_out(
            out,
            &format!("\n{};\n", t.schema().create_table_sql(dialect)),
        )?;
    }
    Ok(EXIT_OK)
}

/// `setup`: the bookkeeping tables, each table and its stream; says what it created and what was
/// already there.
pub(super) async fn setup(
    tables: &[&dyn TableOps],
    config: Config,
    shards: u32,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
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
        let existed = !migrate::read_columns(&client, name).await?.is_empty();
        t.setup(&loader).await?;
        for (name, existed) in bookkeeping.drain(..) {
            write_out(out, &format!("table {name}: {}\n", output::said(existed)))?;
        }
        write_out(out, &format!("table {name}: {}\n", output::said(existed)))?;
        let stream = loader.config().stream_name(name);
        let existed = stream_exists(loader.broker(), &stream).await?;
        loader.broker().create_stream(&stream, shards).await?;
        write_out(
            out,
            &format!("stream {stream}: {}\n", output::said(existed)),
        )?;
    }
    Ok(EXIT_OK)
}

/// `load`: one pass with a spinner, or loading continuously until SIGINT/SIGTERM.
pub(super) async fn load(
    t: &dyn TableOps,
    config: Config,
    follow: Option<Duration>,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
    let schema = t.schema();
    if let Some(interval) = follow {
        let report = t.follow(&loader, interval).await?;
        write_out(
            out,
            &format!("{}\n", output::follow_summary(schema, &report, json)),
        )?;
        return Ok(EXIT_OK);
    }
    let name = schema.name;
    let mut load = t.load(&loader);
    let result = match output::progress(name, json) {
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
        out,
        &format!("{}\n", output::load_summary(schema, &report, json)),
    )?;
    Ok(EXIT_OK)
}

/// `status`: every shard of each table's stream, how far it was loaded, and its lag.
pub(super) async fn status(
    tables: &[&dyn TableOps],
    config: Config,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let loader = Loader::new(config).await?;
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
    write_out(out, &output::status(&rows, json))?;
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
    let client = warehouse.connect().await?;
    let existing = migrate::read_columns(&client, schema.name).await?;
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
        for sql in &statements {
            client.batch_execute(sql).await.map_err(|e| {
                Failure::from(db_error(
                    &format!("migrating `{}` with `{sql}`", schema.name),
                    e,
                ))
            })?;
        }
        write_out(
            out,
            &format!("-- applied {} statements\n", statements.len()),
        )?;
    } else {
        write_out(out, "-- not applied; run again with --apply\n")?;
    }
    Ok(EXIT_OK)
}

/// Whether the stream exists: ListShards answers with shards.
async fn stream_exists(broker: &AnyBroker, stream: &str) -> Result<bool> {
    match broker.list_shards(stream).await {
        Ok(shards) => Ok(!shards.is_empty()),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
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
