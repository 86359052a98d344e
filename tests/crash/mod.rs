//! The crash-state explorer: records a workload through `vixDiskLib::vmdk::iolog`, builds the
//! states a power cut could leave (`model`) and hands each distinct one to the workload's
//! checks. Bounded like CrashMonkey: every prefix of the recorded events (what kill -9 can
//! leave), then at each sync point (and the end) the state with only what must survive plus
//! `CRASH_SUBSETS` (16) random subsets of what need not, the last kept write sometimes torn at a
//! 512-byte boundary. `CRASH_SEED` picks the subsets (same seed, same states).
#![allow(dead_code)]

pub mod checks;
pub mod model;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use model::{Ev, Recorder, Rng, forced, loose_data_ops, loose_name_ops, sectors_of};

/// A temporary directory in memory where there is one (/dev/shm): the model decides what is
/// durable, so real fsyncs would only cost time.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vdl-crash-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

/// One recording at a time: the hook is process-wide.
pub static RECORDING: Mutex<()> = Mutex::new(());

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one state's checks are told.
pub struct State<'a> {
    /// The directory holding the state (same names as the recorded root).
    pub dir: &'a Path,
    /// Durable steps the workload had completed before the crash.
    pub phase: usize,
    /// Run the slow oracles (qemu-img) on this one: the first state of each shape.
    pub deep: bool,
}

/// Counts of one exploration.
#[derive(Default, Debug)]
pub struct Stats {
    pub events: usize,
    pub generated: usize,
    pub distinct: usize,
    pub deep: usize,
}

/// Explores the crash states of `rec`'s recording; `check` returns why a state is wrong.
/// Panics with every failing state's description (up to 5) if any fails.
pub fn explore(
    name: &str,
    rec: &Arc<Recorder>,
    check: &mut dyn FnMut(&State) -> Result<(), String>,
) -> Stats {
    let events = rec.events();
    let subsets = env_or("CRASH_SUBSETS", 16);
    let max_deep = env_or("CRASH_DEEP", 6) as usize;
    let mut rng = Rng(env_or("CRASH_SEED", 1) ^ 0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let work = crate::crash::scratch();
    let mut stats = Stats {
        events: events.len(),
        ..Stats::default()
    };
    let mut seen = HashSet::new();
    let mut shapes = HashSet::new();
    let mut failures: Vec<String> = Vec::new();
    let mut run = |k: usize, keep: Vec<bool>, torn: Option<(usize, u64)>, what: String| {
        stats.generated += 1;
        let fs = rec.state(&events[..k], &keep, torn);
        let phase = events[..k].iter().filter(|e| matches!(e, Ev::Mark)).count();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&fs, phase).hash(&mut h);
        if !seen.insert(h.finish()) {
            return;
        }
        stats.distinct += 1;
        let deep = stats.deep < max_deep && shapes.insert((fs.shape(), phase));
        if deep {
            stats.deep += 1;
        }
        let dir = work.path().join("state");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        fs.save(&dir);
        let state = State {
            dir: &dir,
            phase,
            deep,
        };
        if let Err(why) = check(&state) {
            if failures.len() < 5 {
                let files: Vec<String> = fs
                    .files
                    .iter()
                    .map(|(n, c)| format!("{n} ({} bytes)", c.len))
                    .collect();
                failures.push(format!(
                    "{name}: crash after event {k} of {} ({what}), phase {phase}, files {files:?}: {why}",
                    events.len()
                ));
            } else {
                failures.push(String::new());
            }
        }
    };
    // Every prefix: the states a kill leaves (all issued writes reached the page cache).
    for k in 0..=events.len() {
        run(k, vec![true; k], None, "prefix".into());
    }
    // At each sync point (crash just before it) and at the end: what must survive, then random
    // subsets of what need not.
    let points: Vec<usize> = (0..events.len())
        .filter(|&i| matches!(events[i], Ev::Sync { .. } | Ev::SyncDir { .. }))
        .chain(std::iter::once(events.len()))
        .collect();
    for &k in &points {
        let f = forced(&events[..k]);
        let names = loose_name_ops(&events[..k], &f);
        let data = loose_data_ops(&events[..k], &f);
        if names.is_empty() && data.is_empty() {
            continue;
        }
        run(k, f.clone(), None, "only what was synced".into());
        for _ in 0..subsets {
            let mut keep = f.clone();
            let kept_names = rng.below(names.len() as u64 + 1) as usize;
            for &i in &names[..kept_names] {
                keep[i] = true;
            }
            let mut last = None;
            for &i in &data {
                if rng.below(2) == 0 {
                    keep[i] = true;
                    last = Some(i);
                }
            }
            let torn = last.and_then(|i| {
                let n = sectors_of(&events[i]);
                (n > 1 && rng.below(2) == 0).then(|| (i, 1 + rng.below(n - 1)))
            });
            let what = format!(
                "{kept_names} of {} loose name changes, {} of {} loose writes{}",
                names.len(),
                data.iter().filter(|&&i| keep[i]).count(),
                data.len(),
                if torn.is_some() { ", last torn" } else { "" }
            );
            run(k, keep, torn, what);
        }
    }
    let failed = failures.len();
    eprintln!(
        "crash states: {name}: {} events, {} states generated, {} distinct explored, {} with qemu-img, {failed} failing",
        stats.events, stats.generated, stats.distinct, stats.deep
    );
    assert!(
        failures.is_empty(),
        "{failed} failing crash states:\n{}",
        failures
            .iter()
            .filter(|f| !f.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    stats
}
