//! The verdict of a check: the problem kinds, the report, the outcome and the salvage counts.

/// What kind of damage a problem is.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("c.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let report = conn.check_report(&path, false, false)?;
/// assert!(report.problems.iter().all(|p| p.kind != vixDiskLib::ProblemKind::StreamMarker));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// An extent file named by the descriptor does not exist.
    MissingExtent,
    /// A file is shorter than its extent, its metadata area, or one of its grains.
    ShortExtent,
    /// The sparse header is missing or has impossible fields.
    Header,
    /// The header's newline-detector bytes are not `"\n \r\n"`.
    NewlineDetector,
    /// The descriptor text does not parse.
    Descriptor,
    /// The descriptor and the sparse header disagree on the capacity.
    CapacityMismatch,
    /// The header's uncleanShutdown flag is set.
    UncleanShutdown,
    /// A grain-directory entry points outside the file or over other metadata.
    DirectoryEntry,
    /// The primary and redundant grain directories disagree.
    RedundantDirectory,
    /// A grain table and its redundant copy differ.
    RedundantTable,
    /// The redundant copy of a grain table lacks entries the primary already has, and nothing
    /// else differs: what a Flush stopped between writing the two copies leaves (we always
    /// write the primary first). With the uncleanShutdown flag set this is a note, not damage.
    RedundantBehind,
    /// A grain-directory index has no grain table in any copy.
    MissingTable,
    /// Every copy of a grain table is unusable: what it mapped cannot be recovered.
    LostTable,
    /// A grain-table entry points past the end of the file.
    GrainPastEnd,
    /// A grain-table entry points into metadata (header, descriptor, directories, tables).
    GrainInMetadata,
    /// Two grain-table entries point at the same grain.
    SharedGrain,
    /// A stream's header is unusable (the stream cannot be followed).
    StreamHeader,
    /// A stream ends inside a grain or a metadata item, or its last grain is torn.
    StreamTruncated,
    /// A stream's footer is missing or disagrees with the header, so its directory is lost.
    StreamFooter,
    /// A stream's grain directory or tables disagree with the grains its markers hold.
    StreamTables,
    /// Grains appended to a stream after its last Flush, in no table yet: a note (the disk
    /// reads as of that Flush), like the uncleanShutdown flag.
    StreamUnflushed,
    /// A stream grain that cannot be accounted for: two grains for one LBA, or one that does
    /// not inflate.
    StreamGrain,
    /// A marker of unknown type, or a sector that cannot be a marker, in a stream.
    StreamMarker,
}

impl ProblemKind {
    /// True for damage that makes a stream invalid rather than repairable.
    fn means_invalid(self) -> bool {
        matches!(
            self,
            ProblemKind::StreamHeader | ProblemKind::StreamGrain | ProblemKind::StreamMarker
        )
    }
}

/// One finding.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("c.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let report = conn.check_report(&path, false, false)?;
/// assert!(report.problems.iter().all(|p| p.fixable));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// Human-readable detail, starting with the file concerned.
    pub detail: String,
    /// True if repair can fix it without losing reachable data.
    pub fixable: bool,
}

/// The verdict of a check, as `VixDiskLib_CheckRepair` reports it.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("c.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let report = conn.check_report(&path, false, false)?;
/// assert!(report.outcome().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No problem found (VIX_OK).
    Clean,
    /// Problems were found and all of them repaired (VIX_OK).
    Repaired,
    /// Problems were found and left as they are (VIX_E_DISK_NEEDSREPAIR).
    NeedsRepair,
    /// At least one problem cannot be repaired without losing data (VIX_E_DISK_CANTREPAIR).
    CantRepair,
    /// A stream holds what no repair can account for (an unknown marker, a bad grain, an
    /// unusable header): the disk is invalid and nothing was written (VIX_E_DISK_INVALIDDISK).
    Invalid,
}

impl Outcome {
    /// True if the call succeeded from the caller's point of view (VIX_OK).
    ///
    /// ```
    /// use vixDiskLib::CheckOutcome;
    /// assert!(CheckOutcome::Repaired.is_ok() && !CheckOutcome::NeedsRepair.is_ok());
    /// ```
    pub fn is_ok(self) -> bool {
        matches!(self, Outcome::Clean | Outcome::Repaired)
    }
}

/// Result of `check_disk`.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("c.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let report = conn.check_report(&path, false, false)?;
/// assert!(report.repaired.is_empty() && !report.unrepairable);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Everything found, in the order found.
    pub problems: Vec<Problem>,
    /// What repair did, one line per action (empty unless repair ran).
    pub repaired: Vec<String>,
    /// True if some problem cannot be fixed without data loss (then nothing was written).
    pub unrepairable: bool,
    /// For a damaged stream: what salvage keeps and loses (done with repair, else planned).
    pub salvage: Option<SalvageCounts>,
}

/// What a stream salvage keeps and loses.
///
/// ```
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("c.vmdk");
/// let conn = Connection::local();
/// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let report = conn.check_report(&path, false, false)?;
/// assert!(report.salvage.is_none()); // nothing to salvage
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalvageCounts {
    /// Complete grains kept.
    pub grains: u64,
    /// Virtual sectors whose data the rebuilt stream holds.
    pub recovered_sectors: u64,
    /// Virtual sectors known to have held data that is gone (a grain cut short or torn, grains
    /// the old tables placed past the end of the file). What a stream held after the point
    /// where it was cut cannot be known and is not counted.
    pub lost_sectors: u64,
}

impl CheckReport {
    /// The verdict: unrepairable wins, then "found but not repaired".
    /// The marks of an interrupted session are notes, not damage: a set uncleanShutdown flag
    /// (the check has just verified what the flag asks a reader to verify), and, with it,
    /// redundant grain tables that lag behind their primaries (a Flush stopped between the
    /// two copies). They give `Clean`; repair still clears the flag and copies the tables.
    ///
    /// ```
    /// use vixDiskLib::{CheckOutcome, CheckReport};
    /// assert_eq!(CheckReport::default().outcome(), CheckOutcome::Clean);
    /// let gave_up = CheckReport { unrepairable: true, ..Default::default() };
    /// assert_eq!(gave_up.outcome(), CheckOutcome::CantRepair);
    /// ```
    pub fn outcome(&self) -> Outcome {
        if self.unrepairable && self.problems.iter().any(|p| p.kind.means_invalid()) {
            Outcome::Invalid
        } else if self.unrepairable {
            Outcome::CantRepair
        } else if !self.repaired.is_empty() {
            Outcome::Repaired
        } else if self.is_damaged() {
            Outcome::NeedsRepair
        } else {
            Outcome::Clean
        }
    }

    /// True if a problem other than the marks of an interrupted session was found.
    ///
    /// ```
    /// assert!(!vixDiskLib::CheckReport::default().is_damaged());
    /// ```
    pub fn is_damaged(&self) -> bool {
        let interrupted = self.has(ProblemKind::UncleanShutdown);
        self.problems.iter().any(|p| match p.kind {
            ProblemKind::UncleanShutdown | ProblemKind::StreamUnflushed => false,
            ProblemKind::RedundantBehind => !interrupted,
            _ => true,
        })
    }

    /// True if a problem of `kind` was found.
    ///
    /// ```
    /// use vixDiskLib::{CheckReport, ProblemKind};
    /// assert!(!CheckReport::default().has(ProblemKind::UncleanShutdown));
    /// ```
    pub fn has(&self, kind: ProblemKind) -> bool {
        self.problems.iter().any(|p| p.kind == kind)
    }
}
