//! All SQL of the domain: schema, loading batches of trips with their rollups, removing a
//! load's contribution, and the queries behind the routes. Every statement is
//! parameterized; the only request-chosen names (trip end, count column) come from fixed
//! allow-lists here. The blob layout of a batch is in [`crate::batch`].

use sluice_core::{DbError, Migration};

mod groups;
mod listing;
mod load;
mod read;
mod rollup;
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

type Result<T> = std::result::Result<T, DbError>;

/// A load in progress or done; see `trips_load` in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadId(pub i64);
