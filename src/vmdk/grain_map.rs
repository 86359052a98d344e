//! What a grain-table lookup answers, for sparse and COWD extents alike.

/// Where a run of an extent's sectors lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrainMap {
    /// Stored in this file at the given byte offset.
    Data(u64),
    /// Reads as zeros regardless of any parent (zeroed-grain entry).
    Zero,
    /// Not stored here: the parent (or zeros) supplies it.
    Unallocated,
    /// A compressed grain whose marker is at this sector (one grain per answer).
    Compressed(u64),
}
