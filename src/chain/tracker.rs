//! The change-tracking state an open disk keeps for its leaf (`Tracker`), opened with the disk.
//! Everything else about change tracking at chain level is in `tracking`.

use crate::log;
use crate::vmdk::link::Link;
use crate::vmdk::track::{TRACK_GRAIN_SECTORS, TrackFile};

/// The tracking state of an open disk's leaf.
pub enum Tracker {
    /// The leaf does not track changes.
    Off,
    /// Tracking, with its file open.
    On(Box<TrackFile>),
    /// The leaf should track but its file is missing or damaged: no id can be answered.
    Broken(String),
}

/// Grains a link of `capacity` sectors tracks.
pub fn grains_of(capacity: u64) -> u64 {
    capacity.div_ceil(TRACK_GRAIN_SECTORS)
}

/// Opens the tracker of `leaf` (Off when its descriptor names no tracking file).
pub fn open_tracker(leaf: &Link) -> Tracker {
    let Some(path) = leaf.tracking_file() else {
        return Tracker::Off;
    };
    let grains = grains_of(leaf.capacity());
    match TrackFile::open(&path, leaf.writable(), grains, leaf.descriptor().cid) {
        Ok(t) => Tracker::On(Box::new(t)),
        Err(e) => {
            let why = format!(
                "{}: change tracking unusable ({e}); do a full backup",
                leaf.path().display()
            );
            log::warn(&why);
            Tracker::Broken(why)
        }
    }
}
