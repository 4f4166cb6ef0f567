//! The dedupe step of a load: drops the twins a writer's retries stored (a PutRecords call whose
//! answer was lost after Kinesis stored it, sent again), so that an event written once is loaded
//! once.
//!
//! Every record redtrack's client writes carries an identity that its retries keep
//! ([`crate::identity`]); a twin has the same identity and arrives in the stream within the
//! writer's retry span of the first copy ([`crate::Config::write_retry_span`]), in the same shard
//! (a retry keeps the partition key) or, across a reshard, in a child or a parent of that shard.
//! So the loader keeps, for the window ([`crate::ConfigBuilder::with_dedupe_window`]), the
//! identities it loaded, and loads a record only if its identity is new:
//!
//! 1. **plan**: the identities remembered for the table's stream are read from the warehouse
//!    (`redtrack_ids_<table>`, one row per shard and chunk of up to 3000 identities, packed as
//!    base64url text, with the newest arrival time of the records it covers);
//! 2. **stage**: the stager asks [`Dedupe::admit`] about every user record (after KPL
//!    de-aggregation): a record with an identity already seen (remembered, or earlier in this
//!    load, in any shard) is dropped; the rest are staged, and their identities kept;
//! 3. **commit**, in the load's one transaction, under its lock, before COPY ([`record`]): if
//!    another loader committed identities since step 1, none of them may be among this load's
//!    (else [`Error::LoadConflict`], retryable, nothing loaded); then this load's identities are
//!    inserted and the rows that fell out of the window are deleted.
//!
//! Because step 3 commits with COPY and `kinesis_loads`, a crash anywhere leaves the remembered
//! identities exactly those of the loaded rows; because it runs under the lock and checks what
//! was committed since step 1, two loaders can never both load one event.
//!
//! **What is remembered, and for how long.** A shard's identities are kept while they can still
//! meet a twin: those that arrived less than the window before the newest record loaded from that
//! shard (its *frontier*). A closed shard's last identities can meet twins in its children, so
//! they are kept until every shard still being loaded has a frontier more than the window past
//! them. Records without an identity (the gem's envelopes, KPL applications, writers with
//! identities off) load as before: at least once. A record without an arrival time (a broker
//! that gives none) is compared with what is known but not remembered for later loads.
//!
//! **Cost.** Per event: parsing its identity and one hash-set insert while staging, 16 bytes of
//! memory for the load, and about 22 bytes of text in the warehouse while it is in the window;
//! per load: reading the window's identities, and one multi-row INSERT per 48,000 identities.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::{pin_mut, TryStreamExt};
use tokio_postgres::error::SqlState;

use crate::broker::aggregate::UserRecord;
use crate::error::{Error, Result};
use crate::identity::{RecordId, TAG_KEY};
use crate::schema::{quote_ident, Dialect};
use crate::warehouse::{column, db_error};

/// Identities per row: 3000 × 16 bytes are 64,000 characters of base64url, within a
/// `VARCHAR(65535)`.
const IDS_PER_ROW: usize = 3000;

/// Rows per INSERT statement (about 1 MB of values: far below Redshift's 16 MB per statement).
const ROWS_PER_INSERT: usize = 16;

/// What a dedupe table's name starts with.
const PREFIX: &str = "redtrack_ids_";

/// The table that remembers the identities loaded into `table`: `redtrack_ids_<table>`, or,
/// when that would pass Redshift's 127 bytes, the table's name cut short and an MD5 suffix.
/// One per table, so loads of different tables never write the same table (Redshift's
/// serializable isolation, and per-table locks, need that).
///
/// ```
/// assert_eq!(redtrack_runtime::loader::dedupe_table("page_views"), "redtrack_ids_page_views");
/// assert_eq!(redtrack_runtime::loader::dedupe_table(&"x".repeat(127)).len(), 127);
/// ```
pub fn dedupe_table(table: &str) -> String {
    const MAX: usize = crate::schema::limits::MAX_IDENTIFIER_BYTES;
    if PREFIX.len() + table.len() <= MAX {
        return format!("{PREFIX}{table}");
    }
    use md5::{Digest, Md5};
    let digest = Md5::digest(table.as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut keep = MAX - PREFIX.len() - 1 - suffix.len();
    while !table.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{PREFIX}{}_{suffix}", &table[..keep])
}

/// `CREATE TABLE IF NOT EXISTS redtrack_ids_<table>`.
pub(crate) fn dedupe_ddl(table: &str, dialect: Dialect) -> String {
    let tail = match dialect {
        Dialect::Redshift => "\nDISTSTYLE EVEN\nSORTKEY (stream_name, shard_id, newest_arrival_ms)",
        Dialect::Postgres => "",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    \
         stream_name VARCHAR(256) NOT NULL,\n    \
         shard_id VARCHAR(256) NOT NULL,\n    \
         load_id VARCHAR(64) NOT NULL,\n    \
         newest_arrival_ms BIGINT NOT NULL,\n    \
         record_ids VARCHAR(65535) NOT NULL\n){tail}",
        quote_ident(&dedupe_table(table))
    )
}

/// Every remembered row of a stream (`$1`).
pub(crate) fn remembered_sql(table: &str) -> String {
    format!(
        "SELECT shard_id, load_id, newest_arrival_ms, record_ids FROM {} WHERE stream_name = $1",
        quote_ident(&dedupe_table(table))
    )
}

/// The loads that have rows for a stream (`$1`).
pub(crate) fn load_ids_sql(table: &str) -> String {
    format!(
        "SELECT DISTINCT load_id FROM {} WHERE stream_name = $1",
        quote_ident(&dedupe_table(table))
    )
}

/// The identities one load (`$2`) remembers for a stream (`$1`).
pub(crate) fn ids_of_load_sql(table: &str) -> String {
    format!(
        "SELECT record_ids FROM {} WHERE stream_name = $1 AND load_id = $2",
        quote_ident(&dedupe_table(table))
    )
}

/// Inserts `rows` rows of one load (`$1` the stream, `$2` the load; then per row the shard,
/// the newest arrival and the packed identities).
pub(crate) fn insert_sql(table: &str, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let p = 3 + 3 * i;
            format!(
                "($1, ${}, $2, CAST(CAST(${} AS VARCHAR(20)) AS BIGINT), ${})",
                p,
                p + 1,
                p + 2
            )
        })
        .collect();
    format!(
        "INSERT INTO {} (stream_name, shard_id, load_id, newest_arrival_ms, record_ids) VALUES {}",
        quote_ident(&dedupe_table(table)),
        values.join(", ")
    )
}

/// Deletes a stream's (`$1`) rows older than a horizon, per shard (`shards` pairs of a shard id
/// and a horizon, in ms).
pub(crate) fn prune_sql(table: &str, shards: usize) -> String {
    let terms: Vec<String> = (0..shards)
        .map(|i| {
            let p = 2 + 2 * i;
            format!(
                "(shard_id = ${p} AND newest_arrival_ms < CAST(CAST(${} AS VARCHAR(20)) AS BIGINT))",
                p + 1
            )
        })
        .collect();
    format!(
        "DELETE FROM {} WHERE stream_name = $1 AND ({})",
        quote_ident(&dedupe_table(table)),
        terms.join(" OR ")
    )
}

/// A hasher for identities: their low 80 bits are random already, so folding the two halves
/// together is hash enough (and costs nothing in the stager's loop).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used (RecordId hashes its u128); anything else still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}

/// A set of identities.
pub(crate) type IdSet = HashSet<RecordId, BuildHasherDefault<IdHasher>>;

/// The identity of a plain (not aggregated) record: its partition key, if that is an id.
pub(crate) fn plain_record_id(partition_key: &str) -> Option<RecordId> {
    RecordId::parse(partition_key)
}

/// The identity of a user record unpacked from a KPL aggregate: its `redtrack.id` tag, else its
/// partition key, if either is an id.
pub(crate) fn user_record_id(user: &UserRecord) -> Option<RecordId> {
    user.tags
        .iter()
        .find(|(k, _)| k == TAG_KEY)
        .and_then(|(_, v)| v.as_deref())
        .and_then(RecordId::parse)
        .or_else(|| RecordId::parse(&user.partition_key))
}

/// Packs identities (16 bytes each) as base64url text, for a row.
fn pack(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Unpacks a row's identities into `into`; an error names the row.
fn unpack(text: &str, into: &mut impl FnMut(RecordId), what: &str) -> Result<()> {
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|e| {
        Error::warehouse(format!(
            "{what}: a row of packed record identities is not base64url ({e}); was the table \
             changed by hand?"
        ))
    })?;
    if raw.len() % 16 != 0 {
        return Err(Error::warehouse(format!(
            "{what}: a row of packed record identities holds {} bytes, not a multiple of 16",
            raw.len()
        )));
    }
    for id in raw.chunks_exact(16) {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(id);
        into(RecordId::from_bytes(bytes));
    }
    Ok(())
}

/// What the warehouse remembered for a stream when the load was planned.
#[derive(Debug, Default)]
pub(crate) struct Remembered {
    /// Every remembered identity.
    pub(crate) ids: IdSet,
    /// Per shard: the oldest and the newest `newest_arrival_ms` of its rows (the newest is the
    /// shard's frontier: the arrival of the last record loaded from it).
    pub(crate) shards: HashMap<String, (i64, i64)>,
    /// The loads whose rows were there.
    pub(crate) load_ids: HashSet<String>,
}

/// Reads what the warehouse remembers for `stream` of `table`.
pub(crate) async fn remembered(
    client: &tokio_postgres::Client,
    table: &str,
    stream: &str,
) -> Result<Remembered> {
    let what = format!(
        "reading the remembered record identities ({})",
        dedupe_table(table)
    );
    let rows = match client
        .query_raw(remembered_sql(table).as_str(), [stream])
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
            return Err(Error::warehouse(format!(
                "{what}: the table is missing; run `Loader::setup::<E>()` (or `redtrack setup`) \
                 once after upgrading redtrack"
            ))
            .with_source(e))
        }
        Err(e) => return Err(db_error(&what, e)),
    };
    pin_mut!(rows);
    let mut out = Remembered::default();
    while let Some(row) = rows.try_next().await.map_err(|e| db_error(&what, e))? {
        let shard: String = column(&row, 0, &what)?;
        let load_id: String = column(&row, 1, &what)?;
        let newest: i64 = column(&row, 2, &what)?;
        let ids: &str = column(&row, 3, &what)?;
        unpack(
            ids,
            &mut |id| {
                out.ids.insert(id);
            },
            &what,
        )?;
        let e = out.shards.entry(shard).or_insert((newest, newest));
        e.0 = e.0.min(newest);
        e.1 = e.1.max(newest);
        out.load_ids.insert(load_id);
    }
    Ok(out)
}

/// One row's worth of identities of a shard, in arrival order.
#[derive(Debug, Default)]
struct Chunk {
    /// The identities, 16 bytes each.
    raw: Vec<u8>,
    /// The newest arrival among them, ms.
    newest: i64,
}

/// What this load saw of one shard.
#[derive(Debug)]
struct ShardIds {
    chunks: Vec<Chunk>,
    /// The newest arrival of any record loaded from the shard in this load (with an identity
    /// or not), ms; `i64::MIN` if none had an arrival time.
    frontier: i64,
}

/// The filter the stager runs every user record through, and what it keeps for the commit.
#[derive(Debug)]
pub(crate) struct Dedupe {
    /// Remembered identities and those of this load.
    seen: IdSet,
    /// By the load's shard index.
    shards: Vec<ShardIds>,
    /// The window, ms.
    window: i64,
    /// Records dropped as twins.
    pub(crate) twins: u64,
    /// Records with an identity but no arrival time (not remembered for later loads).
    pub(crate) unwindowed: u64,
}

impl Dedupe {
    /// A filter for a load of `shards` shards that knows the identities `remembered`.
    pub(crate) fn new(remembered: IdSet, shards: usize, window: std::time::Duration) -> Dedupe {
        Dedupe {
            seen: remembered,
            shards: (0..shards)
                .map(|_| ShardIds {
                    chunks: Vec::new(),
                    frontier: i64::MIN,
                })
                .collect(),
            window: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            twins: 0,
            unwindowed: 0,
        }
    }

    /// Whether a user record of shard `shard` (the load's index), with this identity and
    /// arrival time (ms), is to be loaded: `false` for a twin of a record already loaded or
    /// already admitted.
    #[inline]
    pub(crate) fn admit(
        &mut self,
        shard: usize,
        id: Option<RecordId>,
        arrival: Option<i64>,
    ) -> bool {
        let Some(s) = self.shards.get_mut(shard) else {
            return true; // never: the stager's shard indexes are the load's
        };
        if let Some(a) = arrival {
            s.frontier = s.frontier.max(a);
        }
        let Some(id) = id else {
            return true;
        };
        if !self.seen.insert(id) {
            self.twins += 1;
            return false;
        }
        let Some(a) = arrival else {
            self.unwindowed += 1;
            return true;
        };
        let start_new = s
            .chunks
            .last()
            .is_none_or(|c| c.raw.len() >= IDS_PER_ROW * 16);
        if start_new {
            // Chunks that already fell out of the window are not worth keeping.
            let horizon = s.frontier.saturating_sub(self.window);
            s.chunks.retain(|c| c.newest >= horizon);
            s.chunks.push(Chunk {
                raw: Vec::with_capacity(IDS_PER_ROW * 16),
                newest: a,
            });
        }
        if let Some(c) = s.chunks.last_mut() {
            c.raw.extend_from_slice(&id.to_bytes());
            c.newest = c.newest.max(a);
        }
        true
    }

    /// Whether `id` is known (remembered, or admitted in this load).
    pub(crate) fn knows(&self, id: RecordId) -> bool {
        self.seen.contains(&id)
    }
}

/// What the commit step needs besides the filter.
pub(crate) struct DedupeCommit<'a> {
    /// The event table.
    pub(crate) table: &'a str,
    pub(crate) stream: &'a str,
    pub(crate) load_id: &'a str,
    /// What was remembered when the load was planned.
    pub(crate) remembered: &'a Remembered,
    /// The filter, after staging.
    pub(crate) dedupe: &'a Dedupe,
    /// The load's shard ids, by shard index.
    pub(crate) shard_ids: &'a [String],
    /// The shards still to be loaded after this load (open, or closed and not read to their
    /// end); every other shard (closed and loaded, or no longer listed) is done.
    pub(crate) not_done: &'a [String],
}

/// The dedupe step of the commit transaction (under the load's lock, before COPY): fails with
/// [`Error::LoadConflict`] if a load committed since this one was planned remembers one of this
/// load's identities; else records this load's identities and forgets those out of the window.
pub(crate) async fn record(
    txn: &tokio_postgres::Transaction<'_>,
    c: DedupeCommit<'_>,
) -> Result<()> {
    check_new_loads(txn, &c).await?;

    let window = c.dedupe.window;
    // Each shard's frontier after this load.
    let mut frontier: HashMap<&str, i64> = c
        .remembered
        .shards
        .iter()
        .map(|(s, (_, newest))| (s.as_str(), *newest))
        .collect();
    for (i, s) in c.dedupe.shards.iter().enumerate() {
        if s.frontier != i64::MIN {
            if let Some(id) = c.shard_ids.get(i) {
                let f = frontier.entry(id.as_str()).or_insert(i64::MIN);
                *f = (*f).max(s.frontier);
            }
        }
    }

    // This load's identities, from the last `window` of each shard (older ones could meet no
    // twin that a later load reads), and each shard's frontier in its last row.
    let mut rows: Vec<(&str, i64, String)> = Vec::new();
    for (i, s) in c.dedupe.shards.iter().enumerate() {
        let (Some(shard), true) = (c.shard_ids.get(i), s.frontier != i64::MIN) else {
            continue;
        };
        let horizon = s.frontier.saturating_sub(window);
        let first = rows.len();
        for chunk in s.chunks.iter().filter(|c| c.newest >= horizon) {
            rows.push((shard.as_str(), chunk.newest, pack(&chunk.raw)));
        }
        match rows.get_mut(first..).and_then(|r| r.last_mut()) {
            Some(last) => last.1 = last.1.max(s.frontier),
            None => rows.push((shard.as_str(), s.frontier, String::new())),
        }
    }
    let what = format!(
        "remembering the loaded record identities ({})",
        dedupe_table(c.table)
    );
    for batch in rows.chunks(ROWS_PER_INSERT) {
        let newest: Vec<String> = batch.iter().map(|r| r.1.to_string()).collect();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(2 + 3 * batch.len());
        params.push(&c.stream);
        params.push(&c.load_id);
        for (row, newest) in batch.iter().zip(&newest) {
            params.push(&row.0);
            params.push(newest);
            params.push(&row.2);
        }
        txn.execute(insert_sql(c.table, batch.len()).as_str(), &params)
            .await
            .map_err(|e| db_error(&what, e))?;
    }

    // Forget what fell out of the window: a shard still being loaded keeps what arrived within
    // the window before its frontier; any other shard (closed and loaded, or gone) keeps its
    // last identities until every shard still being loaded is past them by the window, since
    // they may have twins in its children.
    let low_water = c
        .not_done
        .iter()
        .map(|s| frontier.get(s.as_str()).copied())
        .try_fold(i64::MAX, |m, f| f.map(|f| m.min(f)));
    let mut prune: Vec<(&str, String)> = Vec::new();
    for (shard, (oldest, _)) in &c.remembered.shards {
        let horizon = if c.not_done.iter().any(|s| s == shard) {
            frontier
                .get(shard.as_str())
                .map(|f| f.saturating_sub(window))
        } else {
            low_water
                .filter(|&l| l != i64::MAX)
                .map(|l| l.saturating_sub(window))
        };
        if let Some(h) = horizon.filter(|h| oldest < h) {
            prune.push((shard.as_str(), h.to_string()));
        }
    }
    if !prune.is_empty() {
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            Vec::with_capacity(1 + 2 * prune.len());
        params.push(&c.stream);
        for (shard, h) in &prune {
            params.push(shard);
            params.push(h);
        }
        txn.execute(prune_sql(c.table, prune.len()).as_str(), &params)
            .await
            .map_err(|e| {
                db_error(
                    &format!(
                        "forgetting old record identities ({})",
                        dedupe_table(c.table)
                    ),
                    e,
                )
            })?;
    }
    if c.dedupe.unwindowed > 0 {
        tracing::warn!(
            table = c.table,
            records = c.dedupe.unwindowed,
            "records with an identity had no arrival time from the broker: their twins in \
             later loads cannot be dropped"
        );
    }
    Ok(())
}

/// Fails if a load that committed after this one was planned remembers one of its identities
/// (two loaders each loaded one copy of an event; only possible across a reshard, where twins
/// sit in different shards, so the checkpoint check does not see the race).
async fn check_new_loads(
    txn: &tokio_postgres::Transaction<'_>,
    c: &DedupeCommit<'_>,
) -> Result<()> {
    let what = format!(
        "checking for loads committed meanwhile ({})",
        dedupe_table(c.table)
    );
    let rows = txn
        .query(load_ids_sql(c.table).as_str(), &[&c.stream])
        .await
        .map_err(|e| db_error(&what, e))?;
    for row in rows {
        let load_id: String = column(&row, 0, &what)?;
        if c.remembered.load_ids.contains(&load_id) || load_id == c.load_id {
            continue;
        }
        let rows = txn
            .query(ids_of_load_sql(c.table).as_str(), &[&c.stream, &load_id])
            .await
            .map_err(|e| db_error(&what, e))?;
        let mut twin = None;
        for row in rows {
            let ids: &str = column(&row, 0, &what)?;
            unpack(
                ids,
                &mut |id| {
                    if twin.is_none() && c.dedupe.knows(id) {
                        twin = Some(id);
                    }
                },
                &what,
            )?;
        }
        if let Some(id) = twin {
            return Err(Error::LoadConflict {
                table: c.table.to_owned(),
                message: format!(
                    "load {load_id}, committed while this one was read, loaded a copy of record \
                     {id} that this load also read"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dedupe_table_names_fit_redshift() {
        assert_eq!(dedupe_table("events"), "redtrack_ids_events");
        let long = "é".repeat(63); // 126 bytes
        let name = dedupe_table(&long);
        assert!(name.len() <= 127 && name.starts_with(PREFIX), "{name}");
        assert_ne!(
            dedupe_table(&format!("{long}a")),
            dedupe_table(&format!("{long}b"))
        );
        assert!(dedupe_ddl("user", Dialect::Redshift).contains("redtrack_ids_user ("));
    }

    #[test]
    fn packing_round_trips() {
        let ids: Vec<RecordId> = (0..5).map(|_| RecordId::new()).collect();
        let raw: Vec<u8> = ids.iter().flat_map(|i| i.to_bytes()).collect();
        let text = pack(&raw);
        let mut back = Vec::new();
        unpack(&text, &mut |id| back.push(id), "t").unwrap();
        assert_eq!(back, ids);
        assert_eq!(pack(&vec![0; IDS_PER_ROW * 16]).len(), 64_000);
        assert!(unpack("not base64!", &mut |_| {}, "t").is_err());
        assert!(unpack(&pack(&[1, 2, 3]), &mut |_| {}, "t").is_err());
        let mut none = 0;
        unpack("", &mut |_| none += 1, "t").unwrap();
        assert_eq!(none, 0);
    }

    #[test]
    fn twins_are_dropped_in_any_shard_and_remembered_ones_too() {
        let old = RecordId::new();
        let mut remembered = IdSet::default();
        remembered.insert(old);
        let mut d = Dedupe::new(remembered, 2, Duration::from_secs(60));
        let a = RecordId::new();
        assert!(d.admit(0, Some(a), Some(1_000)));
        assert!(
            !d.admit(0, Some(a), Some(2_000)),
            "a twin in the same shard"
        );
        assert!(!d.admit(1, Some(a), Some(2_000)), "a twin in another shard");
        assert!(
            !d.admit(1, Some(old), Some(3_000)),
            "a twin of a remembered record"
        );
        assert!(d.admit(1, None, Some(4_000)), "no identity: always loaded");
        assert!(d.admit(1, None, Some(4_000)));
        let b = RecordId::new();
        assert!(d.admit(1, Some(b), None), "no arrival time");
        assert!(!d.admit(0, Some(b), None));
        assert_eq!((d.twins, d.unwindowed), (4, 1));
        assert_eq!(d.shards[0].frontier, 2_000);
        assert_eq!(d.shards[1].frontier, 4_000);
        assert_eq!(d.shards[0].chunks.len(), 1);
        assert!(d.shards[1].chunks.is_empty(), "b has no arrival time");
    }

    #[test]
    fn identities_are_kept_in_rows_of_3000_within_the_window() {
        let mut d = Dedupe::new(IdSet::default(), 1, Duration::from_millis(10_000));
        for i in 0..7_000i64 {
            assert!(d.admit(0, Some(RecordId::from_u128(i as u128)), Some(i * 10)));
        }
        let s = &d.shards[0];
        // Ids arrived at 0..70,000 ms; the window is 10 s: the first of three chunks (newest
        // 29,990) was dropped when the third began (frontier 60,000).
        assert_eq!(s.chunks.len(), 2);
        assert_eq!(s.chunks[0].newest, 59_990);
        assert_eq!(s.chunks[1].raw.len(), 1_000 * 16);
        assert_eq!(s.frontier, 69_990);
    }

    #[test]
    fn user_records_are_known_by_tag_then_key() {
        let id = RecordId::new();
        let user = |key: &str, tags: Vec<(String, Option<String>)>| UserRecord {
            partition_key: key.into(),
            explicit_hash_key: None,
            data: bytes::Bytes::new(),
            tags,
        };
        assert_eq!(user_record_id(&user(&id.to_text(), vec![])), Some(id));
        assert_eq!(
            user_record_id(&user("user-1", vec![(TAG_KEY.into(), Some(id.to_text()))])),
            Some(id)
        );
        assert_eq!(user_record_id(&user("user-1", vec![])), None);
        assert_eq!(
            user_record_id(&user("user-1", vec![("other".into(), Some(id.to_text()))])),
            None
        );
        assert_eq!(plain_record_id(&id.to_text()), Some(id));
        assert_eq!(plain_record_id("0123456789abcdef0123456789abcdef"), None);
    }

    #[test]
    fn statements_number_their_parameters() {
        let sql = insert_sql("t", 2);
        assert!(sql.ends_with(
            "VALUES ($1, $3, $2, CAST(CAST($4 AS VARCHAR(20)) AS BIGINT), $5), \
             ($1, $6, $2, CAST(CAST($7 AS VARCHAR(20)) AS BIGINT), $8)"
        ));
        let sql = prune_sql("t", 2);
        assert!(sql.contains("(shard_id = $4 AND newest_arrival_ms < CAST(CAST($5 AS"));
    }
}
