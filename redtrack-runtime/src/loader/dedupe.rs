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
//!    (`redtrack_ids_<table>`: rows of a shard, each up to 48,000 bytes of identities packed as
//!    runs and written as base64url text, with the newest arrival time of the records it
//!    covers);
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
//! **Runs.** A client numbers its records after a random prefix ([`crate::identity`]), so the
//! identities of a load come in blocks of 4096 consecutive ones (same prefix, same count but
//! for its last 12 bits). Each block's loaded identities are a set of 12-bit indexes: a sorted
//! list while short, a 512-byte bitmap once longer. That is what the filter holds and what the
//! warehouse stores: a block filled by one writer over 4 shards costs 4 × 512 bytes, half a
//! byte an event, in memory and in the warehouse, where the identities one by one would cost
//! 16 and 22 bytes. Identities that are not numbered (another producer's) still work, one block
//! each.
//!
//! **Cost.** Per event: parsing its identity and setting two bits while staging; per load:
//! reading the window's rows, and one multi-row INSERT per 16 rows of 48,000 bytes.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::{pin_mut, TryStreamExt};
use tokio_postgres::error::SqlState;

use crate::broker::aggregate::UserRecord;
use crate::error::{Error, Missing, Result};
use crate::identity::{RecordId, TAG_KEY};
use crate::schema::{quote_ident, Dialect};
use crate::warehouse::{column, db_error};

/// The most bytes of packed identities in one row: 64,000 characters of base64url, within a
/// `VARCHAR(65535)`.
const ROW_BYTES: usize = 48_000;

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

/// A hasher for block numbers, whose 64-bit random prefix is hash enough (and costs nothing in
/// the stager's loop).
#[derive(Default)]
pub(crate) struct BlockHasher(u64);

impl Hasher for BlockHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used (blocks are u128); anything else still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u128(&mut self, n: u128) {
        // The prefix (random) folded with the block's count.
        self.0 ^= ((n >> 52) as u64) ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Blocks of identities by block number.
type Blocks<V> = HashMap<u128, V, BuildHasherDefault<BlockHasher>>;

/// The bits of an identity that number it within its block.
const INDEX_BITS: u32 = 12;

/// The block of an identity (all its bits but the last 12) and its index in the block.
fn block_index(id: RecordId) -> (u128, u16) {
    let n = id.as_u128();
    (n >> INDEX_BITS, (n & ((1 << INDEX_BITS) - 1)) as u16)
}

/// The identity at `index` of `block`.
fn id_of(block: u128, index: u16) -> RecordId {
    RecordId::from_u128(block << INDEX_BITS | u128::from(index))
}

/// A list grows to this many indexes before it becomes a bitmap (which holds 4096 in 512 bytes).
const LIST_MAX: usize = 48;

/// A set of indexes of one block (0..4096).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Indexes {
    /// Sorted.
    List(Vec<u16>),
    /// Bit `i % 64` of word `i / 64`.
    Bits(Box<[u64; 64]>),
}

impl Default for Indexes {
    fn default() -> Self {
        Indexes::List(Vec::new())
    }
}

impl Indexes {
    /// Adds `i`; whether it was new.
    #[inline]
    fn insert(&mut self, i: u16) -> bool {
        match self {
            Indexes::Bits(bits) => {
                let (word, bit) = (usize::from(i / 64), 1u64 << (i % 64));
                let new = bits[word] & bit == 0;
                bits[word] |= bit;
                new
            }
            Indexes::List(list) => match list.binary_search(&i) {
                Ok(_) => false,
                Err(at) => {
                    if list.len() < LIST_MAX {
                        list.insert(at, i);
                    } else {
                        let mut bits = Box::new([0u64; 64]);
                        for &j in list.iter().chain([&i]) {
                            bits[usize::from(j / 64)] |= 1 << (j % 64);
                        }
                        *self = Indexes::Bits(bits);
                    }
                    true
                }
            },
        }
    }

    fn contains(&self, i: u16) -> bool {
        match self {
            Indexes::Bits(bits) => bits[usize::from(i / 64)] & (1 << (i % 64)) != 0,
            Indexes::List(list) => list.binary_search(&i).is_ok(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        let (list, bits) = match self {
            Indexes::List(list) => (&list[..], None),
            Indexes::Bits(bits) => (&[][..], Some(bits)),
        };
        list.iter().copied().chain(
            bits.into_iter().flat_map(|b| {
                (0..4096u16).filter(|&i| b[usize::from(i / 64)] & (1 << (i % 64)) != 0)
            }),
        )
    }

    fn len(&self) -> usize {
        match self {
            Indexes::List(list) => list.len(),
            Indexes::Bits(bits) => bits.iter().map(|w| w.count_ones() as usize).sum(),
        }
    }

    /// Its encoded size: a kind byte and a list (2-byte count, 2 bytes each) or the bitmap.
    fn encoded_len(&self) -> usize {
        1 + (2 + 2 * self.len()).min(512)
    }

    /// Appends the block and the set: 15 bytes of block number (big-endian), then `0` and a
    /// list (count, indexes; big-endian u16s) or `1` and the 512-byte bitmap, whichever is
    /// shorter.
    fn encode(&self, block: u128, out: &mut Vec<u8>) {
        out.extend_from_slice(&block.to_be_bytes()[1..]);
        let n = self.len();
        if 2 + 2 * n <= 512 {
            out.push(0);
            out.extend_from_slice(&(n as u16).to_be_bytes());
            for i in self.iter() {
                out.extend_from_slice(&i.to_be_bytes());
            }
        } else {
            out.push(1);
            let mut words = [0u64; 64];
            match self {
                Indexes::Bits(bits) => words = **bits,
                Indexes::List(list) => {
                    for &i in list {
                        words[usize::from(i / 64)] |= 1 << (i % 64);
                    }
                }
            }
            for w in words {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
    }
}

/// The encoded size of a block's entry.
fn entry_len(indexes: &Indexes) -> usize {
    15 + indexes.encoded_len()
}

/// Decodes one row's blocks (as written by [`Indexes::encode`]), each with its set.
fn decode_row(raw: &[u8], what: &str) -> Result<Vec<(u128, Indexes)>> {
    let bad = |why: &str| {
        Error::warehouse(format!(
            "{what}: a row of packed record identities is not as redtrack writes them ({why});              was the table changed by hand?"
        ))
    };
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let (head, tail) = rest
            .split_at_checked(16)
            .ok_or_else(|| bad("a block cut short"))?;
        let mut block = [0u8; 16];
        block[1..].copy_from_slice(&head[..15]);
        let block = u128::from_be_bytes(block);
        let (indexes, tail) = match head[15] {
            0 => {
                let (n, tail) = tail.split_at_checked(2).ok_or_else(|| bad("no count"))?;
                let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
                let (list, tail) = tail
                    .split_at_checked(2 * n)
                    .ok_or_else(|| bad("a list cut short"))?;
                let mut set = Indexes::default();
                for i in list.chunks_exact(2) {
                    let i = u16::from_be_bytes([i[0], i[1]]);
                    if i >= 4096 {
                        return Err(bad("an index past 4095"));
                    }
                    set.insert(i);
                }
                (set, tail)
            }
            1 => {
                let (words, tail) = tail
                    .split_at_checked(512)
                    .ok_or_else(|| bad("a bitmap cut short"))?;
                let mut bits = Box::new([0u64; 64]);
                for (w, b) in bits.iter_mut().zip(words.chunks_exact(8)) {
                    *w = u64::from_be_bytes(b.try_into().unwrap_or_default());
                }
                (Indexes::Bits(bits), tail)
            }
            _ => return Err(bad("an unknown kind of set")),
        };
        out.push((block, indexes));
        rest = tail;
    }
    Ok(out)
}

/// Decodes a row's text.
fn unpack(text: &str, what: &str) -> Result<Vec<(u128, Indexes)>> {
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|e| {
        Error::warehouse(format!(
            "{what}: a row of packed record identities is not base64url ({e}); was the table \
             changed by hand?"
        ))
    })?;
    decode_row(&raw, what)
}

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

/// What the warehouse remembered for a stream when the load was planned.
#[derive(Debug, Default)]
pub(crate) struct Remembered {
    /// Every remembered identity, by block.
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
            return Err(Error::Missing {
                missing: Missing::Identities {
                    table: table.to_owned(),
                    identities: dedupe_table(table),
                },
                source: Some(std::sync::Arc::new(e)),
            })
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
        for (block, indexes) in unpack(ids, &what)? {
            out.ids.add(block, &indexes);
        }
        let e = out.shards.entry(shard).or_insert((newest, newest));
        e.0 = e.0.min(newest);
        e.1 = e.1.max(newest);
        out.load_ids.insert(load_id);
    }
    Ok(out)
}

/// A set of identities: their blocks, each with its set of indexes.
#[derive(Debug, Default)]
pub(crate) struct IdSet {
    blocks: Blocks<Indexes>,
}

impl IdSet {
    /// Adds `id`; whether it was new.
    #[inline]
    fn insert(&mut self, id: RecordId) -> bool {
        let (block, index) = block_index(id);
        self.blocks.entry(block).or_default().insert(index)
    }

    fn contains(&self, id: RecordId) -> bool {
        let (block, index) = block_index(id);
        self.blocks.get(&block).is_some_and(|s| s.contains(index))
    }

    fn add(&mut self, block: u128, indexes: &Indexes) {
        let set = self.blocks.entry(block).or_default();
        for i in indexes.iter() {
            set.insert(i);
        }
    }

    /// How many identities (for tests and reports).
    pub(crate) fn len(&self) -> usize {
        self.blocks.values().map(Indexes::len).sum()
    }
}

/// A block's identities loaded from one shard in this load.
#[derive(Debug, Default)]
struct ShardBlock {
    indexes: Indexes,
    /// The newest arrival among them, ms.
    newest: i64,
}

/// What this load saw of one shard.
#[derive(Debug)]
struct ShardIds {
    blocks: Blocks<ShardBlock>,
    /// Blocks at the last trim (the map is trimmed when it has doubled since).
    trimmed_at: usize,
    /// The newest arrival of any record loaded from the shard in this load (with an identity
    /// or not), ms; `i64::MIN` if none had an arrival time.
    frontier: i64,
}

/// The filter the stager runs every user record through, and what it keeps for the commit.
/// (Its `Default` knows nothing and drops nothing: a filter for no shard.)
#[derive(Debug, Default)]
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
                    blocks: Blocks::default(),
                    trimmed_at: 64,
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
        let (block, index) = block_index(id);
        let b = s.blocks.entry(block).or_default();
        b.indexes.insert(index);
        b.newest = b.newest.max(a);
        if s.blocks.len() >= 2 * s.trimmed_at {
            // Blocks that already fell out of the window are not worth keeping.
            let horizon = s.frontier.saturating_sub(self.window);
            s.blocks.retain(|_, b| b.newest >= horizon);
            s.trimmed_at = s.blocks.len().max(64);
        }
        true
    }

    /// Whether `id` is known (remembered, or admitted in this load).
    pub(crate) fn knows(&self, id: RecordId) -> bool {
        self.seen.contains(id)
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
    // twin that a later load reads), packed into rows; each shard's frontier in its last row.
    let mut rows: Vec<(&str, i64, String)> = Vec::new();
    for (i, s) in c.dedupe.shards.iter().enumerate() {
        let (Some(shard), true) = (c.shard_ids.get(i), s.frontier != i64::MIN) else {
            continue;
        };
        let horizon = s.frontier.saturating_sub(window);
        let mut kept: Vec<(&u128, &ShardBlock)> = s
            .blocks
            .iter()
            .filter(|(_, b)| b.newest >= horizon)
            .collect();
        kept.sort_by_key(|(block, b)| (b.newest, **block));
        let first = rows.len();
        let (mut raw, mut newest) = (Vec::with_capacity(ROW_BYTES), i64::MIN);
        for (block, b) in kept {
            if !raw.is_empty() && raw.len() + entry_len(&b.indexes) > ROW_BYTES {
                rows.push((shard.as_str(), newest, URL_SAFE_NO_PAD.encode(&raw)));
                raw.clear();
            }
            b.indexes.encode(*block, &mut raw);
            newest = newest.max(b.newest);
        }
        if !raw.is_empty() {
            rows.push((shard.as_str(), newest, URL_SAFE_NO_PAD.encode(&raw)));
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
            for (block, indexes) in unpack(ids, &what)? {
                twin = twin.or_else(|| {
                    indexes
                        .iter()
                        .map(|i| id_of(block, i))
                        .find(|&id| c.dedupe.knows(id))
                });
            }
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
    use crate::identity::RecordIds;
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
    fn index_sets_grow_from_lists_to_bitmaps_and_encode_the_shorter() {
        let mut set = Indexes::default();
        for i in (0..4096).step_by(7) {
            assert!(set.insert(i));
            assert!(!set.insert(i));
            assert!(set.contains(i));
        }
        assert!(matches!(set, Indexes::Bits(_)));
        assert!(!set.contains(1));
        assert_eq!(set.len(), 586);
        let mut few = Indexes::default();
        for i in [4095, 3, 17] {
            few.insert(i);
        }
        assert_eq!(few.iter().collect::<Vec<_>>(), [3, 17, 4095]);
        let mut raw = Vec::new();
        few.encode(7, &mut raw);
        set.encode(u128::MAX >> 12, &mut raw);
        assert_eq!(raw.len(), entry_len(&few) + entry_len(&set));
        assert_eq!(entry_len(&few), 15 + 1 + 2 + 6);
        assert_eq!(entry_len(&set), 15 + 1 + 512);
        let back = decode_row(&raw, "t").unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[0].0, back[0].1.iter().collect::<Vec<_>>()),
            (7, vec![3, 17, 4095])
        );
        assert_eq!(back[1].0, u128::MAX >> 12);
        assert!(back[1].1.iter().eq(set.iter()));
        // Damaged rows are errors, not garbage.
        assert!(decode_row(&raw[..20], "t").is_err());
        assert!(unpack("not base64!", "t").is_err());
        assert!(unpack("", "t").unwrap().is_empty());
    }

    #[test]
    fn twins_are_dropped_in_any_shard_and_remembered_ones_too() {
        let ids = RecordIds::new();
        let old = ids.next_id();
        let mut remembered = IdSet::default();
        remembered.insert(old);
        let mut d = Dedupe::new(remembered, 2, Duration::from_secs(60));
        let a = ids.next_id();
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
        assert_eq!(d.shards[0].blocks.len(), 1);
        assert!(d.shards[1].blocks.is_empty(), "b has no arrival time");
        assert!(d.knows(a) && d.knows(old) && d.knows(b));
        assert!(!d.knows(ids.next_id()));
    }

    #[test]
    fn a_writer_s_numbered_ids_take_half_a_byte_each() {
        let ids = RecordIds::new();
        let mut d = Dedupe::new(IdSet::default(), 4, Duration::from_secs(600));
        for n in 0..100_000i64 {
            assert!(d.admit((n % 4) as usize, Some(ids.next_id()), Some(n / 100)));
        }
        let bytes: usize = d
            .shards
            .iter()
            .flat_map(|s| s.blocks.values())
            .map(|b| entry_len(&b.indexes))
            .sum();
        // 25 blocks of 4096 over 4 shards, 1024 each: bitmaps.
        assert_eq!(bytes, 25 * 4 * (15 + 1 + 512));
        assert!(bytes * 2 < 100_000 * 3 / 2, "{bytes} bytes");
    }

    #[test]
    fn blocks_out_of_the_window_are_dropped_as_the_load_goes() {
        let mut d = Dedupe::new(IdSet::default(), 1, Duration::from_millis(10_000));
        // Unnumbered ids: a block each; arrivals 10 ms apart, over 100 s.
        for n in 0..10_000i64 {
            assert!(d.admit(0, Some(RecordId::new()), Some(n * 10)));
        }
        let s = &d.shards[0];
        assert_eq!(s.frontier, 99_990);
        assert!(s
            .blocks
            .values()
            .all(|b| b.newest >= 99_990 - 10_000 - 10 * 8192));
        assert!(s.blocks.len() < 10_000, "{}", s.blocks.len());
        // What is kept always covers the window.
        assert!(s.blocks.values().filter(|b| b.newest >= 89_990).count() >= 1_000);
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
