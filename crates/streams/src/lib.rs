//! Domain `streams`.
