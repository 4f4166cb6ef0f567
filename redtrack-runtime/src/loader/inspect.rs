//! What the loader can tell without loading: checkpoints, each shard's state, the recent loads
//! and the kept rejects.

use super::checkpoint::{read_checkpoints, recent_loads_sql, Checkpoint, LoadedRange};
use super::reader::shard_done;
use super::rejects::{recent_rejects_sql, rejects_error};
use futures::{StreamExt, TryStreamExt};

use super::{KeptReject, Loader, ShardStatus};
use crate::broker::{Backlog, Broker, StartingPosition};
use crate::error::{RecordSource, RejectedRow, Result};
use crate::event::RedTrackEvent;
use crate::stage::Stage;
use crate::warehouse::{column, db_error, Warehouse};

/// How many shards `status` counts at once.
const STATUS_CONCURRENCY: usize = 8;

impl<B: Broker, S: Stage, W: Warehouse> Loader<B, S, W> {
    /// The latest checkpoint of every shard ever loaded for `E`'s stream.
    pub async fn checkpoints<E: RedTrackEvent>(&self) -> Result<Vec<Checkpoint>> {
        let client = self.warehouse.connect().await?;
        let stream = self.config.stream_name(E::TABLE_NAME);
        let mut cps: Vec<Checkpoint> = read_checkpoints(&client, &stream)
            .await?
            .into_values()
            .collect();
        cps.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(cps)
    }

    /// Every shard of `E`'s stream with how far it was loaded and what waits to be loaded
    /// after its checkpoint: records, bytes, the age of the oldest
    /// ([`ShardStatus::backlog`]). Counting reads the shards (several at once; on Kinesis up to
    /// [`BACKLOG_LIMIT`](crate::broker::BACKLOG_LIMIT) records each, 5 calls a second).
    ///
    /// # Errors
    ///
    /// Those of the broker and the warehouse; [`Error::Missing`](crate::Error::Missing) before
    /// `setup`; [`Error::Config`](crate::Error::Config) if the checkpoints were written by
    /// another broker.
    pub async fn status<E: RedTrackEvent>(&self) -> Result<Vec<ShardStatus>> {
        let stream = self.config.stream_name(E::TABLE_NAME);
        let client = self.warehouse.connect().await?;
        let mut cps = read_checkpoints(&client, &stream).await?;
        let shards = self.broker.list_shards(&stream).await?;
        let mut counting = Vec::with_capacity(shards.len());
        for shard in shards {
            let checkpoint = cps.remove(&shard.shard_id);
            let stream = &stream;
            counting.push(async move {
                let done = shard_done(&shard, checkpoint.as_ref().map(|c| &c.sequence_number));
                let backlog = match (&checkpoint, done) {
                    (_, true) => Backlog {
                        complete: true,
                        ..Backlog::default()
                    },
                    (Some(c), false) => {
                        self.broker
                            .check_checkpoint(stream, &shard, &c.sequence_number)
                            .await?;
                        let from = StartingPosition::AfterSequenceNumber(c.sequence_number.clone());
                        self.broker.backlog(stream, &shard.shard_id, from).await?
                    }
                    (None, false) => {
                        self.broker
                            .backlog(stream, &shard.shard_id, StartingPosition::TrimHorizon)
                            .await?
                    }
                };
                Ok::<_, crate::error::Error>(ShardStatus {
                    shard,
                    checkpoint,
                    done,
                    backlog,
                })
            });
        }
        futures::stream::iter(counting)
            .buffered(STATUS_CONCURRENCY)
            .try_collect()
            .await
    }

    /// The `limit` most recent rows of `kinesis_loads` for `E`'s stream, newest first (by
    /// `load_timestamp`).
    pub async fn recent_loads<E: RedTrackEvent>(&self, limit: u32) -> Result<Vec<LoadedRange>> {
        const WHAT: &str = "reading kinesis_loads";
        let client = self.warehouse.connect().await?;
        let stream = self.config.stream_name(E::TABLE_NAME);
        let rows = client
            .query(&recent_loads_sql(limit), &[&stream])
            .await
            .map_err(|e| db_error(WHAT, e))?;
        rows.iter()
            .map(|r| {
                Ok(LoadedRange {
                    shard_id: column(r, 0, WHAT)?,
                    starting_sequence_number: column::<String>(r, 1, WHAT)?.into(),
                    ending_sequence_number: column::<String>(r, 2, WHAT)?.into(),
                    load_timestamp: column::<Option<String>>(r, 3, WHAT)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The `limit` most recent rejected rows of `E`'s table, newest first.
    pub async fn rejects<E: RedTrackEvent>(&self, limit: u32) -> Result<Vec<KeptReject>> {
        const WHAT: &str = "reading redtrack_load_rejects";
        let client = self.warehouse.connect().await?;
        let rows = client
            .query(&recent_rejects_sql(limit), &[&E::TABLE_NAME])
            .await
            .map_err(|e| rejects_error(WHAT, e))?;
        rows.iter()
            .map(|r| {
                let mut row = RejectedRow::new(
                    column::<String>(r, 1, WHAT)?,
                    u64::try_from(column::<i64>(r, 2, WHAT)?).unwrap_or(0),
                    column::<String>(r, 3, WHAT)?,
                    column::<String>(r, 4, WHAT)?,
                    column::<String>(r, 5, WHAT)?,
                );
                let text = |i| column::<Option<String>>(r, i, WHAT);
                if let (Some(stream), Some(shard), Some(seq)) = (text(7)?, text(8)?, text(9)?) {
                    let sub = column::<Option<i64>>(r, 10, WHAT)?;
                    row.source = Some(RecordSource::new(
                        stream,
                        shard,
                        seq.into(),
                        sub.map(|s| u64::try_from(s).unwrap_or(0)),
                    ));
                }
                Ok(KeptReject {
                    load_id: column(r, 0, WHAT)?,
                    row,
                    rejected_at: column::<Option<String>>(r, 6, WHAT)?.unwrap_or_default(),
                    status: text(11)?.unwrap_or_else(|| "rejected".to_owned()),
                })
            })
            .collect()
    }
}
