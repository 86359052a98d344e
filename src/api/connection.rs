//! `Connection`: where disks are reached (this host's files, or an NBD server) and the calls
//! that work on disks by name rather than on an open disk.

use std::path::Path;
use std::sync::Arc;

use super::disk::Disk;
use super::settings::Settings;
use super::staged::{self, StagedDisk};
use super::types::{CreateOptions, OpenOptions};
use crate::chain;
use crate::error::{Error, Result};
use crate::log;
use crate::remote::disk::{NbdDisk, NbdOpen};
use crate::remote::target::{Target, TlsPolicy, parse_target};
use crate::vmdk::check::{CheckReport, Outcome, check_disk, check_disk_force_share};
use crate::vmdk::create::DiskKind;

/// Where disks live: [`Connection::local`] for VMDK files on this host, [`Connection::nbd`]
/// for the exports of an NBD server. Calls that need files (create, clone, grow, rename, …)
/// refuse a remote connection with `ErrorKind::NotSupported`.
///
/// ```
/// let conn = vixDiskLib::Connection::local();
/// assert!(!conn.is_remote());
/// ```
#[derive(Debug)]
pub struct Connection {
    remote: Option<Remote>,
}

/// An NBD server: where opens connect, and a user name that may pick the PSK identity.
#[derive(Debug)]
struct Remote {
    target: Target,
    user: Option<String>,
}

impl Connection {
    /// Disks on this host.
    ///
    /// ```
    /// let conn = vixDiskLib::Connection::local();
    /// # let _ = conn;
    /// ```
    pub fn local() -> Connection {
        Connection { remote: None }
    }

    /// An NBD server, named by an `nbd://`, `nbds://` or `nbd+unix://` URI (or a host name):
    /// [`Connection::open`] then opens its exports. libnbd is loaded now; a machine without it
    /// gets an error here.
    ///
    /// ```
    /// // A URI that names no server is refused before anything is loaded.
    /// let err = vixDiskLib::Connection::nbd("").unwrap_err();
    /// assert_eq!(err.kind(), vixDiskLib::ErrorKind::InvalidArg);
    /// ```
    pub fn nbd(uri: &str) -> Result<Connection> {
        Connection::nbd_server(uri, 0, None, None)
    }

    /// An NBD server named the way VixDiskLib's connect params name it: `server` an `nbd://`,
    /// `nbds://`, `nbd+unix://` or `nbds+unix://` URI or a host name, `port` (0: the URI's or
    /// 10809), `transport_modes` a colon-separated list of `nbd` and `nbdssl` (None: both,
    /// TLS first if [`Settings`] give credentials), and `user` a name that picks the PSK
    /// identity when the PSK file has a key for it. libnbd is loaded now.
    ///
    /// ```
    /// // Transports that cannot reach an NBD server are refused before anything is loaded.
    /// let err = vixDiskLib::Connection::nbd_server("nbd://backup", 0, Some("san:hotadd"), None)
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), vixDiskLib::ErrorKind::NotSupported);
    /// ```
    pub fn nbd_server(
        server: &str,
        port: u32,
        transport_modes: Option<&str>,
        user: Option<&str>,
    ) -> Result<Connection> {
        let settings = Settings::current();
        let target = parse_target(
            server,
            port,
            transport_modes,
            settings.nbd().has_tls_credentials(),
        )?;
        // The first NBD connection loads libnbd: a machine without it is told now.
        crate::remote::sys::ensure_loaded()?;
        log::info(format!(
            "connection to NBD server {} ({})",
            target.describe(),
            match target.tls {
                TlsPolicy::Off => "nbd",
                TlsPolicy::Allow => "nbdssl, else nbd",
                TlsPolicy::Require => "nbdssl",
            },
        ));
        Ok(Connection {
            remote: Some(Remote {
                target,
                user: user.map(str::to_owned),
            }),
        })
    }

    /// The NBD server, for messages (`"nbd://host:port"`; never key material); None for a
    /// local connection.
    ///
    /// ```
    /// assert_eq!(vixDiskLib::Connection::local().server(), None);
    /// ```
    pub fn server(&self) -> Option<String> {
        self.remote.as_ref().map(|r| r.target.describe())
    }

    /// True for an NBD connection.
    ///
    /// ```
    /// assert!(!vixDiskLib::Connection::local().is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Ok for a local connection; `ErrorKind::NotSupported` naming `call` and the server for
    /// an NBD one (calls that name files cannot reach a server's exports).
    ///
    /// ```
    /// vixDiskLib::Connection::local().require_local("Grow")?;
    /// # Ok::<(), vixDiskLib::Error>(())
    /// ```
    pub fn require_local(&self, call: &str) -> Result<()> {
        if let Some(r) = &self.remote {
            return Err(Error::NotSupported(format!(
                "{call} works on local disks only; the connection is to the NBD server {}",
                r.target.describe()
            )));
        }
        Ok(())
    }

    /// Opens the disk at `path` (with its parents unless `single_link`); on an NBD connection,
    /// `path` names the export ("" = the URI's export).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, OpenOptions};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicFlat, 2048), &mut |_| {})?;
    /// let disk = conn.open(&path, &OpenOptions { read_only: true, ..Default::default() })?;
    /// assert_eq!(disk.capacity(), 2048);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Disk> {
        let path = path.as_ref();
        let Some(remote) = &self.remote else {
            return Ok(Disk::local(Arc::new(open_local(path, opts)?)));
        };
        if opts.nonpersistent && !opts.read_only {
            return Err(Error::NotSupported(
                "nonpersistent opens work on local disks only, not on NBD exports".into(),
            ));
        }
        let export = path
            .to_str()
            .ok_or_else(|| Error::InvalidArg(format!("export name {path:?} is not UTF-8")))?;
        let disk = NbdDisk::open(&NbdOpen {
            target: &remote.target,
            settings: Settings::current().nbd(),
            path: export,
            params_user: remote.user.as_deref(),
            read_only: opts.read_only,
            change_id: opts.change_id.as_ref().map(|c| c.as_str()),
        })?;
        Ok(Disk::remote(Arc::new(disk)))
    }

    /// Creates a new disk at `path` (which must not exist). `progress(percent)` rises to 100.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("new.vmdk");
    /// let mut last = 0;
    /// Connection::local().create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048),
    ///     &mut |p| last = p)?;
    /// assert!(path.exists());
    /// assert_eq!(last, 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(
        &self,
        path: impl AsRef<Path>,
        opts: &CreateOptions,
        progress: &mut dyn FnMut(u32),
    ) -> Result<()> {
        self.require_local("Create")?;
        crate::vmdk::create::create(path.as_ref(), &opts.spec(), progress)
    }

    /// Creates a new disk at `path` that appears there only when published: fill it through
    /// [`StagedDisk::fill_path`] first (see [`StagedDisk`]).
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("n.vmdk");
    /// let staged = Connection::local()
    ///     .create_staged(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048))?;
    /// assert!(staged.fill_path().exists() && !path.exists());
    /// staged.discard();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_staged(
        &self,
        path: impl AsRef<Path>,
        opts: &CreateOptions,
    ) -> Result<StagedDisk> {
        self.require_local("Create")?;
        staged::create_staged(path.as_ref(), opts)
    }

    /// Writes a new streamOptimized disk of `opts.capacity` sectors at `path` in one pass:
    /// `read_grain(index, buf)` fills one 64 KiB grain (shorter at a short end) and returns
    /// false to leave it out; it is called from several threads. The disk appears at `path`
    /// only when complete; on any error (`read_grain`'s too) nothing is left there.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("s.vmdk");
    /// let conn = Connection::local();
    /// let opts = CreateOptions::new(DiskKind::StreamOptimized, 1024);
    /// conn.create_stream(&path, &opts, &|g, buf| { buf.fill(g as u8 + 1); Ok(g == 2) },
    ///     &mut |_| {})?;
    /// let mut back = [0; 512];
    /// conn.open(&path, &Default::default())?.read(256, &mut back)?;
    /// assert_eq!(back, [3; 512]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_stream(
        &self,
        path: impl AsRef<Path>,
        opts: &CreateOptions,
        read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
        progress: &mut dyn FnMut(u32),
    ) -> Result<()> {
        self.require_local("Create")?;
        staged::create_stream(path.as_ref(), opts, read_grain, progress)
    }

    /// Copies the flattened content of the disk at `src` into a new disk at `dst` of the
    /// layout in `opts` (its capacity is the source's). `overwrite` replaces an existing `dst`.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let (src, dst) = (dir.path().join("a.vmdk"), dir.path().join("b.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&src, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// conn.clone_disk(&src, &dst, &CreateOptions::new(DiskKind::StreamOptimized, 0), false,
    ///     &mut |_| {})?;
    /// assert_eq!(conn.open(&dst, &Default::default())?.capacity(), 2048);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clone_disk(
        &self,
        src: impl AsRef<Path>,
        dst: impl AsRef<Path>,
        opts: &CreateOptions,
        overwrite: bool,
        progress: &mut dyn FnMut(u32),
    ) -> Result<()> {
        self.require_local("Clone")?;
        let source = self.open(
            src,
            &OpenOptions {
                read_only: true,
                ..Default::default()
            },
        )?;
        source.clone_to(dst, opts, overwrite, progress, &|| false)
    }

    /// Grows the closed base disk at `path` to `capacity` sectors; `update_geometry`
    /// recomputes its geometry. Its change-tracking history grows with it.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("g.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// conn.grow(&path, 8192, true, &mut |_| {})?;
    /// assert_eq!(conn.open(&path, &Default::default())?.capacity(), 8192);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn grow(
        &self,
        path: impl AsRef<Path>,
        capacity: u64,
        update_geometry: bool,
        progress: &mut dyn FnMut(u32),
    ) -> Result<()> {
        self.require_local("Grow")?;
        let path = path.as_ref();
        progress(0);
        crate::vmdk::grow::grow(path, capacity, update_geometry)?;
        chain::tracking::grow_history(path)?;
        progress(100);
        Ok(())
    }

    /// Renames the closed disk at `src` to `dst`, extent files included.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let (a, b) = (dir.path().join("a.vmdk"), dir.path().join("b.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&a, &CreateOptions::new(DiskKind::SplitSparse, 2048), &mut |_| {})?;
    /// conn.rename(&a, &b)?;
    /// assert!(!a.exists() && b.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rename(&self, src: impl AsRef<Path>, dst: impl AsRef<Path>) -> Result<()> {
        self.require_local("Rename")?;
        chain::files::rename(src.as_ref(), dst.as_ref())
    }

    /// Deletes every file of the closed disk link at `path`.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("u.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicFlat, 2048), &mut |_| {})?;
    /// conn.unlink(&path)?;
    /// assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlink(&self, path: impl AsRef<Path>) -> Result<()> {
        self.require_local("Unlink")?;
        chain::files::unlink(path.as_ref())
    }

    /// Checks the metadata of the closed disk link at `path`; with `repair`, fixes what can be
    /// fixed without losing data. Ok: clean or fully repaired; otherwise the error's kind says
    /// `DiskNeedsRepair`, `DiskCantRepair` or `InvalidDisk`. Every problem is logged.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// conn.check(&path, false)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, path: impl AsRef<Path>, repair: bool) -> Result<()> {
        self.require_local("CheckRepair")?;
        let path = path.as_ref();
        let report = check_disk(path, repair)?;
        let summary = || format!("{}: {} problem(s)", path.display(), report.problems.len());
        match report.outcome() {
            Outcome::Clean | Outcome::Repaired => Ok(()),
            Outcome::NeedsRepair => Err(Error::Corrupt(summary())),
            Outcome::CantRepair => Err(Error::Unrepairable(summary())),
            Outcome::Invalid => Err(Error::InvalidDisk(summary())),
        }
    }

    /// Checks the disk link at `path` like [`Connection::check`] but returns the whole
    /// report (every problem, every repair, what a stream salvage keeps) whatever the verdict.
    /// With `force_share` the link is read without its lock (never repaired): a disk another
    /// process writes can be checked, with findings that may be that writer's half-done work.
    ///
    /// ```
    /// # use vixDiskLib::{CheckOutcome, Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("c.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let report = conn.check_report(&path, false, false)?;
    /// assert_eq!(report.outcome(), CheckOutcome::Clean);
    /// assert!(report.problems.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_report(
        &self,
        path: impl AsRef<Path>,
        repair: bool,
        force_share: bool,
    ) -> Result<CheckReport> {
        self.require_local("CheckRepair")?;
        if force_share {
            check_disk_force_share(path.as_ref())
        } else {
            check_disk(path.as_ref(), repair)
        }
    }

    /// Merges the content of the closed redo log at `child` into its parent.
    /// `progress(percent)` rises to 100.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let (base, redo) = (dir.path().join("base.vmdk"), dir.path().join("redo.vmdk"));
    /// let conn = Connection::local();
    /// conn.create(&base, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let disk = conn.open(&base, &Default::default())?;
    /// disk.create_child(&redo, DiskKind::MonolithicSparse, &mut |_| {})?;
    /// disk.close()?;
    /// let child = conn.open(&redo, &Default::default())?;
    /// child.write(0, &[7; 512])?;
    /// child.close()?;
    /// conn.commit(&redo, &mut |_| {})?;
    /// let mut buf = [0; 512];
    /// conn.open(&base, &Default::default())?.read(0, &mut buf)?;
    /// assert_eq!(buf, [7; 512]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(&self, child: impl AsRef<Path>, progress: &mut dyn FnMut(u32)) -> Result<()> {
        self.require_local("Commit")?;
        chain::commit::commit(child.as_ref(), progress)
    }

    /// Turns change tracking of the closed disk link at `path` on or off.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("t.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// conn.set_change_tracking(&path, true)?;
    /// let id = conn.open(&path, &Default::default())?.change_id()?;
    /// assert!(!id.as_str().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_change_tracking(&self, path: impl AsRef<Path>, enable: bool) -> Result<()> {
        self.require_local("ChangeTracking")?;
        chain::tracking::set_change_tracking(path.as_ref(), enable)
    }

    /// The bytes a clone of the disk at `src` into `kind` needs at most.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("s.vmdk");
    /// let conn = Connection::local();
    /// conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// assert!(conn.space_needed_for_clone(&path, DiskKind::MonolithicFlat)? >= 2048 * 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn space_needed_for_clone(&self, src: impl AsRef<Path>, kind: DiskKind) -> Result<u64> {
        self.require_local("SpaceNeededForClone")?;
        self.open(
            src,
            &OpenOptions {
                read_only: true,
                ..Default::default()
            },
        )?
        .space_needed_for_clone(kind)
    }
}

/// Opens a local chain the way `opts` asks, and logs how.
fn open_local(path: &Path, opts: &OpenOptions) -> Result<chain::Disk> {
    let read_only = opts.read_only || opts.force_share;
    let nonpersistent = opts.nonpersistent && !read_only;
    let disk = if opts.force_share {
        chain::Disk::open_force_share(path, opts.single_link)?
    } else if nonpersistent {
        let scratch = Settings::current().tmp_directory();
        chain::Disk::open_nonpersistent(path, opts.single_link, &scratch)?
    } else {
        chain::Disk::open(
            path,
            chain::OpenOptions {
                read_only,
                single_link: opts.single_link,
            },
        )?
    };
    log::info(format!(
        "opened {} ({} link(s), {}, {} sectors)",
        path.display(),
        disk.num_links(),
        match (read_only, nonpersistent) {
            (true, _) if opts.force_share => "read-only, unlocked",
            (true, _) => "read-only",
            (false, true) => "nonpersistent",
            (false, false) => "read-write",
        },
        disk.capacity()
    ));
    Ok(disk)
}
