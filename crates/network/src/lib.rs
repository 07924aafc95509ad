//! Domain `network`.
