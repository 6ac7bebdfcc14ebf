//! Where a worker keeps what must outlive it: connector definitions and committed
//! offsets. [`local`] is the crash-safe redb store of one state folder.

pub mod local;

pub use local::{Definition, StateStore};
