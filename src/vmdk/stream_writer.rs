//! Writing streamOptimized disks in VMware's canonical layout (grain directory at the end).
//!
//! File layout produced here, in file order (every item starts on a sector boundary):
//!
//! ```text
//! sector 0          header: version 3, flags 0x30001, compressAlgorithm 1, gdOffset = GD_AT_END
//! sector 1          embedded descriptor (20 sectors unless it needs more), zero padded
//! sector overHead   grain markers in ascending LBA order: u64 lba, u32 size, zlib data, padding
//!                   after the grains of each 32 MiB span: GT marker (type 1) + GT (4 sectors),
//!                   left out entirely when the span has no grain (its GD entry stays 0)
//! ...               GD marker (type 2) + GD
//! ...               footer marker (type 3) + copy of the header with the real gdOffset
//! last sector       EOS marker (all zero); the file ends here
//! ```
//!
//! Grain-table and directory entries hold the sector of the grain marker and of the table
//! itself (the sector after its marker). Unallocated and all-zero source grains are not
//! written. Compression runs on worker threads; the calling thread writes the results in order.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use flate2::{Compress, Compression};

use super::atomic::{NewDisk, create_new_file, prepare_new};
use super::descriptor::{Access, Descriptor, ExtentKind, ExtentLine, NO_PARENT_CID};
use super::fileio::sync_data;
use super::header::{
    EMBEDDED_DESCRIPTOR_SECTORS, FLAG_COMPRESSED, FLAG_MARKERS, FLAG_VALID_NEWLINE, GD_AT_END,
    HEADER_SIZE, SparseHeader,
};
use super::markers::{
    MARKER_FOOTER, MARKER_GD, MARKER_GT, ZLIB_LEVEL, deflate_into, le_bytes, write_marker,
};
use crate::error::{Error, Result};

const SECTOR: usize = 512;
/// Sectors per grain (64 KiB grains, as every VMware stream uses).
const GRAIN_SECTORS: u64 = 128;
/// Bytes per grain.
const GRAIN_BYTES: usize = GRAIN_SECTORS as usize * SECTOR;
/// Entries per grain table.
const GTES_PER_GT: u64 = 512;
/// Sectors of one grain table.
const GT_SECTORS: u64 = GTES_PER_GT * 4 / SECTOR as u64;
/// Grains per unit of work handed to a compression thread (2 MiB of source). Divides
/// `GTES_PER_GT`, so a grain table never straddles two work units.
const CHUNK_GRAINS: u64 = 32;
/// Work units a thread may run ahead of the writer (bounds memory to a few MiB per thread).
const WINDOW_PER_THREAD: u64 = 4;
/// Bytes before the compressed data in a grain marker (u64 lba, u32 size).
const GRAIN_MARKER_HEAD: usize = 12;

/// Largest capacity the header reader accepts (32-bit sector numbers, 64 KiB grains).
const MAX_CAPACITY: u64 = (1u64 << 32) * 64;

/// Writes a new streamOptimized disk at `path` (which must not exist).
///
/// `read_grain(grain_index, buf)` fills `buf` (one grain, 65536 bytes, or fewer for the final
/// short grain when the capacity is not a multiple of 128 sectors) with the source content and
/// returns `Ok(false)` if the grain is unallocated in the source, which is then skipped. It is
/// called from several threads at once. All-zero grains are skipped too.
///
/// `descriptor` supplies the CID, DDB and extra lines; its `createType`, extent line and
/// parent fields are set here (a stream has one `RW <capacity> SPARSE "<file name>"` extent and
/// no parent). `threads` compression threads are used; 0 means one per available core.
/// `progress(percent)` is called with increasing values from 0 and ends with 100 once the file
/// is durable under its name. The file is written under a temporary name and renamed at the
/// end (see `atomic`): on failure or a crash there is no file at `path`.
pub fn write_stream_optimized(
    path: &Path,
    capacity_sectors: u64,
    descriptor: Descriptor,
    read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
    threads: usize,
    progress: &mut dyn FnMut(u32),
) -> Result<()> {
    let tmp = prepare_new(path)?;
    write_stream_optimized_at(
        path,
        &tmp,
        capacity_sectors,
        descriptor,
        read_grain,
        threads,
        progress,
    )?;
    NewDisk::single(tmp, path).publish()?;
    progress(100);
    Ok(())
}

/// `write_stream_optimized` for disk `path` into the new file `at` (its temporary name),
/// synced but not published. On failure the partly written file is removed.
pub(crate) fn write_stream_optimized_at(
    path: &Path,
    at: &Path,
    capacity_sectors: u64,
    mut descriptor: Descriptor,
    read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
    threads: usize,
    progress: &mut dyn FnMut(u32),
) -> Result<()> {
    if capacity_sectors == 0 {
        return Err(Error::InvalidArg(
            "capacity must be at least one sector".into(),
        ));
    }
    if capacity_sectors > MAX_CAPACITY {
        return Err(Error::InvalidArg(format!(
            "capacity {capacity_sectors} sectors is larger than a sparse extent can address"
        )));
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArg(format!("{}: no file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    descriptor.create_type = "streamOptimized".into();
    descriptor.parent_cid = NO_PARENT_CID;
    descriptor.parent_hint = None;
    descriptor.extents = vec![ExtentLine {
        access: Access::ReadWrite,
        sectors: capacity_sectors,
        kind: ExtentKind::Sparse,
        file: Some(file_name),
        offset: 0,
    }];
    let text = descriptor.render();
    let descriptor_sectors = (text.len() as u64)
        .div_ceil(SECTOR as u64)
        .max(EMBEDDED_DESCRIPTOR_SECTORS);
    let header = SparseHeader {
        version: 3,
        flags: FLAG_VALID_NEWLINE | FLAG_COMPRESSED | FLAG_MARKERS,
        capacity: capacity_sectors,
        grain_sectors: GRAIN_SECTORS,
        descriptor_offset: 1,
        descriptor_size: descriptor_sectors,
        gtes_per_gt: GTES_PER_GT as u32,
        rgd_offset: 0,
        gd_offset: GD_AT_END,
        overhead: (1 + descriptor_sectors).next_multiple_of(GRAIN_SECTORS),
        unclean_shutdown: false,
        compress_algorithm: 1,
    };
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };

    let file = create_new_file(at)?;
    progress(0);
    // A panicking `read_grain` reaches the caller after the threads are joined; the partial
    // file is removed first, as for errors.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        write_all(&file, at, &header, &text, read_grain, threads, progress)
    }));
    drop(file);
    let result = match result {
        Ok(r) => r,
        Err(payload) => {
            let _ = super::fileio::remove_file(at);
            panic::resume_unwind(payload);
        }
    };
    if result.is_err() {
        let _ = super::fileio::remove_file(at);
    }
    result
}

/// The compressed output of one work unit: grain markers back to back.
struct Chunk {
    /// Grain markers, each padded to a sector.
    data: Vec<u8>,
    /// (grain index, sector of its marker relative to the start of `data`).
    grains: Vec<(u64, u32)>,
}

/// State shared by the writer and the compression threads.
struct Shared {
    /// Index of the next work unit a thread may claim.
    next: AtomicU64,
    /// Writer progress and the stop flag.
    state: Mutex<Flow>,
    /// Signalled when `state` changes.
    changed: Condvar,
    /// Output buffers handed back by the writer for reuse.
    pool: Mutex<Vec<Vec<u8>>>,
}

struct Flow {
    /// Work units the writer has written.
    written: u64,
    /// Set when the writer gave up or a thread panicked: everybody stops.
    stop: bool,
}

impl Shared {
    fn stop(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.stop = true;
        self.changed.notify_all();
    }
}

/// Stops the other threads if the compression thread holding it unwinds from a panic, so the
/// writer does not wait forever for a unit that will never come.
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// Geometry of the grain space.
#[derive(Clone, Copy)]
struct Grains {
    capacity: u64,
    count: u64,
}

impl Grains {
    /// Bytes of grain `g` that lie inside the disk.
    fn len(&self, g: u64) -> usize {
        let start = g * GRAIN_SECTORS;
        ((self.capacity - start).min(GRAIN_SECTORS) as usize) * SECTOR
    }
}

fn write_all(
    file: &File,
    path: &Path,
    header: &SparseHeader,
    descriptor: &str,
    read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
    threads: usize,
    progress: &mut dyn FnMut(u32),
) -> Result<()> {
    let io_err = |e: io::Error| Error::io(path, e);
    let grains = Grains {
        capacity: header.capacity,
        count: header.capacity.div_ceil(GRAIN_SECTORS),
    };
    let chunks = grains.count.div_ceil(CHUNK_GRAINS);
    let threads = threads.clamp(1, chunks.try_into().unwrap_or(usize::MAX));
    let window = threads as u64 * WINDOW_PER_THREAD;

    let mut out = BufWriter::with_capacity(1 << 20, super::fileio::SeqWriter::new(file, path, 0));
    // Header, descriptor, zero padding up to overHead.
    let mut head = vec![0u8; header.overhead as usize * SECTOR];
    head[..HEADER_SIZE].copy_from_slice(&header.encode());
    let d_start = header.descriptor_offset as usize * SECTOR;
    head[d_start..d_start + descriptor.len()].copy_from_slice(descriptor.as_bytes());
    out.write_all(&head).map_err(io_err)?;
    let mut pos = header.overhead;

    let mut gd = vec![0u32; header.gd_entries() as usize];
    let mut gt = vec![0u32; GTES_PER_GT as usize];
    let mut gt_used = false;

    let shared = Shared {
        next: AtomicU64::new(0),
        state: Mutex::new(Flow {
            written: 0,
            stop: false,
        }),
        changed: Condvar::new(),
        pool: Mutex::new(Vec::new()),
    };

    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<(u64, Result<Chunk>)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let shared = &shared;
            scope.spawn(move || {
                compress_worker(shared, path, grains, chunks, window, read_grain, tx)
            });
        }
        drop(tx);

        let result = (|| -> Result<()> {
            let mut pending: HashMap<u64, Chunk> = HashMap::new();
            let mut last_pct = 0;
            for k in 0..chunks {
                let chunk = loop {
                    if let Some(c) = pending.remove(&k) {
                        break c;
                    }
                    match rx.recv() {
                        Ok((i, Ok(c))) => {
                            pending.insert(i, c);
                        }
                        Ok((_, Err(e))) => return Err(e),
                        Err(_) => {
                            return Err(Error::io(
                                path,
                                io::Error::other("compression threads stopped early"),
                            ));
                        }
                    }
                };
                let first = k * CHUNK_GRAINS;
                for &(g, rel) in &chunk.grains {
                    gt[(g % GTES_PER_GT) as usize] = sector32(path, pos + u64::from(rel))?;
                    gt_used = true;
                }
                out.write_all(&chunk.data).map_err(io_err)?;
                pos += (chunk.data.len() / SECTOR) as u64;
                recycle(&shared, chunk.data);
                {
                    let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                    s.written = k + 1;
                    shared.changed.notify_all();
                }

                let end = (first + CHUNK_GRAINS).min(grains.count);
                let table_done = end.is_multiple_of(GTES_PER_GT) || end == grains.count;
                if table_done && gt_used {
                    write_marker(&mut out, GT_SECTORS, MARKER_GT).map_err(io_err)?;
                    gd[((end - 1) / GTES_PER_GT) as usize] = sector32(path, pos + 1)?;
                    out.write_all(&le_bytes(&gt)).map_err(io_err)?;
                    pos += 1 + GT_SECTORS;
                    gt.fill(0);
                    gt_used = false;
                }
                let pct = (end * 99 / grains.count) as u32;
                if pct > last_pct {
                    last_pct = pct;
                    progress(pct);
                }
            }
            Ok(())
        })();
        if result.is_err() {
            shared.stop();
        }
        result
    })?;

    // Grain directory, footer, end-of-stream.
    let gd_sectors = header.gd_sectors();
    write_marker(&mut out, gd_sectors, MARKER_GD).map_err(io_err)?;
    let gd_offset = pos + 1;
    sector32(path, gd_offset + gd_sectors)?;
    let mut gd_bytes = le_bytes(&gd);
    gd_bytes.resize(gd_sectors as usize * SECTOR, 0);
    out.write_all(&gd_bytes).map_err(io_err)?;
    write_marker(&mut out, 1, MARKER_FOOTER).map_err(io_err)?;
    let footer = SparseHeader {
        gd_offset,
        ..header.clone()
    };
    out.write_all(&footer.encode()).map_err(io_err)?;
    out.write_all(&[0u8; SECTOR]).map_err(io_err)?;
    out.flush().map_err(io_err)?;
    drop(out);
    sync_data(file, path)
}

/// Body of one compression thread: claims work units in order, stays at most `window` units
/// ahead of the writer, sends each result (or the first error) to the writer.
fn compress_worker(
    shared: &Shared,
    path: &Path,
    grains: Grains,
    chunks: u64,
    window: u64,
    read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
    tx: mpsc::Sender<(u64, Result<Chunk>)>,
) {
    let _guard = StopOnPanic(shared);
    let mut deflate = Compress::new(Compression::new(ZLIB_LEVEL), true);
    let mut source = vec![0u8; GRAIN_BYTES];
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= chunks {
            return;
        }
        {
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while !s.stop && k >= s.written + window {
                s = shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stop {
                return;
            }
        }
        let data = shared
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let result = compress_chunk(k, grains, read_grain, &mut deflate, &mut source, data)
            .map_err(|e| e.into_error(path));
        let failed = result.is_err();
        if tx.send((k, result)).is_err() || failed {
            return;
        }
    }
}

fn recycle(shared: &Shared, mut data: Vec<u8>) {
    data.clear();
    let mut pool = shared.pool.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < 64 {
        pool.push(data);
    }
}

/// Reads and compresses the grains of work unit `k` into back-to-back grain markers.
fn compress_chunk(
    k: u64,
    grains: Grains,
    read_grain: &(dyn Fn(u64, &mut [u8]) -> Result<bool> + Sync),
    deflate: &mut Compress,
    source: &mut [u8],
    mut data: Vec<u8>,
) -> std::result::Result<Chunk, ChunkError> {
    let first = k * CHUNK_GRAINS;
    let end = (first + CHUNK_GRAINS).min(grains.count);
    let mut list = Vec::new();
    for g in first..end {
        let buf = &mut source[..grains.len(g)];
        if !read_grain(g, buf).map_err(ChunkError::Source)? || is_zero(buf) {
            continue;
        }
        let start = data.len();
        list.push((g, (start / SECTOR) as u32));
        data.extend_from_slice(&(g * GRAIN_SECTORS).to_le_bytes());
        data.extend_from_slice(&[0u8; 4]);
        deflate_into(deflate, buf, &mut data).map_err(ChunkError::Deflate)?;
        let size = (data.len() - start - GRAIN_MARKER_HEAD) as u32;
        data[start + 8..start + 12].copy_from_slice(&size.to_le_bytes());
        data.resize(data.len().next_multiple_of(SECTOR), 0);
    }
    Ok(Chunk { data, grains: list })
}

/// Why a work unit failed.
enum ChunkError {
    /// `read_grain` failed.
    Source(Error),
    /// The compressor failed.
    Deflate(io::Error),
}

impl ChunkError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            ChunkError::Source(e) => e,
            ChunkError::Deflate(e) => Error::io(path, e),
        }
    }
}

/// True if every byte is zero (written to vectorise: no early exit inside a block).
fn is_zero(buf: &[u8]) -> bool {
    buf.chunks(SECTOR)
        .all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// A sector number as stored in grain tables and the grain directory (32 bits).
fn sector32(path: &Path, sector: u64) -> Result<u32> {
    u32::try_from(sector).map_err(|_| {
        Error::NotSupported(format!(
            "{}: stream would exceed 2 TiB (sector {sector})",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_sees_a_single_byte() {
        let mut b = vec![0u8; GRAIN_BYTES];
        assert!(is_zero(&b));
        b[GRAIN_BYTES - 1] = 1;
        assert!(!is_zero(&b));
        assert!(is_zero(&[]));
    }

    #[test]
    fn deflate_makes_a_zlib_stream_even_for_random_data() {
        let mut d = Compress::new(Compression::new(ZLIB_LEVEL), true);
        let mut x = 0x1234_5678_9abc_def0u64;
        let input: Vec<u8> = (0..GRAIN_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for _ in 0..2 {
            let mut out = Vec::new();
            deflate_into(&mut d, &input, &mut out).unwrap();
            assert_eq!(&out[..2], &[0x78, 0x9c]);
            let mut back = Vec::with_capacity(GRAIN_BYTES);
            flate2::Decompress::new(true)
                .decompress_vec(&out, &mut back, flate2::FlushDecompress::Finish)
                .unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn short_last_grain_length() {
        let g = Grains {
            capacity: 300,
            count: 3,
        };
        assert_eq!(g.len(0), GRAIN_BYTES);
        assert_eq!(g.len(2), 44 * SECTOR);
    }
}
