"""ctypes binding for libvixDiskLib.so (the open VixDiskLib implementation).

Two layers:

* The raw C API.  ``load()`` returns a :class:`ctypes.CDLL` whose exported
  ``VixDiskLib_*`` functions all have ``argtypes``/``restype`` set from the
  :data:`FUNCTIONS` table.  The Structure classes below mirror the C layouts
  of VDDK 7.0/8.0 on x86-64 Linux (ConnectParams 128 bytes, CreateParams 32,
  Info 64, Geometry 12, Block 16, BlockList 24 with a variable array).

* A thin Pythonic wrapper: :class:`Library` (InitEx/Exit, connections,
  error texts), :class:`Connection` (Create/Open/Unlink/...), :class:`Disk`
  (read/write/info/close, async I/O, metadata, allocated blocks) and
  :class:`VixErrorException`.  Every object is a context manager.

Finding the library: ``$VIXDISKLIB_LIB`` (a file path) if set, else
``<repo>/target/release/libvixDiskLib.so``, else ``<repo>/target/debug/...``
(``<repo>`` is the parent of this file's directory).  ``$CARGO_TARGET_DIR`` is
tried as well when it is set.

All sector numbers and counts are in 512-byte sectors, as in the C API.

Example::

    import vixdisklib as V
    with V.Library().init(log=print, warn=print) as vdl, vdl.connect() as conn:
        conn.create("/tmp/d.vmdk", 2048 * 64)              # 64 MiB monolithicSparse
        with conn.open("/tmp/d.vmdk") as disk:
            disk.write(0, b"\\xab" * 512)
            assert disk.read(0, 1) == b"\\xab" * 512
            print(disk.info().capacity, disk.transport_mode())

Raw calls are available too: ``dll = V.load(); dll.VixDiskLib_Read(h, 0, 1, buf)``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import itertools
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    Union,
    c_char,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_ubyte,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Callable, Iterable, Optional

__all__ = [
    "FUNCTIONS",
    "ERROR_CODES",
    "ERROR_NAMES",
    "VixDiskLibConnectParams",
    "VixDiskLibCreateParams",
    "VixDiskLibInfo",
    "VixDiskLibGeometry",
    "VixDiskLibBlock",
    "VixDiskLibBlockList",
    "VixErrorException",
    "Library",
    "Connection",
    "Disk",
    "DiskInfo",
    "AsyncRequest",
    "find_library",
    "load",
]

# ---------------------------------------------------------------------------
# Scalar types
# ---------------------------------------------------------------------------

VixError = c_uint64
VixDiskLibSectorType = c_uint64
Bool = c_ubyte  # `typedef char Bool;` -- one byte, TRUE = 1, FALSE = 0
VixDiskLibHandle = c_void_p  # opaque
VixDiskLibConnection = c_void_p  # opaque
VixDiskLibDiskType = c_int  # C enums are 4-byte ints
VixDiskLibAdapterType = c_int
VixDiskLibCredType = c_int
VixDiskLibSpecType = c_int

# ---------------------------------------------------------------------------
# Constants (VDDK 7.0.2 / 8.0.3 header values)
# ---------------------------------------------------------------------------

VIXDISKLIB_SECTOR_SIZE = 512
VIXDISKLIB_MIN_CHUNK_SIZE = 64 * 2
VIXDISKLIB_MAX_CHUNK_SIZE = 64 * 2 * 1024
VIXDISKLIB_MAX_CHUNK_NUMBER = 512 * 1024

VIXDISKLIB_FLAG_OPEN_UNBUFFERED = 1 << 0
VIXDISKLIB_FLAG_OPEN_SINGLE_LINK = 1 << 1
VIXDISKLIB_FLAG_OPEN_READ_ONLY = 1 << 2
VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB = 1 << 4
VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ = 1 << 5
VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ = 1 << 6
VIXDISKLIB_FLAG_OPEN_COMPRESSION_MASK = 0x03F0

VIXDISKLIB_HWVERSION_WORKSTATION_4 = 3
VIXDISKLIB_HWVERSION_WORKSTATION_5 = 4
VIXDISKLIB_HWVERSION_WORKSTATION_6 = 6
VIXDISKLIB_HWVERSION_ESX30 = VIXDISKLIB_HWVERSION_WORKSTATION_5
VIXDISKLIB_HWVERSION_ESX4X = 7
VIXDISKLIB_HWVERSION_ESX50 = 8
VIXDISKLIB_HWVERSION_ESX51 = 9
VIXDISKLIB_HWVERSION_ESX55 = 10
VIXDISKLIB_HWVERSION_ESX60 = 11
VIXDISKLIB_HWVERSION_ESX65 = 13
VIXDISKLIB_HWVERSION_CURRENT = VIXDISKLIB_HWVERSION_ESX65

# VixDiskLibDiskType
VIXDISKLIB_DISK_MONOLITHIC_SPARSE = 1
VIXDISKLIB_DISK_MONOLITHIC_FLAT = 2
VIXDISKLIB_DISK_SPLIT_SPARSE = 3
VIXDISKLIB_DISK_SPLIT_FLAT = 4
VIXDISKLIB_DISK_VMFS_FLAT = 5
VIXDISKLIB_DISK_STREAM_OPTIMIZED = 6
VIXDISKLIB_DISK_VMFS_THIN = 7
VIXDISKLIB_DISK_VMFS_SPARSE = 8
VIXDISKLIB_DISK_UNKNOWN = 256

# VixDiskLibAdapterType
VIXDISKLIB_ADAPTER_IDE = 1
VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC = 2
VIXDISKLIB_ADAPTER_SCSI_LSILOGIC = 3
VIXDISKLIB_ADAPTER_UNKNOWN = 256

# VixDiskLibCredType
VIXDISKLIB_CRED_UID = 1
VIXDISKLIB_CRED_SESSIONID = 2
VIXDISKLIB_CRED_TICKETID = 3
VIXDISKLIB_CRED_SSPI = 4
VIXDISKLIB_CRED_UNKNOWN = 256

# VixDiskLibSpecType
VIXDISKLIB_SPEC_VMX = 0
VIXDISKLIB_SPEC_VSTORAGE_OBJECT = 1
VIXDISKLIB_SPEC_DATASTORE = 2
VIXDISKLIB_SPEC_UNKNOWN = 256


def VIX_ERROR_CODE(err: int) -> int:
    """The 16-bit code part of a 64-bit VixError."""
    return err & 0xFFFF


def VIX_SUCCEEDED(err: int) -> bool:
    return err == VIX_OK


def VIX_FAILED(err: int) -> bool:
    return err != VIX_OK


# Every VixError code of the VDDK 7.0.2 header (name, value), header order.
_ERROR_TABLE = (
    ('VIX_OK', 0),
    ('VIX_E_FAIL', 1),
    ('VIX_E_OUT_OF_MEMORY', 2),
    ('VIX_E_INVALID_ARG', 3),
    ('VIX_E_FILE_NOT_FOUND', 4),
    ('VIX_E_OBJECT_IS_BUSY', 5),
    ('VIX_E_NOT_SUPPORTED', 6),
    ('VIX_E_FILE_ERROR', 7),
    ('VIX_E_DISK_FULL', 8),
    ('VIX_E_INCORRECT_FILE_TYPE', 9),
    ('VIX_E_CANCELLED', 10),
    ('VIX_E_FILE_READ_ONLY', 11),
    ('VIX_E_FILE_ALREADY_EXISTS', 12),
    ('VIX_E_FILE_ACCESS_ERROR', 13),
    ('VIX_E_REQUIRES_LARGE_FILES', 14),
    ('VIX_E_FILE_ALREADY_LOCKED', 15),
    ('VIX_E_VMDB', 16),
    ('VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT', 20),
    ('VIX_E_FILE_TOO_BIG', 21),
    ('VIX_E_FILE_NAME_INVALID', 22),
    ('VIX_E_ALREADY_EXISTS', 23),
    ('VIX_E_BUFFER_TOOSMALL', 24),
    ('VIX_E_OBJECT_NOT_FOUND', 25),
    ('VIX_E_HOST_NOT_CONNECTED', 26),
    ('VIX_E_INVALID_UTF8_STRING', 27),
    ('VIX_E_OPERATION_ALREADY_IN_PROGRESS', 31),
    ('VIX_E_UNFINISHED_JOB', 29),
    ('VIX_E_NEED_KEY', 30),
    ('VIX_E_LICENSE', 32),
    ('VIX_E_VM_HOST_DISCONNECTED', 34),
    ('VIX_E_AUTHENTICATION_FAIL', 35),
    ('VIX_E_HOST_CONNECTION_LOST', 36),
    ('VIX_E_DUPLICATE_NAME', 41),
    ('VIX_E_ARGUMENT_TOO_BIG', 44),
    ('VIX_E_INVALID_HANDLE', 1000),
    ('VIX_E_NOT_SUPPORTED_ON_HANDLE_TYPE', 1001),
    ('VIX_E_TOO_MANY_HANDLES', 1002),
    ('VIX_E_NOT_FOUND', 2000),
    ('VIX_E_TYPE_MISMATCH', 2001),
    ('VIX_E_INVALID_XML', 2002),
    ('VIX_E_TIMEOUT_WAITING_FOR_TOOLS', 3000),
    ('VIX_E_UNRECOGNIZED_COMMAND', 3001),
    ('VIX_E_OP_NOT_SUPPORTED_ON_GUEST', 3003),
    ('VIX_E_PROGRAM_NOT_STARTED', 3004),
    ('VIX_E_CANNOT_START_READ_ONLY_VM', 3005),
    ('VIX_E_VM_NOT_RUNNING', 3006),
    ('VIX_E_VM_IS_RUNNING', 3007),
    ('VIX_E_CANNOT_CONNECT_TO_VM', 3008),
    ('VIX_E_POWEROP_SCRIPTS_NOT_AVAILABLE', 3009),
    ('VIX_E_NO_GUEST_OS_INSTALLED', 3010),
    ('VIX_E_VM_INSUFFICIENT_HOST_MEMORY', 3011),
    ('VIX_E_SUSPEND_ERROR', 3012),
    ('VIX_E_VM_NOT_ENOUGH_CPUS', 3013),
    ('VIX_E_HOST_USER_PERMISSIONS', 3014),
    ('VIX_E_GUEST_USER_PERMISSIONS', 3015),
    ('VIX_E_TOOLS_NOT_RUNNING', 3016),
    ('VIX_E_GUEST_OPERATIONS_PROHIBITED', 3017),
    ('VIX_E_ANON_GUEST_OPERATIONS_PROHIBITED', 3018),
    ('VIX_E_ROOT_GUEST_OPERATIONS_PROHIBITED', 3019),
    ('VIX_E_MISSING_ANON_GUEST_ACCOUNT', 3023),
    ('VIX_E_CANNOT_AUTHENTICATE_WITH_GUEST', 3024),
    ('VIX_E_UNRECOGNIZED_COMMAND_IN_GUEST', 3025),
    ('VIX_E_CONSOLE_GUEST_OPERATIONS_PROHIBITED', 3026),
    ('VIX_E_MUST_BE_CONSOLE_USER', 3027),
    ('VIX_E_VMX_MSG_DIALOG_AND_NO_UI', 3028),
    ('VIX_E_OPERATION_NOT_ALLOWED_FOR_LOGIN_TYPE', 3031),
    ('VIX_E_LOGIN_TYPE_NOT_SUPPORTED', 3032),
    ('VIX_E_EMPTY_PASSWORD_NOT_ALLOWED_IN_GUEST', 3033),
    ('VIX_E_INTERACTIVE_SESSION_NOT_PRESENT', 3034),
    ('VIX_E_INTERACTIVE_SESSION_USER_MISMATCH', 3035),
    ('VIX_E_CANNOT_POWER_ON_VM', 3041),
    ('VIX_E_NO_DISPLAY_SERVER', 3043),
    ('VIX_E_TOO_MANY_LOGONS', 3046),
    ('VIX_E_INVALID_AUTHENTICATION_SESSION', 3047),
    ('VIX_E_VM_NOT_FOUND', 4000),
    ('VIX_E_NOT_SUPPORTED_FOR_VM_VERSION', 4001),
    ('VIX_E_CANNOT_READ_VM_CONFIG', 4002),
    ('VIX_E_TEMPLATE_VM', 4003),
    ('VIX_E_VM_ALREADY_LOADED', 4004),
    ('VIX_E_VM_ALREADY_UP_TO_DATE', 4006),
    ('VIX_E_VM_UNSUPPORTED_GUEST', 4011),
    ('VIX_E_UNRECOGNIZED_PROPERTY', 6000),
    ('VIX_E_INVALID_PROPERTY_VALUE', 6001),
    ('VIX_E_READ_ONLY_PROPERTY', 6002),
    ('VIX_E_MISSING_REQUIRED_PROPERTY', 6003),
    ('VIX_E_INVALID_SERIALIZED_DATA', 6004),
    ('VIX_E_PROPERTY_TYPE_MISMATCH', 6005),
    ('VIX_E_BAD_VM_INDEX', 8000),
    ('VIX_E_INVALID_MESSAGE_HEADER', 10000),
    ('VIX_E_INVALID_MESSAGE_BODY', 10001),
    ('VIX_E_SNAPSHOT_INVAL', 13000),
    ('VIX_E_SNAPSHOT_DUMPER', 13001),
    ('VIX_E_SNAPSHOT_DISKLIB', 13002),
    ('VIX_E_SNAPSHOT_NOTFOUND', 13003),
    ('VIX_E_SNAPSHOT_EXISTS', 13004),
    ('VIX_E_SNAPSHOT_VERSION', 13005),
    ('VIX_E_SNAPSHOT_NOPERM', 13006),
    ('VIX_E_SNAPSHOT_CONFIG', 13007),
    ('VIX_E_SNAPSHOT_NOCHANGE', 13008),
    ('VIX_E_SNAPSHOT_CHECKPOINT', 13009),
    ('VIX_E_SNAPSHOT_LOCKED', 13010),
    ('VIX_E_SNAPSHOT_INCONSISTENT', 13011),
    ('VIX_E_SNAPSHOT_NAMETOOLONG', 13012),
    ('VIX_E_SNAPSHOT_VIXFILE', 13013),
    ('VIX_E_SNAPSHOT_DISKLOCKED', 13014),
    ('VIX_E_SNAPSHOT_DUPLICATEDDISK', 13015),
    ('VIX_E_SNAPSHOT_INDEPENDENTDISK', 13016),
    ('VIX_E_SNAPSHOT_NONUNIQUE_NAME', 13017),
    ('VIX_E_SNAPSHOT_MEMORY_ON_INDEPENDENT_DISK', 13018),
    ('VIX_E_SNAPSHOT_MAXSNAPSHOTS', 13019),
    ('VIX_E_SNAPSHOT_MIN_FREE_SPACE', 13020),
    ('VIX_E_SNAPSHOT_HIERARCHY_TOODEEP', 13021),
    ('VIX_E_SNAPSHOT_NOT_REVERTABLE', 13024),
    ('VIX_E_HOST_DISK_INVALID_VALUE', 14003),
    ('VIX_E_HOST_DISK_SECTORSIZE', 14004),
    ('VIX_E_HOST_FILE_ERROR_EOF', 14005),
    ('VIX_E_HOST_NETBLKDEV_HANDSHAKE', 14006),
    ('VIX_E_HOST_SOCKET_CREATION_ERROR', 14007),
    ('VIX_E_HOST_SERVER_NOT_FOUND', 14008),
    ('VIX_E_HOST_NETWORK_CONN_REFUSED', 14009),
    ('VIX_E_HOST_TCP_SOCKET_ERROR', 14010),
    ('VIX_E_HOST_TCP_CONN_LOST', 14011),
    ('VIX_E_HOST_NBD_HASHFILE_VOLUME', 14012),
    ('VIX_E_HOST_NBD_HASHFILE_INIT', 14013),
    ('VIX_E_HOST_SERVER_SHUTDOWN', 14014),
    ('VIX_E_HOST_SERVER_NOT_AVAILABLE', 14015),
    ('VIX_E_DISK_INVAL', 16000),
    ('VIX_E_DISK_NOINIT', 16001),
    ('VIX_E_DISK_NOIO', 16002),
    ('VIX_E_DISK_PARTIALCHAIN', 16003),
    ('VIX_E_DISK_NEEDSREPAIR', 16006),
    ('VIX_E_DISK_OUTOFRANGE', 16007),
    ('VIX_E_DISK_CID_MISMATCH', 16008),
    ('VIX_E_DISK_CANTSHRINK', 16009),
    ('VIX_E_DISK_PARTMISMATCH', 16010),
    ('VIX_E_DISK_UNSUPPORTEDDISKVERSION', 16011),
    ('VIX_E_DISK_OPENPARENT', 16012),
    ('VIX_E_DISK_NOTSUPPORTED', 16013),
    ('VIX_E_DISK_NEEDKEY', 16014),
    ('VIX_E_DISK_NOKEYOVERRIDE', 16015),
    ('VIX_E_DISK_NOTENCRYPTED', 16016),
    ('VIX_E_DISK_NOKEY', 16017),
    ('VIX_E_DISK_INVALIDPARTITIONTABLE', 16018),
    ('VIX_E_DISK_NOTNORMAL', 16019),
    ('VIX_E_DISK_NOTENCDESC', 16020),
    ('VIX_E_DISK_NEEDVMFS', 16022),
    ('VIX_E_DISK_RAWTOOBIG', 16024),
    ('VIX_E_DISK_TOOMANYOPENFILES', 16027),
    ('VIX_E_DISK_TOOMANYREDO', 16028),
    ('VIX_E_DISK_RAWTOOSMALL', 16029),
    ('VIX_E_DISK_INVALIDCHAIN', 16030),
    ('VIX_E_DISK_KEY_NOTFOUND', 16052),
    ('VIX_E_DISK_SUBSYSTEM_INIT_FAIL', 16053),
    ('VIX_E_DISK_INVALID_CONNECTION', 16054),
    ('VIX_E_DISK_ENCODING', 16061),
    ('VIX_E_DISK_CANTREPAIR', 16062),
    ('VIX_E_DISK_INVALIDDISK', 16063),
    ('VIX_E_DISK_NOLICENSE', 16064),
    ('VIX_E_DISK_NODEVICE', 16065),
    ('VIX_E_DISK_UNSUPPORTEDDEVICE', 16066),
    ('VIX_E_DISK_CAPACITY_MISMATCH', 16067),
    ('VIX_E_DISK_PARENT_NOTALLOWED', 16068),
    ('VIX_E_DISK_ATTACH_ROOTLINK', 16069),
    ('VIX_E_CRYPTO_UNKNOWN_ALGORITHM', 17000),
    ('VIX_E_CRYPTO_BAD_BUFFER_SIZE', 17001),
    ('VIX_E_CRYPTO_INVALID_OPERATION', 17002),
    ('VIX_E_CRYPTO_RANDOM_DEVICE', 17003),
    ('VIX_E_CRYPTO_NEED_PASSWORD', 17004),
    ('VIX_E_CRYPTO_BAD_PASSWORD', 17005),
    ('VIX_E_CRYPTO_NOT_IN_DICTIONARY', 17006),
    ('VIX_E_CRYPTO_NO_CRYPTO', 17007),
    ('VIX_E_CRYPTO_ERROR', 17008),
    ('VIX_E_CRYPTO_BAD_FORMAT', 17009),
    ('VIX_E_CRYPTO_LOCKED', 17010),
    ('VIX_E_CRYPTO_EMPTY', 17011),
    ('VIX_E_CRYPTO_KEYSAFE_LOCATOR', 17012),
    ('VIX_E_CANNOT_CONNECT_TO_HOST', 18000),
    ('VIX_E_NOT_FOR_REMOTE_HOST', 18001),
    ('VIX_E_INVALID_HOSTNAME_SPECIFICATION', 18002),
    ('VIX_E_SCREEN_CAPTURE_ERROR', 19000),
    ('VIX_E_SCREEN_CAPTURE_BAD_FORMAT', 19001),
    ('VIX_E_SCREEN_CAPTURE_COMPRESSION_FAIL', 19002),
    ('VIX_E_SCREEN_CAPTURE_LARGE_DATA', 19003),
    ('VIX_E_GUEST_VOLUMES_NOT_FROZEN', 20000),
    ('VIX_E_NOT_A_FILE', 20001),
    ('VIX_E_NOT_A_DIRECTORY', 20002),
    ('VIX_E_NO_SUCH_PROCESS', 20003),
    ('VIX_E_FILE_NAME_TOO_LONG', 20004),
    ('VIX_E_OPERATION_DISABLED', 20005),
    ('VIX_E_TOOLS_INSTALL_NO_IMAGE', 21000),
    ('VIX_E_TOOLS_INSTALL_IMAGE_INACCESIBLE', 21001),
    ('VIX_E_TOOLS_INSTALL_NO_DEVICE', 21002),
    ('VIX_E_TOOLS_INSTALL_DEVICE_NOT_CONNECTED', 21003),
    ('VIX_E_TOOLS_INSTALL_CANCELLED', 21004),
    ('VIX_E_TOOLS_INSTALL_INIT_FAILED', 21005),
    ('VIX_E_TOOLS_INSTALL_AUTO_NOT_SUPPORTED', 21006),
    ('VIX_E_TOOLS_INSTALL_GUEST_NOT_READY', 21007),
    ('VIX_E_TOOLS_INSTALL_SIG_CHECK_FAILED', 21008),
    ('VIX_E_TOOLS_INSTALL_ERROR', 21009),
    ('VIX_E_TOOLS_INSTALL_ALREADY_UP_TO_DATE', 21010),
    ('VIX_E_TOOLS_INSTALL_IN_PROGRESS', 21011),
    ('VIX_E_TOOLS_INSTALL_IMAGE_COPY_FAILED', 21012),
    ('VIX_E_WRAPPER_WORKSTATION_NOT_INSTALLED', 22001),
    ('VIX_E_WRAPPER_VERSION_NOT_FOUND', 22002),
    ('VIX_E_WRAPPER_SERVICEPROVIDER_NOT_FOUND', 22003),
    ('VIX_E_WRAPPER_PLAYER_NOT_INSTALLED', 22004),
    ('VIX_E_WRAPPER_RUNTIME_NOT_INSTALLED', 22005),
    ('VIX_E_WRAPPER_MULTIPLE_SERVICEPROVIDERS', 22006),
    ('VIX_E_MNTAPI_MOUNTPT_NOT_FOUND', 24000),
    ('VIX_E_MNTAPI_MOUNTPT_IN_USE', 24001),
    ('VIX_E_MNTAPI_DISK_NOT_FOUND', 24002),
    ('VIX_E_MNTAPI_DISK_NOT_MOUNTED', 24003),
    ('VIX_E_MNTAPI_DISK_IS_MOUNTED', 24004),
    ('VIX_E_MNTAPI_DISK_NOT_SAFE', 24005),
    ('VIX_E_MNTAPI_DISK_CANT_OPEN', 24006),
    ('VIX_E_MNTAPI_CANT_READ_PARTS', 24007),
    ('VIX_E_MNTAPI_UMOUNT_APP_NOT_FOUND', 24008),
    ('VIX_E_MNTAPI_UMOUNT', 24009),
    ('VIX_E_MNTAPI_NO_MOUNTABLE_PARTITONS', 24010),
    ('VIX_E_MNTAPI_PARTITION_RANGE', 24011),
    ('VIX_E_MNTAPI_PERM', 24012),
    ('VIX_E_MNTAPI_DICT', 24013),
    ('VIX_E_MNTAPI_DICT_LOCKED', 24014),
    ('VIX_E_MNTAPI_OPEN_HANDLES', 24015),
    ('VIX_E_MNTAPI_CANT_MAKE_VAR_DIR', 24016),
    ('VIX_E_MNTAPI_NO_ROOT', 24017),
    ('VIX_E_MNTAPI_LOOP_FAILED', 24018),
    ('VIX_E_MNTAPI_DAEMON', 24019),
    ('VIX_E_MNTAPI_INTERNAL', 24020),
    ('VIX_E_MNTAPI_SYSTEM', 24021),
    ('VIX_E_MNTAPI_NO_CONNECTION_DETAILS', 24022),
    ('VIX_E_MNTAPI_INCOMPATIBLE_VERSION', 24300),
    ('VIX_E_MNTAPI_OS_ERROR', 24301),
    ('VIX_E_MNTAPI_DRIVE_LETTER_IN_USE', 24302),
    ('VIX_E_MNTAPI_DRIVE_LETTER_ALREADY_ASSIGNED', 24303),
    ('VIX_E_MNTAPI_VOLUME_NOT_MOUNTED', 24304),
    ('VIX_E_MNTAPI_VOLUME_ALREADY_MOUNTED', 24305),
    ('VIX_E_MNTAPI_FORMAT_FAILURE', 24306),
    ('VIX_E_MNTAPI_NO_DRIVER', 24307),
    ('VIX_E_MNTAPI_ALREADY_OPENED', 24308),
    ('VIX_E_MNTAPI_ITEM_NOT_FOUND', 24309),
    ('VIX_E_MNTAPI_UNSUPPROTED_BOOT_LOADER', 24310),
    ('VIX_E_MNTAPI_UNSUPPROTED_OS', 24311),
    ('VIX_E_MNTAPI_CODECONVERSION', 24312),
    ('VIX_E_MNTAPI_REGWRITE_ERROR', 24313),
    ('VIX_E_MNTAPI_UNSUPPORTED_FT_VOLUME', 24314),
    ('VIX_E_MNTAPI_PARTITION_NOT_FOUND', 24315),
    ('VIX_E_MNTAPI_PUTFILE_ERROR', 24316),
    ('VIX_E_MNTAPI_GETFILE_ERROR', 24317),
    ('VIX_E_MNTAPI_REG_NOT_OPENED', 24318),
    ('VIX_E_MNTAPI_REGDELKEY_ERROR', 24319),
    ('VIX_E_MNTAPI_CREATE_PARTITIONTABLE_ERROR', 24320),
    ('VIX_E_MNTAPI_OPEN_FAILURE', 24321),
    ('VIX_E_MNTAPI_VOLUME_NOT_WRITABLE', 24322),
    ('VIX_ASYNC', 25000),
    ('VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED', 26000),
    ('VIX_E_NET_HTTP_UNSUPPORTED_PROTOCOL', 30001),
    ('VIX_E_NET_HTTP_URL_MALFORMAT', 30003),
    ('VIX_E_NET_HTTP_COULDNT_RESOLVE_PROXY', 30005),
    ('VIX_E_NET_HTTP_COULDNT_RESOLVE_HOST', 30006),
    ('VIX_E_NET_HTTP_COULDNT_CONNECT', 30007),
    ('VIX_E_NET_HTTP_HTTP_RETURNED_ERROR', 30022),
    ('VIX_E_NET_HTTP_OPERATION_TIMEDOUT', 30028),
    ('VIX_E_NET_HTTP_SSL_CONNECT_ERROR', 30035),
    ('VIX_E_NET_HTTP_TOO_MANY_REDIRECTS', 30047),
    ('VIX_E_NET_HTTP_TRANSFER', 30200),
    ('VIX_E_NET_HTTP_SSL_SECURITY', 30201),
    ('VIX_E_NET_HTTP_GENERIC', 30202),
)

#: name -> value for every VixError code.
ERROR_CODES: dict[str, int] = dict(_ERROR_TABLE)
#: value -> name (the first name listed for a value).
ERROR_NAMES: dict[int, str] = {}
for _name, _value in _ERROR_TABLE:
    ERROR_NAMES.setdefault(_value, _name)
    globals()[_name] = _value
del _name, _value

# Names the linters can see (the loop above defines them all at run time).
VIX_OK = ERROR_CODES["VIX_OK"]
VIX_ASYNC = ERROR_CODES["VIX_ASYNC"]
VIX_E_FAIL = ERROR_CODES["VIX_E_FAIL"]
VIX_E_INVALID_ARG = ERROR_CODES["VIX_E_INVALID_ARG"]
VIX_E_FILE_NOT_FOUND = ERROR_CODES["VIX_E_FILE_NOT_FOUND"]
VIX_E_NOT_SUPPORTED = ERROR_CODES["VIX_E_NOT_SUPPORTED"]
VIX_E_INCORRECT_FILE_TYPE = ERROR_CODES["VIX_E_INCORRECT_FILE_TYPE"]
VIX_E_FILE_READ_ONLY = ERROR_CODES["VIX_E_FILE_READ_ONLY"]
VIX_E_FILE_ALREADY_EXISTS = ERROR_CODES["VIX_E_FILE_ALREADY_EXISTS"]
VIX_E_FILE_ALREADY_LOCKED = ERROR_CODES["VIX_E_FILE_ALREADY_LOCKED"]
VIX_E_BUFFER_TOOSMALL = ERROR_CODES["VIX_E_BUFFER_TOOSMALL"]
VIX_E_DISK_OUTOFRANGE = ERROR_CODES["VIX_E_DISK_OUTOFRANGE"]
VIX_E_DISK_INVALIDDISK = ERROR_CODES["VIX_E_DISK_INVALIDDISK"]
VIX_E_DISK_KEY_NOTFOUND = ERROR_CODES["VIX_E_DISK_KEY_NOTFOUND"]
VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED = ERROR_CODES["VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED"]

# ---------------------------------------------------------------------------
# Callback types
# ---------------------------------------------------------------------------


def _nullable(functype):
    """Subclass a CFUNCTYPE so that ``None`` may be passed for NULL."""

    class Nullable(functype):
        _flags_ = functype._flags_
        _restype_ = functype._restype_
        _argtypes_ = functype._argtypes_

        @classmethod
        def from_param(cls, obj):
            if obj is None:
                return c_void_p(None)
            return functype.from_param(obj)

    return Nullable


#: ``typedef void (VixDiskLibGenericLogFunc)(const char *fmt, va_list args);``
#: On x86-64 a ``va_list`` parameter is a pointer to ``__va_list_tag``.
VixDiskLibGenericLogFunc = _nullable(CFUNCTYPE(None, c_char_p, c_void_p))
#: ``typedef Bool (*VixDiskLibProgressFunc)(void *progressData, int percentCompleted);``
VixDiskLibProgressFunc = _nullable(CFUNCTYPE(Bool, c_void_p, c_int))
#: ``typedef void (*VixDiskLibCompletionCB)(void *cbData, VixError result);``
VixDiskLibCompletionCB = _nullable(CFUNCTYPE(None, c_void_p, VixError))

# ---------------------------------------------------------------------------
# Structures (natural alignment, x86-64 LP64)
# ---------------------------------------------------------------------------


class VixDiskLibGeometry(Structure):
    _fields_ = [("cylinders", c_uint32), ("heads", c_uint32), ("sectors", c_uint32)]


class VixDiskLibUidPasswdCreds(Structure):
    _fields_ = [("userName", c_char_p), ("password", c_char_p)]


class VixDiskLibSessionIdCreds(Structure):
    _fields_ = [("cookie", c_char_p), ("userName", c_char_p), ("key", c_char_p)]


class VixDiskLibCreds(Union):
    _fields_ = [
        ("uid", VixDiskLibUidPasswdCreds),
        ("sessionId", VixDiskLibSessionIdCreds),
        ("ticketId", c_void_p),  # struct VixDiskLibTicketIdCreds *
    ]


class VixDiskLibVStorageObjectSpec(Structure):
    _fields_ = [("id", c_char_p), ("datastoreMoRef", c_char_p), ("ssId", c_char_p)]


class VixDiskLibDatastoreSpec(Structure):
    _fields_ = [("datastoreMoRef", c_char_p), ("diskFolder", c_char_p)]


class VixDiskLibConnectParamsSpec(Union):
    _fields_ = [
        ("vStorageObjSpec", VixDiskLibVStorageObjectSpec),
        ("dsSpec", VixDiskLibDatastoreSpec),
    ]


class VixDiskLibConnectParams(Structure):
    """128 bytes (VDDK 6.7 - 8.x layout)."""

    _fields_ = [
        ("vmxSpec", c_char_p),  # 0
        ("serverName", c_char_p),  # 8
        ("thumbPrint", c_char_p),  # 16
        ("privateUse", c_long),  # 24
        ("credType", VixDiskLibCredType),  # 32
        ("creds", VixDiskLibCreds),  # 40
        ("port", c_uint32),  # 64
        ("nfcHostPort", c_uint32),  # 68
        ("vimApiVer", c_char_p),  # 72
        ("reserved", c_char * 8),  # 80
        ("state", c_void_p),  # 88  VixDiskLibConnectParamsState *
        ("spec", VixDiskLibConnectParamsSpec),  # 96
        ("specType", VixDiskLibSpecType),  # 120
    ]


class VixDiskLibCreateParams(Structure):
    """32 bytes (VDDK 7.0+ layout with the sector sizes)."""

    _fields_ = [
        ("diskType", VixDiskLibDiskType),  # 0
        ("adapterType", VixDiskLibAdapterType),  # 4
        ("hwVersion", c_uint16),  # 8
        ("capacity", VixDiskLibSectorType),  # 16
        ("logicalSectorSize", c_uint32),  # 24
        ("physicalSectorSize", c_uint32),  # 28
    ]


class VixDiskLibInfo(Structure):
    """64 bytes (VDDK 7.0+ layout with the sector sizes)."""

    _fields_ = [
        ("biosGeo", VixDiskLibGeometry),  # 0
        ("physGeo", VixDiskLibGeometry),  # 12
        ("capacity", VixDiskLibSectorType),  # 24
        ("adapterType", VixDiskLibAdapterType),  # 32
        ("numLinks", c_int),  # 36
        ("parentFileNameHint", c_char_p),  # 40
        ("uuid", c_char_p),  # 48
        ("logicalSectorSize", c_uint32),  # 56
        ("physicalSectorSize", c_uint32),  # 60
    ]


class VixDiskLibBlock(Structure):
    _fields_ = [("offset", VixDiskLibSectorType), ("length", VixDiskLibSectorType)]


class VixDiskLibBlockList(Structure):
    """``{ uint32 numBlocks; VixDiskLibBlock blocks[1]; }`` -- 24 bytes.

    The array really has ``numBlocks`` entries; use :meth:`block_array`.
    """

    _fields_ = [("numBlocks", c_uint32), ("blocks", VixDiskLibBlock * 1)]

    def block_array(self):
        n = self.numBlocks
        arr_type = VixDiskLibBlock * max(n, 1)
        return arr_type.from_address(ctypes.addressof(self) + type(self).blocks.offset)[:n]


STRUCT_SIZES = {
    "VixDiskLibConnectParams": 128,
    "VixDiskLibCreateParams": 32,
    "VixDiskLibInfo": 64,
    "VixDiskLibGeometry": 12,
    "VixDiskLibBlock": 16,
    "VixDiskLibBlockList": 24,
}
for _sname, _size in STRUCT_SIZES.items():
    assert ctypes.sizeof(globals()[_sname]) == _size, (_sname, ctypes.sizeof(globals()[_sname]))
del _sname, _size

# ---------------------------------------------------------------------------
# Function prototypes: name -> (restype, argtypes).  46 symbols: the 43
# public VDDK functions + SetInjectedFault, IsFaultEnabled_Func,
# SetConfigOption.
# ---------------------------------------------------------------------------

_PConnectParams = POINTER(VixDiskLibConnectParams)
_PCreateParams = POINTER(VixDiskLibCreateParams)
_Sector = VixDiskLibSectorType

FUNCTIONS: dict[str, tuple] = {
    # lifecycle
    "VixDiskLib_InitEx": (VixError, [c_uint32, c_uint32, VixDiskLibGenericLogFunc, VixDiskLibGenericLogFunc,
                                     VixDiskLibGenericLogFunc, c_char_p, c_char_p]),
    "VixDiskLib_Init": (VixError, [c_uint32, c_uint32, VixDiskLibGenericLogFunc, VixDiskLibGenericLogFunc,
                                   VixDiskLibGenericLogFunc, c_char_p]),
    "VixDiskLib_Exit": (None, []),
    "VixDiskLib_ListTransportModes": (c_char_p, []),
    # connection
    "VixDiskLib_AllocateConnectParams": (_PConnectParams, []),
    "VixDiskLib_FreeConnectParams": (None, [_PConnectParams]),
    "VixDiskLib_Connect": (VixError, [_PConnectParams, POINTER(VixDiskLibConnection)]),
    "VixDiskLib_ConnectEx": (VixError, [_PConnectParams, Bool, c_char_p, c_char_p, POINTER(VixDiskLibConnection)]),
    "VixDiskLib_Disconnect": (VixError, [VixDiskLibConnection]),
    "VixDiskLib_Cleanup": (VixError, [_PConnectParams, POINTER(c_uint32), POINTER(c_uint32)]),
    "VixDiskLib_PrepareForAccess": (VixError, [_PConnectParams, c_char_p]),
    "VixDiskLib_EndAccess": (VixError, [_PConnectParams, c_char_p]),
    "VixDiskLib_GetConnectParams": (VixError, [VixDiskLibConnection, POINTER(_PConnectParams)]),
    # disk lifecycle / info
    "VixDiskLib_Create": (VixError, [VixDiskLibConnection, c_char_p, _PCreateParams, VixDiskLibProgressFunc,
                                     c_void_p]),
    "VixDiskLib_CreateChild": (VixError, [VixDiskLibHandle, c_char_p, VixDiskLibDiskType, VixDiskLibProgressFunc,
                                          c_void_p]),
    "VixDiskLib_Open": (VixError, [VixDiskLibConnection, c_char_p, c_uint32, POINTER(VixDiskLibHandle)]),
    "VixDiskLib_Close": (VixError, [VixDiskLibHandle]),
    "VixDiskLib_GetInfo": (VixError, [VixDiskLibHandle, POINTER(POINTER(VixDiskLibInfo))]),
    "VixDiskLib_FreeInfo": (None, [POINTER(VixDiskLibInfo)]),
    "VixDiskLib_GetTransportMode": (c_char_p, [VixDiskLibHandle]),
    # I/O (buffers are void * so bytearrays, ctypes arrays and None all work)
    "VixDiskLib_Read": (VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p]),
    "VixDiskLib_Write": (VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p]),
    "VixDiskLib_ReadAsync": (VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p, VixDiskLibCompletionCB,
                                        c_void_p]),
    "VixDiskLib_WriteAsync": (VixError, [VixDiskLibHandle, _Sector, _Sector, c_void_p, VixDiskLibCompletionCB,
                                         c_void_p]),
    "VixDiskLib_Wait": (VixError, [VixDiskLibHandle]),
    "VixDiskLib_Flush": (VixError, [VixDiskLibHandle]),
    "VixDiskLib_QueryAllocatedBlocks": (VixError, [VixDiskLibHandle, _Sector, _Sector, _Sector,
                                                   POINTER(POINTER(VixDiskLibBlockList))]),
    "VixDiskLib_FreeBlockList": (VixError, [POINTER(VixDiskLibBlockList)]),
    # metadata
    "VixDiskLib_GetMetadataKeys": (VixError, [VixDiskLibHandle, c_void_p, c_size_t, POINTER(c_size_t)]),
    "VixDiskLib_ReadMetadata": (VixError, [VixDiskLibHandle, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    "VixDiskLib_WriteMetadata": (VixError, [VixDiskLibHandle, c_char_p, c_char_p]),
    # maintenance
    "VixDiskLib_Clone": (VixError, [VixDiskLibConnection, c_char_p, VixDiskLibConnection, c_char_p, _PCreateParams,
                                    VixDiskLibProgressFunc, c_void_p, Bool]),
    "VixDiskLib_SpaceNeededForClone": (VixError, [VixDiskLibHandle, VixDiskLibDiskType, POINTER(c_uint64)]),
    "VixDiskLib_Grow": (VixError, [VixDiskLibConnection, c_char_p, _Sector, Bool, VixDiskLibProgressFunc,
                                   c_void_p]),
    "VixDiskLib_Shrink": (VixError, [VixDiskLibHandle, VixDiskLibProgressFunc, c_void_p]),
    "VixDiskLib_Defragment": (VixError, [VixDiskLibHandle, VixDiskLibProgressFunc, c_void_p]),
    "VixDiskLib_Rename": (VixError, [c_char_p, c_char_p]),
    "VixDiskLib_Unlink": (VixError, [VixDiskLibConnection, c_char_p]),
    "VixDiskLib_CheckRepair": (VixError, [VixDiskLibConnection, c_char_p, Bool]),
    "VixDiskLib_IsAttachPossible": (VixError, [VixDiskLibHandle, VixDiskLibHandle]),
    "VixDiskLib_Attach": (VixError, [VixDiskLibHandle, VixDiskLibHandle]),
    # errors (GetErrorText returns malloc'd memory: keep it a raw pointer so it can be freed)
    "VixDiskLib_GetErrorText": (c_void_p, [VixError, c_char_p]),
    "VixDiskLib_FreeErrorText": (None, [c_void_p]),
    # undocumented exports of the real library
    "VixDiskLib_SetInjectedFault": (Bool, [c_int, Bool, c_int]),
    "VixDiskLib_IsFaultEnabled_Func": (Bool, [c_int, POINTER(c_int)]),
    "VixDiskLib_SetConfigOption": (None, [c_int, c_void_p]),
}
assert len(FUNCTIONS) == 46

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
LIB_NAME = "libvixDiskLib.so"


def library_candidates() -> list[Path]:
    """Where :func:`find_library` looks, in order (ignoring $VIXDISKLIB_LIB)."""
    dirs = []
    target = os.environ.get("CARGO_TARGET_DIR")
    roots = [REPO_ROOT / "target"]
    if target:
        roots.insert(0, Path(target) if Path(target).is_absolute() else REPO_ROOT / target)
    for profile in ("release", "debug"):
        for root in roots:
            dirs.append(root / profile / LIB_NAME)
    return dirs


def find_library() -> Path:
    env = os.environ.get("VIXDISKLIB_LIB")
    if env:
        p = Path(env)
        if not p.exists():
            raise FileNotFoundError(f"VIXDISKLIB_LIB={env} does not exist")
        return p
    for cand in library_candidates():
        if cand.exists():
            return cand
    raise FileNotFoundError(
        "libvixDiskLib.so not found; build it with `cargo build --release` or set VIXDISKLIB_LIB "
        f"(looked in: {', '.join(str(c) for c in library_candidates())})"
    )


_loaded: dict[str, ctypes.CDLL] = {}
_load_lock = threading.Lock()


def declare(dll: ctypes.CDLL) -> list[str]:
    """Set argtypes/restype on every function of :data:`FUNCTIONS` present in
    ``dll``.  Returns the names that are missing from the library."""
    missing = []
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(dll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = list(argtypes)
    return missing


def load(path: Optional[os.PathLike | str] = None) -> ctypes.CDLL:
    """Load (once per path) and declare the library.  ``dll.missing_functions``
    lists any of the 46 functions the library does not export."""
    p = str(Path(path) if path is not None else find_library())
    with _load_lock:
        dll = _loaded.get(p)
        if dll is None:
            dll = ctypes.CDLL(p)
            dll.missing_functions = declare(dll)
            dll.path = p
            _loaded[p] = dll
        return dll


# ---------------------------------------------------------------------------
# va_list formatting for the log callbacks
# ---------------------------------------------------------------------------

_libc = ctypes.CDLL(None)
_vsnprintf = _libc.vsnprintf
_vsnprintf.restype = c_int
_vsnprintf.argtypes = [c_void_p, c_size_t, c_char_p, c_void_p]


def format_va_list(fmt: Optional[bytes], va_list: Optional[int], size: int = 8192) -> str:
    """Format a printf format + ``va_list`` (as received by a log callback)
    with the C library's ``vsnprintf``.  May be called only once per va_list."""
    if fmt is None:
        return ""
    buf = ctypes.create_string_buffer(size)
    n = _vsnprintf(buf, size, fmt, va_list)
    if n < 0:
        return fmt.decode("utf-8", "replace")
    return buf.value.decode("utf-8", "replace")


# Log trampolines must outlive Exit (the library may keep the pointers).
_keepalive: list = []

# ---------------------------------------------------------------------------
# Pythonic wrapper
# ---------------------------------------------------------------------------


class VixErrorException(Exception):
    """A VixDiskLib call returned something other than VIX_OK.

    ``code`` is the full 64-bit VixError, ``name`` the VIX_E_* name of its low
    16 bits, ``text`` the library's own GetErrorText message, ``function`` the
    C function that failed."""

    def __init__(self, code: int, function: str = "", text: Optional[str] = None):
        self.code = int(code)
        self.function = function
        self.name = ERROR_NAMES.get(VIX_ERROR_CODE(self.code), "VIX_E_<unknown>")
        self.text = text
        msg = f"{function}: {self.name} ({self.code})"
        if text:
            msg += f": {text}"
        super().__init__(msg)


def error_text(dll: ctypes.CDLL, code: int) -> Optional[str]:
    """``VixDiskLib_GetErrorText`` + ``FreeErrorText`` as one call."""
    ptr = dll.VixDiskLib_GetErrorText(code, None)
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        dll.VixDiskLib_FreeErrorText(ptr)


def _check(dll: ctypes.CDLL, err: int, function: str) -> None:
    if err != VIX_OK:
        raise VixErrorException(err, function, error_text(dll, err))


def _path_bytes(path) -> bytes:
    return os.fsencode(os.fspath(path))


LogCallback = Callable[[str], None]


class Library:
    """The library as a whole: InitEx/Exit, connections, error texts.

    ``with Library(log=print) as vdl: ...`` calls InitEx on entry and Exit on
    exit.  ``log``/``warn``/``panic`` are Python callables taking the already
    formatted message; None passes NULL (the library's default logging)."""

    def __init__(self, path=None, dll: Optional[ctypes.CDLL] = None):
        self.dll = dll if dll is not None else load(path)
        self.initialized = False

    # -- lifecycle ---------------------------------------------------------
    def _make_log(self, fn: Optional[LogCallback]):
        if fn is None:
            return None

        def tramp(fmt, va):
            try:
                fn(format_va_list(fmt, va))
            except Exception:  # never let a Python error cross into C
                pass

        cb = VixDiskLibGenericLogFunc(tramp)
        _keepalive.append(cb)
        return cb

    def init(self, log: Optional[LogCallback] = None, warn: Optional[LogCallback] = None,
             panic: Optional[LogCallback] = None, libdir=None, config=None,
             major: int = 6, minor: int = 7) -> "Library":
        err = self.dll.VixDiskLib_InitEx(
            major, minor, self._make_log(log), self._make_log(warn), self._make_log(panic),
            None if libdir is None else _path_bytes(libdir),
            None if config is None else _path_bytes(config),
        )
        _check(self.dll, err, "VixDiskLib_InitEx")
        self.initialized = True
        return self

    def exit(self) -> None:
        if self.initialized:
            self.dll.VixDiskLib_Exit()
            self.initialized = False

    def __enter__(self):
        if not self.initialized:
            self.init()
        return self

    def __exit__(self, *exc):
        self.exit()

    # -- misc --------------------------------------------------------------
    def error_text(self, code: int) -> Optional[str]:
        return error_text(self.dll, code)

    def list_transport_modes(self) -> Optional[str]:
        s = self.dll.VixDiskLib_ListTransportModes()
        return None if s is None else s.decode()

    def connect(self, read_only: bool = False, transport_modes: Optional[str] = None,
                snapshot_ref: Optional[str] = None, params=None) -> "Connection":
        """``ConnectEx`` to the local host.  ``params`` is an optional
        VixDiskLibConnectParams (allocated with AllocateConnectParams if not
        given, freed on disconnect)."""
        return Connection(self, read_only=read_only, transport_modes=transport_modes,
                          snapshot_ref=snapshot_ref, params=params)

    def rename(self, src, dst) -> None:
        _check(self.dll, self.dll.VixDiskLib_Rename(_path_bytes(src), _path_bytes(dst)), "VixDiskLib_Rename")


@dataclasses.dataclass
class DiskInfo:
    bios_geometry: tuple[int, int, int]  # (cylinders, heads, sectors)
    phys_geometry: tuple[int, int, int]
    capacity: int  # sectors
    adapter_type: int
    num_links: int
    parent_file_name_hint: Optional[str]
    uuid: Optional[str]
    logical_sector_size: int
    physical_sector_size: int


def _progress(fn):
    if fn is None:
        return None

    def tramp(_data, pct):
        try:
            fn(pct)
        except Exception:
            pass
        return 1

    return VixDiskLibProgressFunc(tramp)


class Connection:
    """A local connection (``ConnectEx``); ``close()`` disconnects."""

    def __init__(self, lib: Library, read_only=False, transport_modes=None, snapshot_ref=None, params=None):
        self.lib = lib
        dll = lib.dll
        self._own_params = params is None
        if params is None:
            p = dll.VixDiskLib_AllocateConnectParams()
            if not p:
                raise VixErrorException(VIX_E_FAIL, "VixDiskLib_AllocateConnectParams", "returned NULL")
            self.params = p
        else:
            self.params = ctypes.pointer(params) if isinstance(params, VixDiskLibConnectParams) else params
        conn = VixDiskLibConnection()
        err = dll.VixDiskLib_ConnectEx(
            self.params, 1 if read_only else 0,
            None if snapshot_ref is None else snapshot_ref.encode(),
            None if transport_modes is None else transport_modes.encode(),
            ctypes.byref(conn),
        )
        if err != VIX_OK:
            self._free_params()
            _check(dll, err, "VixDiskLib_ConnectEx")
        self.handle = conn

    def _free_params(self):
        if self._own_params and self.params:
            self.lib.dll.VixDiskLib_FreeConnectParams(self.params)
        self.params = None

    def close(self) -> None:
        if self.handle is not None:
            h, self.handle = self.handle, None
            err = self.lib.dll.VixDiskLib_Disconnect(h)
            self._free_params()
            _check(self.lib.dll, err, "VixDiskLib_Disconnect")

    disconnect = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def create(self, path, capacity: int, disk_type: int = VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
               adapter_type: int = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
               hw_version: int = VIXDISKLIB_HWVERSION_WORKSTATION_5,
               logical_sector_size: int = 0, physical_sector_size: int = 0, progress=None) -> None:
        """``VixDiskLib_Create``; ``capacity`` in sectors."""
        cp = VixDiskLibCreateParams(diskType=disk_type, adapterType=adapter_type, hwVersion=hw_version,
                                    capacity=capacity, logicalSectorSize=logical_sector_size,
                                    physicalSectorSize=physical_sector_size)
        err = self.lib.dll.VixDiskLib_Create(self.handle, _path_bytes(path), ctypes.byref(cp),
                                             _progress(progress), None)
        _check(self.lib.dll, err, "VixDiskLib_Create")

    def open(self, path, flags: int = 0) -> "Disk":
        return Disk(self, path, flags)

    def unlink(self, path) -> None:
        _check(self.lib.dll, self.lib.dll.VixDiskLib_Unlink(self.handle, _path_bytes(path)), "VixDiskLib_Unlink")

    def grow(self, path, capacity: int, update_geometry: bool = True, progress=None) -> None:
        err = self.lib.dll.VixDiskLib_Grow(self.handle, _path_bytes(path), capacity, 1 if update_geometry else 0,
                                           _progress(progress), None)
        _check(self.lib.dll, err, "VixDiskLib_Grow")

    def check_repair(self, path, repair: bool = False) -> None:
        err = self.lib.dll.VixDiskLib_CheckRepair(self.handle, _path_bytes(path), 1 if repair else 0)
        _check(self.lib.dll, err, "VixDiskLib_CheckRepair")

    def clone(self, dst_path, src_conn: "Connection", src_path, capacity: int = 0,
              disk_type: int = VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
              adapter_type: int = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
              hw_version: int = VIXDISKLIB_HWVERSION_WORKSTATION_5, overwrite: bool = False, progress=None) -> None:
        cp = VixDiskLibCreateParams(diskType=disk_type, adapterType=adapter_type, hwVersion=hw_version,
                                    capacity=capacity)
        err = self.lib.dll.VixDiskLib_Clone(self.handle, _path_bytes(dst_path), src_conn.handle,
                                            _path_bytes(src_path), ctypes.byref(cp), _progress(progress), None,
                                            1 if overwrite else 0)
        _check(self.lib.dll, err, "VixDiskLib_Clone")


# One C trampoline serves every async request; cbData carries a request id.
_pending_lock = threading.Lock()
_pending: dict[int, "AsyncRequest"] = {}
_request_ids = itertools.count(1)


class AsyncRequest:
    """One ReadAsync/WriteAsync submission.  ``buffer`` holds the data (for
    reads, filled on completion); ``done`` is a threading.Event; ``result``
    the VixError given to the callback; ``calls`` how often it fired."""

    def __init__(self, kind: str, start: int, count: int, buffer, user_cb=None):
        self.kind = kind
        self.start = start
        self.count = count
        self.buffer = buffer
        self.user_cb = user_cb
        self.result: Optional[int] = None
        self.calls = 0
        self.done = threading.Event()
        self.id = next(_request_ids)

    @property
    def data(self) -> bytes:
        return bytes(self.buffer)

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self.done.wait(timeout)


def _on_complete(cb_data, result):
    with _pending_lock:
        req = _pending.get(cb_data or 0)
        if req is not None:
            req.calls += 1
            req.result = result
    if req is None:
        return
    try:
        if req.user_cb is not None:
            req.user_cb(req)
    finally:
        req.done.set()


_completion_trampoline = VixDiskLibCompletionCB(_on_complete)


class Disk:
    """An open disk (``VixDiskLib_Open``); ``close()`` closes it."""

    def __init__(self, conn: Connection, path, flags: int = 0):
        self.conn = conn
        self.dll = conn.lib.dll
        self.path = os.fspath(path)
        self.flags = flags
        h = VixDiskLibHandle()
        err = self.dll.VixDiskLib_Open(conn.handle, _path_bytes(path), flags, ctypes.byref(h))
        _check(self.dll, err, "VixDiskLib_Open")
        self.handle = h
        self._requests: list[AsyncRequest] = []

    def _h(self):
        if self.handle is None:
            raise ValueError("disk is closed")
        return self.handle

    def close(self) -> None:
        if self.handle is not None:
            h, self.handle = self.handle, None
            _check(self.dll, self.dll.VixDiskLib_Close(h), "VixDiskLib_Close")
            self._forget_done()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- info --------------------------------------------------------------
    def info(self) -> DiskInfo:
        p = POINTER(VixDiskLibInfo)()
        _check(self.dll, self.dll.VixDiskLib_GetInfo(self._h(), ctypes.byref(p)), "VixDiskLib_GetInfo")
        try:
            i = p.contents
            return DiskInfo(
                bios_geometry=(i.biosGeo.cylinders, i.biosGeo.heads, i.biosGeo.sectors),
                phys_geometry=(i.physGeo.cylinders, i.physGeo.heads, i.physGeo.sectors),
                capacity=i.capacity,
                adapter_type=i.adapterType,
                num_links=i.numLinks,
                parent_file_name_hint=None if i.parentFileNameHint is None else i.parentFileNameHint.decode(
                    "utf-8", "replace"),
                uuid=None if i.uuid is None else i.uuid.decode("utf-8", "replace"),
                logical_sector_size=i.logicalSectorSize,
                physical_sector_size=i.physicalSectorSize,
            )
        finally:
            self.dll.VixDiskLib_FreeInfo(p)

    @property
    def capacity(self) -> int:
        return self.info().capacity

    def transport_mode(self) -> Optional[str]:
        s = self.dll.VixDiskLib_GetTransportMode(self._h())
        return None if s is None else s.decode()

    # -- synchronous I/O ---------------------------------------------------
    def read(self, start: int, count: int) -> bytes:
        buf = ctypes.create_string_buffer(count * VIXDISKLIB_SECTOR_SIZE)
        _check(self.dll, self.dll.VixDiskLib_Read(self._h(), start, count, buf), "VixDiskLib_Read")
        return buf.raw

    def read_into(self, start: int, buf) -> None:
        """Read ``len(buf) // 512`` sectors into a writable buffer (bytearray, memoryview...)."""
        n = len(buf)
        if n % VIXDISKLIB_SECTOR_SIZE:
            raise ValueError("buffer length must be a multiple of 512")
        cbuf = (c_char * n).from_buffer(buf)
        _check(self.dll, self.dll.VixDiskLib_Read(self._h(), start, n // VIXDISKLIB_SECTOR_SIZE, cbuf),
               "VixDiskLib_Read")

    def write(self, start: int, data) -> None:
        data = bytes(data)
        if len(data) % VIXDISKLIB_SECTOR_SIZE:
            raise ValueError("data length must be a multiple of 512")
        buf = ctypes.create_string_buffer(data, len(data))
        _check(self.dll, self.dll.VixDiskLib_Write(self._h(), start, len(data) // VIXDISKLIB_SECTOR_SIZE, buf),
               "VixDiskLib_Write")

    def flush(self) -> None:
        _check(self.dll, self.dll.VixDiskLib_Flush(self._h()), "VixDiskLib_Flush")

    # -- asynchronous I/O --------------------------------------------------
    def _submit(self, fn_name: str, req: AsyncRequest) -> AsyncRequest:
        with _pending_lock:
            _pending[req.id] = req
        self._requests.append(req)
        err = getattr(self.dll, fn_name)(self._h(), req.start, req.count, req.buffer,
                                         _completion_trampoline, c_void_p(req.id))
        if err != VIX_ASYNC:
            with _pending_lock:
                _pending.pop(req.id, None)
            self._requests.remove(req)
            _check(self.dll, err, fn_name)
            raise VixErrorException(err, fn_name, "expected VIX_ASYNC, got VIX_OK")
        return req

    def read_async(self, start: int, count: int, callback=None) -> AsyncRequest:
        """``ReadAsync``; raises unless it returned VIX_ASYNC.  The buffer
        and callback are kept alive until the completion fires."""
        buf = ctypes.create_string_buffer(count * VIXDISKLIB_SECTOR_SIZE)
        return self._submit("VixDiskLib_ReadAsync", AsyncRequest("read", start, count, buf, callback))

    def write_async(self, start: int, data, callback=None) -> AsyncRequest:
        data = bytes(data)
        if len(data) % VIXDISKLIB_SECTOR_SIZE:
            raise ValueError("data length must be a multiple of 512")
        buf = ctypes.create_string_buffer(data, len(data))
        return self._submit("VixDiskLib_WriteAsync",
                            AsyncRequest("write", start, len(data) // VIXDISKLIB_SECTOR_SIZE, buf, callback))

    def wait(self) -> None:
        _check(self.dll, self.dll.VixDiskLib_Wait(self._h()), "VixDiskLib_Wait")
        self._forget_done()

    def _forget_done(self):
        keep = []
        with _pending_lock:
            for r in self._requests:
                if r.done.is_set():
                    _pending.pop(r.id, None)
                else:
                    keep.append(r)
        self._requests = keep

    # -- metadata ----------------------------------------------------------
    def metadata_keys(self) -> list[str]:
        need = c_size_t(0)
        err = self.dll.VixDiskLib_GetMetadataKeys(self._h(), None, 0, ctypes.byref(need))
        if err not in (VIX_OK, VIX_E_BUFFER_TOOSMALL):
            _check(self.dll, err, "VixDiskLib_GetMetadataKeys")
        buf = ctypes.create_string_buffer(max(need.value, 1))
        _check(self.dll, self.dll.VixDiskLib_GetMetadataKeys(self._h(), buf, need.value, None),
               "VixDiskLib_GetMetadataKeys")
        raw = buf.raw[: need.value]
        return [k.decode("utf-8", "replace") for k in raw.split(b"\0") if k]

    def read_metadata(self, key: str) -> str:
        need = c_size_t(0)
        err = self.dll.VixDiskLib_ReadMetadata(self._h(), key.encode(), None, 0, ctypes.byref(need))
        if err not in (VIX_OK, VIX_E_BUFFER_TOOSMALL):
            _check(self.dll, err, "VixDiskLib_ReadMetadata")
        buf = ctypes.create_string_buffer(max(need.value, 1))
        _check(self.dll, self.dll.VixDiskLib_ReadMetadata(self._h(), key.encode(), buf, need.value, None),
               "VixDiskLib_ReadMetadata")
        return buf.value.decode("utf-8", "replace")

    def write_metadata(self, key: str, value: str) -> None:
        _check(self.dll, self.dll.VixDiskLib_WriteMetadata(self._h(), key.encode(), value.encode()),
               "VixDiskLib_WriteMetadata")

    # -- allocation --------------------------------------------------------
    def query_allocated_blocks(self, start: int, count: int,
                               chunk: int = VIXDISKLIB_MIN_CHUNK_SIZE) -> list[tuple[int, int]]:
        """``QueryAllocatedBlocks`` -> [(offset, length)] in sectors."""
        p = POINTER(VixDiskLibBlockList)()
        _check(self.dll, self.dll.VixDiskLib_QueryAllocatedBlocks(self._h(), start, count, chunk, ctypes.byref(p)),
               "VixDiskLib_QueryAllocatedBlocks")
        try:
            return [(b.offset, b.length) for b in p.contents.block_array()]
        finally:
            _check(self.dll, self.dll.VixDiskLib_FreeBlockList(p), "VixDiskLib_FreeBlockList")

    # -- maintenance -------------------------------------------------------
    def create_child(self, path, disk_type: int = VIXDISKLIB_DISK_MONOLITHIC_SPARSE, progress=None) -> None:
        err = self.dll.VixDiskLib_CreateChild(self._h(), _path_bytes(path), disk_type, _progress(progress), None)
        _check(self.dll, err, "VixDiskLib_CreateChild")

    def space_needed_for_clone(self, disk_type: int = VIXDISKLIB_DISK_UNKNOWN) -> int:
        out = c_uint64(0)
        _check(self.dll, self.dll.VixDiskLib_SpaceNeededForClone(self._h(), disk_type, ctypes.byref(out)),
               "VixDiskLib_SpaceNeededForClone")
        return out.value

    def shrink(self, progress=None) -> None:
        _check(self.dll, self.dll.VixDiskLib_Shrink(self._h(), _progress(progress), None), "VixDiskLib_Shrink")

    def defragment(self, progress=None) -> None:
        _check(self.dll, self.dll.VixDiskLib_Defragment(self._h(), _progress(progress), None),
               "VixDiskLib_Defragment")

    def attach(self, child: "Disk") -> None:
        """``Attach(self, child)``: afterwards this (parent) handle is invalid."""
        err = self.dll.VixDiskLib_Attach(self._h(), child._h())
        self.handle = None
        _check(self.dll, err, "VixDiskLib_Attach")


def iter_chunks(total: int, step: int) -> Iterable[tuple[int, int]]:
    """(start, count) pairs covering ``total`` sectors in steps of ``step``."""
    s = 0
    while s < total:
        n = min(step, total - s)
        yield s, n
        s += n
