//! Background writeback of appended grains: every 64 MiB of new data an fdatasync starts on
//! another thread, so the device writes while the caller keeps appending and the final Flush
//! has little left to do. Ordering guarantees are unaffected: grain tables are still written
//! only by `SparseExtent::flush_metadata`, after its own sync of the data.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Start background writeback after this many newly appended bytes.
const WRITEBACK_BYTES: u64 = 64 << 20;

#[derive(Default)]
struct State {
    appended: u64,
    running: Option<JoinHandle<()>>,
}

/// Writeback bookkeeping of one extent file.
#[derive(Default)]
pub struct Writeback {
    state: Mutex<State>,
    /// An error a background sync met. The kernel reports a writeback error to only one sync
    /// caller, so it is kept here for the next `finish`.
    error: Arc<Mutex<Option<io::Error>>>,
}

impl Writeback {
    /// Counts appended bytes and, every `WRITEBACK_BYTES`, starts an fdatasync of `file` on
    /// another thread (unless one is still running).
    pub fn note_appended(&self, file: &File, bytes: u64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.appended += bytes;
        if st.appended < WRITEBACK_BYTES || st.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        st.appended = 0;
        if let Some(done) = st.running.take() {
            let _ = done.join();
        }
        let Ok(file) = file.try_clone() else {
            return;
        };
        let error = Arc::clone(&self.error);
        st.running = std::thread::Builder::new()
            .name("vixdisklib-writeback".into())
            .spawn(move || {
                // Deliberately not reported to `iolog`: nothing relies on this sync for
                // ordering (Flush syncs again), so the crash explorer must not count on it.
                if let Err(e) = file.sync_data() {
                    *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            })
            .ok();
    }

    /// Waits for a running background sync and returns the error any of them met.
    pub fn finish(&self) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = st.running.take() {
            let _ = t.join();
        }
        st.appended = 0;
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
