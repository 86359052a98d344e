//! What a power cut can leave on disk, from a recorded run (the recorder is installed through
//! `vixDiskLib::vmdk::iolog`, the hook under every file change the library makes).
//!
//! The model (a strict POSIX file system, as ALICE and CrashMonkey assume):
//! - a write or length change of a file is durable once that file is fsynced (fsync of file A
//!   says nothing about file B); before that any subset of them may have reached the disk,
//!   and one of them may be torn at a 512-byte boundary (its first sectors only);
//! - names (create, rename, link, unlink) are durable once their directory is fsynced; before
//!   that they reach the disk in the order they were made (the file system's journal), so a
//!   crash keeps a prefix of them;
//! - what was on disk before recording started is durable.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vixDiskLib::vmdk::iolog::{self, IoEvent, IoRecorder};

/// A file's bytes: its length and the 512-byte sectors that hold anything (holes read zero).
#[derive(Clone, Default, Hash, PartialEq, Eq)]
pub struct Content {
    pub len: u64,
    pub sectors: BTreeMap<u64, Vec<u8>>,
}

impl Content {
    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = 0usize;
        while pos < data.len() {
            let at = offset + pos as u64;
            let (s, within) = (at / 512, (at % 512) as usize);
            let n = (512 - within).min(data.len() - pos);
            let sector = self.sectors.entry(s).or_insert_with(|| vec![0u8; 512]);
            sector[within..within + n].copy_from_slice(&data[pos..pos + n]);
            pos += n;
        }
        self.len = self.len.max(offset + data.len() as u64);
    }

    fn set_len(&mut self, len: u64) {
        let keep = len.div_ceil(512);
        self.sectors.split_off(&keep);
        if !len.is_multiple_of(512)
            && let Some(last) = self.sectors.get_mut(&(len / 512))
        {
            last[(len % 512) as usize..].fill(0);
        }
        self.len = len;
    }

    fn read_file(path: &Path) -> Content {
        let bytes = std::fs::read(path).expect("read snapshot file");
        let mut c = Content {
            len: bytes.len() as u64,
            ..Content::default()
        };
        for (i, s) in bytes.chunks(512).enumerate() {
            if s.iter().any(|&b| b != 0) {
                let mut v = s.to_vec();
                v.resize(512, 0);
                c.sectors.insert(i as u64, v);
            }
        }
        c
    }

    fn save(&self, path: &Path) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(path).expect("create state file");
        f.set_len(self.len).unwrap();
        for (s, data) in &self.sectors {
            let at = s * 512;
            let n = (self.len.saturating_sub(at)).min(512) as usize;
            f.write_all_at(&data[..n], at).unwrap();
        }
    }
}

/// One recorded event, files named by the model's own inode numbers.
#[derive(Clone, Debug)]
pub enum Ev {
    /// A new file `id` named `name`.
    Create {
        name: String,
        id: usize,
    },
    Write {
        id: usize,
        offset: u64,
        data: Arc<Vec<u8>>,
    },
    SetLen {
        id: usize,
        len: u64,
    },
    Sync {
        id: usize,
    },
    SyncDir {
        dir: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Link {
        from: String,
        to: String,
    },
    Unlink {
        name: String,
    },
    /// The workload finished a durable step (its number is the count of marks so far).
    Mark,
}

impl Ev {
    fn is_name_op(&self) -> bool {
        matches!(
            self,
            Ev::Create { .. } | Ev::Rename { .. } | Ev::Link { .. } | Ev::Unlink { .. }
        )
    }
    fn data_id(&self) -> Option<usize> {
        match self {
            Ev::Write { id, .. } | Ev::SetLen { id, .. } => Some(*id),
            _ => None,
        }
    }
    fn dirs(&self) -> Vec<String> {
        match self {
            Ev::Create { name, .. } | Ev::Unlink { name } => vec![dir_of(name)],
            Ev::Rename { from, to } | Ev::Link { from, to } => vec![dir_of(from), dir_of(to)],
            _ => Vec::new(),
        }
    }
}

fn dir_of(name: &str) -> String {
    match name.rfind('/') {
        Some(i) => name[..i].to_string(),
        None => String::new(),
    }
}

/// The files that existed when recording started.
#[derive(Clone)]
struct Start {
    names: BTreeMap<String, usize>,
    inodes: Vec<Content>,
}

struct Log {
    root: PathBuf,
    events: Vec<Ev>,
    /// Real inode number → model id, for files alive now.
    ids: HashMap<u64, usize>,
    /// Names as the running program sees them (to resolve renames and links).
    names: BTreeMap<String, usize>,
    next_id: usize,
    problems: Vec<String>,
}

/// Records the library's file changes under one directory tree.
pub struct Recorder {
    log: Mutex<Log>,
    start: Start,
}

struct Hook(Arc<Recorder>);

impl IoRecorder for Hook {
    fn record(&self, event: IoEvent<'_>) {
        self.0.record(event);
    }
}

impl Recorder {
    /// Snapshots `root` (every file under it) and starts recording.
    pub fn start(root: &Path) -> Arc<Recorder> {
        let mut names = BTreeMap::new();
        let mut inodes = Vec::new();
        let mut ids = HashMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                if md.is_dir() {
                    stack.push(p);
                } else if md.is_file() {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    let id = *ids.entry(md.ino()).or_insert_with(|| {
                        inodes.push(Content::read_file(&p));
                        inodes.len() - 1
                    });
                    names.insert(rel, id);
                }
            }
        }
        let start = Start {
            names: names.clone(),
            inodes,
        };
        let rec = Arc::new(Recorder {
            log: Mutex::new(Log {
                root: root.to_path_buf(),
                events: Vec::new(),
                next_id: start.inodes.len(),
                ids,
                names,
                problems: Vec::new(),
            }),
            start,
        });
        iolog::install(Some(Arc::new(Hook(Arc::clone(&rec)))));
        rec
    }

    /// Stops recording.
    pub fn stop(&self) {
        iolog::install(None);
        let log = self.log.lock().unwrap();
        assert!(
            log.problems.is_empty(),
            "the recording is incomplete: {:?}",
            log.problems
        );
    }

    /// Notes that the workload finished a durable step.
    pub fn mark(&self) -> usize {
        let mut log = self.log.lock().unwrap();
        log.events.push(Ev::Mark);
        log.events.iter().filter(|e| matches!(e, Ev::Mark)).count()
    }

    pub fn events(&self) -> Vec<Ev> {
        self.log.lock().unwrap().events.clone()
    }

    fn record(&self, event: IoEvent<'_>) {
        let mut log = self.log.lock().unwrap();
        let root = log.root.clone();
        let rel = |p: &Path| -> Option<String> {
            let p = normalize(p);
            p.strip_prefix(&root)
                .ok()
                .map(|r| r.to_string_lossy().into_owned())
        };
        let log = &mut *log;
        let id_of = |ino: u64, path: &Path, log: &mut Log| -> Option<usize> {
            rel(path)?;
            match log.ids.get(&ino) {
                Some(&id) => Some(id),
                None => {
                    log.problems.push(format!(
                        "{}: change to a file never created",
                        path.display()
                    ));
                    None
                }
            }
        };
        let ev = match event {
            IoEvent::Create { path, ino } => {
                let Some(name) = rel(path) else { return };
                if let Some(&id) = log.names.get(&name)
                    && log.ids.get(&ino) == Some(&id)
                {
                    // An existing file truncated by its open.
                    Ev::SetLen { id, len: 0 }
                } else {
                    let id = log.next_id;
                    log.next_id += 1;
                    log.ids.insert(ino, id);
                    log.names.insert(name.clone(), id);
                    Ev::Create { name, id }
                }
            }
            IoEvent::Write {
                ino,
                path,
                offset,
                data,
            } => {
                let Some(id) = id_of(ino, path, log) else {
                    return;
                };
                Ev::Write {
                    id,
                    offset,
                    data: Arc::new(data.to_vec()),
                }
            }
            IoEvent::SetLen { ino, path, len } => {
                let Some(id) = id_of(ino, path, log) else {
                    return;
                };
                Ev::SetLen { id, len }
            }
            IoEvent::Sync { ino, path } => {
                let Some(id) = id_of(ino, path, log) else {
                    return;
                };
                Ev::Sync { id }
            }
            IoEvent::SyncDir { dir } => {
                let Some(dir) = rel(dir) else { return };
                Ev::SyncDir { dir }
            }
            IoEvent::Rename { from, to } => {
                let (Some(from), Some(to)) = (rel(from), rel(to)) else {
                    return;
                };
                if let Some(id) = log.names.remove(&from) {
                    log.names.insert(to.clone(), id);
                }
                Ev::Rename { from, to }
            }
            IoEvent::Link { from, to } => {
                let (Some(from), Some(to)) = (rel(from), rel(to)) else {
                    return;
                };
                if let Some(&id) = log.names.get(&from) {
                    log.names.insert(to.clone(), id);
                }
                Ev::Link { from, to }
            }
            IoEvent::Unlink { path } => {
                let Some(name) = rel(path) else { return };
                log.names.remove(&name);
                Ev::Unlink { name }
            }
        };
        log.events.push(ev);
    }

    /// The file system a crash after `events[..k]` leaves, keeping the events `keep` says
    /// (by index; forced ones are kept whatever it says) with `torn` = (event, sectors kept).
    pub fn state(&self, events: &[Ev], keep: &[bool], torn: Option<(usize, u64)>) -> Fs {
        let mut names = self.start.names.clone();
        let mut inodes: HashMap<usize, Content> =
            self.start.inodes.iter().cloned().enumerate().collect();
        for (i, ev) in events.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            match ev {
                Ev::Create { name, id } => {
                    inodes.entry(*id).or_default();
                    names.insert(name.clone(), *id);
                }
                Ev::Write { id, offset, data } => {
                    let c = inodes.entry(*id).or_default();
                    match torn {
                        // A write that extends the file is not torn: ext4 (data=ordered)
                        // and XFS publish a new length only once the data under it is written.
                        Some((t, sectors)) if t == i && offset + data.len() as u64 <= c.len => {
                            let end = ((offset / 512 + sectors) * 512).saturating_sub(*offset);
                            c.write(*offset, &data[..(end as usize).min(data.len())]);
                        }
                        _ => c.write(*offset, data),
                    }
                }
                Ev::SetLen { id, len } => inodes.entry(*id).or_default().set_len(*len),
                Ev::Rename { from, to } => {
                    if let Some(id) = names.remove(from) {
                        names.insert(to.clone(), id);
                    }
                }
                Ev::Link { from, to } => {
                    if let Some(&id) = names.get(from) {
                        names.insert(to.clone(), id);
                    }
                }
                Ev::Unlink { name } => {
                    names.remove(name);
                }
                Ev::Sync { .. } | Ev::SyncDir { .. } | Ev::Mark => {}
            }
        }
        Fs {
            files: names
                .into_iter()
                .map(|(n, id)| {
                    let c = inodes.get(&id).cloned().unwrap_or_default();
                    (n, c)
                })
                .collect(),
        }
    }
}

/// `a/./b/../c` → `a/c`, lexically (the library builds names by joining).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Which of `events` a crash right after them must keep: data changes followed by an fsync
/// of their file, name changes followed by an fsync of their directory, and (journal order)
/// every name change before a kept one.
pub fn forced(events: &[Ev]) -> Vec<bool> {
    let mut forced = vec![false; events.len()];
    let mut synced_files: std::collections::HashSet<usize> = Default::default();
    let mut synced_dirs: std::collections::HashSet<String> = Default::default();
    let mut name_kept = false;
    for i in (0..events.len()).rev() {
        match &events[i] {
            Ev::Sync { id } => {
                synced_files.insert(*id);
            }
            Ev::SyncDir { dir } => {
                synced_dirs.insert(dir.clone());
            }
            e if e.is_name_op() => {
                if name_kept || e.dirs().iter().any(|d| synced_dirs.contains(d)) {
                    forced[i] = true;
                    name_kept = true;
                }
            }
            e => {
                if let Some(id) = e.data_id() {
                    forced[i] = synced_files.contains(&id);
                }
            }
        }
    }
    forced
}

/// Name changes in `events` that are not forced (the journal may keep any prefix of them).
pub fn loose_name_ops(events: &[Ev], forced: &[bool]) -> Vec<usize> {
    (0..events.len())
        .filter(|&i| events[i].is_name_op() && !forced[i])
        .collect()
}

/// Data changes in `events` that are not forced (any subset may be on disk).
pub fn loose_data_ops(events: &[Ev], forced: &[bool]) -> Vec<usize> {
    (0..events.len())
        .filter(|&i| events[i].data_id().is_some() && !forced[i])
        .collect()
}

/// Sectors a write spans (for tearing it).
pub fn sectors_of(ev: &Ev) -> u64 {
    match ev {
        Ev::Write { offset, data, .. } => (offset + data.len() as u64).div_ceil(512) - offset / 512,
        _ => 0,
    }
}

/// A crash state: file names (relative to the root) and their contents.
#[derive(Hash, PartialEq, Eq)]
pub struct Fs {
    pub files: BTreeMap<String, Content>,
}

impl Fs {
    /// Writes the state into the empty directory `dir`.
    pub fn save(&self, dir: &Path) {
        for (name, c) in &self.files {
            let p = dir.join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            c.save(&p);
        }
    }

    /// Names and lengths: states of one shape get one `qemu-img check`.
    pub fn shape(&self) -> Vec<(String, u64)> {
        self.files.iter().map(|(n, c)| (n.clone(), c.len)).collect()
    }
}

/// A small deterministic generator (xorshift64*), so every run explores the same states.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}
