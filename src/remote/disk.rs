//! A remote disk: one NBD export, a `DiskBackend`. Reads and writes are cut at the
//! server's request limit and pipelined; synchronous calls wait for their commands (bounded by
//! the timeout), asynchronous ones finish through the poller.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{Conn, ExportInfo, OpenRequest};
use super::extents::{
    Extent, ExtentCollector, STATE_DIRTY, STATE_HOLE, allocated_chunks, flagged_runs,
};
use super::ops::{Death, Op, completion};
use super::poller;
use super::settings::RemoteSettings;
use super::split::{MAX_STATUS_BYTES, max_request, pieces};
use super::sys::{ExtentSink, IoBuf};
use super::target::Target;
use crate::backend::{DiskBackend, Finish, Transport};
use crate::chain::DiskInfo;
use crate::chain::allocated::check_chunk_query;
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::geometry::{Adapter, Geometry};

/// The meta context of allocation status.
const ALLOCATION: &str = "base:allocation";
/// Prefix of qemu's dirty-bitmap contexts.
const DIRTY_BITMAP: &str = "qemu:dirty-bitmap:";

/// The meta context a change id names: `qemu:dirty-bitmap:NAME` as is, or a bare NAME.
pub fn bitmap_context(change_id: &str) -> String {
    if change_id.starts_with(DIRTY_BITMAP) {
        change_id.to_string()
    } else {
        format!("{DIRTY_BITMAP}{change_id}")
    }
}

/// An open NBD export.
pub struct NbdDisk {
    conn: Arc<Conn>,
    info: ExportInfo,
    writable: bool,
    max_request: u64,
    /// Writes sent so far, and how many of them a completed flush covers: Close on a dead
    /// connection must not report success while acknowledged writes may sit unflushed in the
    /// server's cache. Counted only when the server has a flush (else writes are durable once
    /// acknowledged).
    writes_sent: AtomicU64,
    writes_flushed: AtomicU64,
}

/// How an open wants the export.
pub struct NbdOpen<'a> {
    pub target: &'a Target,
    pub settings: &'a RemoteSettings,
    /// Open's path ("" = the URI's export, else the default export).
    pub path: &'a str,
    pub params_user: Option<&'a str>,
    pub read_only: bool,
    /// OpenEx's change id, when it names a dirty bitmap.
    pub change_id: Option<&'a str>,
}

impl NbdDisk {
    /// Connects to the export.
    pub fn open(o: &NbdOpen<'_>) -> Result<NbdDisk> {
        let export = o.target.export_for(o.path);
        let extra_contexts = o
            .change_id
            .filter(|id| id.trim() != "*")
            .map(bitmap_context)
            .into_iter()
            .collect();
        let (conn, info) = Conn::open(&OpenRequest {
            target: o.target,
            settings: o.settings,
            export: &export,
            params_user: o.params_user,
            extra_contexts,
        })?;
        let writable = !o.read_only && !info.read_only;
        let max_request = max_request(info.server_max_block);
        log::info(format!(
            "opened {} ({}, {} bytes, {}{}, requests up to {} KiB)",
            conn.state.name,
            if info.tls { "nbdssl" } else { "nbd" },
            info.size,
            if writable { "read-write" } else { "read-only" },
            if info.read_only && !o.read_only {
                " export"
            } else {
                ""
            },
            max_request / 1024
        ));
        if let Some(min) = info.server_min_block.filter(|&m| m > 512) {
            log::warn(format!(
                "{}: the server's minimum block size is {min} bytes; requests not aligned to \
                 it are refused",
                conn.state.name
            ));
        }
        if info.size % 512 != 0 {
            log::warn(format!(
                "{}: size {} is not a multiple of 512; the last {} bytes are not reachable",
                conn.state.name,
                info.size,
                info.size % 512
            ));
        }
        Ok(NbdDisk {
            conn,
            info,
            writable,
            max_request,
            writes_sent: AtomicU64::new(0),
            writes_flushed: AtomicU64::new(0),
        })
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.info.size / 512
    }

    /// The export's size in bytes as the server reports it (it may end in a partial sector,
    /// which sector reads cannot reach).
    pub fn size_bytes(&self) -> u64 {
        self.info.size
    }

    /// nbdssl or nbd.
    pub fn transport(&self) -> Transport {
        if self.info.tls {
            Transport::NbdSsl
        } else {
            Transport::Nbd
        }
    }

    /// What GetInfo reports: the export's size; geometry derived as for a local disk without
    /// an adapter entry; one link.
    pub fn info(&self) -> DiskInfo {
        let geometry = Geometry::for_capacity(self.capacity(), Adapter::Ide);
        DiskInfo {
            capacity: self.capacity(),
            geometry,
            bios_geometry: geometry,
            adapter: None,
            num_links: 1,
            parent_hint: None,
            uuid: None,
        }
    }

    /// Refuses writes on a read-only export or open.
    pub fn check_writable(&self) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        Err(Error::ReadOnly(if self.info.read_only {
            format!("{}: the server exports it read-only", self.conn.state.name)
        } else {
            format!("{}: opened read-only", self.conn.state.name)
        }))
    }

    /// Fails if the connection is dead (noticed by the poller, a refused command, or libnbd).
    fn alive(&self) -> Result<()> {
        self.conn.check_owner()?;
        self.conn.state.check_alive()?;
        if self.conn.is_finished() {
            let why = format!("{}: the connection is closed", self.conn.state.name);
            self.conn.state.mark_dead(Death::Lost(why));
            self.conn.state.check_alive()?;
        }
        Ok(())
    }

    /// Sends one read or write as pipelined commands; the op finishes when all did.
    fn submit(
        &self,
        write: bool,
        sector: u64,
        buf: &IoBuf,
        finish: Option<Finish>,
    ) -> Result<Arc<Op>> {
        self.alive()?;
        let offset = sector * 512;
        let parts: Vec<(u64, u64)> = pieces(offset, buf.len() as u64, self.max_request).collect();
        let op = Op::new(parts.len(), finish);
        let h = self.conn.handle();
        for (i, &(at, n)) in parts.iter().enumerate() {
            let done = completion(&op, &self.conn.state);
            let (within, n) = ((at - offset) as usize, n as usize);
            let sent = if write {
                h.pwrite(buf, within, n, at, done)
            } else {
                h.pread(buf, within, n, at, done)
            };
            if !sent {
                // The refused part reported when libnbd freed it; the rest never left.
                op.submitted(Some((self.refusal(), parts.len() - i - 1)));
                self.kick();
                return Ok(op);
            }
        }
        op.submitted(None);
        self.kick();
        Ok(op)
    }

    /// Why libnbd just refused to send a command on this thread: a dead connection, or a
    /// request this server's limits do not allow (misaligned for its minimum block size, too
    /// large), which leaves the connection healthy.
    fn refusal(&self) -> Error {
        let e = self.conn.handle().last_error();
        let (text, errno) = (e.text, e.errno);
        let name = &self.conn.state.name;
        log::warn(format!("{name}: request refused: {text}"));
        if self.conn.is_finished() {
            self.conn
                .state
                .mark_dead(Death::Lost(format!("{name}: {text}")));
        }
        if let Some(d) = self.conn.state.death() {
            return d.to_error();
        }
        match errno {
            libc::EINVAL | libc::ERANGE | libc::EOVERFLOW => {
                let hint = match self.info.server_min_block.filter(|&m| m > 512) {
                    Some(min) => format!(" (the export's minimum block size is {min} bytes)"),
                    None => String::new(),
                };
                Error::InvalidArg(format!(
                    "{name}: the server cannot take this request: {text}{hint}"
                ))
            }
            _ => Error::RemoteProtocol(format!("{name}: request refused: {text}")),
        }
    }

    /// Settles a one-command op after libnbd took it (`sent`) or refused it.
    fn sent_one(&self, op: &Op, sent: bool) {
        op.submitted((!sent).then(|| (self.refusal(), 0)));
    }

    /// Wakes the poller if libnbd now wants to write (a request did not go out whole).
    fn kick(&self) {
        if self.conn.wants_write() {
            poller::wake();
        }
    }

    /// Waits for a synchronous op. The poller kills a connection whose server stays silent
    /// past the timeout, which finishes the op; an op queued behind others may take longer
    /// while the server keeps answering. Past the timeout of silence and a grace (it should
    /// not happen) we kill it ourselves and still wait, since libnbd may write into the
    /// buffer until the command is retired.
    fn wait(&self, op: &Op) -> Result<()> {
        let state = &self.conn.state;
        let limit = state.timeout + Duration::from_secs(2);
        loop {
            if let Some(r) = op.wait(limit) {
                return r;
            }
            if state.silent_for(Instant::now()) > limit {
                break;
            }
        }
        self.conn.kill(Death::Timeout(format!(
            "{}: no answer within {} s",
            state.name,
            state.timeout.as_secs()
        )));
        loop {
            if let Some(r) = op.wait(Duration::from_secs(10)) {
                return r;
            }
            log::warn(format!("{}: waiting for a killed request", state.name));
        }
    }

    /// Reads whole sectors at `sector` into `buf`.
    pub fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        IoBuf::lend_mut(buf, |buf| {
            let op = self.submit(false, sector, buf, None)?;
            self.wait(&op)
        })
    }

    /// Counts a write about to be sent (see `writes_sent`).
    fn note_write(&self) {
        if self.info.can_flush {
            self.writes_sent.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether writes were sent since the last completed flush.
    fn has_unflushed_writes(&self) -> bool {
        self.writes_sent.load(Ordering::Acquire) > self.writes_flushed.load(Ordering::Acquire)
    }

    /// Writes whole sectors at `sector`.
    pub fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.note_write();
        IoBuf::lend(data, |buf| {
            let op = self.submit(true, sector, buf, None)?;
            self.wait(&op)
        })
    }

    /// Starts a read into `buf`; `finish` runs on the callback thread.
    pub fn read_async(&self, sector: u64, buf: IoBuf, finish: Finish) -> Result<()> {
        self.submit(false, sector, &buf, Some(finish)).map(drop)
    }

    /// Starts a write from `buf`; `finish` runs on the callback thread.
    pub fn write_async(&self, sector: u64, buf: IoBuf, finish: Finish) -> Result<()> {
        self.check_writable()?;
        self.note_write();
        self.submit(true, sector, &buf, Some(finish)).map(drop)
    }

    /// Makes completed writes durable on the server (NBD_CMD_FLUSH). Nothing to do on a
    /// read-only handle or a server without flush support.
    pub fn flush(&self) -> Result<()> {
        self.alive()?;
        if !self.writable || !self.info.can_flush {
            return Ok(());
        }
        // Writes sent before the flush is: those the server must make durable.
        let covered = self.writes_sent.load(Ordering::Acquire);
        let op = Op::new(1, None);
        let sent = self.conn.handle().flush(completion(&op, &self.conn.state));
        self.sent_one(&op, sent);
        self.kick();
        self.wait(&op)?;
        self.writes_flushed.fetch_max(covered, Ordering::AcqRel);
        Ok(())
    }

    /// Flushes (if writable and alive) and ends the session. A dead connection closes
    /// quietly (its failure was reported by the request that met it) unless writes since the
    /// last flush may be lost with it: then Close fails with the connection's error. In a
    /// forked child the parent's session is left alone.
    pub fn close(&self) -> Result<()> {
        if self.conn.inherited() {
            log::verbose(format!(
                "{}: closing a handle inherited through fork; the session is the parent's",
                self.conn.state.name
            ));
            return Ok(());
        }
        let result = match self.alive() {
            Err(e) if self.has_unflushed_writes() => {
                log::warn(format!(
                    "{}: writes since the last flush were not flushed before the connection died",
                    self.conn.state.name
                ));
                Err(e)
            }
            Err(e) => {
                log::verbose(format!("closing a dead NBD disk: {e}"));
                Ok(())
            }
            Ok(()) => self.flush(),
        };
        self.conn.disconnect();
        result
    }

    /// Block-status extents of one context over `[start, end)` bytes.
    fn block_status(&self, context: &str, start: u64, end: u64) -> Result<Vec<Extent>> {
        let mut collector = ExtentCollector::new(start, end);
        while let Some(at) = collector.next() {
            self.alive()?;
            let len = (end - at).min(MAX_STATUS_BYTES);
            let sink = Arc::new(Replies {
                context: CString::new(context).unwrap_or_default(),
                replies: Mutex::new(Vec::new()),
            });
            let op = Op::new(1, None);
            let sent = self.conn.handle().block_status(
                len,
                at,
                Arc::clone(&sink),
                completion(&op, &self.conn.state),
            );
            self.sent_one(&op, sent);
            self.kick();
            self.wait(&op)?;
            let replies =
                std::mem::take(&mut *sink.replies.lock().unwrap_or_else(|e| e.into_inner()));
            if replies.is_empty() {
                return Err(Error::RemoteProtocol(format!(
                    "{}: no {context} extents at byte {at}",
                    self.conn.state.name
                )));
            }
            for (offset, entries) in replies {
                collector.take_reply(offset, &entries)?;
            }
        }
        Ok(collector.into_extents())
    }

    fn has_context(&self, ctx: &str) -> bool {
        self.info.contexts.iter().any(|c| c == ctx)
    }

    /// QueryAllocatedBlocks: VDDK's argument rules, then `base:allocation` rounded out to
    /// chunks. A server without allocation status reports everything allocated.
    pub fn allocated_chunks(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<(u64, u64)>> {
        let end = check_chunk_query(start, count, chunk, self.capacity())?;
        if start == end {
            return Ok(Vec::new());
        }
        if !self.has_context(ALLOCATION) {
            log::verbose(format!(
                "{}: the server reports no allocation status; every block counts as allocated",
                self.conn.state.name
            ));
            return Ok(vec![(start, end - start)]);
        }
        let extents = self.block_status(ALLOCATION, start * 512, end * 512)?;
        Ok(allocated_chunks(&extents, start, end, chunk))
    }

    /// QueryChangedAreas over `[start, end)` sectors: `"*"` gives the allocated areas; any
    /// other id names a dirty bitmap the server exports, whose dirty areas are returned.
    pub fn changed_areas(&self, since: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>> {
        let end = crate::chain::tracking::query_end(start, end, self.capacity())?;
        if since.trim() == "*" {
            if !self.has_context(ALLOCATION) {
                return Ok(vec![(start, end - start)]);
            }
            let extents = self.block_status(ALLOCATION, start * 512, end * 512)?;
            return Ok(flagged_runs(&extents, start, end, |f| f & STATE_HOLE == 0));
        }
        let context = bitmap_context(since.trim());
        if !self.has_context(&context) {
            return Err(Error::ChangeIdUnknown(format!(
                "{}: the server exports no {context} (qemu-nbd -B NAME exports a bitmap)",
                self.conn.state.name
            )));
        }
        let extents = self.block_status(&context, start * 512, end * 512)?;
        Ok(flagged_runs(&extents, start, end, |f| f & STATE_DIRTY != 0))
    }
}

impl Drop for NbdDisk {
    fn drop(&mut self) {
        self.conn.disconnect();
    }
}

/// One block-status reply chunk: its first byte and its (length, flags) pairs.
type Reply = (u64, Vec<(u32, u32)>);

/// Where one block-status command's extents for one context land.
struct Replies {
    context: CString,
    /// Reply chunks in arrival order.
    replies: Mutex<Vec<Reply>>,
}

impl ExtentSink for Replies {
    fn extents(&self, context: &CStr, offset: u64, entries: &[u32]) {
        if context != self.context.as_c_str() {
            return;
        }
        let pairs = entries.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        self.replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((offset, pairs));
    }
}

impl DiskBackend for NbdDisk {
    fn capacity(&self) -> u64 {
        NbdDisk::capacity(self)
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        NbdDisk::read(self, sector, buf)
    }

    fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        NbdDisk::write(self, sector, data)
    }

    fn flush(&self) -> Result<()> {
        NbdDisk::flush(self)
    }

    fn close(&self) -> Result<()> {
        NbdDisk::close(self)
    }

    fn info(&self) -> DiskInfo {
        NbdDisk::info(self)
    }

    fn allocated_chunks(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<(u64, u64)>> {
        NbdDisk::allocated_chunks(self, start, count, chunk)
    }

    fn changed_areas(&self, since: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>> {
        NbdDisk::changed_areas(self, since, start, end)
    }

    fn transport(&self) -> Transport {
        NbdDisk::transport(self)
    }

    fn read_async(self: Arc<Self>, sector: u64, buf: IoBuf, done: Finish) -> Result<()> {
        NbdDisk::read_async(&self, sector, buf, done)
    }

    fn write_async(self: Arc<Self>, sector: u64, buf: IoBuf, done: Finish) -> Result<()> {
        NbdDisk::write_async(&self, sector, buf, done)
    }
}
