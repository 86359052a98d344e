//! libnbd's C entry points, loaded with dlopen the first time an NBD connection is made, so the
//! library keeps no link-time dependency on it and local use needs nothing extra. Only the calls this client
//! uses are bound; their C types mirror libnbd.h (ABI-stable since libnbd 1.0, soname .so.0).
//! Every required call exists since libnbd 1.4 (nbd_get_block_size); newer ones are optional.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::log;

/// libnbd's opaque handle.
#[allow(non_camel_case_types)]
#[repr(C)]
pub(super) struct nbd_handle {
    _opaque: [u8; 0],
}

/// libnbd's `nbd_completion_callback`, passed by value.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct nbd_completion_callback {
    pub callback: Option<unsafe extern "C" fn(user_data: *mut c_void, error: *mut c_int) -> c_int>,
    pub user_data: *mut c_void,
    pub free: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// libnbd's `nbd_extent_callback`, passed by value.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct nbd_extent_callback {
    pub callback: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            metacontext: *const c_char,
            offset: u64,
            entries: *mut u32,
            nr_entries: usize,
            error: *mut c_int,
        ) -> c_int,
    >,
    pub user_data: *mut c_void,
    pub free: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

/// `LIBNBD_TLS_*`.
pub(super) const LIBNBD_TLS_DISABLE: c_int = 0;
pub(super) const LIBNBD_TLS_ALLOW: c_int = 1;
pub(super) const LIBNBD_TLS_REQUIRE: c_int = 2;
/// `LIBNBD_SIZE_MINIMUM`, `LIBNBD_SIZE_MAXIMUM`.
pub(super) const LIBNBD_SIZE_MINIMUM: c_int = 0;
pub(super) const LIBNBD_SIZE_MAXIMUM: c_int = 2;
/// `LIBNBD_AIO_DIRECTION_*`.
pub(super) const LIBNBD_AIO_DIRECTION_READ: c_uint = 1;
pub(super) const LIBNBD_AIO_DIRECTION_WRITE: c_uint = 2;

type H = *mut nbd_handle;

/// The bound entry points.
pub(super) struct Lib {
    pub create: unsafe extern "C" fn() -> H,
    pub close: unsafe extern "C" fn(H),
    pub get_error: unsafe extern "C" fn() -> *const c_char,
    pub get_errno: unsafe extern "C" fn() -> c_int,
    pub set_export_name: unsafe extern "C" fn(H, *const c_char) -> c_int,
    pub set_tls: unsafe extern "C" fn(H, c_int) -> c_int,
    pub set_tls_certificates: unsafe extern "C" fn(H, *const c_char) -> c_int,
    pub set_tls_verify_peer: unsafe extern "C" fn(H, bool) -> c_int,
    pub set_tls_username: unsafe extern "C" fn(H, *const c_char) -> c_int,
    pub set_tls_psk_file: unsafe extern "C" fn(H, *const c_char) -> c_int,
    /// libnbd 1.12+; older versions (1.10 in Ubuntu 22.04, 1.6 in RHEL 8) work without it.
    pub set_pread_initialize: Option<unsafe extern "C" fn(H, bool) -> c_int>,
    pub add_meta_context: unsafe extern "C" fn(H, *const c_char) -> c_int,
    pub aio_connect_unix: unsafe extern "C" fn(H, *const c_char) -> c_int,
    pub aio_connect_tcp: unsafe extern "C" fn(H, *const c_char, *const c_char) -> c_int,
    pub aio_is_ready: unsafe extern "C" fn(H) -> c_int,
    pub aio_is_dead: unsafe extern "C" fn(H) -> c_int,
    pub aio_is_closed: unsafe extern "C" fn(H) -> c_int,
    pub aio_get_fd: unsafe extern "C" fn(H) -> c_int,
    pub aio_get_direction: unsafe extern "C" fn(H) -> c_uint,
    pub aio_notify_read: unsafe extern "C" fn(H) -> c_int,
    pub aio_notify_write: unsafe extern "C" fn(H) -> c_int,
    pub aio_pread:
        unsafe extern "C" fn(H, *mut c_void, usize, u64, nbd_completion_callback, u32) -> i64,
    pub aio_pwrite:
        unsafe extern "C" fn(H, *const c_void, usize, u64, nbd_completion_callback, u32) -> i64,
    pub aio_flush: unsafe extern "C" fn(H, nbd_completion_callback, u32) -> i64,
    pub aio_block_status:
        unsafe extern "C" fn(H, u64, u64, nbd_extent_callback, nbd_completion_callback, u32) -> i64,
    pub aio_disconnect: unsafe extern "C" fn(H, u32) -> c_int,
    pub get_size: unsafe extern "C" fn(H) -> i64,
    pub is_read_only: unsafe extern "C" fn(H) -> c_int,
    pub can_flush: unsafe extern "C" fn(H) -> c_int,
    pub can_meta_context: unsafe extern "C" fn(H, *const c_char) -> c_int,
    pub get_block_size: unsafe extern "C" fn(H, c_int) -> i64,
    pub get_tls_negotiated: unsafe extern "C" fn(H) -> c_int,
}

/// The soname loaded; `VIXDISKLIB_LIBNBD` names another file (tests use it to simulate a
/// machine without libnbd).
const LIBNBD_SONAME: &str = "libnbd.so.0";

/// What to tell a user whose machine lacks libnbd.
const INSTALL_HINT: &str = "install libnbd (Debian/Ubuntu: apt-get install libnbd0; \
     Fedora/RHEL: dnf install libnbd) to reach remote disks over NBD";

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl* call
    // on this thread; it is copied at once.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-NULL dlerror result, see above.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Looks up `name` (NUL-terminated) in `lib` as a function pointer of type `F`.
///
/// # Safety
/// `lib` must be a live dlopen handle and `F` the function-pointer type of that symbol.
unsafe fn symbol<F: Copy>(lib: *mut c_void, name: &str) -> Option<F> {
    debug_assert!(name.ends_with('\0'));
    assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
    // SAFETY: `lib` is live (caller) and `name` is NUL-terminated.
    let p = unsafe { libc::dlsym(lib, name.as_ptr().cast()) };
    // SAFETY: `F` is a function-pointer type of the same size as `p` (asserted), and the
    // caller guarantees it is the symbol's real signature.
    (!p.is_null()).then(|| unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

fn load() -> std::result::Result<Lib, String> {
    let name = std::env::var("VIXDISKLIB_LIBNBD").unwrap_or_else(|_| LIBNBD_SONAME.into());
    let c_name = CString::new(name.clone()).map_err(|_| format!("bad library name {name:?}"))?;
    // SAFETY: dlopen with a valid NUL-terminated name; libnbd's constructors are benign. The
    // handle is never closed, so the bound pointers stay valid for the process's life.
    let lib = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        return Err(format!(
            "{name} cannot be loaded ({}); {INSTALL_HINT}",
            dl_error()
        ));
    }
    macro_rules! bind {
        ($sym:literal) => {
            // SAFETY: `lib` is a live dlopen handle; the symbol named is libnbd's function of
            // that name, whose C signature is the field's type (libnbd.h).
            match unsafe { symbol(lib, concat!($sym, "\0")) } {
                Some(f) => f,
                None => {
                    return Err(format!(
                        "{name} lacks {} (libnbd too old?); {INSTALL_HINT}",
                        $sym
                    ));
                }
            }
        };
    }
    Ok(Lib {
        create: bind!("nbd_create"),
        close: bind!("nbd_close"),
        get_error: bind!("nbd_get_error"),
        get_errno: bind!("nbd_get_errno"),
        set_export_name: bind!("nbd_set_export_name"),
        set_tls: bind!("nbd_set_tls"),
        set_tls_certificates: bind!("nbd_set_tls_certificates"),
        set_tls_verify_peer: bind!("nbd_set_tls_verify_peer"),
        set_tls_username: bind!("nbd_set_tls_username"),
        set_tls_psk_file: bind!("nbd_set_tls_psk_file"),
        // SAFETY: as for `bind!`; an absent symbol is allowed.
        set_pread_initialize: unsafe { symbol(lib, "nbd_set_pread_initialize\0") },
        add_meta_context: bind!("nbd_add_meta_context"),
        aio_connect_unix: bind!("nbd_aio_connect_unix"),
        aio_connect_tcp: bind!("nbd_aio_connect_tcp"),
        aio_is_ready: bind!("nbd_aio_is_ready"),
        aio_is_dead: bind!("nbd_aio_is_dead"),
        aio_is_closed: bind!("nbd_aio_is_closed"),
        aio_get_fd: bind!("nbd_aio_get_fd"),
        aio_get_direction: bind!("nbd_aio_get_direction"),
        aio_notify_read: bind!("nbd_aio_notify_read"),
        aio_notify_write: bind!("nbd_aio_notify_write"),
        aio_pread: bind!("nbd_aio_pread"),
        aio_pwrite: bind!("nbd_aio_pwrite"),
        aio_flush: bind!("nbd_aio_flush"),
        aio_block_status: bind!("nbd_aio_block_status"),
        aio_disconnect: bind!("nbd_aio_disconnect"),
        get_size: bind!("nbd_get_size"),
        is_read_only: bind!("nbd_is_read_only"),
        can_flush: bind!("nbd_can_flush"),
        can_meta_context: bind!("nbd_can_meta_context"),
        get_block_size: bind!("nbd_get_block_size"),
        get_tls_negotiated: bind!("nbd_get_tls_negotiated"),
    })
}

static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();

/// libnbd, loaded on first use. A machine without it gets VIX_E_NOT_SUPPORTED with a line
/// saying what to install.
pub(super) fn lib() -> Result<&'static Lib> {
    let loaded = LIB.get_or_init(|| {
        let loaded = load();
        match &loaded {
            Ok(_) => log::verbose("libnbd loaded for NBD connections"),
            Err(why) => log::warn(format!("NBD transport unavailable: {why}")),
        }
        loaded
    });
    loaded
        .as_ref()
        .map_err(|why| Error::NotSupported(why.clone()))
}

impl Lib {
    /// libnbd's last error on this thread, with its errno (0 if none).
    pub(super) fn last_error(&self) -> (String, c_int) {
        // SAFETY: nbd_get_error returns NULL or a thread-local NUL-terminated string valid
        // until the next libnbd call on this thread; it is copied at once.
        let text = unsafe {
            let p = (self.get_error)();
            if p.is_null() {
                "unknown libnbd error".to_string()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        // SAFETY: nbd_get_errno has no preconditions.
        (text, unsafe { (self.get_errno)() })
    }
}
