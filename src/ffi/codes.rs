//! `VixError` codes of the `VixDiskLib` C API (values and names exactly as VMware's header).

use super::types::VixError;

// The constants below are plain literals (not macro-generated) so that cbindgen
// emits them as `#define`s in the C header. Values and order follow the VDDK
// header's enum (note that 31 precedes 29).

/// No error: the call succeeded.
pub const VIX_OK: VixError = 0;
/// Generic failure with no more specific code.
pub const VIX_E_FAIL: VixError = 1;
/// Memory could not be allocated.
pub const VIX_E_OUT_OF_MEMORY: VixError = 2;
/// An argument passed to the call is invalid.
pub const VIX_E_INVALID_ARG: VixError = 3;
/// A required file does not exist.
pub const VIX_E_FILE_NOT_FOUND: VixError = 4;
/// The object is in use by another operation.
pub const VIX_E_OBJECT_IS_BUSY: VixError = 5;
/// The operation is not supported.
pub const VIX_E_NOT_SUPPORTED: VixError = 6;
/// A file operation failed.
pub const VIX_E_FILE_ERROR: VixError = 7;
/// No space is left on the storage device.
pub const VIX_E_DISK_FULL: VixError = 8;
/// The file is not of the expected type.
pub const VIX_E_INCORRECT_FILE_TYPE: VixError = 9;
/// The operation was cancelled.
pub const VIX_E_CANCELLED: VixError = 10;
/// The file cannot be written.
pub const VIX_E_FILE_READ_ONLY: VixError = 11;
/// The file to be created already exists.
pub const VIX_E_FILE_ALREADY_EXISTS: VixError = 12;
/// Permission to access the file was denied.
pub const VIX_E_FILE_ACCESS_ERROR: VixError = 13;
/// The file system does not support large files.
pub const VIX_E_REQUIRES_LARGE_FILES: VixError = 14;
/// The file is locked by another user or process.
pub const VIX_E_FILE_ALREADY_LOCKED: VixError = 15;
/// An internal configuration database error occurred.
pub const VIX_E_VMDB: VixError = 16;
/// The operation is not supported on remote objects.
pub const VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT: VixError = 20;
/// The file exceeds the supported size.
pub const VIX_E_FILE_TOO_BIG: VixError = 21;
/// The file name or path is not valid.
pub const VIX_E_FILE_NAME_INVALID: VixError = 22;
/// The object already exists.
pub const VIX_E_ALREADY_EXISTS: VixError = 23;
/// The supplied buffer is too small.
pub const VIX_E_BUFFER_TOOSMALL: VixError = 24;
/// The requested object was not found.
pub const VIX_E_OBJECT_NOT_FOUND: VixError = 25;
/// There is no connection to the host.
pub const VIX_E_HOST_NOT_CONNECTED: VixError = 26;
/// A string is not valid UTF-8.
pub const VIX_E_INVALID_UTF8_STRING: VixError = 27;
/// The same operation is already running.
pub const VIX_E_OPERATION_ALREADY_IN_PROGRESS: VixError = 31;
/// A job has not finished yet.
pub const VIX_E_UNFINISHED_JOB: VixError = 29;
/// A key or password is required.
pub const VIX_E_NEED_KEY: VixError = 30;
/// A license problem prevents the operation.
pub const VIX_E_LICENSE: VixError = 32;
/// The host of the virtual machine is disconnected.
pub const VIX_E_VM_HOST_DISCONNECTED: VixError = 34;
/// Authentication failed.
pub const VIX_E_AUTHENTICATION_FAIL: VixError = 35;
/// The connection to the host was lost.
pub const VIX_E_HOST_CONNECTION_LOST: VixError = 36;
/// The name is already in use.
pub const VIX_E_DUPLICATE_NAME: VixError = 41;
/// An argument exceeds its allowed size.
pub const VIX_E_ARGUMENT_TOO_BIG: VixError = 44;
/// The handle is not valid.
pub const VIX_E_INVALID_HANDLE: VixError = 1000;
/// The operation does not apply to this kind of handle.
pub const VIX_E_NOT_SUPPORTED_ON_HANDLE_TYPE: VixError = 1001;
/// Too many handles are open.
pub const VIX_E_TOO_MANY_HANDLES: VixError = 1002;
/// The requested item was not found.
pub const VIX_E_NOT_FOUND: VixError = 2000;
/// A value has the wrong type.
pub const VIX_E_TYPE_MISMATCH: VixError = 2001;
/// XML input could not be parsed.
pub const VIX_E_INVALID_XML: VixError = 2002;
/// Timed out waiting for the guest tools.
pub const VIX_E_TIMEOUT_WAITING_FOR_TOOLS: VixError = 3000;
/// The command is not recognized.
pub const VIX_E_UNRECOGNIZED_COMMAND: VixError = 3001;
/// The guest OS does not support the operation.
pub const VIX_E_OP_NOT_SUPPORTED_ON_GUEST: VixError = 3003;
/// A program could not be started.
pub const VIX_E_PROGRAM_NOT_STARTED: VixError = 3004;
/// A read-only virtual machine cannot be started.
pub const VIX_E_CANNOT_START_READ_ONLY_VM: VixError = 3005;
/// The virtual machine is not running.
pub const VIX_E_VM_NOT_RUNNING: VixError = 3006;
/// The virtual machine is running.
pub const VIX_E_VM_IS_RUNNING: VixError = 3007;
/// Connecting to the virtual machine failed.
pub const VIX_E_CANNOT_CONNECT_TO_VM: VixError = 3008;
/// Power-operation scripts are unavailable.
pub const VIX_E_POWEROP_SCRIPTS_NOT_AVAILABLE: VixError = 3009;
/// No guest operating system is installed.
pub const VIX_E_NO_GUEST_OS_INSTALLED: VixError = 3010;
/// The host lacks memory to run the virtual machine.
pub const VIX_E_VM_INSUFFICIENT_HOST_MEMORY: VixError = 3011;
/// Suspending the virtual machine failed.
pub const VIX_E_SUSPEND_ERROR: VixError = 3012;
/// The host has too few CPUs for the virtual machine.
pub const VIX_E_VM_NOT_ENOUGH_CPUS: VixError = 3013;
/// The host user lacks permission.
pub const VIX_E_HOST_USER_PERMISSIONS: VixError = 3014;
/// The guest user lacks permission.
pub const VIX_E_GUEST_USER_PERMISSIONS: VixError = 3015;
/// The guest tools are not running.
pub const VIX_E_TOOLS_NOT_RUNNING: VixError = 3016;
/// Guest operations are disabled.
pub const VIX_E_GUEST_OPERATIONS_PROHIBITED: VixError = 3017;
/// Anonymous guest operations are disabled.
pub const VIX_E_ANON_GUEST_OPERATIONS_PROHIBITED: VixError = 3018;
/// Guest operations as administrator are disabled.
pub const VIX_E_ROOT_GUEST_OPERATIONS_PROHIBITED: VixError = 3019;
/// The anonymous guest account is missing.
pub const VIX_E_MISSING_ANON_GUEST_ACCOUNT: VixError = 3023;
/// Guest authentication failed.
pub const VIX_E_CANNOT_AUTHENTICATE_WITH_GUEST: VixError = 3024;
/// The guest did not recognize the command.
pub const VIX_E_UNRECOGNIZED_COMMAND_IN_GUEST: VixError = 3025;
/// Guest operations from the console user are disabled.
pub const VIX_E_CONSOLE_GUEST_OPERATIONS_PROHIBITED: VixError = 3026;
/// Only the console user may do this.
pub const VIX_E_MUST_BE_CONSOLE_USER: VixError = 3027;
/// The virtual machine waits for a dialog answer but no UI exists.
pub const VIX_E_VMX_MSG_DIALOG_AND_NO_UI: VixError = 3028;
/// The login type does not permit the operation.
pub const VIX_E_OPERATION_NOT_ALLOWED_FOR_LOGIN_TYPE: VixError = 3031;
/// The login type is not supported.
pub const VIX_E_LOGIN_TYPE_NOT_SUPPORTED: VixError = 3032;
/// The guest forbids empty passwords.
pub const VIX_E_EMPTY_PASSWORD_NOT_ALLOWED_IN_GUEST: VixError = 3033;
/// No interactive session exists.
pub const VIX_E_INTERACTIVE_SESSION_NOT_PRESENT: VixError = 3034;
/// The interactive session belongs to another user.
pub const VIX_E_INTERACTIVE_SESSION_USER_MISMATCH: VixError = 3035;
/// Powering on the virtual machine failed.
pub const VIX_E_CANNOT_POWER_ON_VM: VixError = 3041;
/// No display server is available.
pub const VIX_E_NO_DISPLAY_SERVER: VixError = 3043;
/// Too many logons are active.
pub const VIX_E_TOO_MANY_LOGONS: VixError = 3046;
/// The authentication session is not valid.
pub const VIX_E_INVALID_AUTHENTICATION_SESSION: VixError = 3047;
/// The virtual machine was not found.
pub const VIX_E_VM_NOT_FOUND: VixError = 4000;
/// The virtual hardware version does not support this.
pub const VIX_E_NOT_SUPPORTED_FOR_VM_VERSION: VixError = 4001;
/// The virtual machine configuration is unreadable.
pub const VIX_E_CANNOT_READ_VM_CONFIG: VixError = 4002;
/// The operation is not allowed on a template.
pub const VIX_E_TEMPLATE_VM: VixError = 4003;
/// The virtual machine is already loaded.
pub const VIX_E_VM_ALREADY_LOADED: VixError = 4004;
/// The virtual machine is already up to date.
pub const VIX_E_VM_ALREADY_UP_TO_DATE: VixError = 4006;
/// The guest OS is not supported.
pub const VIX_E_VM_UNSUPPORTED_GUEST: VixError = 4011;
/// The property is unknown.
pub const VIX_E_UNRECOGNIZED_PROPERTY: VixError = 6000;
/// The property value is invalid.
pub const VIX_E_INVALID_PROPERTY_VALUE: VixError = 6001;
/// The property cannot be changed.
pub const VIX_E_READ_ONLY_PROPERTY: VixError = 6002;
/// A required property is missing.
pub const VIX_E_MISSING_REQUIRED_PROPERTY: VixError = 6003;
/// Serialized data is corrupt.
pub const VIX_E_INVALID_SERIALIZED_DATA: VixError = 6004;
/// The property has a different type.
pub const VIX_E_PROPERTY_TYPE_MISMATCH: VixError = 6005;
/// The virtual machine index is out of range.
pub const VIX_E_BAD_VM_INDEX: VixError = 8000;
/// A protocol message header is malformed.
pub const VIX_E_INVALID_MESSAGE_HEADER: VixError = 10000;
/// A protocol message body is malformed.
pub const VIX_E_INVALID_MESSAGE_BODY: VixError = 10001;
/// A snapshot parameter is invalid.
pub const VIX_E_SNAPSHOT_INVAL: VixError = 13000;
/// The snapshot state file could not be accessed.
pub const VIX_E_SNAPSHOT_DUMPER: VixError = 13001;
/// A disk error occurred during a snapshot operation.
pub const VIX_E_SNAPSHOT_DISKLIB: VixError = 13002;
/// The snapshot does not exist.
pub const VIX_E_SNAPSHOT_NOTFOUND: VixError = 13003;
/// The snapshot already exists.
pub const VIX_E_SNAPSHOT_EXISTS: VixError = 13004;
/// The snapshot format version is not supported.
pub const VIX_E_SNAPSHOT_VERSION: VixError = 13005;
/// Permission for the snapshot operation was denied.
pub const VIX_E_SNAPSHOT_NOPERM: VixError = 13006;
/// The snapshot configuration is invalid.
pub const VIX_E_SNAPSHOT_CONFIG: VixError = 13007;
/// The snapshot state was not changed.
pub const VIX_E_SNAPSHOT_NOCHANGE: VixError = 13008;
/// Saving the checkpoint state failed.
pub const VIX_E_SNAPSHOT_CHECKPOINT: VixError = 13009;
/// Snapshot operations are locked.
pub const VIX_E_SNAPSHOT_LOCKED: VixError = 13010;
/// The snapshot tree is inconsistent.
pub const VIX_E_SNAPSHOT_INCONSISTENT: VixError = 13011;
/// The snapshot name is too long.
pub const VIX_E_SNAPSHOT_NAMETOOLONG: VixError = 13012;
/// The snapshot file could not be accessed.
pub const VIX_E_SNAPSHOT_VIXFILE: VixError = 13013;
/// A disk involved in the snapshot is locked.
pub const VIX_E_SNAPSHOT_DISKLOCKED: VixError = 13014;
/// A disk is used more than once.
pub const VIX_E_SNAPSHOT_DUPLICATEDDISK: VixError = 13015;
/// Independent disks cannot be snapshotted.
pub const VIX_E_SNAPSHOT_INDEPENDENTDISK: VixError = 13016;
/// The snapshot name is ambiguous.
pub const VIX_E_SNAPSHOT_NONUNIQUE_NAME: VixError = 13017;
/// Memory snapshots are impossible with independent disks.
pub const VIX_E_SNAPSHOT_MEMORY_ON_INDEPENDENT_DISK: VixError = 13018;
/// The snapshot limit has been reached.
pub const VIX_E_SNAPSHOT_MAXSNAPSHOTS: VixError = 13019;
/// Too little free space for the snapshot.
pub const VIX_E_SNAPSHOT_MIN_FREE_SPACE: VixError = 13020;
/// The snapshot tree is too deep.
pub const VIX_E_SNAPSHOT_HIERARCHY_TOODEEP: VixError = 13021;
/// The snapshot cannot be reverted to.
pub const VIX_E_SNAPSHOT_NOT_REVERTABLE: VixError = 13024;
/// An invalid value was given to the host disk layer.
pub const VIX_E_HOST_DISK_INVALID_VALUE: VixError = 14003;
/// The host disk has an unsupported sector size.
pub const VIX_E_HOST_DISK_SECTORSIZE: VixError = 14004;
/// The end of a host file was reached unexpectedly.
pub const VIX_E_HOST_FILE_ERROR_EOF: VixError = 14005;
/// The network block device handshake failed.
pub const VIX_E_HOST_NETBLKDEV_HANDSHAKE: VixError = 14006;
/// A network socket could not be created.
pub const VIX_E_HOST_SOCKET_CREATION_ERROR: VixError = 14007;
/// The server could not be found.
pub const VIX_E_HOST_SERVER_NOT_FOUND: VixError = 14008;
/// The server refused the connection.
pub const VIX_E_HOST_NETWORK_CONN_REFUSED: VixError = 14009;
/// A TCP socket error occurred.
pub const VIX_E_HOST_TCP_SOCKET_ERROR: VixError = 14010;
/// The TCP connection was lost.
pub const VIX_E_HOST_TCP_CONN_LOST: VixError = 14011;
/// The NBD hash file volume is unavailable.
pub const VIX_E_HOST_NBD_HASHFILE_VOLUME: VixError = 14012;
/// The NBD hash file could not be initialized.
pub const VIX_E_HOST_NBD_HASHFILE_INIT: VixError = 14013;
/// The server is shutting down.
pub const VIX_E_HOST_SERVER_SHUTDOWN: VixError = 14014;
/// The server is not available.
pub const VIX_E_HOST_SERVER_NOT_AVAILABLE: VixError = 14015;
/// A disk argument or state is invalid.
pub const VIX_E_DISK_INVAL: VixError = 16000;
/// The disk library is not initialized.
pub const VIX_E_DISK_NOINIT: VixError = 16001;
/// Disk input/output failed.
pub const VIX_E_DISK_NOIO: VixError = 16002;
/// The disk chain is incomplete.
pub const VIX_E_DISK_PARTIALCHAIN: VixError = 16003;
/// The disk is damaged but repairable.
pub const VIX_E_DISK_NEEDSREPAIR: VixError = 16006;
/// The access lies beyond the disk's end.
pub const VIX_E_DISK_OUTOFRANGE: VixError = 16007;
/// A parent disk's content ID does not match.
pub const VIX_E_DISK_CID_MISMATCH: VixError = 16008;
/// The disk cannot be shrunk.
pub const VIX_E_DISK_CANTSHRINK: VixError = 16009;
/// The partition table does not match.
pub const VIX_E_DISK_PARTMISMATCH: VixError = 16010;
/// The disk format version is not supported.
pub const VIX_E_DISK_UNSUPPORTEDDISKVERSION: VixError = 16011;
/// A parent disk could not be opened.
pub const VIX_E_DISK_OPENPARENT: VixError = 16012;
/// The disk does not support this feature.
pub const VIX_E_DISK_NOTSUPPORTED: VixError = 16013;
/// The disk is encrypted and needs a key.
pub const VIX_E_DISK_NEEDKEY: VixError = 16014;
/// The encryption key cannot be overridden.
pub const VIX_E_DISK_NOKEYOVERRIDE: VixError = 16015;
/// The disk is not encrypted.
pub const VIX_E_DISK_NOTENCRYPTED: VixError = 16016;
/// No encryption key is available.
pub const VIX_E_DISK_NOKEY: VixError = 16017;
/// The partition table is invalid.
pub const VIX_E_DISK_INVALIDPARTITIONTABLE: VixError = 16018;
/// Only normal sparse disks are supported here.
pub const VIX_E_DISK_NOTNORMAL: VixError = 16019;
/// The disk descriptor is not encrypted.
pub const VIX_E_DISK_NOTENCDESC: VixError = 16020;
/// The disk must be on a VMFS file system.
pub const VIX_E_DISK_NEEDVMFS: VixError = 16022;
/// The raw device is too large.
pub const VIX_E_DISK_RAWTOOBIG: VixError = 16024;
/// Too many files are open.
pub const VIX_E_DISK_TOOMANYOPENFILES: VixError = 16027;
/// The redo log chain is too long.
pub const VIX_E_DISK_TOOMANYREDO: VixError = 16028;
/// The raw device is too small.
pub const VIX_E_DISK_RAWTOOSMALL: VixError = 16029;
/// The disk chain is invalid.
pub const VIX_E_DISK_INVALIDCHAIN: VixError = 16030;
/// The metadata key does not exist.
pub const VIX_E_DISK_KEY_NOTFOUND: VixError = 16052;
/// A disk subsystem failed to initialize.
pub const VIX_E_DISK_SUBSYSTEM_INIT_FAIL: VixError = 16053;
/// The connection handle is not valid.
pub const VIX_E_DISK_INVALID_CONNECTION: VixError = 16054;
/// The text encoding is inconsistent.
pub const VIX_E_DISK_ENCODING: VixError = 16061;
/// The disk is damaged beyond repair.
pub const VIX_E_DISK_CANTREPAIR: VixError = 16062;
/// The file is not a valid virtual disk.
pub const VIX_E_DISK_INVALIDDISK: VixError = 16063;
/// No license permits this disk operation.
pub const VIX_E_DISK_NOLICENSE: VixError = 16064;
/// The device does not exist.
pub const VIX_E_DISK_NODEVICE: VixError = 16065;
/// The device is not supported.
pub const VIX_E_DISK_UNSUPPORTEDDEVICE: VixError = 16066;
/// The parent and child capacities differ.
pub const VIX_E_DISK_CAPACITY_MISMATCH: VixError = 16067;
/// This disk type may not have a parent.
pub const VIX_E_DISK_PARENT_NOTALLOWED: VixError = 16068;
/// A root disk cannot be attached as a child.
pub const VIX_E_DISK_ATTACH_ROOTLINK: VixError = 16069;
/// The encryption algorithm is unknown.
pub const VIX_E_CRYPTO_UNKNOWN_ALGORITHM: VixError = 17000;
/// A crypto buffer has the wrong size.
pub const VIX_E_CRYPTO_BAD_BUFFER_SIZE: VixError = 17001;
/// The crypto operation is invalid.
pub const VIX_E_CRYPTO_INVALID_OPERATION: VixError = 17002;
/// The random number source failed.
pub const VIX_E_CRYPTO_RANDOM_DEVICE: VixError = 17003;
/// A password is required.
pub const VIX_E_CRYPTO_NEED_PASSWORD: VixError = 17004;
/// The password is wrong.
pub const VIX_E_CRYPTO_BAD_PASSWORD: VixError = 17005;
/// The crypto item is not in the dictionary.
pub const VIX_E_CRYPTO_NOT_IN_DICTIONARY: VixError = 17006;
/// Cryptography is unavailable.
pub const VIX_E_CRYPTO_NO_CRYPTO: VixError = 17007;
/// A cryptographic error occurred.
pub const VIX_E_CRYPTO_ERROR: VixError = 17008;
/// Crypto data is malformed.
pub const VIX_E_CRYPTO_BAD_FORMAT: VixError = 17009;
/// The crypto object is locked.
pub const VIX_E_CRYPTO_LOCKED: VixError = 17010;
/// The crypto object is empty.
pub const VIX_E_CRYPTO_EMPTY: VixError = 17011;
/// The key safe locator is invalid.
pub const VIX_E_CRYPTO_KEYSAFE_LOCATOR: VixError = 17012;
/// Connecting to the host failed.
pub const VIX_E_CANNOT_CONNECT_TO_HOST: VixError = 18000;
/// The operation is only for local hosts.
pub const VIX_E_NOT_FOR_REMOTE_HOST: VixError = 18001;
/// The host name is malformed.
pub const VIX_E_INVALID_HOSTNAME_SPECIFICATION: VixError = 18002;
/// Screen capture failed.
pub const VIX_E_SCREEN_CAPTURE_ERROR: VixError = 19000;
/// The screen capture format is unsupported.
pub const VIX_E_SCREEN_CAPTURE_BAD_FORMAT: VixError = 19001;
/// Compressing the screen capture failed.
pub const VIX_E_SCREEN_CAPTURE_COMPRESSION_FAIL: VixError = 19002;
/// The screen capture is too large.
pub const VIX_E_SCREEN_CAPTURE_LARGE_DATA: VixError = 19003;
/// Guest volumes could not be quiesced.
pub const VIX_E_GUEST_VOLUMES_NOT_FROZEN: VixError = 20000;
/// The path is not a regular file.
pub const VIX_E_NOT_A_FILE: VixError = 20001;
/// The path is not a directory.
pub const VIX_E_NOT_A_DIRECTORY: VixError = 20002;
/// The process does not exist.
pub const VIX_E_NO_SUCH_PROCESS: VixError = 20003;
/// The file name is too long.
pub const VIX_E_FILE_NAME_TOO_LONG: VixError = 20004;
/// The operation is disabled.
pub const VIX_E_OPERATION_DISABLED: VixError = 20005;
/// The tools installation image is missing.
pub const VIX_E_TOOLS_INSTALL_NO_IMAGE: VixError = 21000;
/// The tools installation image is inaccessible.
pub const VIX_E_TOOLS_INSTALL_IMAGE_INACCESIBLE: VixError = 21001;
/// No device is available for the tools installer.
pub const VIX_E_TOOLS_INSTALL_NO_DEVICE: VixError = 21002;
/// The tools installer device is not connected.
pub const VIX_E_TOOLS_INSTALL_DEVICE_NOT_CONNECTED: VixError = 21003;
/// The tools installation was cancelled.
pub const VIX_E_TOOLS_INSTALL_CANCELLED: VixError = 21004;
/// The tools installation could not start.
pub const VIX_E_TOOLS_INSTALL_INIT_FAILED: VixError = 21005;
/// Automatic tools installation is unsupported.
pub const VIX_E_TOOLS_INSTALL_AUTO_NOT_SUPPORTED: VixError = 21006;
/// The guest is not ready for tools installation.
pub const VIX_E_TOOLS_INSTALL_GUEST_NOT_READY: VixError = 21007;
/// The tools installer signature check failed.
pub const VIX_E_TOOLS_INSTALL_SIG_CHECK_FAILED: VixError = 21008;
/// The tools installation failed.
pub const VIX_E_TOOLS_INSTALL_ERROR: VixError = 21009;
/// The tools are already current.
pub const VIX_E_TOOLS_INSTALL_ALREADY_UP_TO_DATE: VixError = 21010;
/// A tools installation is already running.
pub const VIX_E_TOOLS_INSTALL_IN_PROGRESS: VixError = 21011;
/// Copying the tools image failed.
pub const VIX_E_TOOLS_INSTALL_IMAGE_COPY_FAILED: VixError = 21012;
/// The desktop hypervisor product is not installed.
pub const VIX_E_WRAPPER_WORKSTATION_NOT_INSTALLED: VixError = 22001;
/// The requested library version was not found.
pub const VIX_E_WRAPPER_VERSION_NOT_FOUND: VixError = 22002;
/// The service provider was not found.
pub const VIX_E_WRAPPER_SERVICEPROVIDER_NOT_FOUND: VixError = 22003;
/// The player product is not installed.
pub const VIX_E_WRAPPER_PLAYER_NOT_INSTALLED: VixError = 22004;
/// The runtime is not installed.
pub const VIX_E_WRAPPER_RUNTIME_NOT_INSTALLED: VixError = 22005;
/// Several service providers match.
pub const VIX_E_WRAPPER_MULTIPLE_SERVICEPROVIDERS: VixError = 22006;
/// The mount point does not exist.
pub const VIX_E_MNTAPI_MOUNTPT_NOT_FOUND: VixError = 24000;
/// The mount point is in use.
pub const VIX_E_MNTAPI_MOUNTPT_IN_USE: VixError = 24001;
/// The disk to mount was not found.
pub const VIX_E_MNTAPI_DISK_NOT_FOUND: VixError = 24002;
/// The disk is not mounted.
pub const VIX_E_MNTAPI_DISK_NOT_MOUNTED: VixError = 24003;
/// The disk is already mounted.
pub const VIX_E_MNTAPI_DISK_IS_MOUNTED: VixError = 24004;
/// The disk is not safe to mount.
pub const VIX_E_MNTAPI_DISK_NOT_SAFE: VixError = 24005;
/// The disk to mount could not be opened.
pub const VIX_E_MNTAPI_DISK_CANT_OPEN: VixError = 24006;
/// The partitions could not be read.
pub const VIX_E_MNTAPI_CANT_READ_PARTS: VixError = 24007;
/// The unmount helper was not found.
pub const VIX_E_MNTAPI_UMOUNT_APP_NOT_FOUND: VixError = 24008;
/// Unmounting failed.
pub const VIX_E_MNTAPI_UMOUNT: VixError = 24009;
/// No partition can be mounted.
pub const VIX_E_MNTAPI_NO_MOUNTABLE_PARTITONS: VixError = 24010;
/// The partition number is out of range.
pub const VIX_E_MNTAPI_PARTITION_RANGE: VixError = 24011;
/// Mounting was not permitted.
pub const VIX_E_MNTAPI_PERM: VixError = 24012;
/// The mount dictionary is unusable.
pub const VIX_E_MNTAPI_DICT: VixError = 24013;
/// The mount dictionary is locked.
pub const VIX_E_MNTAPI_DICT_LOCKED: VixError = 24014;
/// Handles to the volume remain open.
pub const VIX_E_MNTAPI_OPEN_HANDLES: VixError = 24015;
/// The mount state directory could not be created.
pub const VIX_E_MNTAPI_CANT_MAKE_VAR_DIR: VixError = 24016;
/// Mounting requires root privileges.
pub const VIX_E_MNTAPI_NO_ROOT: VixError = 24017;
/// Setting up a loop device failed.
pub const VIX_E_MNTAPI_LOOP_FAILED: VixError = 24018;
/// The mount daemon failed.
pub const VIX_E_MNTAPI_DAEMON: VixError = 24019;
/// An internal mount error occurred.
pub const VIX_E_MNTAPI_INTERNAL: VixError = 24020;
/// A system error occurred while mounting.
pub const VIX_E_MNTAPI_SYSTEM: VixError = 24021;
/// Connection details for mounting are missing.
pub const VIX_E_MNTAPI_NO_CONNECTION_DETAILS: VixError = 24022;
/// The mount component version is incompatible.
pub const VIX_E_MNTAPI_INCOMPATIBLE_VERSION: VixError = 24300;
/// The operating system reported a mount error.
pub const VIX_E_MNTAPI_OS_ERROR: VixError = 24301;
/// The drive letter is in use.
pub const VIX_E_MNTAPI_DRIVE_LETTER_IN_USE: VixError = 24302;
/// A drive letter is already assigned.
pub const VIX_E_MNTAPI_DRIVE_LETTER_ALREADY_ASSIGNED: VixError = 24303;
/// The volume is not mounted.
pub const VIX_E_MNTAPI_VOLUME_NOT_MOUNTED: VixError = 24304;
/// The volume is already mounted.
pub const VIX_E_MNTAPI_VOLUME_ALREADY_MOUNTED: VixError = 24305;
/// Formatting the volume failed.
pub const VIX_E_MNTAPI_FORMAT_FAILURE: VixError = 24306;
/// The mount driver is missing.
pub const VIX_E_MNTAPI_NO_DRIVER: VixError = 24307;
/// The item is already open.
pub const VIX_E_MNTAPI_ALREADY_OPENED: VixError = 24308;
/// The item was not found.
pub const VIX_E_MNTAPI_ITEM_NOT_FOUND: VixError = 24309;
/// The boot loader is not supported.
pub const VIX_E_MNTAPI_UNSUPPROTED_BOOT_LOADER: VixError = 24310;
/// The operating system on the disk is not supported.
pub const VIX_E_MNTAPI_UNSUPPROTED_OS: VixError = 24311;
/// Character conversion failed.
pub const VIX_E_MNTAPI_CODECONVERSION: VixError = 24312;
/// Writing to the registry failed.
pub const VIX_E_MNTAPI_REGWRITE_ERROR: VixError = 24313;
/// Fault-tolerant volumes are not supported.
pub const VIX_E_MNTAPI_UNSUPPORTED_FT_VOLUME: VixError = 24314;
/// The partition was not found.
pub const VIX_E_MNTAPI_PARTITION_NOT_FOUND: VixError = 24315;
/// Copying a file into the volume failed.
pub const VIX_E_MNTAPI_PUTFILE_ERROR: VixError = 24316;
/// Copying a file from the volume failed.
pub const VIX_E_MNTAPI_GETFILE_ERROR: VixError = 24317;
/// The registry is not open.
pub const VIX_E_MNTAPI_REG_NOT_OPENED: VixError = 24318;
/// Deleting a registry key failed.
pub const VIX_E_MNTAPI_REGDELKEY_ERROR: VixError = 24319;
/// Creating the partition table failed.
pub const VIX_E_MNTAPI_CREATE_PARTITIONTABLE_ERROR: VixError = 24320;
/// Opening for mount failed.
pub const VIX_E_MNTAPI_OPEN_FAILURE: VixError = 24321;
/// The volume is not writable.
pub const VIX_E_MNTAPI_VOLUME_NOT_WRITABLE: VixError = 24322;
/// The operation was queued and will complete asynchronously (not a failure).
pub const VIX_ASYNC: VixError = 25000;
/// Mixing synchronous and asynchronous I/O is unsupported.
pub const VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED: VixError = 26000;
/// The URL scheme is not supported.
pub const VIX_E_NET_HTTP_UNSUPPORTED_PROTOCOL: VixError = 30001;
/// The URL is malformed.
pub const VIX_E_NET_HTTP_URL_MALFORMAT: VixError = 30003;
/// The proxy host name could not be resolved.
pub const VIX_E_NET_HTTP_COULDNT_RESOLVE_PROXY: VixError = 30005;
/// The host name could not be resolved.
pub const VIX_E_NET_HTTP_COULDNT_RESOLVE_HOST: VixError = 30006;
/// The HTTP connection failed.
pub const VIX_E_NET_HTTP_COULDNT_CONNECT: VixError = 30007;
/// The HTTP server returned an error.
pub const VIX_E_NET_HTTP_HTTP_RETURNED_ERROR: VixError = 30022;
/// The HTTP request timed out.
pub const VIX_E_NET_HTTP_OPERATION_TIMEDOUT: VixError = 30028;
/// The TLS handshake failed.
pub const VIX_E_NET_HTTP_SSL_CONNECT_ERROR: VixError = 30035;
/// Too many HTTP redirects.
pub const VIX_E_NET_HTTP_TOO_MANY_REDIRECTS: VixError = 30047;
/// The HTTP transfer failed.
pub const VIX_E_NET_HTTP_TRANSFER: VixError = 30200;
/// A TLS security check failed.
pub const VIX_E_NET_HTTP_SSL_SECURITY: VixError = 30201;
/// A generic HTTP error occurred.
pub const VIX_E_NET_HTTP_GENERIC: VixError = 30202;
