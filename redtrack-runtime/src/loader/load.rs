//! One load pass, in four steps: **plan** (checkpoints, shards, the remembered record
//! identities, the load's id and folder), **read and stage** (every shard from its checkpoint
//! into gzip files, at once, twins dropped), **upload** (the files and their manifest to the
//! stage), **commit** (the identities, COPY and the ranges in one transaction).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use super::checkpoint::{read_positions, CaughtUp, Checkpoint, RangeMark, ShardRange};
use super::commit::{commit_load, mark_caught_up, now_text, retry_transient, Commit};
use super::dedupe::{remembered, Dedupe, DedupeCommit, IdSet, Remembered};
use super::reader::{read_shard, shard_done, Budget, ShardPlan};
use super::rejects::{keep_rejects, LOAD_FAILED};
use super::retention::refresh_due;
use super::staging::{part_name, run_stager, staging_failed, Source, Staged};
use super::validate::RecordRules;
use super::{DataLoss, LoadReport, Loader};
use crate::broker::Broker;
use crate::error::{Error, Result};
use crate::event::RedTrackEvent;
use crate::hooks::{pause_at, Phase};
use crate::migrate::{read_columns_for, WarehouseColumn};
use crate::schema::limits::MAX_LOAD_ERROR_FILE_NAME_BYTES;
use crate::schema::Dialect;
use crate::stage::{load_folder, Manifest, Stage};
use crate::warehouse::{check_table, CopyRequest, StagedFile, Warehouse};

/// How many chunks of records may wait for the stager (bounds the loader's memory).
const CHANNEL_CHUNKS: usize = 2;

/// How many times the first reject of a failed load is written before it is given up on.
const REJECT_ATTEMPTS: u32 = 5;

/// How many staged files are uploaded at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// What one load will do, decided before it reads anything.
struct Plan {
    table: &'static str,
    stream: String,
    /// The checkpoints as they were when the load began (the commit checks them again).
    expected: HashMap<String, Checkpoint>,
    /// The shards with something left to read.
    shards: Vec<ShardPlan>,
    load_id: String,
    /// The load's folder in the stage.
    folder: String,
    /// Where the files are written before they are uploaded.
    local_dir: PathBuf,
    n_files: usize,
    /// The table's columns as the warehouse has them (empty if it has no such table yet).
    columns: Vec<WarehouseColumn>,
    /// The record identities the warehouse remembered for the stream when the load began.
    remembered: Remembered,
}

impl Plan {
    /// Removes the local files (best effort: they are the load's own scratch space).
    fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.local_dir);
    }
}

/// What reading and staging found.
struct Read {
    ranges: Vec<ShardRange>,
    /// What each range's row records beyond the range, by shard.
    marks: HashMap<String, RangeMark>,
    /// Shards read to their tip without a new record: their checkpoint rows may need a fresh
    /// `caught_up_at` (see `retention`).
    caught_up: Vec<(CaughtUp, super::checkpoint::Position)>,
    data_loss: Vec<DataLoss>,
    /// A limit stopped the load: more may be waiting.
    more: bool,
    staged: Staged,
}

impl<B: Broker, S: Stage, W: Warehouse> Loader<B, S, W> {
    /// One pass over every shard of `E`'s stream: read from the checkpoints, check each record
    /// against the table's columns, stage, and COPY + record the ranges in one transaction.
    /// Records that cannot be loaded are kept in `redtrack_load_rejects` (up to `max_errors`).
    ///
    /// # Errors
    ///
    /// [`Error::LoadConflict`] (retryable, nothing loaded) if another loader loaded the same
    /// shards meanwhile; [`Error::LoadRejected`] if more records than `max_errors` cannot be
    /// loaded (nothing loaded, the first one kept in `redtrack_load_rejects`, the error naming
    /// its shard and sequence number); [`Error::DataLoss`] if records were trimmed before any
    /// load read them (unless accepted; see `loader::retention`); and the errors of the broker,
    /// the stage and the warehouse.
    pub async fn load<E: RedTrackEvent>(&self) -> Result<LoadReport> {
        let started = Instant::now();
        let mut client = self.warehouse.connect().await?;
        let mut plan = self.plan::<E>(&client).await?;
        let remembered_ids = std::mem::take(&mut plan.remembered.ids);
        let mut read = match self.read_and_stage::<E>(&plan, remembered_ids).await {
            Ok(read) => read,
            Err(e) => {
                plan.clean_up();
                return Err(e);
            }
        };
        let mut report = LoadReport {
            shards: plan.shards.len(),
            read_elapsed: started.elapsed(),
            more: read.more,
            kinesis_records: read.ranges.iter().map(|r| r.records).sum(),
            twins: read.staged.dedupe.twins,
            ranges: read.ranges.clone(),
            data_loss: std::mem::take(&mut read.data_loss),
            ..LoadReport::default()
        };
        let caught_up = self
            .caught_up_due(&plan.stream, std::mem::take(&mut read.caught_up))
            .await?;
        if report.ranges.is_empty() {
            plan.clean_up();
            if !caught_up.is_empty() {
                mark_caught_up(
                    &mut client,
                    &self.warehouse,
                    E::schema(),
                    &plan.stream,
                    &plan.expected,
                    &caught_up,
                )
                .await?;
            }
            report.elapsed = started.elapsed();
            return Ok(report);
        }
        report.bytes = read.staged.bytes;

        let upload_started = Instant::now();
        let uploaded = self.upload(&plan, &read.staged).await;
        plan.clean_up();
        let (files, manifest_url) = uploaded?;
        report.upload_elapsed = upload_started.elapsed();

        let commit_started = Instant::now();
        let outcome = self
            .commit::<E>(
                &mut client,
                &plan,
                read,
                &caught_up,
                files,
                manifest_url.clone(),
            )
            .await?;
        report.commit_elapsed = commit_started.elapsed();
        report.records = outcome.loaded;
        report.rejected = outcome.rejected.len() as u64;
        report.rejects = outcome.rejected;
        report.load_id = Some(plan.load_id);
        report.manifest_url = manifest_url;
        report.elapsed = started.elapsed();
        if report.rejected > 0 {
            tracing::warn!(
                table = plan.table,
                rejected = report.rejected,
                "rows rejected under MAXERROR; kept in redtrack_load_rejects"
            );
        }
        if report.twins > 0 {
            tracing::info!(
                table = plan.table,
                twins = report.twins,
                "dropped twins of events already loaded (stored again by writers' retries)"
            );
        }
        tracing::info!(
            table = plan.table,
            records = report.records,
            shards = report.ranges.len(),
            elapsed_ms = u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
            "load committed"
        );
        Ok(report)
    }

    /// Step 1: the checkpoints, the shards left to read, and the load's id, folder and files.
    async fn plan<E: RedTrackEvent>(&self, client: &tokio_postgres::Client) -> Result<Plan> {
        let table = E::TABLE_NAME;
        let stream = self.config.stream_name(table);
        let slices = self.slices(client).await?;
        let positions = read_positions(client, &stream).await?;
        // Before reading: a table or column missing (setup or migrate not run) says so here.
        check_table(client, E::schema()).await?;
        // The table's columns as the warehouse has them: what each record is checked against.
        let columns = read_columns_for(client, table, self.warehouse.dialect()).await?;
        // After the checkpoints: what is remembered is at least as new as they are (and the
        // commit checks what was added since).
        let remembered = remembered(client, table, &stream).await?;
        let mut shards = Vec::new();
        for shard in self.broker.list_shards(&stream).await? {
            let position = positions.get(&shard.shard_id).map(|(_, p)| p.clone());
            if let Some(p) = &position {
                self.broker
                    .check_checkpoint(&stream, &shard, &p.sequence_number)
                    .await?;
            }
            if shard_done(&shard, position.as_ref().map(|p| &p.sequence_number)) {
                continue;
            }
            shards.push(ShardPlan {
                index: shards.len(),
                shard,
                position,
            });
        }
        let expected: HashMap<String, Checkpoint> = positions
            .into_iter()
            .map(|(shard, (checkpoint, _))| (shard, checkpoint))
            .collect();
        let now = chrono::Utc::now();
        let load_id = format!("{}-{:08x}", now.format("%H%M%S"), rand::random::<u32>());
        let folder = load_folder(
            self.config.cluster(),
            self.config.database(),
            table,
            &now.format("%Y%m%d").to_string(),
            &load_id,
        );
        let n_files = slices * self.config.loader.files_per_slice;
        if self.warehouse.dialect() == Dialect::Redshift {
            // Redshift keeps a rejected row's file in sys_load_error_detail.file_name, 256 bytes:
            // a longer URL is cut, and the reject could no longer be matched to its file.
            let longest = self.stage.url(&format!(
                "{folder}/{}",
                part_name(n_files.saturating_sub(1))
            ));
            if longest.len() > MAX_LOAD_ERROR_FILE_NAME_BYTES {
                return Err(Error::Config(format!(
                    "the staged files of `{table}` would have URLs of {} bytes ({longest}); \
                     Redshift keeps at most {MAX_LOAD_ERROR_FILE_NAME_BYTES} bytes of a file's \
                     name with a rejected row (sys_load_error_detail.file_name), so rejects could \
                     not be matched to their files: shorten the stage prefix (REDTRACK_STAGE), the \
                     cluster or the database name by {} bytes",
                    longest.len(),
                    longest.len() - MAX_LOAD_ERROR_FILE_NAME_BYTES
                )));
            }
        }
        Ok(Plan {
            table,
            local_dir: self.local_dir(&load_id),
            n_files,
            stream,
            expected,
            shards,
            load_id,
            folder,
            columns,
            remembered,
        })
    }

    /// Step 2: reads every shard of the plan (several at once, within the load's budget) into
    /// the stager, which writes the gzip files on threads of its own as the records come.
    async fn read_and_stage<E: RedTrackEvent>(
        &self,
        plan: &Plan,
        remembered_ids: IdSet,
    ) -> Result<Read> {
        let settings = &self.config.loader;
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let stager = {
            let dir = plan.local_dir.clone();
            let n_files = plan.n_files;
            let dedupe = Dedupe::new(
                remembered_ids,
                plan.shards.len(),
                self.config.dedupe_window(),
            );
            let source = Source {
                stream: plan.stream.clone(),
                shard_ids: plan
                    .shards
                    .iter()
                    .map(|p| p.shard.shard_id.clone())
                    .collect(),
                rules: RecordRules::new(E::schema(), &plan.columns),
            };
            tokio::task::spawn_blocking(move || run_stager(rx, &dir, n_files, &source, dedupe))
        };
        self.progress.store(0, Ordering::Relaxed);
        let budget = Arc::new(Mutex::new(Budget {
            records: settings.max_load_records,
            bytes: settings.max_load_bytes,
            deadline: Instant::now() + settings.max_load_time,
            exhausted: false,
            progress: self.progress.clone(),
        }));
        // Futures built in a loop, not by a closure in a stream combinator: that keeps `load`
        // spawnable (a closure there makes its future's Send-ness lifetime-specific).
        let mut reading = Vec::with_capacity(plan.shards.len());
        for shard in &plan.shards {
            reading.push(read_shard(
                &self.broker,
                &plan.stream,
                shard.clone(),
                budget.clone(),
                tx.clone(),
                settings.accept_data_loss,
            ));
        }
        // Reads that wait on the network pay to run many at once; a local broker's reads are
        // CPU work, and the broker says how many are worth it.
        let concurrency = match self.broker.max_parallel_reads() {
            Some(n) => settings.read_concurrency.min(n.max(1)),
            None => settings.read_concurrency,
        };
        let reads: Result<Vec<_>> = stream::iter(reading)
            .buffer_unordered(concurrency)
            .try_collect()
            .await;
        drop(tx);
        let staged = stager
            .await
            .map_err(|e| staging_failed(&plan.local_dir, e))
            .and_then(|staged| staged);
        let (reads, staged) = (reads?, staged?);
        let mut read = Read {
            ranges: Vec::new(),
            marks: HashMap::new(),
            caught_up: Vec::new(),
            data_loss: Vec::new(),
            more: budget.lock().map(|b| b.exhausted).unwrap_or(false),
            staged,
        };
        for shard in reads {
            read.data_loss.extend(shard.loss);
            let Some(planned) = plan.shards.get(shard.index) else {
                continue;
            };
            match (shard.range, &planned.position, shard.caught_up_at) {
                (Some(range), _, caught_up_at) => {
                    read.marks.insert(
                        range.shard_id.clone(),
                        RangeMark {
                            caught_up_at,
                            next: shard.next,
                        },
                    );
                    read.ranges.push(range);
                }
                (None, Some(position), Some(at)) => read.caught_up.push((
                    CaughtUp {
                        shard_id: planned.shard.shard_id.clone(),
                        checkpoint: position.sequence_number.clone(),
                        at,
                    },
                    position.clone(),
                )),
                (None, _, _) => {}
            }
        }
        read.ranges.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(read)
    }

    /// The quiet shards whose recorded `caught_up_at` is due for a refresh (see `retention`).
    async fn caught_up_due(
        &self,
        stream: &str,
        seen: Vec<(CaughtUp, super::checkpoint::Position)>,
    ) -> Result<Vec<CaughtUp>> {
        if seen.is_empty() {
            return Ok(Vec::new());
        }
        // Best effort: without the stream's retention the marks wait for a later load (a gap,
        // should one appear, is judged with the retention read then, and fails if it cannot be).
        let retention = match self.stream_info(stream).await {
            Ok(info) => info.retention,
            Err(e) => {
                tracing::warn!(stream, error = %e, "could not read the stream's retention; quiet shards are not marked caught up this time");
                return Ok(Vec::new());
            }
        };
        let now = chrono::Utc::now().naive_utc();
        Ok(seen
            .into_iter()
            .filter(|(_, position)| refresh_due(position, retention, now))
            .map(|(caught_up, _)| caught_up)
            .collect())
    }

    /// Step 3: the staged files, then the manifest naming them (unless only the ends of closed
    /// shards and no events were found); the files and the manifest's URL.
    async fn upload(
        &self,
        plan: &Plan,
        staged: &Staged,
    ) -> Result<(Vec<StagedFile>, Option<String>)> {
        if staged.lines == 0 {
            return Ok((Vec::new(), None));
        }
        let first = AtomicBool::new(true);
        let mut uploads = Vec::with_capacity(staged.files.len());
        for (i, local) in staged.files.iter().enumerate() {
            let first = &first;
            uploads.push(async move {
                let key = format!("{}/{}", plan.folder, part_name(i));
                self.stage.put_file(&key, &local.path).await?;
                if first.swap(false, Ordering::SeqCst) {
                    pause_at(Phase::Upload).await;
                }
                Ok::<_, Error>(StagedFile {
                    url: self.stage.url(&key),
                    key,
                    lines: local.lines,
                })
            });
        }
        let files: Vec<StagedFile> = stream::iter(uploads)
            .buffered(UPLOAD_CONCURRENCY)
            .try_collect()
            .await?;
        let manifest_key = format!("{}/manifest.json", plan.folder);
        let manifest = Manifest::new(files.iter().map(|f| f.url.clone()));
        self.stage
            .put_bytes(&manifest_key, manifest.to_bytes())
            .await?;
        Ok((files, Some(self.stage.url(&manifest_key))))
    }

    /// Step 4: COPY and the ranges in one transaction. A load that failed on its rejects keeps
    /// its first bad row where `errors` shows it, outside the rolled-back transaction.
    async fn commit<E: RedTrackEvent>(
        &self,
        client: &mut tokio_postgres::Client,
        plan: &Plan,
        read: Read,
        caught_up: &[CaughtUp],
        files: Vec<StagedFile>,
        manifest_url: Option<String>,
    ) -> Result<crate::warehouse::CopyOutcome> {
        let shard_ids: Vec<String> = plan
            .shards
            .iter()
            .map(|p| p.shard.shard_id.clone())
            .collect();
        // Open shards, and closed ones this load did not read to their end.
        let not_done: Vec<String> = plan
            .shards
            .iter()
            .filter(|p| match &p.shard.ending_sequence_number {
                None => true,
                Some(end) => !read
                    .ranges
                    .iter()
                    .any(|r| r.shard_id == p.shard.shard_id && r.last >= *end),
            })
            .map(|p| p.shard.shard_id.clone())
            .collect();
        let committed = commit_load(
            client,
            &self.warehouse,
            &self.stage,
            Commit {
                stream: &plan.stream,
                table: plan.table,
                expected: &plan.expected,
                ranges: &read.ranges,
                marks: &read.marks,
                caught_up,
                staging_rejects: read.staged.rejects,
                copy: CopyRequest {
                    table: E::schema(),
                    load_id: plan.load_id.clone(),
                    folder: plan.folder.clone(),
                    manifest_url: manifest_url.unwrap_or_default(),
                    files,
                    max_errors: self.config.loader.max_errors,
                },
                dedupe: DedupeCommit {
                    table: plan.table,
                    stream: &plan.stream,
                    load_id: &plan.load_id,
                    remembered: &plan.remembered,
                    dedupe: &read.staged.dedupe,
                    shard_ids: &shard_ids,
                    not_done: &not_done,
                },
            },
        )
        .await;
        if let Err(Error::LoadRejected {
            rejected,
            max_errors,
            first,
            ..
        }) = &committed
        {
            // Nothing was loaded; the first bad row is kept where `errors` shows it.
            let mut row = (**first).clone();
            row.reason = format!(
                "load failed, nothing loaded ({rejected} rows rejected, MAXERROR {max_errors}): {}",
                row.reason
            );
            // One INSERT in autocommit, that reads nothing; still retried if the warehouse
            // answers with a transient error (Redshift's 1023 under SERIALIZABLE included).
            let ts = now_text();
            let what = format!("the failed load's reject of {}", plan.table);
            let kept = retry_transient(REJECT_ATTEMPTS, &what, || {
                keep_rejects(
                    &*client,
                    &plan.load_id,
                    plan.table,
                    std::slice::from_ref(&row),
                    &ts,
                    LOAD_FAILED,
                )
            })
            .await;
            if let Err(e) = kept {
                tracing::warn!(table = plan.table, error = %e, "could not keep the failed load's reject");
            }
        }
        committed
    }
}
