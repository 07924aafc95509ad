//! Domain `trips`.
