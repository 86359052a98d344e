//! The command line: every subcommand and option, as clap derives them (`--help` comes from
//! the doc comments here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::units::{Adapter, DiskType, parse_size};

/// Inspect, create, convert, check and back up VMware virtual disks (hosted VMDK files).
///
/// Exit codes: 0 success, 1 the operation failed (the VixError is printed), 2 bad usage,
/// 3 check found problems that were not repaired, 4 check found problems that cannot be
/// repaired, 6 the change ID cannot be answered (do a full backup), 130 interrupted (Ctrl-C,
/// SIGTERM or SIGHUP).
#[derive(Debug, Parser)]
#[command(name = "vixdisk", version, propagate_version = true)]
pub struct Cli {
    /// Show no progress bar (it is only drawn on a terminal anyway).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Also print the engine's informational log lines on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Type, capacity, adapter and the chain of links (CIDs, parent hints) of a disk.
    Info {
        /// The disk (its parents are found through their hints), or an NBD export URI
        /// (nbd://HOST:PORT/EXPORT, port optional, nbd+unix:///export?socket=PATH, nbds://... with TLS).
        disk: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        share: ForceShare,
    },
    /// The allocated areas of a disk and the link of the chain that owns each.
    Map {
        /// The disk (its parents are found through their hints), or an NBD export URI.
        disk: PathBuf,
        /// Print JSON shaped like `qemu-img map --output=json` (every area, allocated or not).
        #[arg(long)]
        json: bool,
        /// Only the areas changed since a change ID (`vixdisk changeid`, a backup manifest's
        /// `change_id`; `*` = the allocated areas). For an NBD export: the name of a dirty
        /// bitmap the server exports (`qemu-nbd -B NAME`).
        #[arg(long, value_name = "CHANGE_ID")]
        changed_since: Option<String>,
        #[command(flatten)]
        share: ForceShare,
    },
    /// Check a disk link's metadata and optionally repair what can be repaired safely.
    Check {
        /// The disk link to check (parents are not followed).
        disk: PathBuf,
        /// Repair what can be repaired without losing data.
        #[arg(long, conflicts_with = "force_share")]
        repair: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        share: ForceShare,
    },
    /// Create a new, empty disk.
    Create {
        /// The new disk (must not exist).
        disk: PathBuf,
        /// Capacity: bytes, or a number with a K, M, G or T suffix (powers of 1024).
        #[arg(value_parser = parse_size)]
        size: u64,
        #[command(flatten)]
        format: NewFormatArgs,
    },
    /// Create a redo log (child disk) over a disk; afterwards write through the child.
    Child {
        /// The parent disk (the leaf of its chain), left unchanged.
        parent: PathBuf,
        /// The new child disk.
        child: PathBuf,
        /// monolithicSparse or twoGbMaxExtentSparse.
        #[arg(short = 't', long = "type", default_value = "monolithicSparse")]
        disk_type: DiskType,
    },
    /// Delete a redo log (every file of the child link); refuses a disk that has no parent.
    Discard {
        /// The child disk to delete.
        child: PathBuf,
    },
    /// Attach a child link on top of a parent chain (records the parent's CID and a hint).
    Attach {
        /// The parent disk.
        parent: PathBuf,
        /// The child link (same capacity) that will point at the parent.
        child: PathBuf,
    },
    /// Copy a disk (its whole chain, flattened) or an NBD export into a new disk of any type,
    /// or raw.
    #[command(visible_alias = "clone")]
    Convert {
        /// The source: a disk, a raw image (-f raw), or an NBD export named by a URI
        /// (nbd://HOST:PORT/EXPORT, port optional, nbd+unix:///export?socket=PATH, nbds://... with TLS), of
        /// which the allocated areas are copied.
        source: PathBuf,
        /// The new disk (a local path).
        target: PathBuf,
        /// Format of the source file: vmdk (the default) or raw; not for an NBD export.
        #[arg(short = 'f', long = "source-format")]
        source_format: Option<SourceFormat>,
        #[command(flatten)]
        format: FormatArgs,
        /// Replace the target if it exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// Grow a base disk (no parent) to a larger capacity.
    Grow {
        /// The disk (closed, not a child).
        disk: PathBuf,
        /// New capacity: bytes, or a number with a K, M, G or T suffix.
        #[arg(value_parser = parse_size)]
        size: u64,
        /// Keep the DDB geometry as it is instead of recomputing it.
        #[arg(long)]
        keep_geometry: bool,
    },
    /// Release the grains of a sparse disk that hold only zeros (content is unchanged).
    Shrink {
        /// The disk (its leaf is rewritten).
        disk: PathBuf,
    },
    /// Rewrite a sparse disk's grains in the order of the virtual disk.
    Defragment {
        /// The disk (its leaf is rewritten).
        disk: PathBuf,
    },
    /// Rename a disk and all its extent files.
    Rename {
        /// The disk.
        source: PathBuf,
        /// Its new name (must not exist).
        target: PathBuf,
    },
    /// Read or write the disk database (DDB) entries, keys without the `ddb.` prefix.
    Meta {
        #[command(subcommand)]
        action: MetaAction,
    },
    /// Back up a disk (or, full backups only, an NBD export) into a directory (data file +
    /// JSON manifest).
    Backup {
        #[command(subcommand)]
        kind: BackupKind,
    },
    /// Write a backup (and the earlier ones it builds on, newest first) into a new disk.
    Restore {
        /// The newest backup directory to restore (made by `vixdisk backup`).
        backup: PathBuf,
        /// The new disk (a local path).
        target: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Merge a redo log into its parent and delete it (refused for a protected or shared
    /// parent; an interrupted commit is finished by running it again).
    Commit {
        /// The child disk (redo log).
        child: PathBuf,
    },
    /// Print a disk's current change ID; --on/--off turn change tracking on or off (closed disk).
    Changeid {
        /// The disk.
        disk: PathBuf,
        /// Turn change tracking on (starts a new history).
        #[arg(long, conflicts_with = "off")]
        on: bool,
        /// Turn change tracking off (deletes the tracking data).
        #[arg(long)]
        off: bool,
    },
    /// Write the man pages and the bash, zsh and fish completions into DIR (used by the
    /// install: DIR/man/man1, DIR/bash-completion/completions, DIR/zsh/site-functions,
    /// DIR/fish/vendor_completions.d).
    #[command(hide = true)]
    GenerateDocs {
        /// The `share` directory to write into.
        dir: PathBuf,
    },
}

/// `--force-share` for the commands that only read.
#[derive(Debug, Args)]
pub struct ForceShare {
    /// Read the disk even while another process holds it open for writing (qemu-img's -U);
    /// takes no lock, so the answer may be stale or inconsistent. Not for an NBD export.
    #[arg(short = 'U', long)]
    pub force_share: bool,
}

/// Type and controller of a disk being created.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Disk type: monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat,
    /// vmfs, vmfsThin, streamOptimized (vmware-vdiskmanager's numbers 0-5 too), or raw where a
    /// plain image makes sense.
    #[arg(short = 't', long = "type", default_value = "monolithicSparse")]
    pub disk_type: DiskType,
    /// Adapter recorded in the DDB: ide, buslogic or lsilogic (default: the source's, else
    /// lsilogic).
    #[arg(short, long)]
    pub adapter: Option<Adapter>,
    /// `ddb.virtualHWVersion` (default: the source's, else 4).
    #[arg(long, value_name = "N")]
    pub hw_version: Option<u16>,
}

/// Type and controller of a new empty disk (`create`: there is no source to take them from).
#[derive(Debug, Args)]
pub struct NewFormatArgs {
    /// Disk type: monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat,
    /// vmfs, vmfsThin, streamOptimized (vmware-vdiskmanager's numbers 0-5 too).
    #[arg(short = 't', long = "type", default_value = "monolithicSparse")]
    pub disk_type: DiskType,
    /// Adapter recorded in the DDB: ide, buslogic or lsilogic.
    #[arg(short, long, default_value = "lsilogic")]
    pub adapter: Adapter,
    /// `ddb.virtualHWVersion`.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub hw_version: u16,
}

impl From<NewFormatArgs> for FormatArgs {
    fn from(f: NewFormatArgs) -> FormatArgs {
        FormatArgs {
            disk_type: f.disk_type,
            adapter: Some(f.adapter),
            hw_version: Some(f.hw_version),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceFormat {
    /// A VMDK disk and its parents.
    Vmdk,
    /// A plain image file (its size is the capacity, rounded up to a sector).
    Raw,
}

#[derive(Debug, Subcommand)]
pub enum MetaAction {
    /// Print every key and value visible through the chain (leaf first).
    List {
        /// The disk.
        disk: PathBuf,
    },
    /// Print one value (looked up from the leaf towards the base).
    Get {
        /// The disk.
        disk: PathBuf,
        /// The key, e.g. `uuid` or `adapterType`.
        key: String,
    },
    /// Set a key in the leaf's descriptor.
    Set {
        /// The disk.
        disk: PathBuf,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupKind {
    /// Copy every allocated block of the disk's chain (or of an NBD export) and record its
    /// change ID.
    Full {
        /// The disk, or an NBD export URI (nbd://, nbds://, nbd+unix://; read-only, no
        /// snapshot, no change ID recorded).
        disk: PathBuf,
        /// The backup directory (created; must not exist or be empty).
        dir: PathBuf,
        #[command(flatten)]
        snapshot: SnapshotArg,
    },
    /// Copy the blocks changed since an earlier backup (of any kind) and record the change ID.
    Incremental {
        /// The disk (local: an NBD export has no change IDs).
        disk: PathBuf,
        /// The backup directory (created; must not exist or be empty).
        dir: PathBuf,
        /// The previous backup: the changes are relative to its change ID.
        #[arg(long)]
        base: PathBuf,
        #[command(flatten)]
        snapshot: SnapshotArg,
    },
    /// Copy the blocks changed since the last full backup and record the change ID.
    Differential {
        /// The disk (local: an NBD export has no change IDs).
        disk: PathBuf,
        /// The backup directory (created; must not exist or be empty).
        dir: PathBuf,
        /// The full backup (or any backup built on it: its full backup is used).
        #[arg(long)]
        base: PathBuf,
        #[command(flatten)]
        snapshot: SnapshotArg,
    },
}

/// The optional snapshot a backup takes first.
#[derive(Debug, Args)]
pub struct SnapshotArg {
    /// First freeze the disk under a new redo log CHILD (CreateChild): the disk's writer
    /// continues on CHILD while the frozen disk is backed up; `vixdisk commit CHILD` deletes
    /// the snapshot afterwards. Not for an NBD export.
    #[arg(long, value_name = "CHILD")]
    pub snapshot: Option<PathBuf>,
    /// Take the change id after the snapshot, from a new read-only open of the frozen disk
    /// (the seeds' order). Without it the id is taken just before CreateChild on the handle
    /// that creates it. Both name the frozen content.
    #[arg(long, requires = "snapshot")]
    pub id_after_snapshot: bool,
}
