//! Re-driving rejected records: once the table is fixed (`migrate --apply`, a wider column), the
//! records kept in `redtrack_load_rejects` with status `rejected` are checked again against the
//! table as it now is, and those that fit are loaded, each exactly once, as Firehose lets its
//! users re-drive its error prefix.
//!
//! A re-drive works like a load, in batches of [`BATCH`] rejects:
//!
//! ```text
//! read rejected rows -> check each raw record (validate) -> gzip file + manifest in the stage
//!   -> txn { LOCK kinesis_loads; still `rejected`?; COPY; mark them `redriven`; COMMIT }
//! ```
//!
//! The lock is the loads' own, so a re-drive waits for a load and for another re-drive; under
//! it, the batch's rows must all still be `rejected`, else another re-drive loaded some of them
//! meanwhile: nothing is copied, and the batch is read again. A crash anywhere before COMMIT
//! leaves every row `rejected` (its staged file unreferenced), a crash after it leaves them
//! `redriven`: a record is loaded once whatever happens. Rows that still do not fit stay
//! `rejected`, with the reason they fail today in the report.

use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::commit::{begin_locked, now_text};
use super::rejects::{rejects_error, unescape_raw, REDRIVEN, REJECTED};
use super::staging::part_name;
use super::validate::RecordRules;
use super::{Loader, RedriveReport};
use crate::broker::Broker;
use crate::error::{Error, RecordSource, RejectedRow, Result};
use crate::event::RedTrackEvent;
use crate::hooks::{pause_at, Phase};
use crate::migrate::read_columns_for;
use crate::schema::LOAD_REJECTS;
use crate::stage::{load_folder, Manifest, Stage};
use crate::warehouse::{column, db_error, CopyRequest, StagedFile, Warehouse};

/// Rejects re-driven per transaction.
pub(crate) const BATCH: usize = 1000;

/// How many times a batch is read again after another re-drive took some of its rows.
const CONFLICT_RETRIES: u32 = 5;

/// Up to `$3` rejects of table `$1` waiting to be re-driven, after reject id `$2`.
pub(crate) const CANDIDATES_SQL: &str = "SELECT reject_id, raw_record, \
     CAST(raw_parts AS BIGINT), stream_name, shard_id, sequence_number, sub_sequence_number, \
     file_name, line_number, column_name, reason FROM redtrack_load_rejects \
     WHERE table_name = $1 AND status = 'rejected' AND raw_record IS NOT NULL \
     AND reject_id IS NOT NULL AND reject_id > $2 ORDER BY reject_id LIMIT ";

/// The rest of a reject's raw record (`$1`), part by part.
pub(crate) const PARTS_SQL: &str = "SELECT raw_record FROM redtrack_load_reject_parts \
     WHERE reject_id = $1 ORDER BY part";

/// One kept reject to load again.
struct Candidate {
    reject_id: String,
    raw: Vec<u8>,
    /// The row as kept (its source, column, reason), for what the report says of it.
    row: RejectedRow,
}

impl<B: Broker, S: Stage, W: Warehouse> Loader<B, S, W> {
    /// Loads the records of `E`'s table kept in `redtrack_load_rejects` (status `rejected`)
    /// that fit the table as it is now, each exactly once, and marks them `redriven`; those
    /// that still do not fit stay `rejected` and are listed in the report with today's reason.
    /// Run it after fixing the table (`migrate --apply`) or widening a column; running it again
    /// loads nothing twice.
    ///
    /// Crash- and race-safe as loads are: each batch is one transaction under the loads' lock
    /// that COPYs the records and marks their rows together (see the module docs).
    ///
    /// # Errors
    ///
    /// The errors of the stage and the warehouse; [`Error::LoadConflict`] if other re-drives
    /// kept taking the same rows.
    pub async fn redrive<E: RedTrackEvent>(&self) -> Result<RedriveReport> {
        let started = Instant::now();
        let mut report = RedriveReport::default();
        let mut after = String::new();
        loop {
            let mut conflicts = 0;
            let batch = loop {
                match self.redrive_batch::<E>(&after).await {
                    Err(e @ Error::LoadConflict { .. }) => {
                        conflicts += 1;
                        if conflicts > CONFLICT_RETRIES {
                            return Err(e);
                        }
                        tracing::info!(error = %e, "re-drive: reading the batch again");
                    }
                    other => break other?,
                }
            };
            let Some(batch) = batch else { break };
            report.redriven += batch.redriven;
            report.still_rejected.extend(batch.still_rejected);
            report.redrive_ids.extend(batch.redrive_id);
            after = batch.last_reject_id;
        }
        report.elapsed = started.elapsed();
        if report.redriven > 0 || !report.still_rejected.is_empty() {
            tracing::info!(
                table = E::TABLE_NAME,
                redriven = report.redriven,
                still_rejected = report.still_rejected.len(),
                "re-drive done"
            );
        }
        Ok(report)
    }

    /// One batch of rejects after reject id `after`; `None` when there are no more.
    async fn redrive_batch<E: RedTrackEvent>(&self, after: &str) -> Result<Option<Batch>> {
        let table = E::TABLE_NAME;
        let mut client = self.warehouse.connect().await?;
        let candidates = read_candidates(&client, table, after).await?;
        let Some(last) = candidates.last().map(|c| c.reject_id.clone()) else {
            return Ok(None);
        };
        pause_at(Phase::Read).await;
        let columns = read_columns_for(&client, table, self.warehouse.dialect()).await?;
        let rules = RecordRules::new(E::schema(), &columns);

        let mut batch = Batch {
            redriven: 0,
            still_rejected: Vec::new(),
            redrive_id: None,
            last_reject_id: last,
        };
        // The records that fit now, in the order of the staged file's lines.
        let mut staged: Vec<&Candidate> = Vec::new();
        let mut lines = Vec::new();
        for c in &candidates {
            match rules.check(&c.raw) {
                Ok(line) => {
                    lines.push(line.into_owned());
                    staged.push(c);
                }
                Err(bad) => {
                    let mut row = c.row.clone();
                    row.column = bad.column;
                    row.reason = bad.reason;
                    if !bad.value.is_empty() {
                        row.value = bad.value;
                    }
                    batch.still_rejected.push(row);
                }
            }
        }
        if staged.is_empty() {
            return Ok(Some(batch));
        }

        let now = chrono::Utc::now();
        // A load id's shape with an `r` in front: its folder sits among the loads' folders.
        let redrive_id = format!("r{}-{:08x}", now.format("%H%M%S"), rand::random::<u32>());
        let folder = load_folder(
            self.config.cluster(),
            self.config.database(),
            table,
            &now.format("%Y%m%d").to_string(),
            &redrive_id,
        );
        let local_dir = self.local_dir(&redrive_id);
        let uploaded = self.stage_lines(&local_dir, &folder, &lines).await;
        let _ = std::fs::remove_dir_all(&local_dir);
        let (file, manifest_url) = uploaded?;
        pause_at(Phase::Upload).await;

        let txn = begin_locked(&mut client, &self.warehouse, E::schema()).await?;
        // Another re-drive may have loaded some of these rows since they were read; under the
        // table's lock every re-drive of it that commits before this one has committed. Read
        // beside the transaction, which then only writes what all tables share.
        let ids: Vec<&str> = staged.iter().map(|c| c.reject_id.as_str()).collect();
        let side = self.warehouse.connect().await?;
        let still = count_rejected(&side, table, &ids).await?;
        drop(side);
        if still != ids.len() {
            return Err(Error::LoadConflict {
                table: table.to_owned(),
                message: format!(
                    "another re-drive loaded {} of these {} rejected records meanwhile",
                    ids.len() - still,
                    ids.len()
                ),
            });
        }
        let req = CopyRequest {
            table: E::schema(),
            load_id: redrive_id.clone(),
            folder,
            manifest_url,
            files: vec![file],
            // Every row may still fail; those that do stay rejected.
            max_errors: lines.len() as u64,
        };
        let outcome = self.warehouse.copy(&txn, &req, &self.stage).await?;
        // Rows COPY refused (line n of the one file is the n-th staged record) stay rejected.
        let mut refused = vec![false; staged.len()];
        for r in outcome.rejected {
            let Some(i) = usize::try_from(r.line).ok().and_then(|l| l.checked_sub(1)) else {
                continue;
            };
            if let (Some(flag), Some(c)) = (refused.get_mut(i), staged.get(i)) {
                *flag = true;
                let mut row = c.row.clone();
                row.column = r.column;
                row.reason = r.reason;
                row.value = r.value;
                batch.still_rejected.push(row);
            }
        }
        let loaded: Vec<&str> = staged
            .iter()
            .zip(&refused)
            .filter(|(_, refused)| !**refused)
            .map(|(c, _)| c.reject_id.as_str())
            .collect();
        mark_redriven(&txn, table, &loaded, &redrive_id, &now_text()).await?;
        pause_at(Phase::Commit).await;
        txn.commit().await.map_err(|e| db_error("COMMIT", e))?;
        pause_at(Phase::Committed).await;
        batch.redriven = loaded.len() as u64;
        batch.redrive_id = Some(redrive_id);
        Ok(Some(batch))
    }

    /// Writes `lines` into one gzip file in `local_dir`, uploads it and a manifest to `folder`.
    async fn stage_lines(
        &self,
        local_dir: &std::path::Path,
        folder: &str,
        lines: &[Vec<u8>],
    ) -> Result<(StagedFile, String)> {
        std::fs::create_dir_all(local_dir).map_err(|e| Error::io(local_dir, e))?;
        let path = local_dir.join(part_name(0));
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
        for line in lines {
            gz.write_all(line)
                .and_then(|()| gz.write_all(b"\n"))
                .map_err(|e| Error::io(&path, e))?;
        }
        gz.finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| Error::io(&path, e))?;
        let key = format!("{folder}/{}", part_name(0));
        self.stage.put_file(&key, &path).await?;
        let staged = StagedFile {
            url: self.stage.url(&key),
            key,
            lines: lines.len() as u64,
        };
        let manifest_key = format!("{folder}/manifest.json");
        let manifest = Manifest::new([staged.url.clone()]);
        self.stage
            .put_bytes(&manifest_key, manifest.to_bytes())
            .await?;
        Ok((staged, self.stage.url(&manifest_key)))
    }
}

/// What one batch did.
struct Batch {
    redriven: u64,
    still_rejected: Vec<RejectedRow>,
    redrive_id: Option<String>,
    last_reject_id: String,
}

/// Up to [`BATCH`] rejects of `table` waiting to be re-driven, after reject id `after`, with
/// their raw records whole.
async fn read_candidates(
    client: &tokio_postgres::Client,
    table: &str,
    after: &str,
) -> Result<Vec<Candidate>> {
    const WHAT: &str = "reading the rejects to re-drive";
    let sql = format!("{CANDIDATES_SQL}{BATCH}");
    let rows = client
        .query(&sql, &[&table, &after])
        .await
        .map_err(|e| rejects_error(WHAT, e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let reject_id: String = column(&r, 0, WHAT)?;
        let mut escaped: String = column(&r, 1, WHAT)?;
        let parts = column::<Option<i64>>(&r, 2, WHAT)?.unwrap_or(1);
        if parts > 1 {
            for p in client
                .query(PARTS_SQL, &[&reject_id])
                .await
                .map_err(|e| db_error(WHAT, e))?
            {
                escaped.push_str(&column::<String>(&p, 0, WHAT)?);
            }
        }
        let text = |i| column::<Option<String>>(&r, i, WHAT);
        let mut row = RejectedRow::new(
            column::<String>(&r, 7, WHAT)?,
            u64::try_from(column::<i64>(&r, 8, WHAT)?).unwrap_or(0),
            column::<String>(&r, 9, WHAT)?,
            String::new(),
            column::<String>(&r, 10, WHAT)?,
        );
        if let (Some(stream), Some(shard), Some(seq)) = (text(3)?, text(4)?, text(5)?) {
            let sub = column::<Option<i64>>(&r, 6, WHAT)?;
            row.source = Some(RecordSource::new(
                stream,
                shard,
                seq.into(),
                sub.map(|s| u64::try_from(s).unwrap_or(0)),
            ));
        }
        let raw = unescape_raw(&escaped);
        row.raw = Some(Bytes::from(raw.clone()));
        out.push(Candidate {
            reject_id,
            raw,
            row,
        });
    }
    Ok(out)
}

/// `$2, $3, ...`: placeholders for `n` values after `skip` others.
fn placeholders(skip: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", skip + i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many of `n` reject ids (`$2`...) are still `rejected` rows of table `$1`.
pub(crate) fn count_rejected_sql(n: usize) -> String {
    format!(
        "SELECT COUNT(*) FROM {LOAD_REJECTS} WHERE table_name = $1 AND status = '{REJECTED}' \
         AND reject_id IN ({})",
        placeholders(1, n)
    )
}

/// Marks `n` reject ids (`$4`...) of table `$1` re-driven at `$2` by re-drive `$3`.
pub(crate) fn mark_redriven_sql(n: usize) -> String {
    format!(
        "UPDATE {LOAD_REJECTS} SET status = '{REDRIVEN}', \
         redriven_at = CAST(CAST($2 AS VARCHAR(32)) AS TIMESTAMP), redrive_id = $3 \
         WHERE table_name = $1 AND status = '{REJECTED}' AND reject_id IN ({})",
        placeholders(3, n)
    )
}

/// How many of `ids` are still `rejected` rows of `table`.
async fn count_rejected(txn: &tokio_postgres::Client, table: &str, ids: &[&str]) -> Result<usize> {
    const WHAT: &str = "checking the rejects to re-drive";
    let sql = count_rejected_sql(ids.len());
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&table];
    params.extend(
        ids.iter()
            .map(|id| id as &(dyn tokio_postgres::types::ToSql + Sync)),
    );
    let row = txn
        .query_one(&sql, &params)
        .await
        .map_err(|e| db_error(WHAT, e))?;
    Ok(usize::try_from(column::<i64>(&row, 0, WHAT)?).unwrap_or(0))
}

/// Marks the rows `ids` of `table` re-driven by `redrive_id` at `ts`.
async fn mark_redriven(
    txn: &tokio_postgres::Transaction<'_>,
    table: &str,
    ids: &[&str],
    redrive_id: &str,
    ts: &str,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = mark_redriven_sql(ids.len());
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&table, &ts, &redrive_id];
    params.extend(
        ids.iter()
            .map(|id| id as &(dyn tokio_postgres::types::ToSql + Sync)),
    );
    txn.execute(&sql, &params)
        .await
        .map_err(|e| db_error(&format!("marking re-driven rows in {LOAD_REJECTS}"), e))?;
    Ok(())
}
