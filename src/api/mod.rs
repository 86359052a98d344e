//! The public Rust API, re-exported at the crate root (its overview is the crate's doc).

mod connection;
mod cursor;
mod disk;
mod inspect;
mod logging;
mod settings;
mod staged;
mod types;

pub use connection::Connection;
pub use cursor::DiskCursor;
pub use disk::{Completion, Disk};
pub use inspect::{LinkInfo, MapRun, Mapped, Tracking};
pub use logging::{LogLevel, LogSink, log_info, log_verbose, log_warning, set_log_sink};
pub use settings::Settings;
pub use staged::StagedDisk;
pub use types::{Area, ChangeId, CreateOptions, Info, OpenOptions};

pub use crate::error::{Error, Result};
pub use crate::error_kind::ErrorKind;
pub use crate::remote::sys::IoBuf;
pub use crate::vmdk::check::{
    CheckReport, Outcome as CheckOutcome, Problem, ProblemKind, SalvageCounts,
};
pub use crate::vmdk::create::DiskKind;
pub use crate::vmdk::geometry::{Adapter, Geometry};
