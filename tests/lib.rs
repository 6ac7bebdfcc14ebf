//! Support code for Quiver's end-to-end suite: the sqllogictest adapter and helpers
//! shared by the integration modules.

pub mod slt;
