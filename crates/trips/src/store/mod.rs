//! All storage of the domain: the logic of loading batches of trips with their rollups,
//! removing a load's contribution and answering the routes' queries is written once, over
//! [`Sql`], the statements it needs, implemented per backend ([`sqlite`] and [`postgres`]).
//! Every statement is parameterized; the only request-chosen names (trip end, count column)
//! come from fixed allow-lists. The blob layout of a batch is in [`crate::batch`].

use sluice_core::{Database, DbError, Migration};

mod groups;
mod listing;
mod load;
mod postgres;
mod read;
mod rollup;
mod sqlite;
mod weekly;
mod writer;

pub use groups::{group, group_trips, groups, GroupOut};
pub use listing::{counts, density, trips, CoordPrefix, CountBy, TripFilter};
pub use load::{create_load, finish_load, load_of_file, remove_load, stale_loads};
pub use read::{trip, TripOut};
pub use rollup::complete_levels;
pub use weekly::{
    dataset_weeks, region_weeks, weekly_bbox, weekly_region, weekly_region_bbox, WeekRange,
};
pub use writer::{Prepared, Writer};

use crate::batch::{Built, End, TripRec};

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            name: "V1__init",
            sql: include_str!("../../migrations/V1__init.sql"),
        },
        Migration {
            name: "V2__batches",
            sql: include_str!("../../migrations/V2__batches.sql"),
        },
        Migration {
            name: "V3__owner",
            sql: include_str!("../../migrations/V3__owner.sql"),
        },
        Migration {
            name: "V4__cell_weeks",
            sql: include_str!("../../migrations/V4__cell_weeks.sql"),
        },
    ]
}

/// The PostgreSQL schema: the SQLite schema as it stands after V4, in one migration.
pub fn postgres_migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__init",
        sql: include_str!("../../migrations/postgres/V1__init.sql"),
    }]
}

type Result<T> = std::result::Result<T, DbError>;

/// A load in progress or done; see `trips_load` in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadId(pub i64);

/// The two dictionaries (an allow-list of table names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dict {
    Region,
    Datasource,
}

/// The rollup tables whose rows carry a [`crate::batch::Tally`] of weeks under a key of
/// three integers (an allow-list of table names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TallyTable {
    /// (end, level, cell).
    Cell,
    /// (level, origin cell, destination cell).
    Pair,
}

/// One row of a tally table as a rollup changes it: `weeks` is added to the stored tally
/// (counts may be negative); a row whose weeks all reach zero is removed.
pub struct TallyRow {
    pub key: [i64; 3],
    pub weeks: Vec<u8>,
}

/// A group's key columns: (resolution, bucket minutes, region, origin H3, destination H3,
/// bucket).
pub type GroupCols = [i64; 6];

/// One group as a rollup changes it: `n` trips and the datasource tally are added; a group
/// reaching zero trips is removed.
pub struct GroupDelta {
    pub key: GroupCols,
    pub n: i64,
    pub sources: Vec<u8>,
}

/// A stored group row.
pub struct GroupRow {
    pub id: i64,
    pub region: String,
    pub region_id: i64,
    pub o_h3: i64,
    pub d_h3: i64,
    pub bucket: u32,
    pub n: i64,
    pub sources: Vec<u8>,
}

/// Which groups a listing wants.
pub struct GroupQuery<'a> {
    pub resolution: u8,
    pub bucket_minutes: u32,
    pub region: Option<&'a str>,
    pub min_size: i64,
    pub limit: u32,
    pub offset: i64,
}

/// A visible batch as listings walk them.
#[derive(Clone, Copy, Debug)]
pub struct BatchRow {
    pub id: i64,
    pub first_id: i64,
    pub n: i64,
    pub ts_min: i64,
    pub ts_max: i64,
}

/// Picks record ranges (start, end) of a block from its directory.
pub type RunPicker<'a> = dyn FnMut(&[u8]) -> Vec<(u32, u32)> + 'a;

/// The statements of the domain, one implementation per backend. A value is one
/// transaction (or, on SQLite, a connection inside the caller's transaction); ids are
/// allocated as SQLite's rowids are (max + 1), so both backends give the same ids.
pub trait Sql {
    /// (id, name) of every entry of a dictionary.
    fn names(&mut self, dict: Dict) -> Result<Vec<(i64, String)>>;
    /// The id of a name, created if absent.
    fn intern(&mut self, dict: Dict, name: &str) -> Result<i64>;

    fn create_load(
        &mut self,
        owner: &str,
        name: &str,
        resolution: u8,
        minutes: u32,
    ) -> Result<LoadId>;
    fn finish_load(&mut self, load: LoadId, file_id: i64) -> Result<()>;
    /// The group configuration a load was written with.
    fn load_config(&mut self, load: LoadId) -> Result<Option<(u8, u32)>>;
    /// (batch id, trips, visible) of a load.
    fn load_batches(&mut self, load: LoadId) -> Result<Vec<(i64, i64, bool)>>;
    /// Removes a batch with its blocks.
    fn delete_batch(&mut self, batch_id: i64) -> Result<()>;
    fn delete_load(&mut self, load: LoadId) -> Result<()>;
    fn load_of_file(&mut self, file_id: i64) -> Result<Option<LoadId>>;
    /// (load, owner) of every staging load.
    fn staging_loads(&mut self) -> Result<Vec<(LoadId, String)>>;

    /// Stores a built batch of `n` trips, not yet visible, with the next free ids.
    fn insert_batch(&mut self, load: LoadId, n: i64, ts: (i64, i64), built: &Built) -> Result<()>;
    /// Makes a load's batches visible.
    fn make_visible(&mut self, load: LoadId) -> Result<()>;

    /// Adds to the trip counts of dictionary entries.
    fn add_counts(&mut self, dict: Dict, rows: &[(i64, i64)]) -> Result<()>;
    /// Adds to `trips_region_week`; with `removing`, rows reaching zero go.
    fn add_region_weeks(&mut self, rows: &[(i64, i64, i64)], removing: bool) -> Result<()>;
    /// Adds tallies to a tally table (see [`TallyRow`]).
    fn add_tallies(
        &mut self,
        table: TallyTable,
        rows: &mut dyn Iterator<Item = TallyRow>,
    ) -> Result<()>;
    /// Adds to the groups (see [`GroupDelta`]), new groups taking the next ids in order.
    fn add_groups(&mut self, rows: &mut dyn Iterator<Item = GroupDelta>) -> Result<()>;
    /// Whether the level-1 cell rollups wait to be built (see [`complete_levels`]).
    fn level_1_pending(&mut self) -> Result<bool>;
    fn clear_level_1_pending(&mut self) -> Result<()>;
    /// Ids of the visible batches, in id order.
    fn visible_batches(&mut self) -> Result<Vec<i64>>;

    /// Calls `f` with the origin blocks' data of a batch, in origin order.
    fn origin_blocks(&mut self, batch_id: i64, f: &mut dyn FnMut(&[u8])) -> Result<()>;
    /// For every visible block of `end` in level-2 cell `cell` (of batch `batch` only, if
    /// given): `runs(dir)` picks record ranges from its directory, and `f(bytes, first id of
    /// the batch)` gets each range's bytes (records of `width` bytes).
    fn block_runs(
        &mut self,
        end: End,
        cell: i64,
        batch: Option<i64>,
        width: usize,
        runs: &mut RunPicker<'_>,
        f: &mut dyn FnMut(&[u8], i64),
    ) -> Result<()>;
    /// The visible batch holding trip `id`: (batch id, first id).
    fn batch_of(&mut self, id: i64) -> Result<Option<(i64, i64)>>;
    /// The trips at id offsets `offsets` of a batch, through its `pos` map.
    fn read_by_offsets(
        &mut self,
        batch_id: i64,
        offsets: std::ops::Range<u32>,
    ) -> Result<Vec<TripRec>>;
    /// Visible batches holding ids from `from` on, in id order.
    fn batches_from(&mut self, from: i64) -> Result<Vec<BatchRow>>;

    /// (name, trips) of a dictionary's entries with trips, largest first, then by name.
    fn dict_counts(&mut self, dict: Dict) -> Result<Vec<(String, i64)>>;
    /// Calls `f(cell, weeks)` for the `trips_cell` rows of `end` and `level` with cells in
    /// `lo..=hi`, in cell order, until it answers `false`.
    fn cells(
        &mut self,
        end: End,
        level: u32,
        span: (i64, i64),
        f: &mut dyn FnMut(i64, &[u8]) -> bool,
    ) -> Result<()>;
    /// Whether `end` has a rollup row at (level, cell).
    fn has_cell(&mut self, end: End, level: u32, cell: i64) -> Result<bool>;
    /// Calls `f(origin cell, destination cell, weeks)` for the pair rollups of `level` in
    /// the two inclusive cell ranges.
    fn pairs(
        &mut self,
        level: u32,
        o: (i64, i64),
        d: (i64, i64),
        f: &mut dyn FnMut(i64, i64, &[u8]),
    ) -> Result<()>;
    /// The first and last week with trips.
    fn week_span(&mut self) -> Result<(Option<i64>, Option<i64>)>;
    /// (region, week, trips), by week then region name.
    fn region_weeks(&mut self) -> Result<Vec<(String, i64, i64)>>;
    /// (week, trips) of one region or all, weeks in `lo..=hi`.
    fn weekly_region(&mut self, region: Option<&str>, lo: i64, hi: i64) -> Result<Vec<(i64, i64)>>;
    /// Groups, largest first, then by id.
    fn groups(&mut self, q: &GroupQuery<'_>) -> Result<Vec<GroupRow>>;
    fn group(&mut self, id: i64, resolution: u8, minutes: u32) -> Result<Option<GroupRow>>;
}

fn end_code(end: End) -> i64 {
    end as i64
}

/// Runs `f` in one read transaction (one snapshot) of either backend.
pub fn read<R: Send, E: From<DbError> + Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Sql) -> std::result::Result<R, E> + Send,
) -> std::result::Result<R, E> {
    match db {
        Database::Sqlite(db) => db.read(|c| f(&mut { c })),
        Database::Postgres(pg) => pg.read(|tx| f(tx)),
    }
}

/// [`read`] on the primary whatever the replica: for what must follow this instance's own
/// writes (the ledger and loads during ingestion).
pub fn read_primary<R: Send, E: From<DbError> + Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Sql) -> std::result::Result<R, E> + Send,
) -> std::result::Result<R, E> {
    match db {
        Database::Sqlite(db) => db.read(|c| f(&mut { c })),
        Database::Postgres(pg) => pg.read_primary(|tx| f(tx)),
    }
}

/// [`read`] on the blocking thread pool, for async handlers.
pub async fn read_async<R, E>(
    db: &Database,
    f: impl FnOnce(&mut dyn Sql) -> std::result::Result<R, E> + Send + 'static,
) -> std::result::Result<R, E>
where
    R: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let db = db.clone();
    tokio::task::spawn_blocking(move || read(&db, f))
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
}

/// Runs `f` in one write transaction of either backend, committed when it succeeds.
pub fn write<R: Send, E: From<DbError> + Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Sql) -> std::result::Result<R, E> + Send,
) -> std::result::Result<R, E> {
    match db {
        Database::Sqlite(db) => db.write(|c| {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let out = f(&mut { &*tx })?;
            tx.commit().map_err(DbError::from)?;
            Ok(out)
        }),
        Database::Postgres(pg) => pg.write(|tx| f(tx)),
    }
}
