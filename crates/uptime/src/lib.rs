//! Domain `uptime`.
