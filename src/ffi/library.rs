//! Library lifecycle: InitEx/Init/Exit, log callbacks, the config file, transport modes, and
//! the undocumented exports some clients link against.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::args::opt_str_arg;
use super::boundary::{guard, guard_void};
use super::handles::{CONNECTIONS, DISKS};
use super::types::{Bool, VixDiskLibGenericLogFunc, VixError};
use crate::error::{Error, Result};
use crate::log::{self, Level};
use crate::remote::settings::RemoteSettings;
use crate::vmdk::link_files::{ALLOW_RAW_DEVICES_KEY, set_allow_raw_devices};

unsafe extern "C" {
    /// From src/ffi/log_shim.c: calls `f("%s", message)` with a real `va_list`.
    fn vixdisklib_call_log(f: *mut c_void, message: *const c_char);
}

/// Whether InitEx has been called (and Exit not yet).
static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Refuses calls made before InitEx or after Exit (VIX_E_DISK_NOINIT). AllocateConnectParams,
/// the Free* functions, GetErrorText and ListTransportModes stay usable, as VDDK documents.
pub fn require_init() -> Result<()> {
    if INITIALIZED.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(Error::NotInitialized)
    }
}

/// The transport list: local disks as files, remote ones over NBD with or without TLS.
const TRANSPORT_MODES: &[u8] = b"file:nbdssl:nbd\0";

/// Settings read from InitEx's config file.
#[derive(Debug, PartialEq, Eq)]
struct Config {
    level: Level,
    /// `tmpDirectory`: where temporary files (nonpersistent redo logs) go.
    tmp_directory: Option<PathBuf>,
    /// `vixDiskLib.nbd.*`: timeout and TLS credentials of NBD connections.
    remote: RemoteSettings,
    /// `vixDiskLib.maxOpenFiles`: extent descriptors the process keeps open (0: the default,
    /// a quarter of RLIMIT_NOFILE).
    max_open_files: usize,
    /// Config lines that were understood but unusable, reported once the log is set up.
    problems: Vec<String>,
    /// `vixDiskLib.allowRawDevices = "TRUE"`: raw-disk descriptors may be opened.
    allow_raw_devices: bool,
}

/// The `tmpDirectory` of the last InitEx config file, if it named one.
static TMP_DIRECTORY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The `vixDiskLib.nbd.*` settings of the last InitEx config file.
static REMOTE_SETTINGS: Mutex<Option<RemoteSettings>> = Mutex::new(None);

/// Settings for NBD connections (defaults without a config file).
pub fn remote_settings() -> RemoteSettings {
    REMOTE_SETTINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Where temporary files go: `tmpDirectory` from the InitEx config file, else `$TMPDIR`,
/// else `/tmp`.
pub fn scratch_dir() -> PathBuf {
    TMP_DIRECTORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(std::env::temp_dir)
}

/// Parses VDDK's `key = "value"` config format leniently: unknown keys, comments and malformed
/// lines are ignored.
fn parse_config(text: &str) -> Config {
    let mut config = Config {
        level: Level::Info,
        tmp_directory: None,
        remote: RemoteSettings::default(),
        max_open_files: 0,
        problems: Vec::new(),
        allow_raw_devices: false,
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if let Some(outcome) = config.remote.apply(key, value) {
            if let Err(why) = outcome {
                config.problems.push(why);
            }
            continue;
        }
        if key.trim().eq_ignore_ascii_case(ALLOW_RAW_DEVICES_KEY) {
            config.allow_raw_devices = value.eq_ignore_ascii_case("TRUE");
        }
        if key.trim().eq_ignore_ascii_case("vixDiskLib.maxOpenFiles") {
            match value.parse::<usize>() {
                Ok(n) if n == 0 || n >= crate::vmdk::fd_cache::MIN_LIMIT => {
                    config.max_open_files = n
                }
                _ => config.problems.push(format!(
                    "vixDiskLib.maxOpenFiles = {value:?} is not 0 or a number of at least {}",
                    crate::vmdk::fd_cache::MIN_LIMIT
                )),
            }
            continue;
        }
        if key.trim().eq_ignore_ascii_case("tmpDirectory") && !value.is_empty() {
            config.tmp_directory = Some(PathBuf::from(value));
        }
        if key
            .trim()
            .eq_ignore_ascii_case("vixDiskLib.transport.LogLevel")
            && let Ok(n) = value.parse::<u32>()
        {
            config.level = match n {
                0..=2 => Level::Warning,
                3 => Level::Info,
                _ => Level::Verbose,
            };
        }
    }
    config
}

/// Largest config file read; VDDK's have a few dozen lines.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads the config file; a FIFO or device is refused rather than waited on.
fn read_config(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let file = crate::vmdk::fileio::open_regular(path, false)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn install_logging(log_fn: usize, warn_fn: usize, level: Level) {
    if log_fn == 0 && warn_fn == 0 {
        log::configure(None, level);
        return;
    }
    let sink = move |lvl: Level, msg: &str| {
        let target = if lvl == Level::Warning && warn_fn != 0 {
            warn_fn
        } else {
            log_fn
        };
        if target == 0 {
            eprintln!("vixDiskLib: {msg}");
            return;
        }
        let text = CString::new(format!("{}\n", msg.replace('\0', " "))).unwrap_or_default();
        // SAFETY: `target` is a non-NULL VixDiskLibGenericLogFunc pointer given to InitEx and
        // valid until Exit (after which this sink is removed); the shim builds the va_list.
        unsafe { vixdisklib_call_log(target as *mut c_void, text.as_ptr()) };
    };
    log::configure(Some(Box::new(sink)), level);
}

fn init(
    major: u32,
    minor: u32,
    log_fn: *mut VixDiskLibGenericLogFunc,
    warn_fn: *mut VixDiskLibGenericLogFunc,
    lib_dir: *const c_char,
    config_file: *const c_char,
) -> Result<()> {
    let lib_dir = opt_str_arg(lib_dir, "libDir")?;
    let config = match opt_str_arg(config_file, "configFile")? {
        Some(path) => match read_config(std::path::Path::new(path)) {
            Ok(text) => parse_config(&text),
            Err(e) => {
                // VDDK carries on without its config file; so do we, but say so.
                log::warn(format!(
                    "InitEx: cannot read config file {path}: {e}; using defaults"
                ));
                parse_config("")
            }
        },
        None => parse_config(""),
    };
    *TMP_DIRECTORY.lock().unwrap_or_else(|e| e.into_inner()) = config.tmp_directory.clone();
    *REMOTE_SETTINGS.lock().unwrap_or_else(|e| e.into_inner()) = Some(config.remote.clone());
    set_allow_raw_devices(config.allow_raw_devices);
    crate::vmdk::fd_cache::set_limit(config.max_open_files);
    install_logging(log_fn as usize, warn_fn as usize, config.level);
    for why in &config.problems {
        log::warn(format!("InitEx: config file: {why}; keeping the default"));
    }
    INITIALIZED.store(true, Ordering::Release);
    log::info(format!(
        "vixdisklib {} initialised for API {major}.{minor} (libDir {:?}); transports: file:nbdssl:nbd",
        env!("CARGO_PKG_VERSION"),
        lib_dir.unwrap_or("(none)")
    ));
    Ok(())
}

/// Initialises the library. Any version pair is accepted; `libDir` need not exist; NULL log
/// callbacks send warnings to stderr. The panic callback is never called: failures are returned.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_InitEx(
    majorVersion: u32,
    minorVersion: u32,
    log: *mut VixDiskLibGenericLogFunc,
    warn: *mut VixDiskLibGenericLogFunc,
    panic: *mut VixDiskLibGenericLogFunc,
    libDir: *const c_char,
    configFile: *const c_char,
) -> VixError {
    let _ = panic;
    guard("VixDiskLib_InitEx", || {
        init(majorVersion, minorVersion, log, warn, libDir, configFile)
    })
}

/// The older form of InitEx, without a config file.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Init(
    majorVersion: u32,
    minorVersion: u32,
    log: *mut VixDiskLibGenericLogFunc,
    warn: *mut VixDiskLibGenericLogFunc,
    panic: *mut VixDiskLibGenericLogFunc,
    libDir: *const c_char,
) -> VixError {
    let _ = panic;
    guard("VixDiskLib_Init", || {
        init(
            majorVersion,
            minorVersion,
            log,
            warn,
            libDir,
            std::ptr::null(),
        )
    })
}

/// Ends the library's use. Log callbacks are forgotten (the caller may unload them). Calling
/// it twice, or without InitEx, is harmless. A later InitEx works.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Exit() {
    guard_void("VixDiskLib_Exit", || {
        INITIALIZED.store(false, Ordering::Release);
        close_leftovers();
        set_allow_raw_devices(false);
        log::configure(None, Level::Info);
    });
}

/// Closes disks and connections the caller left open, so nothing written is left unflushed
/// and no lock outlives the library's use (Exit "releases all resources").
fn close_leftovers() {
    for h in DISKS.remove_where(|_| true) {
        log::warn("VixDiskLib_Exit: closing a disk that was left open");
        h.pending.wait_idle();
        if let Err(e) = h.disk.close() {
            log::warn(format!("VixDiskLib_Exit: closing a disk left open: {e}"));
        }
    }
    let connections = CONNECTIONS.remove_where(|_| true);
    if !connections.is_empty() {
        log::verbose(format!(
            "VixDiskLib_Exit: {} connection(s) left open were dropped",
            connections.len()
        ));
    }
}

/// Colon-separated transports: "file:nbdssl:nbd". NULL before InitEx. The string is static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_ListTransportModes() -> *const c_char {
    if INITIALIZED.load(Ordering::Acquire) {
        TRANSPORT_MODES.as_ptr().cast()
    } else {
        std::ptr::null()
    }
}

/// Undocumented VDDK export used by VMware's Java binding: fault injection does not exist
/// here, so nothing is enabled and FALSE is returned.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_SetInjectedFault(id: c_int, enabled: Bool, faultErr: c_int) -> Bool {
    log::verbose(format!(
        "VixDiskLib_SetInjectedFault({id}, {enabled}, {faultErr}): fault injection is not supported"
    ));
    0
}

/// Undocumented VDDK export: no fault is ever enabled.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_IsFaultEnabled_Func(id: c_int, faultErr: *mut c_int) -> Bool {
    let _ = (id, faultErr);
    0
}

/// Undocumented VDDK export: no configuration option is settable this way; logged and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_SetConfigOption(key: c_int, value: *mut c_void) {
    let _ = value;
    log::verbose(format!("VixDiskLib_SetConfigOption({key}): ignored"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parser_reads_log_level_and_ignores_the_rest() {
        let text = "# comment\ntmpDirectory = \"/tmp\"\nvixDiskLib.transport.LogLevel = \"5\"\nnonsense line\n";
        assert_eq!(parse_config(text).level, Level::Verbose);
        assert_eq!(
            parse_config("vixDiskLib.transport.LogLevel=1").level,
            Level::Warning
        );
        assert_eq!(parse_config("").level, Level::Info);
        let c = parse_config("vixDiskLib.nbd.timeoutSecs = \"5\"\nvixDiskLib.nbd.timeoutSecs=x\n");
        assert_eq!(c.remote.timeout, std::time::Duration::from_secs(5));
        assert_eq!(c.problems.len(), 1);
    }

    #[test]
    fn config_parser_reads_max_open_files() {
        assert_eq!(parse_config("").max_open_files, 0);
        let c = parse_config("vixdisklib.MAXOPENFILES = \"64\"\n");
        assert_eq!((c.max_open_files, c.problems.len()), (64, 0));
        let c = parse_config("vixDiskLib.maxOpenFiles = 1\nvixDiskLib.maxOpenFiles = lots\n");
        assert_eq!((c.max_open_files, c.problems.len()), (0, 2));
    }
}
