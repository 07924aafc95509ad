//! The binary layout of stored trips, pure (no SQL).
//!
//! One SQLite row per trip cannot be written fast enough for 100 M trips on a small machine
//! (each row and each index entry is a B-tree insert), so trips are stored in batches of up
//! to [`BATCH_ROWS`] with contiguous ids. A batch is sorted twice:
//! - by origin cell (level-0 Morton code): every trip as a fixed-width [`TripRec`];
//! - by destination cell: a [`DestRec`] per trip, for destination edges;
//!
//! and each sorted run is cut into [`Block`]s, one per [`BLOCK_LEVEL`] cell (a blob of tens
//! of kilobytes, so reading one costs a few pages), with a directory by [`DIR_LEVEL`]
//! sub-cell, so a box edge reads only the records of the sub-cells it touches. `pos` holds,
//! for the n-th trip of the batch in id order, its index in the origin order (`u32` each).

use crate::engine::{parent, Week, PAIR_LEVEL};
use crate::parse::{Point, Timestamp};

/// Trips per batch: bounds the memory of a load (about 80 bytes per trip while building).
pub const BATCH_ROWS: usize = 1 << 20;
/// Level of the cells of blocks (1/64°).
pub const BLOCK_LEVEL: u32 = 2;
/// Level of a block's directory entries (1/256°).
pub const DIR_LEVEL: u32 = 1;
/// Directory slots of one block.
const SLOTS: usize = 1 << (4 * (BLOCK_LEVEL - DIR_LEVEL));
pub const TRIP_BYTES: usize = 48;
pub const DEST_BYTES: usize = 24;

/// One trip as stored: dictionary ids, timestamp and full-precision coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripRec {
    /// Id minus the batch's first id.
    pub offset: u32,
    pub region: u16,
    pub datasource: u16,
    pub ts: Timestamp,
    pub origin: Point,
    pub destination: Point,
}

fn f64_at(b: &[u8], at: usize) -> f64 {
    f64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn point_at(b: &[u8], at: usize) -> Point {
    Point::stored(f64_at(b, at), f64_at(b, at + 8))
}

impl TripRec {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.region.to_le_bytes());
        out.extend_from_slice(&self.datasource.to_le_bytes());
        out.extend_from_slice(&self.ts.secs().to_le_bytes());
        for v in [
            self.origin.lon(),
            self.origin.lat(),
            self.destination.lon(),
            self.destination.lat(),
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Decodes one record (`b` holds at least [`TRIP_BYTES`]).
    pub fn decode(b: &[u8]) -> TripRec {
        TripRec {
            offset: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            region: u16::from_le_bytes([b[4], b[5]]),
            datasource: u16::from_le_bytes([b[6], b[7]]),
            ts: Timestamp::from_secs(i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"))),
            origin: point_at(b, 16),
            destination: point_at(b, 32),
        }
    }
}

/// One trip as seen from its destination: what a destination edge needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DestRec {
    pub destination: Point,
    pub week: Week,
    /// The origin's cell at [`PAIR_LEVEL`].
    pub o_pair_cell: i64,
}

impl DestRec {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.destination.lon().to_le_bytes());
        out.extend_from_slice(&self.destination.lat().to_le_bytes());
        out.extend_from_slice(&(self.week.0 as i32).to_le_bytes());
        out.extend_from_slice(&(self.o_pair_cell as u32).to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> DestRec {
        DestRec {
            destination: point_at(b, 0),
            week: Week(i64::from(i32::from_le_bytes(
                b[16..20].try_into().expect("4 bytes"),
            ))),
            o_pair_cell: i64::from(u32::from_le_bytes(b[20..24].try_into().expect("4 bytes"))),
        }
    }
}

/// Which end of a trip a sorted blob is ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Origin = 0,
    Destination = 1,
}

/// The records of one block-level cell in a sorted run.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub end: End,
    pub cell: i64,
    /// Index of the first record in the run.
    pub start: u32,
    pub len: u32,
    /// `SLOTS + 1` little-endian `u32`: the record index (from `start`) where each
    /// directory sub-cell begins, then the record count.
    pub dir: Vec<u8>,
}

/// A batch laid out for writing. The buffers are reused from batch to batch: fresh
/// allocations of this size cost more in page faults than the layout itself.
#[derive(Debug, Default)]
pub struct Built {
    pub trips: Vec<u8>,
    pub dests: Vec<u8>,
    pub pos: Vec<u8>,
    pub blocks: Vec<Block>,
    keys: Vec<(i64, u32)>,
}

impl Built {
    /// The records of a block.
    pub fn data(&self, b: &Block) -> &[u8] {
        let (run, width) = match b.end {
            End::Origin => (&self.trips, TRIP_BYTES),
            End::Destination => (&self.dests, DEST_BYTES),
        };
        &run[b.start as usize * width..(b.start + b.len) as usize * width]
    }
}

/// Sorts a batch by origin and by destination cell and lays out its blobs into `out`.
/// `cells[i]` holds the level-0 (origin, destination) cells of `recs[i]`.
pub fn build(recs: &[TripRec], cells: &[(i64, i64)], out: &mut Built) {
    let Built {
        trips,
        dests,
        pos,
        blocks,
        keys,
    } = out;
    let order = |keys: &mut Vec<(i64, u32)>, end: fn(&(i64, i64)) -> i64| {
        keys.clear();
        keys.extend(cells.iter().enumerate().map(|(i, c)| (end(c), i as u32)));
        keys.sort_unstable();
    };
    order(keys, |c| c.0);
    trips.clear();
    pos.clear();
    pos.resize(recs.len() * 4, 0);
    for (at, &(_, i)) in keys.iter().enumerate() {
        recs[i as usize].encode(trips);
        pos[i as usize * 4..][..4].copy_from_slice(&(at as u32).to_le_bytes());
    }
    blocks.clear();
    blocks_of(End::Origin, keys, blocks);
    order(keys, |c| c.1);
    dests.clear();
    for &(_, i) in keys.iter() {
        let r = &recs[i as usize];
        DestRec {
            destination: r.destination,
            week: Week::of(r.ts),
            o_pair_cell: parent(cells[i as usize].0, PAIR_LEVEL),
        }
        .encode(dests);
    }
    blocks_of(End::Destination, keys, blocks);
}

fn slot(cell0: i64) -> usize {
    (parent(cell0, DIR_LEVEL) as usize) & (SLOTS - 1)
}

fn blocks_of(end: End, sorted: &[(i64, u32)], out: &mut Vec<Block>) {
    let mut i = 0;
    while i < sorted.len() {
        let cell = parent(sorted[i].0, BLOCK_LEVEL);
        let len = sorted[i..]
            .iter()
            .take_while(|(c, _)| parent(*c, BLOCK_LEVEL) == cell)
            .count();
        let mut starts = [0u32; SLOTS + 1];
        for &(c, _) in &sorted[i..i + len] {
            starts[slot(c) + 1] += 1;
        }
        for s in 1..=SLOTS {
            starts[s] += starts[s - 1];
        }
        out.push(Block {
            end,
            cell,
            start: i as u32,
            len: len as u32,
            dir: starts.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        i += len;
    }
}

/// Record index ranges (half-open, within the block) of a block's sub-cells that meet
/// the inclusive level-0 ranges `ranges` (sorted, merged).
pub fn runs(dir: &[u8], cell: i64, ranges: &[(i64, i64)]) -> Vec<(u32, u32)> {
    let at = |s: usize| u32::from_le_bytes(dir[s * 4..s * 4 + 4].try_into().expect("4 bytes"));
    let shift = 4 * BLOCK_LEVEL;
    let (lo, hi) = (cell << shift, ((cell + 1) << shift) - 1);
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &(a, b) in ranges {
        let (a, b) = (a.max(lo), b.min(hi));
        if a > b {
            continue;
        }
        let (from, to) = (at(slot(a)), at(slot(b) + 1));
        if from == to {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

/// Block-level cells meeting the inclusive level-0 ranges.
pub fn block_cells(ranges: &[(i64, i64)]) -> Vec<i64> {
    // Sorted ranges give sorted cells; neighbouring ranges may share one.
    let mut cells: Vec<i64> = ranges
        .iter()
        .flat_map(|&(a, b)| parent(a, BLOCK_LEVEL)..=parent(b, BLOCK_LEVEL))
        .collect();
    cells.dedup();
    cells
}

/// Counts by a small integer key, as one blob: (key `i32`, count `i64`) pairs, little
/// endian, sorted by key, without zero counts. A group's datasources and a cell pair's weeks
/// are kept this way, so that each is one row; deltas use the same layout with signed counts
/// and are merged by the SQL function `trips_add_counts`.
pub struct Tally;

impl Tally {
    const WIDTH: usize = 12;

    pub fn encode(pairs: impl IntoIterator<Item = (i64, i64)>) -> Vec<u8> {
        let mut v: Vec<(i64, i64)> = pairs.into_iter().filter(|p| p.1 != 0).collect();
        v.sort_unstable();
        let mut out = Vec::with_capacity(v.len() * Self::WIDTH);
        for (key, n) in v {
            out.extend_from_slice(&(key as i32).to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> impl Iterator<Item = (i64, i64)> + '_ {
        b.chunks_exact(Self::WIDTH).map(|c| {
            let key = i64::from(i32::from_le_bytes(c[0..4].try_into().expect("4 bytes")));
            (
                key,
                i64::from_le_bytes(c[4..12].try_into().expect("8 bytes")),
            )
        })
    }

    /// Adds the counts of `delta` to `base`.
    pub fn add(base: &[u8], delta: &[u8]) -> Vec<u8> {
        let mut sum: std::collections::BTreeMap<i64, i64> = Self::decode(base).collect();
        for (key, n) in Self::decode(delta) {
            *sum.entry(key).or_default() += n;
        }
        Self::encode(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine;

    fn rec(offset: u32, o: (f64, f64), d: (f64, f64)) -> TripRec {
        TripRec {
            offset,
            region: 1,
            datasource: 2,
            ts: Timestamp::from_secs(1_525_000_000 + i64::from(offset)),
            origin: Point::new(o.0, o.1).unwrap(),
            destination: Point::new(d.0, d.1).unwrap(),
        }
    }

    #[test]
    fn tallies_add_and_drop_zeros() {
        let decode = |b: &[u8]| Tally::decode(b).collect::<Vec<_>>();
        let base = Tally::encode([(3, 5), (-1, 2)]);
        assert_eq!(decode(&base), vec![(-1, 2), (3, 5)]);
        let delta = Tally::encode([(-1, -2), (7, 1)]);
        assert_eq!(decode(&Tally::add(&base, &delta)), vec![(3, 5), (7, 1)]);
        assert!(Tally::add(&base, &Tally::encode([(-1, -2), (3, -5)])).is_empty());
    }

    #[test]
    fn records_round_trip_at_full_precision() {
        let r = rec(7, (14.4973794438195, 50.00136875782316), (-9.1, -38.7));
        let mut b = Vec::new();
        r.encode(&mut b);
        assert_eq!(b.len(), TRIP_BYTES);
        assert_eq!(TripRec::decode(&b), r);
        let d = DestRec {
            destination: r.destination,
            week: Week(-3),
            o_pair_cell: 12345,
        };
        let mut b = Vec::new();
        d.encode(&mut b);
        assert_eq!(b.len(), DEST_BYTES);
        assert_eq!(DestRec::decode(&b), d);
    }

    #[test]
    fn blobs_are_sorted_and_the_directory_finds_every_trip() {
        let recs: Vec<TripRec> = (0..500u32)
            .map(|i| {
                let x = 14.0 + f64::from(i % 37) * 0.013;
                let y = 50.0 + f64::from(i % 23) * 0.011;
                rec(i, (x, y), (y - 40.0, x + 30.0))
            })
            .collect();
        let cells: Vec<(i64, i64)> = recs
            .iter()
            .map(|r| (engine::cell_of(r.origin), engine::cell_of(r.destination)))
            .collect();
        let mut b = Built::default();
        build(&recs, &cells, &mut b);
        let decoded: Vec<TripRec> = b.trips.chunks(TRIP_BYTES).map(TripRec::decode).collect();
        let cells: Vec<i64> = decoded.iter().map(|r| engine::cell_of(r.origin)).collect();
        assert!(cells.windows(2).all(|w| w[0] <= w[1]));
        // pos maps id order to sorted order.
        for (i, r) in recs.iter().enumerate() {
            let at = u32::from_le_bytes(b.pos[i * 4..i * 4 + 4].try_into().unwrap());
            assert_eq!(decoded[at as usize], *r);
        }
        // Every origin is found through its block and the run of its own cell.
        for r in &recs {
            let c0 = engine::cell_of(r.origin);
            let block = b
                .blocks
                .iter()
                .find(|k| k.end == End::Origin && k.cell == parent(c0, BLOCK_LEVEL))
                .unwrap();
            let found = runs(&block.dir, block.cell, &[(c0, c0)])
                .iter()
                .flat_map(|&(a, z)| (a..z).map(|i| decoded[(block.start + i) as usize]))
                .any(|x| x == *r);
            assert!(found);
        }
        let dest_total: u32 = b
            .blocks
            .iter()
            .filter(|k| k.end == End::Destination)
            .map(|k| runs(&k.dir, k.cell, &[(i64::MIN, i64::MAX)])[0].1)
            .sum();
        assert_eq!(dest_total as usize, recs.len());
    }
}
