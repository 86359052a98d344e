//! Library lifecycle: InitEx/Init/Exit, log callbacks, the config file, transport modes, and
//! the undocumented exports some clients link against.

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use super::args::opt_str_arg;
use super::boundary::{guard, guard_void};
use super::handles::{CONNECTIONS, DISKS, close_disk};
use super::types::{Bool, VixDiskLibGenericLogFunc, VixError};
use crate::{
    Error, LogLevel as Level, Result, Settings, log_info, log_verbose, log_warning, set_log_sink,
};

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

fn install_logging(log_fn: usize, warn_fn: usize, level: Level) {
    if log_fn == 0 && warn_fn == 0 {
        set_log_sink(None, level);
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
    set_log_sink(Some(Box::new(sink)), level);
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
    let settings = match opt_str_arg(config_file, "configFile")? {
        Some(path) => match Settings::read_vddk_config(path) {
            Ok(settings) => settings,
            Err(e) => {
                // VDDK carries on without its config file; so do we, but say so.
                log_warning(format!(
                    "InitEx: cannot read config file {path}: {e}; using defaults"
                ));
                Settings::default()
            }
        },
        None => Settings::default(),
    };
    settings.apply();
    install_logging(log_fn as usize, warn_fn as usize, settings.log_level());
    for why in settings.problems() {
        log_warning(format!("InitEx: config file: {why}; keeping the default"));
    }
    INITIALIZED.store(true, Ordering::Release);
    log_info(format!(
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
        Settings::default().apply();
        set_log_sink(None, Level::Info);
    });
}

/// Closes disks and connections the caller left open, so nothing written is left unflushed
/// and no lock outlives the library's use (Exit "releases all resources").
fn close_leftovers() {
    for h in DISKS.remove_where(|_| true) {
        log_warning("VixDiskLib_Exit: closing a disk that was left open");
        if let Err(e) = close_disk(h) {
            log_warning(format!("VixDiskLib_Exit: closing a disk left open: {e}"));
        }
    }
    let connections = CONNECTIONS.remove_where(|_| true);
    if !connections.is_empty() {
        log_verbose(format!(
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
    log_verbose(format!(
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
    log_verbose(format!("VixDiskLib_SetConfigOption({key}): ignored"));
}
