//! Our own message text and the constant name of every VixError code, for log lines and the
//! exported GetErrorText/FreeErrorText.

use std::ffi::{CString, c_char};

use super::boundary::{guard_ptr, guard_void};
use super::codes::*;
use super::types::VixError;

/// Text returned by [`error_text`] for codes this library does not know.
const UNKNOWN_ERROR_TEXT: &str = "Unknown error";

/// Builds one table row; the name string is taken from the constant itself so
/// the two can never disagree.
macro_rules! code {
    ($name:ident, $text:literal) => {
        ($name, stringify!($name), $text)
    };
}

/// Every known code as `(value, constant name, message text)`, in header order.
#[rustfmt::skip]
const CODES: &[(VixError, &str, &str)] = &[
    code!(VIX_OK, "The operation completed successfully"),
    code!(VIX_E_FAIL, "The operation failed for an unspecified reason"),
    code!(VIX_E_OUT_OF_MEMORY, "Not enough memory was available to complete the operation"),
    code!(VIX_E_INVALID_ARG, "An argument passed to the function is not valid"),
    code!(VIX_E_FILE_NOT_FOUND, "The requested file does not exist"),
    code!(VIX_E_OBJECT_IS_BUSY, "The object is currently in use and cannot be accessed"),
    code!(VIX_E_NOT_SUPPORTED, "This operation is not supported by the library"),
    code!(VIX_E_FILE_ERROR, "An input/output error occurred while accessing a file"),
    code!(VIX_E_DISK_FULL, "There is not enough free space on the storage device"),
    code!(VIX_E_INCORRECT_FILE_TYPE, "The file is not of the type the operation expects"),
    code!(VIX_E_CANCELLED, "The operation was cancelled before it could finish"),
    code!(VIX_E_FILE_READ_ONLY, "The file or disk is read-only and cannot be modified"),
    code!(VIX_E_FILE_ALREADY_EXISTS, "A file with this name is already present"),
    code!(VIX_E_FILE_ACCESS_ERROR, "Access to the file was denied by the operating system"),
    code!(VIX_E_REQUIRES_LARGE_FILES, "The file system cannot hold files of the size required"),
    code!(VIX_E_FILE_ALREADY_LOCKED, "The file is locked because another process is using it"),
    code!(VIX_E_VMDB, "The internal configuration database reported an error"),
    code!(VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "This operation cannot be performed on a remote object"),
    code!(VIX_E_FILE_TOO_BIG, "The file is larger than the maximum size supported"),
    code!(VIX_E_FILE_NAME_INVALID, "The given file name or path is malformed or not allowed"),
    code!(VIX_E_ALREADY_EXISTS, "An object with the same identity is already present"),
    code!(VIX_E_BUFFER_TOOSMALL, "The buffer supplied by the caller is too small for the result"),
    code!(VIX_E_OBJECT_NOT_FOUND, "The requested object could not be located"),
    code!(VIX_E_HOST_NOT_CONNECTED, "The connection to the host has not been established"),
    code!(VIX_E_INVALID_UTF8_STRING, "A string argument is not correctly encoded as UTF-8"),
    code!(VIX_E_OPERATION_ALREADY_IN_PROGRESS, "An identical operation is already running on this object"),
    code!(VIX_E_UNFINISHED_JOB, "The job has not finished and its result is not yet available"),
    code!(VIX_E_NEED_KEY, "A decryption key or password must be supplied for this operation"),
    code!(VIX_E_LICENSE, "The operation is not permitted by the current license"),
    code!(VIX_E_VM_HOST_DISCONNECTED, "The host running the virtual machine is no longer connected"),
    code!(VIX_E_AUTHENTICATION_FAIL, "The supplied credentials were rejected"),
    code!(VIX_E_HOST_CONNECTION_LOST, "The connection to the host dropped during the operation"),
    code!(VIX_E_DUPLICATE_NAME, "Another object already uses this name"),
    code!(VIX_E_ARGUMENT_TOO_BIG, "An argument is larger than the function allows"),
    code!(VIX_E_INVALID_HANDLE, "The handle passed to the function is not valid or was already closed"),
    code!(VIX_E_NOT_SUPPORTED_ON_HANDLE_TYPE, "This operation cannot be used with this type of handle"),
    code!(VIX_E_TOO_MANY_HANDLES, "The limit on simultaneously open handles has been reached"),
    code!(VIX_E_NOT_FOUND, "The item being looked up does not exist"),
    code!(VIX_E_TYPE_MISMATCH, "A value does not have the type that was expected"),
    code!(VIX_E_INVALID_XML, "The XML data is malformed and could not be parsed"),
    code!(VIX_E_TIMEOUT_WAITING_FOR_TOOLS, "The guest tools did not respond within the time limit"),
    code!(VIX_E_UNRECOGNIZED_COMMAND, "The command sent was not understood by the receiver"),
    code!(VIX_E_OP_NOT_SUPPORTED_ON_GUEST, "The guest operating system does not support this operation"),
    code!(VIX_E_PROGRAM_NOT_STARTED, "The requested program failed to start"),
    code!(VIX_E_CANNOT_START_READ_ONLY_VM, "The virtual machine is read-only and cannot be powered on"),
    code!(VIX_E_VM_NOT_RUNNING, "The virtual machine must be running for this operation"),
    code!(VIX_E_VM_IS_RUNNING, "The virtual machine must be powered off for this operation"),
    code!(VIX_E_CANNOT_CONNECT_TO_VM, "A connection to the virtual machine could not be made"),
    code!(VIX_E_POWEROP_SCRIPTS_NOT_AVAILABLE, "The scripts for power operations are not available in the guest"),
    code!(VIX_E_NO_GUEST_OS_INSTALLED, "The virtual machine has no guest operating system installed"),
    code!(VIX_E_VM_INSUFFICIENT_HOST_MEMORY, "The host does not have enough memory to run the virtual machine"),
    code!(VIX_E_SUSPEND_ERROR, "The virtual machine could not be suspended"),
    code!(VIX_E_VM_NOT_ENOUGH_CPUS, "The virtual machine needs more processors than the host provides"),
    code!(VIX_E_HOST_USER_PERMISSIONS, "The user on the host does not have the required permissions"),
    code!(VIX_E_GUEST_USER_PERMISSIONS, "The user in the guest does not have the required permissions"),
    code!(VIX_E_TOOLS_NOT_RUNNING, "The guest tools must be running for this operation"),
    code!(VIX_E_GUEST_OPERATIONS_PROHIBITED, "Operations inside the guest are disabled for this virtual machine"),
    code!(VIX_E_ANON_GUEST_OPERATIONS_PROHIBITED, "Guest operations without a named user are disabled"),
    code!(VIX_E_ROOT_GUEST_OPERATIONS_PROHIBITED, "Guest operations with administrator rights are disabled"),
    code!(VIX_E_MISSING_ANON_GUEST_ACCOUNT, "No account for anonymous guest operations is configured"),
    code!(VIX_E_CANNOT_AUTHENTICATE_WITH_GUEST, "The guest rejected the supplied user credentials"),
    code!(VIX_E_UNRECOGNIZED_COMMAND_IN_GUEST, "The command was not understood by the guest software"),
    code!(VIX_E_CONSOLE_GUEST_OPERATIONS_PROHIBITED, "Guest operations for the console user are disabled"),
    code!(VIX_E_MUST_BE_CONSOLE_USER, "This operation is restricted to the user logged in at the console"),
    code!(VIX_E_VMX_MSG_DIALOG_AND_NO_UI, "The virtual machine is waiting on a question that no user interface can answer"),
    code!(VIX_E_OPERATION_NOT_ALLOWED_FOR_LOGIN_TYPE, "This operation is not allowed with the current kind of login"),
    code!(VIX_E_LOGIN_TYPE_NOT_SUPPORTED, "The requested kind of login is not supported"),
    code!(VIX_E_EMPTY_PASSWORD_NOT_ALLOWED_IN_GUEST, "The guest does not accept logins with an empty password"),
    code!(VIX_E_INTERACTIVE_SESSION_NOT_PRESENT, "No interactive user session is present in the guest"),
    code!(VIX_E_INTERACTIVE_SESSION_USER_MISMATCH, "The interactive session in the guest belongs to a different user"),
    code!(VIX_E_CANNOT_POWER_ON_VM, "The virtual machine could not be powered on"),
    code!(VIX_E_NO_DISPLAY_SERVER, "A display server is required but none is available"),
    code!(VIX_E_TOO_MANY_LOGONS, "The limit on concurrent logons has been reached"),
    code!(VIX_E_INVALID_AUTHENTICATION_SESSION, "The authentication session has expired or is not valid"),
    code!(VIX_E_VM_NOT_FOUND, "The specified virtual machine could not be located"),
    code!(VIX_E_NOT_SUPPORTED_FOR_VM_VERSION, "The virtual machine's hardware version does not support this operation"),
    code!(VIX_E_CANNOT_READ_VM_CONFIG, "The virtual machine's configuration file could not be read"),
    code!(VIX_E_TEMPLATE_VM, "This operation cannot be performed on a template virtual machine"),
    code!(VIX_E_VM_ALREADY_LOADED, "The virtual machine has already been loaded"),
    code!(VIX_E_VM_ALREADY_UP_TO_DATE, "The virtual machine does not need to be upgraded"),
    code!(VIX_E_VM_UNSUPPORTED_GUEST, "The guest operating system is not supported for this operation"),
    code!(VIX_E_UNRECOGNIZED_PROPERTY, "The property identifier is not recognized"),
    code!(VIX_E_INVALID_PROPERTY_VALUE, "The value given for the property is not acceptable"),
    code!(VIX_E_READ_ONLY_PROPERTY, "The property is read-only and cannot be set"),
    code!(VIX_E_MISSING_REQUIRED_PROPERTY, "A property that must be present was not supplied"),
    code!(VIX_E_INVALID_SERIALIZED_DATA, "The serialized data is corrupt or in an unexpected format"),
    code!(VIX_E_PROPERTY_TYPE_MISMATCH, "The property's type does not match the type requested"),
    code!(VIX_E_BAD_VM_INDEX, "The index does not refer to an existing virtual machine"),
    code!(VIX_E_INVALID_MESSAGE_HEADER, "A received message has a malformed header"),
    code!(VIX_E_INVALID_MESSAGE_BODY, "A received message has a malformed body"),
    code!(VIX_E_SNAPSHOT_INVAL, "A snapshot argument or state is not valid"),
    code!(VIX_E_SNAPSHOT_DUMPER, "Reading or writing the snapshot state file failed"),
    code!(VIX_E_SNAPSHOT_DISKLIB, "The disk layer reported an error during the snapshot operation"),
    code!(VIX_E_SNAPSHOT_NOTFOUND, "The specified snapshot could not be found"),
    code!(VIX_E_SNAPSHOT_EXISTS, "A snapshot with this identity is already present"),
    code!(VIX_E_SNAPSHOT_VERSION, "The snapshot was written in an unsupported format version"),
    code!(VIX_E_SNAPSHOT_NOPERM, "Insufficient permissions to perform the snapshot operation"),
    code!(VIX_E_SNAPSHOT_CONFIG, "The snapshot configuration data is missing or invalid"),
    code!(VIX_E_SNAPSHOT_NOCHANGE, "The snapshot operation left the state unchanged"),
    code!(VIX_E_SNAPSHOT_CHECKPOINT, "The running state could not be saved for the snapshot"),
    code!(VIX_E_SNAPSHOT_LOCKED, "Another snapshot operation currently holds the lock"),
    code!(VIX_E_SNAPSHOT_INCONSISTENT, "The snapshot metadata is inconsistent with the disks"),
    code!(VIX_E_SNAPSHOT_NAMETOOLONG, "The name given for the snapshot exceeds the allowed length"),
    code!(VIX_E_SNAPSHOT_VIXFILE, "The file holding snapshot information could not be accessed"),
    code!(VIX_E_SNAPSHOT_DISKLOCKED, "A disk taking part in the snapshot is locked by another user"),
    code!(VIX_E_SNAPSHOT_DUPLICATEDDISK, "The same disk is referenced more than once in the snapshot"),
    code!(VIX_E_SNAPSHOT_INDEPENDENTDISK, "Disks in independent mode cannot take part in a snapshot"),
    code!(VIX_E_SNAPSHOT_NONUNIQUE_NAME, "More than one snapshot carries the given name"),
    code!(VIX_E_SNAPSHOT_MEMORY_ON_INDEPENDENT_DISK, "Memory state cannot be captured while independent disks are attached"),
    code!(VIX_E_SNAPSHOT_MAXSNAPSHOTS, "No more snapshots can be created for this virtual machine"),
    code!(VIX_E_SNAPSHOT_MIN_FREE_SPACE, "The free space on the storage is below the minimum needed for a snapshot"),
    code!(VIX_E_SNAPSHOT_HIERARCHY_TOODEEP, "The snapshot chain has reached its maximum depth"),
    code!(VIX_E_SNAPSHOT_NOT_REVERTABLE, "Reverting to this snapshot is not possible"),
    code!(VIX_E_HOST_DISK_INVALID_VALUE, "The host disk layer received a value it cannot accept"),
    code!(VIX_E_HOST_DISK_SECTORSIZE, "The sector size of the host device or file is not supported"),
    code!(VIX_E_HOST_FILE_ERROR_EOF, "An unexpected end of file was hit while reading"),
    code!(VIX_E_HOST_NETBLKDEV_HANDSHAKE, "The handshake with the network block device server failed"),
    code!(VIX_E_HOST_SOCKET_CREATION_ERROR, "Creating a network socket failed"),
    code!(VIX_E_HOST_SERVER_NOT_FOUND, "The server name could not be resolved or the server is unknown"),
    code!(VIX_E_HOST_NETWORK_CONN_REFUSED, "The network connection was refused by the server"),
    code!(VIX_E_HOST_TCP_SOCKET_ERROR, "An error occurred on the TCP connection"),
    code!(VIX_E_HOST_TCP_CONN_LOST, "The TCP connection was closed unexpectedly"),
    code!(VIX_E_HOST_NBD_HASHFILE_VOLUME, "The volume for the network block device hash file is unavailable"),
    code!(VIX_E_HOST_NBD_HASHFILE_INIT, "Setting up the network block device hash file failed"),
    code!(VIX_E_HOST_SERVER_SHUTDOWN, "The server is being shut down and cannot serve the request"),
    code!(VIX_E_HOST_SERVER_NOT_AVAILABLE, "The server is temporarily unavailable"),
    code!(VIX_E_DISK_INVAL, "A disk parameter or internal disk state is not valid"),
    code!(VIX_E_DISK_NOINIT, "The disk library must be initialized before this call"),
    code!(VIX_E_DISK_NOIO, "A read or write on the disk failed"),
    code!(VIX_E_DISK_PARTIALCHAIN, "Part of the disk's parent chain is missing or could not be opened"),
    code!(VIX_E_DISK_NEEDSREPAIR, "The disk metadata is damaged and needs to be repaired"),
    code!(VIX_E_DISK_OUTOFRANGE, "The requested sectors lie outside the capacity of the disk"),
    code!(VIX_E_DISK_CID_MISMATCH, "The child disk does not match its parent (content ID mismatch)"),
    code!(VIX_E_DISK_CANTSHRINK, "This disk cannot be shrunk"),
    code!(VIX_E_DISK_PARTMISMATCH, "The partition layout does not match the one recorded for the disk"),
    code!(VIX_E_DISK_UNSUPPORTEDDISKVERSION, "The disk was created with a format version this library cannot handle"),
    code!(VIX_E_DISK_OPENPARENT, "Opening a parent disk of this disk failed"),
    code!(VIX_E_DISK_NOTSUPPORTED, "This feature is not supported for this kind of disk"),
    code!(VIX_E_DISK_NEEDKEY, "The disk is encrypted; a key is needed to open it"),
    code!(VIX_E_DISK_NOKEYOVERRIDE, "Replacing the encryption key of this disk is not allowed"),
    code!(VIX_E_DISK_NOTENCRYPTED, "The operation needs an encrypted disk but this disk is not encrypted"),
    code!(VIX_E_DISK_NOKEY, "No suitable key was provided for the encrypted disk"),
    code!(VIX_E_DISK_INVALIDPARTITIONTABLE, "The disk's partition table is corrupt or not valid"),
    code!(VIX_E_DISK_NOTNORMAL, "This operation only works on ordinary (non-special) sparse disks"),
    code!(VIX_E_DISK_NOTENCDESC, "The disk descriptor was expected to be encrypted but is not"),
    code!(VIX_E_DISK_NEEDVMFS, "This operation requires the disk to reside on a VMFS datastore"),
    code!(VIX_E_DISK_RAWTOOBIG, "The raw device or partition is larger than supported"),
    code!(VIX_E_DISK_TOOMANYOPENFILES, "The limit on simultaneously open disk files has been reached"),
    code!(VIX_E_DISK_TOOMANYREDO, "The chain of delta (redo) disks is longer than allowed"),
    code!(VIX_E_DISK_RAWTOOSMALL, "The raw device or partition is smaller than the disk requires"),
    code!(VIX_E_DISK_INVALIDCHAIN, "The disk's parent chain is inconsistent or not valid"),
    code!(VIX_E_DISK_KEY_NOTFOUND, "The requested key is not present in the disk metadata"),
    code!(VIX_E_DISK_SUBSYSTEM_INIT_FAIL, "A component of the disk library could not be initialized"),
    code!(VIX_E_DISK_INVALID_CONNECTION, "The connection handle is not valid or has already been closed"),
    code!(VIX_E_DISK_ENCODING, "The disk descriptor uses an encoding that does not match the host"),
    code!(VIX_E_DISK_CANTREPAIR, "The disk is corrupt and cannot be repaired automatically"),
    code!(VIX_E_DISK_INVALIDDISK, "The file is not a valid virtual disk or its header is damaged"),
    code!(VIX_E_DISK_NOLICENSE, "The disk operation is not covered by an available license"),
    code!(VIX_E_DISK_NODEVICE, "The device referenced by the disk does not exist"),
    code!(VIX_E_DISK_UNSUPPORTEDDEVICE, "The device type referenced by the disk is not supported"),
    code!(VIX_E_DISK_CAPACITY_MISMATCH, "The capacity of the disk does not match that of its parent"),
    code!(VIX_E_DISK_PARENT_NOTALLOWED, "A parent disk is not allowed for this type of disk"),
    code!(VIX_E_DISK_ATTACH_ROOTLINK, "A disk without a parent cannot be attached beneath another disk"),
    code!(VIX_E_CRYPTO_UNKNOWN_ALGORITHM, "The cryptographic algorithm is not recognized"),
    code!(VIX_E_CRYPTO_BAD_BUFFER_SIZE, "A buffer for a cryptographic operation has an invalid size"),
    code!(VIX_E_CRYPTO_INVALID_OPERATION, "The requested cryptographic operation is not valid"),
    code!(VIX_E_CRYPTO_RANDOM_DEVICE, "The system random number source could not be used"),
    code!(VIX_E_CRYPTO_NEED_PASSWORD, "A password is needed to perform the cryptographic operation"),
    code!(VIX_E_CRYPTO_BAD_PASSWORD, "The supplied password is incorrect"),
    code!(VIX_E_CRYPTO_NOT_IN_DICTIONARY, "The cryptographic entry was not found in the dictionary"),
    code!(VIX_E_CRYPTO_NO_CRYPTO, "No cryptographic support is available"),
    code!(VIX_E_CRYPTO_ERROR, "A cryptographic operation failed"),
    code!(VIX_E_CRYPTO_BAD_FORMAT, "The cryptographic data is in an unrecognized format"),
    code!(VIX_E_CRYPTO_LOCKED, "The cryptographic object is locked and cannot be used"),
    code!(VIX_E_CRYPTO_EMPTY, "The cryptographic object contains no data"),
    code!(VIX_E_CRYPTO_KEYSAFE_LOCATOR, "The locator for the key safe is malformed or unusable"),
    code!(VIX_E_CANNOT_CONNECT_TO_HOST, "A connection to the host could not be established"),
    code!(VIX_E_NOT_FOR_REMOTE_HOST, "This operation cannot be performed on a remote host"),
    code!(VIX_E_INVALID_HOSTNAME_SPECIFICATION, "The host name or address is not correctly specified"),
    code!(VIX_E_SCREEN_CAPTURE_ERROR, "Capturing the screen image failed"),
    code!(VIX_E_SCREEN_CAPTURE_BAD_FORMAT, "The requested screen capture format is not supported"),
    code!(VIX_E_SCREEN_CAPTURE_COMPRESSION_FAIL, "The captured screen image could not be compressed"),
    code!(VIX_E_SCREEN_CAPTURE_LARGE_DATA, "The captured screen image is too large to return"),
    code!(VIX_E_GUEST_VOLUMES_NOT_FROZEN, "The file systems in the guest could not be frozen"),
    code!(VIX_E_NOT_A_FILE, "The path refers to something other than a regular file"),
    code!(VIX_E_NOT_A_DIRECTORY, "The path refers to something other than a directory"),
    code!(VIX_E_NO_SUCH_PROCESS, "No process with the given identifier exists"),
    code!(VIX_E_FILE_NAME_TOO_LONG, "The file name or path exceeds the maximum length"),
    code!(VIX_E_OPERATION_DISABLED, "This operation has been disabled by configuration"),
    code!(VIX_E_TOOLS_INSTALL_NO_IMAGE, "The guest tools installer image could not be found"),
    code!(VIX_E_TOOLS_INSTALL_IMAGE_INACCESIBLE, "The guest tools installer image could not be accessed"),
    code!(VIX_E_TOOLS_INSTALL_NO_DEVICE, "The guest has no device through which to install the tools"),
    code!(VIX_E_TOOLS_INSTALL_DEVICE_NOT_CONNECTED, "The device used for the tools installer is disconnected"),
    code!(VIX_E_TOOLS_INSTALL_CANCELLED, "Installation of the guest tools was cancelled"),
    code!(VIX_E_TOOLS_INSTALL_INIT_FAILED, "Starting the guest tools installation failed"),
    code!(VIX_E_TOOLS_INSTALL_AUTO_NOT_SUPPORTED, "Automatic installation of the guest tools is not supported for this guest"),
    code!(VIX_E_TOOLS_INSTALL_GUEST_NOT_READY, "The guest is not yet ready to install the tools"),
    code!(VIX_E_TOOLS_INSTALL_SIG_CHECK_FAILED, "The signature of the tools installer could not be verified"),
    code!(VIX_E_TOOLS_INSTALL_ERROR, "An error occurred while installing the guest tools"),
    code!(VIX_E_TOOLS_INSTALL_ALREADY_UP_TO_DATE, "The guest tools are already at the latest version"),
    code!(VIX_E_TOOLS_INSTALL_IN_PROGRESS, "The guest tools are being installed already"),
    code!(VIX_E_TOOLS_INSTALL_IMAGE_COPY_FAILED, "The guest tools installer image could not be copied"),
    code!(VIX_E_WRAPPER_WORKSTATION_NOT_INSTALLED, "The required desktop virtualization product is not installed"),
    code!(VIX_E_WRAPPER_VERSION_NOT_FOUND, "No installed library matches the requested version"),
    code!(VIX_E_WRAPPER_SERVICEPROVIDER_NOT_FOUND, "The requested service provider is not installed"),
    code!(VIX_E_WRAPPER_PLAYER_NOT_INSTALLED, "The required player product is not installed"),
    code!(VIX_E_WRAPPER_RUNTIME_NOT_INSTALLED, "The required runtime components are not installed"),
    code!(VIX_E_WRAPPER_MULTIPLE_SERVICEPROVIDERS, "More than one service provider matches; choose one explicitly"),
    code!(VIX_E_MNTAPI_MOUNTPT_NOT_FOUND, "The mount point could not be found"),
    code!(VIX_E_MNTAPI_MOUNTPT_IN_USE, "The mount point is already in use"),
    code!(VIX_E_MNTAPI_DISK_NOT_FOUND, "The disk to be mounted could not be found"),
    code!(VIX_E_MNTAPI_DISK_NOT_MOUNTED, "The disk is not currently mounted"),
    code!(VIX_E_MNTAPI_DISK_IS_MOUNTED, "The disk is mounted already"),
    code!(VIX_E_MNTAPI_DISK_NOT_SAFE, "Mounting this disk could cause damage and was refused"),
    code!(VIX_E_MNTAPI_DISK_CANT_OPEN, "Opening the disk for mounting failed"),
    code!(VIX_E_MNTAPI_CANT_READ_PARTS, "The partition table of the disk could not be read"),
    code!(VIX_E_MNTAPI_UMOUNT_APP_NOT_FOUND, "The program needed to unmount the disk is missing"),
    code!(VIX_E_MNTAPI_UMOUNT, "The disk or volume could not be unmounted"),
    code!(VIX_E_MNTAPI_NO_MOUNTABLE_PARTITONS, "The disk contains no partition that can be mounted"),
    code!(VIX_E_MNTAPI_PARTITION_RANGE, "The partition number does not exist on the disk"),
    code!(VIX_E_MNTAPI_PERM, "Insufficient privileges to mount or unmount"),
    code!(VIX_E_MNTAPI_DICT, "The mount state dictionary could not be read or written"),
    code!(VIX_E_MNTAPI_DICT_LOCKED, "The mount state dictionary is locked by another process"),
    code!(VIX_E_MNTAPI_OPEN_HANDLES, "The volume cannot be unmounted while handles to it are open"),
    code!(VIX_E_MNTAPI_CANT_MAKE_VAR_DIR, "Creating the directory for mount state failed"),
    code!(VIX_E_MNTAPI_NO_ROOT, "Superuser privileges are required to mount"),
    code!(VIX_E_MNTAPI_LOOP_FAILED, "A loop device could not be attached for the mount"),
    code!(VIX_E_MNTAPI_DAEMON, "The mount service process reported an error"),
    code!(VIX_E_MNTAPI_INTERNAL, "An internal error occurred in the mount component"),
    code!(VIX_E_MNTAPI_SYSTEM, "The operating system reported an error during mounting"),
    code!(VIX_E_MNTAPI_NO_CONNECTION_DETAILS, "The information needed to connect for mounting was not given"),
    code!(VIX_E_MNTAPI_INCOMPATIBLE_VERSION, "The mount component is of an incompatible version"),
    code!(VIX_E_MNTAPI_OS_ERROR, "An operating system call failed during the mount operation"),
    code!(VIX_E_MNTAPI_DRIVE_LETTER_IN_USE, "The requested drive letter is already taken"),
    code!(VIX_E_MNTAPI_DRIVE_LETTER_ALREADY_ASSIGNED, "The volume already has a drive letter"),
    code!(VIX_E_MNTAPI_VOLUME_NOT_MOUNTED, "The volume is not currently mounted"),
    code!(VIX_E_MNTAPI_VOLUME_ALREADY_MOUNTED, "The volume is mounted already"),
    code!(VIX_E_MNTAPI_FORMAT_FAILURE, "The volume could not be formatted"),
    code!(VIX_E_MNTAPI_NO_DRIVER, "The driver required for mounting is not installed"),
    code!(VIX_E_MNTAPI_ALREADY_OPENED, "The disk or volume has already been opened"),
    code!(VIX_E_MNTAPI_ITEM_NOT_FOUND, "The requested mount item does not exist"),
    code!(VIX_E_MNTAPI_UNSUPPROTED_BOOT_LOADER, "The boot loader on the disk is not supported"),
    code!(VIX_E_MNTAPI_UNSUPPROTED_OS, "The operating system installed on the disk is not supported"),
    code!(VIX_E_MNTAPI_CODECONVERSION, "Converting text between character sets failed"),
    code!(VIX_E_MNTAPI_REGWRITE_ERROR, "A registry value could not be written"),
    code!(VIX_E_MNTAPI_UNSUPPORTED_FT_VOLUME, "Fault-tolerant (striped or mirrored) volumes are not supported"),
    code!(VIX_E_MNTAPI_PARTITION_NOT_FOUND, "The requested partition does not exist"),
    code!(VIX_E_MNTAPI_PUTFILE_ERROR, "A file could not be written to the mounted volume"),
    code!(VIX_E_MNTAPI_GETFILE_ERROR, "A file could not be read from the mounted volume"),
    code!(VIX_E_MNTAPI_REG_NOT_OPENED, "The registry hive has not been opened"),
    code!(VIX_E_MNTAPI_REGDELKEY_ERROR, "A registry key could not be deleted"),
    code!(VIX_E_MNTAPI_CREATE_PARTITIONTABLE_ERROR, "A partition table could not be written to the disk"),
    code!(VIX_E_MNTAPI_OPEN_FAILURE, "The disk or volume could not be opened"),
    code!(VIX_E_MNTAPI_VOLUME_NOT_WRITABLE, "The mounted volume is read-only"),
    code!(VIX_ASYNC, "The operation was started and will finish asynchronously"),
    code!(VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, "Synchronous and asynchronous I/O cannot be mixed on the same handle"),
    code!(VIX_E_NET_HTTP_UNSUPPORTED_PROTOCOL, "The protocol in the URL is not supported"),
    code!(VIX_E_NET_HTTP_URL_MALFORMAT, "The URL is not correctly formed"),
    code!(VIX_E_NET_HTTP_COULDNT_RESOLVE_PROXY, "The proxy server's name could not be resolved"),
    code!(VIX_E_NET_HTTP_COULDNT_RESOLVE_HOST, "The server's host name could not be resolved"),
    code!(VIX_E_NET_HTTP_COULDNT_CONNECT, "Connecting to the HTTP server failed"),
    code!(VIX_E_NET_HTTP_HTTP_RETURNED_ERROR, "The HTTP server answered with an error status"),
    code!(VIX_E_NET_HTTP_OPERATION_TIMEDOUT, "The HTTP request did not complete in time"),
    code!(VIX_E_NET_HTTP_SSL_CONNECT_ERROR, "Setting up the secure (TLS) connection failed"),
    code!(VIX_E_NET_HTTP_TOO_MANY_REDIRECTS, "The HTTP request was redirected too many times"),
    code!(VIX_E_NET_HTTP_TRANSFER, "An error occurred while transferring data over HTTP"),
    code!(VIX_E_NET_HTTP_SSL_SECURITY, "The secure connection failed a security check (for example the certificate)"),
    code!(VIX_E_NET_HTTP_GENERIC, "An HTTP error occurred"),
];

/// Finds the table row for `code`, ignoring the bits above the low 16.
fn lookup(code: VixError) -> Option<&'static (VixError, &'static str, &'static str)> {
    let code = code & 0xFFFF;
    CODES.iter().find(|entry| entry.0 == code)
}

/// Returns a human-readable English description of `code`.
///
/// Only the low 16 bits are considered (as `VIX_ERROR_CODE` does); unknown
/// codes yield a generic text.
#[must_use]
pub fn error_text(code: VixError) -> &'static str {
    match lookup(code) {
        Some(&(_, _, text)) => text,
        None => UNKNOWN_ERROR_TEXT,
    }
}

/// Returns the constant name of `code` (for example `"VIX_E_FILE_NOT_FOUND"`),
/// considering only its low 16 bits, or `None` if the code is unknown.
#[must_use]
pub fn error_name(code: VixError) -> Option<&'static str> {
    lookup(code).map(|&(_, name, _)| name)
}

/// Returns a newly allocated description of `err`; free it with `VixDiskLib_FreeErrorText`.
/// `locale` must be NULL (other locales are not supported and are treated as NULL).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetErrorText(err: VixError, locale: *const c_char) -> *mut c_char {
    let _ = locale;
    guard_ptr("VixDiskLib_GetErrorText", || {
        let text = error_text(err);
        let text = match error_name(err) {
            Some(name) if err & 0xFFFF != 0 => format!("{text} ({name}, {})", err & 0xFFFF),
            _ => text.to_string(),
        };
        // Texts contain no NULs; an allocation failure aborts like any other in Rust.
        let c = CString::new(text).unwrap_or_default();
        // SAFETY: strdup copies a valid NUL-terminated string into malloc'd memory, so the
        // caller can release it with FreeErrorText (which calls free).
        unsafe { libc::strdup(c.as_ptr()) }
    })
}

/// Frees a string returned by `VixDiskLib_GetErrorText`. NULL is allowed.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_FreeErrorText(errMsg: *mut c_char) {
    guard_void("VixDiskLib_FreeErrorText", || {
        if !errMsg.is_null() {
            // SAFETY: non-NULL pointers passed here come from GetErrorText's strdup (contract).
            unsafe { libc::free(errMsg.cast()) };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::HashSet;

    /// The engine's kinds (what the CLI prints, what `to_vix` returns) name the C codes.
    #[test]
    fn every_error_kind_is_the_c_code_of_its_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(error_name(kind.code()), Some(kind.name()), "{kind:?}");
        }
    }

    #[test]
    fn table_is_complete_and_unique() {
        assert_eq!(CODES.len(), 268);
        let values: HashSet<VixError> = CODES.iter().map(|e| e.0).collect();
        let names: HashSet<&str> = CODES.iter().map(|e| e.1).collect();
        let texts: HashSet<&str> = CODES.iter().map(|e| e.2).collect();
        assert_eq!(values.len(), CODES.len(), "duplicate value");
        assert_eq!(names.len(), CODES.len(), "duplicate name");
        assert_eq!(texts.len(), CODES.len(), "duplicate text");
        for &(value, _, _) in CODES {
            assert!(value <= 0xFFFF, "{value} does not fit in the low 16 bits");
        }
    }

    #[test]
    fn every_code_has_text_and_name() {
        for &(value, name, text) in CODES {
            assert_eq!(error_text(value), text);
            assert_ne!(error_text(value), UNKNOWN_ERROR_TEXT, "{name}");
            assert!(!text.trim().is_empty(), "{name}");
            assert_eq!(error_name(value), Some(name));
            assert!(name.starts_with("VIX_"), "{name}");
        }
    }

    #[test]
    fn names_round_trip() {
        for &(value, name, _) in CODES {
            let found = CODES.iter().find(|e| e.1 == name).map(|e| e.0);
            assert_eq!(found, Some(value), "{name}");
            assert_eq!(error_name(found.unwrap()), Some(name));
        }
        assert_eq!(
            error_name(VIX_E_FILE_NOT_FOUND),
            Some("VIX_E_FILE_NOT_FOUND")
        );
        assert_eq!(error_name(VIX_ASYNC), Some("VIX_ASYNC"));
        assert_eq!(
            error_name(VIX_E_DISK_INVALIDDISK),
            Some("VIX_E_DISK_INVALIDDISK")
        );
    }

    #[test]
    fn selected_values() {
        assert_eq!(VIX_OK, 0);
        assert_eq!(VIX_E_FAIL, 1);
        assert_eq!(VIX_E_NOT_SUPPORTED, 6);
        assert_eq!(VIX_E_INVALID_UTF8_STRING, 27);
        assert_eq!(VIX_E_OPERATION_ALREADY_IN_PROGRESS, 31);
        assert_eq!(VIX_E_DISK_OUTOFRANGE, 16007);
        assert_eq!(VIX_ASYNC, 25000);
        assert_eq!(VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, 26000);
        assert_eq!(VIX_E_NET_HTTP_GENERIC, 30202);
    }

    #[test]
    fn high_bits_are_masked() {
        let high = 0xDEAD_BEEF_0000_0000_u64 | 0x0001_0000;
        assert_eq!(
            error_text(high | VIX_E_FILE_NOT_FOUND),
            error_text(VIX_E_FILE_NOT_FOUND)
        );
        assert_eq!(
            error_name(high | VIX_E_FILE_NOT_FOUND),
            Some("VIX_E_FILE_NOT_FOUND")
        );
        assert_eq!(
            error_name(high | VIX_E_DISK_NEEDKEY),
            Some("VIX_E_DISK_NEEDKEY")
        );
        assert_eq!(error_name(high), Some("VIX_OK"));
        assert_eq!(error_text(VixError::MAX), UNKNOWN_ERROR_TEXT);
        assert_eq!(error_name(VixError::MAX), None);
    }

    #[test]
    fn unknown_codes() {
        for code in [17u64, 28, 33, 999, 16004, 25001, 30000, 65535] {
            assert_eq!(error_text(code), UNKNOWN_ERROR_TEXT, "{code}");
            assert_eq!(error_name(code), None, "{code}");
        }
    }

    #[test]
    fn ok_text() {
        assert_eq!(error_text(VIX_OK), "The operation completed successfully");
        assert_eq!(error_name(VIX_OK), Some("VIX_OK"));
    }
}
