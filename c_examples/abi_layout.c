/*
 * abi_layout.c - check that vixDiskLib.h describes VMware's binary interface.
 *
 * Programs built against VMware's own header must work unchanged with this
 * library, so every public struct must have exactly the vendor's size and
 * member offsets (x86-64 Linux, VDDK 7.0 - 9.0 layouts), the constants must
 * have the vendor's values, and every function must have the vendor's
 * prototype.  Prototypes are checked at compile time (a mismatch is a
 * compile error with -Werror, and always one in C++); layouts and values are
 * checked at run time so that each result is printed.
 *
 * A client built with an 8.x header passes the 128-byte VixDiskLibConnectParams
 * (9.0 added sslCertificate after it): such a struct, placed right before an
 * inaccessible page, is handed to ConnectEx to show the library reads no
 * further.
 *
 * This file is also compiled as C++ (C++ clients include the same header).
 *
 * Exit status: 0 if every check passed, 1 otherwise.
 */

#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS under -std=c11 */

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vixDiskLib.h"

#ifdef __cplusplus
#define ALIGNOF(t) alignof(t)
#else
#define ALIGNOF(t) _Alignof(t)
#endif

#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)

static int failures;
static int checks;

static void
report(int ok, const char *what, unsigned long long got, unsigned long long want)
{
   checks++;
   if (ok) {
      printf("ok    %-58s = %llu\n", what, got);
   } else {
      failures++;
      printf("FAIL  %-58s = %llu, expected %llu\n", what, got, want);
   }
}

#define CHECK_EQ(what, got, want)                                        \
   report((unsigned long long)(got) == (unsigned long long)(want), what, \
          (unsigned long long)(got), (unsigned long long)(want))

#define CHECK_SIZE(type, size) CHECK_EQ("sizeof(" #type ")", sizeof(type), size)

#define CHECK_ALIGN(type, align) CHECK_EQ("alignof(" #type ")", ALIGNOF(type), align)

/* Offset and size of a member (member may be a nested designator). */
#define CHECK_MEMBER(type, member, off, size)                                   \
   do {                                                                         \
      CHECK_EQ("offsetof(" #type ", " #member ")", offsetof(type, member), off); \
      CHECK_EQ("sizeof(" #type "." #member ")", MEMBER_SIZE(type, member), size); \
   } while (0)

#define CHECK_CONST(name, value) CHECK_EQ(#name, name, value)

#define CHECK_TRUE(what, cond) report((cond) ? 1 : 0, what, (cond) ? 1 : 0, 1)

/* ------------------------------------------------------------------------ */
/* Compile-time prototype checks                                            */
/* ------------------------------------------------------------------------ */

static void log_function(const char *fmt, va_list args) { (void)fmt; (void)args; }
static Bool progress_function(void *data, int percent) { (void)data; (void)percent; return TRUE; }
static void completion_function(void *data, VixError result) { (void)data; (void)result; }

/*
 * Each line declares a pointer with the exact vendor prototype and
 * initialises it with the library's function.  Any difference in return or
 * parameter types makes this file fail to compile.
 */
#define PROTO(name, ret, params) ret (*const p_##name) params = VixDiskLib_##name;

static void
check_prototypes(void)
{
   /* lifecycle */
   PROTO(InitEx, VixError, (uint32, uint32, VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                            VixDiskLibGenericLogFunc *, const char *, const char *))
   PROTO(Init, VixError, (uint32, uint32, VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                          VixDiskLibGenericLogFunc *, const char *))
   PROTO(Exit, void, (void))
   PROTO(ListTransportModes, const char *, (void))
   /* connection */
   PROTO(AllocateConnectParams, VixDiskLibConnectParams *, (void))
   PROTO(FreeConnectParams, void, (VixDiskLibConnectParams *))
   PROTO(Connect, VixError, (const VixDiskLibConnectParams *, VixDiskLibConnection *))
   PROTO(ConnectEx, VixError, (const VixDiskLibConnectParams *, Bool, const char *, const char *,
                               VixDiskLibConnection *))
   PROTO(Disconnect, VixError, (VixDiskLibConnection))
   PROTO(Cleanup, VixError, (const VixDiskLibConnectParams *, uint32 *, uint32 *))
   PROTO(PrepareForAccess, VixError, (const VixDiskLibConnectParams *, const char *))
   PROTO(EndAccess, VixError, (const VixDiskLibConnectParams *, const char *))
   PROTO(GetConnectParams, VixError, (const VixDiskLibConnection, VixDiskLibConnectParams **))
   /* disk lifecycle / information */
   PROTO(Create, VixError, (const VixDiskLibConnection, const char *, const VixDiskLibCreateParams *,
                            VixDiskLibProgressFunc, void *))
   PROTO(CreateChild, VixError, (VixDiskLibHandle, const char *, VixDiskLibDiskType,
                                 VixDiskLibProgressFunc, void *))
   PROTO(Open, VixError, (const VixDiskLibConnection, const char *, uint32, VixDiskLibHandle *))
   PROTO(Close, VixError, (VixDiskLibHandle))
   PROTO(GetInfo, VixError, (VixDiskLibHandle, VixDiskLibInfo **))
   PROTO(FreeInfo, void, (VixDiskLibInfo *))
   PROTO(GetTransportMode, const char *, (VixDiskLibHandle))
   /* I/O */
   PROTO(Read, VixError, (VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, uint8 *))
   PROTO(Write, VixError, (VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, const uint8 *))
   PROTO(ReadAsync, VixError, (VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, uint8 *,
                               VixDiskLibCompletionCB, void *))
   PROTO(WriteAsync, VixError, (VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                                const uint8 *, VixDiskLibCompletionCB, void *))
   PROTO(Wait, VixError, (VixDiskLibHandle))
   PROTO(Flush, VixError, (VixDiskLibHandle))
   PROTO(QueryAllocatedBlocks, VixError, (VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                                          VixDiskLibSectorType, VixDiskLibBlockList **))
   PROTO(FreeBlockList, VixError, (VixDiskLibBlockList *))
   /* metadata */
   PROTO(GetMetadataKeys, VixError, (VixDiskLibHandle, char *, size_t, size_t *))
   PROTO(ReadMetadata, VixError, (VixDiskLibHandle, const char *, char *, size_t, size_t *))
   PROTO(WriteMetadata, VixError, (VixDiskLibHandle, const char *, const char *))
   /* maintenance */
   PROTO(Clone, VixError, (const VixDiskLibConnection, const char *, const VixDiskLibConnection,
                           const char *, const VixDiskLibCreateParams *, VixDiskLibProgressFunc,
                           void *, Bool))
   PROTO(SpaceNeededForClone, VixError, (VixDiskLibHandle, VixDiskLibDiskType, uint64 *))
   PROTO(Grow, VixError, (VixDiskLibConnection, const char *, VixDiskLibSectorType, Bool,
                          VixDiskLibProgressFunc, void *))
   PROTO(Shrink, VixError, (VixDiskLibHandle, VixDiskLibProgressFunc, void *))
   PROTO(Defragment, VixError, (VixDiskLibHandle, VixDiskLibProgressFunc, void *))
   PROTO(Rename, VixError, (const char *, const char *))
   PROTO(Unlink, VixError, (VixDiskLibConnection, const char *))
   PROTO(CheckRepair, VixError, (const VixDiskLibConnection, const char *, Bool))
   PROTO(IsAttachPossible, VixError, (VixDiskLibHandle, VixDiskLibHandle))
   PROTO(Attach, VixError, (VixDiskLibHandle, VixDiskLibHandle))
   /* errors */
   PROTO(GetErrorText, char *, (VixError, const char *))
   PROTO(FreeErrorText, void, (char *))
   /* VDDK 9.0 */
   PROTO(OpenEx, VixError, (const VixDiskLibConnection, const VixDiskLibOpenParams *,
                            VixDiskLibHandle *))
   PROTO(QueryChangedAreas, VixError, (VixDiskLibHandle, const VixDiskLibQueryChangedAreaParams *,
                                       VixDiskLibDiskChangeInfo **))
   PROTO(FreeChangedAreas, void, (VixDiskLibDiskChangeInfo *))
   PROTO(GetConnectionFromDisk, VixError, (VixDiskLibHandle, VixDiskLibConnection *))

   /* Callback types: the log type is a function type, the others pointers. */
   {
      VixDiskLibGenericLogFunc *log = log_function;
      VixDiskLibProgressFunc progress = progress_function;
      VixDiskLibCompletionCB completion = completion_function;
      (void)log;
      (void)progress;
      (void)completion;
   }

   /* Silence "unused variable" for the prototype pointers. */
   (void)p_InitEx; (void)p_Init; (void)p_Exit; (void)p_ListTransportModes;
   (void)p_AllocateConnectParams; (void)p_FreeConnectParams; (void)p_Connect;
   (void)p_ConnectEx; (void)p_Disconnect; (void)p_Cleanup; (void)p_PrepareForAccess;
   (void)p_EndAccess; (void)p_GetConnectParams; (void)p_Create; (void)p_CreateChild;
   (void)p_Open; (void)p_Close; (void)p_GetInfo; (void)p_FreeInfo; (void)p_GetTransportMode;
   (void)p_Read; (void)p_Write; (void)p_ReadAsync; (void)p_WriteAsync; (void)p_Wait;
   (void)p_Flush; (void)p_QueryAllocatedBlocks; (void)p_FreeBlockList;
   (void)p_GetMetadataKeys; (void)p_ReadMetadata; (void)p_WriteMetadata; (void)p_Clone;
   (void)p_SpaceNeededForClone; (void)p_Grow; (void)p_Shrink; (void)p_Defragment;
   (void)p_Rename; (void)p_Unlink; (void)p_CheckRepair; (void)p_IsAttachPossible;
   (void)p_Attach; (void)p_GetErrorText; (void)p_FreeErrorText;
   (void)p_OpenEx; (void)p_QueryChangedAreas; (void)p_FreeChangedAreas;
   (void)p_GetConnectionFromDisk;
   printf("ok    %-58s\n", "prototypes of all 47 public functions (43 + 4 of 9.0)");
}

/* ------------------------------------------------------------------------ */
/* Basic types (vm_basic_types.h)                                           */
/* ------------------------------------------------------------------------ */

static void
check_basic_types(void)
{
   char buf[64];
   uint64 big = 0xFEDCBA9876543210ULL;

   CHECK_SIZE(Bool, 1);
   CHECK_CONST(TRUE, 1);
   CHECK_CONST(FALSE, 0);
   CHECK_SIZE(uint8, 1);
   CHECK_SIZE(uint16, 2);
   CHECK_SIZE(uint32, 4);
   CHECK_SIZE(uint64, 8);
   CHECK_SIZE(int8, 1);
   CHECK_SIZE(int16, 2);
   CHECK_SIZE(int32, 4);
   CHECK_SIZE(int64, 8);
   CHECK_TRUE("uint64 is unsigned", (uint64)-1 > 0);
   CHECK_TRUE("int64 is signed", (int64)-1 < 0);
   CHECK_SIZE(VixError, 8);
   CHECK_TRUE("VixError is unsigned", (VixError)-1 > 0);
   CHECK_SIZE(VixDiskLibSectorType, 8);
   CHECK_SIZE(VixDiskLibHandle, sizeof(void *));
   CHECK_SIZE(VixDiskLibConnection, sizeof(void *));

   /* FMT64 / FMTSZ must match the integer types (also checked by -Wformat). */
   snprintf(buf, sizeof buf, "%" FMT64 "x", big);
   CHECK_TRUE("FMT64 formats uint64", strcmp(buf, "fedcba9876543210") == 0);
   snprintf(buf, sizeof buf, "%" FMTSZ "u", sizeof(VixDiskLibInfo));
   CHECK_TRUE("FMTSZ formats size_t", strcmp(buf, "64") == 0);
}

/* ------------------------------------------------------------------------ */
/* Struct layouts (x86-64 Linux, vendor header 7.0 .. 9.0)                  */
/* ------------------------------------------------------------------------ */

static void
check_layouts(void)
{
   /* VixDiskLibGeometry */
   CHECK_SIZE(VixDiskLibGeometry, 12);
   CHECK_MEMBER(VixDiskLibGeometry, cylinders, 0, 4);
   CHECK_MEMBER(VixDiskLibGeometry, heads, 4, 4);
   CHECK_MEMBER(VixDiskLibGeometry, sectors, 8, 4);

   /* VixDiskLibCreateParams */
   CHECK_SIZE(VixDiskLibCreateParams, 32);
   CHECK_ALIGN(VixDiskLibCreateParams, 8);
   CHECK_MEMBER(VixDiskLibCreateParams, diskType, 0, 4);
   CHECK_MEMBER(VixDiskLibCreateParams, adapterType, 4, 4);
   CHECK_MEMBER(VixDiskLibCreateParams, hwVersion, 8, 2);
   CHECK_MEMBER(VixDiskLibCreateParams, capacity, 16, 8);
   CHECK_MEMBER(VixDiskLibCreateParams, logicalSectorSize, 24, 4);
   CHECK_MEMBER(VixDiskLibCreateParams, physicalSectorSize, 28, 4);

   /* VixDiskLibConnectParams */
   CHECK_SIZE(VixDiskLibConnectParams, 136);
   CHECK_ALIGN(VixDiskLibConnectParams, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, vmxSpec, 0, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, serverName, 8, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, thumbPrint, 16, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, privateUse, 24, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, credType, 32, 4);
   CHECK_MEMBER(VixDiskLibConnectParams, creds, 40, 24);
   CHECK_MEMBER(VixDiskLibConnectParams, creds.uid.userName, 40, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, creds.uid.password, 48, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, creds.sessionId.cookie, 40, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, creds.sessionId.userName, 48, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, creds.sessionId.key, 56, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, creds.ticketId, 40, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, port, 64, 4);
   CHECK_MEMBER(VixDiskLibConnectParams, nfcHostPort, 68, 4);
   CHECK_MEMBER(VixDiskLibConnectParams, vimApiVer, 72, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, reserved, 80, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, state, 88, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, spec, 96, 24);
   CHECK_MEMBER(VixDiskLibConnectParams, spec.vStorageObjSpec.id, 96, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, spec.vStorageObjSpec.datastoreMoRef, 104, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, spec.vStorageObjSpec.ssId, 112, 8);
   CHECK_MEMBER(VixDiskLibConnectParams, specType, 120, 4);
   CHECK_MEMBER(VixDiskLibConnectParams, sslCertificate, 128, 8);
   CHECK_SIZE(VixDiskLibVStorageObjectSpec, 24);

   /* VixDiskLibInfo */
   CHECK_SIZE(VixDiskLibInfo, 64);
   CHECK_ALIGN(VixDiskLibInfo, 8);
   CHECK_MEMBER(VixDiskLibInfo, biosGeo, 0, 12);
   CHECK_MEMBER(VixDiskLibInfo, physGeo, 12, 12);
   CHECK_MEMBER(VixDiskLibInfo, capacity, 24, 8);
   CHECK_MEMBER(VixDiskLibInfo, adapterType, 32, 4);
   CHECK_MEMBER(VixDiskLibInfo, numLinks, 36, 4);
   CHECK_MEMBER(VixDiskLibInfo, parentFileNameHint, 40, 8);
   CHECK_MEMBER(VixDiskLibInfo, uuid, 48, 8);
   CHECK_MEMBER(VixDiskLibInfo, logicalSectorSize, 56, 4);
   CHECK_MEMBER(VixDiskLibInfo, physicalSectorSize, 60, 4);
   {
      VixDiskLibInfo info;
      memset(&info, 0, sizeof info);
      info.numLinks = -1;
      CHECK_TRUE("VixDiskLibInfo.numLinks is a signed int",
                 info.numLinks < 0 && MEMBER_SIZE(VixDiskLibInfo, numLinks) == sizeof(int));
   }

   /* VixDiskLibBlock / VixDiskLibBlockList */
   CHECK_SIZE(VixDiskLibBlock, 16);
   CHECK_MEMBER(VixDiskLibBlock, offset, 0, 8);
   CHECK_MEMBER(VixDiskLibBlock, length, 8, 8);
   CHECK_SIZE(VixDiskLibBlockList, 24);
   CHECK_MEMBER(VixDiskLibBlockList, numBlocks, 0, 4);
   CHECK_MEMBER(VixDiskLibBlockList, blocks, 8, 16);

   /* VDDK 9.0 change API */
   CHECK_SIZE(VixDiskLibOpenParams, 24);
   CHECK_MEMBER(VixDiskLibOpenParams, path, 0, 8);
   CHECK_MEMBER(VixDiskLibOpenParams, flags, 8, 4);
   CHECK_MEMBER(VixDiskLibOpenParams, changeId, 16, 8);
   CHECK_SIZE(VixDiskLibQueryChangedAreaParams, 8);
   CHECK_MEMBER(VixDiskLibQueryChangedAreaParams, startOffset, 0, 8);
   CHECK_SIZE(VixDiskLibDiskChangeInfo, 24);
   CHECK_MEMBER(VixDiskLibDiskChangeInfo, startOffset, 0, 8);
   CHECK_MEMBER(VixDiskLibDiskChangeInfo, length, 8, 8);
   CHECK_MEMBER(VixDiskLibDiskChangeInfo, areas, 16, 8);

   /* Enumerations are plain C enums (int-sized). */
   CHECK_SIZE(VixDiskLibDiskType, 4);
   CHECK_SIZE(VixDiskLibAdapterType, 4);
   CHECK_SIZE(VixDiskLibCredType, 4);
   CHECK_SIZE(VixDiskLibSpecType, 4);
}

/* ------------------------------------------------------------------------ */
/* Constants                                                                */
/* ------------------------------------------------------------------------ */

static void
check_constants(void)
{
   /* sectors and chunks */
   CHECK_CONST(VIXDISKLIB_SECTOR_SIZE, 512);
   CHECK_CONST(VIXDISKLIB_MIN_CHUNK_SIZE, 128);
   CHECK_CONST(VIXDISKLIB_MAX_CHUNK_SIZE, 131072);
   CHECK_CONST(VIXDISKLIB_MAX_CHUNK_NUMBER, 524288);

   /* open flags */
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_UNBUFFERED, 1);
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, 2);
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_READ_ONLY, 4);
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB, 16);
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ, 32);
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ, 64);
   CHECK_CONST(VIXDISKLIB_FLAG_OPEN_COMPRESSION_MASK, 0x3f0);

   /* disk types */
   CHECK_CONST(VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 1);
   CHECK_CONST(VIXDISKLIB_DISK_MONOLITHIC_FLAT, 2);
   CHECK_CONST(VIXDISKLIB_DISK_SPLIT_SPARSE, 3);
   CHECK_CONST(VIXDISKLIB_DISK_SPLIT_FLAT, 4);
   CHECK_CONST(VIXDISKLIB_DISK_VMFS_FLAT, 5);
   CHECK_CONST(VIXDISKLIB_DISK_STREAM_OPTIMIZED, 6);
   CHECK_CONST(VIXDISKLIB_DISK_VMFS_THIN, 7);
   CHECK_CONST(VIXDISKLIB_DISK_VMFS_SPARSE, 8);
   CHECK_CONST(VIXDISKLIB_DISK_UNKNOWN, 256);

   /* adapter types */
   CHECK_CONST(VIXDISKLIB_ADAPTER_IDE, 1);
   CHECK_CONST(VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC, 2);
   CHECK_CONST(VIXDISKLIB_ADAPTER_SCSI_LSILOGIC, 3);
   CHECK_CONST(VIXDISKLIB_ADAPTER_UNKNOWN, 256);

   /* credential and spec types */
   CHECK_CONST(VIXDISKLIB_CRED_UID, 1);
   CHECK_CONST(VIXDISKLIB_CRED_SESSIONID, 2);
   CHECK_CONST(VIXDISKLIB_CRED_TICKETID, 3);
   CHECK_CONST(VIXDISKLIB_CRED_SSPI, 4);
   CHECK_CONST(VIXDISKLIB_CRED_UNKNOWN, 256);
   CHECK_CONST(VIXDISKLIB_SPEC_VMX, 0);
   CHECK_CONST(VIXDISKLIB_SPEC_VSTORAGE_OBJECT, 1);
   CHECK_CONST(VIXDISKLIB_SPEC_UNKNOWN, 256);

   /* virtual hardware versions */
   CHECK_CONST(VIXDISKLIB_HWVERSION_WORKSTATION_4, 3);
   CHECK_CONST(VIXDISKLIB_HWVERSION_WORKSTATION_5, 4);
   CHECK_CONST(VIXDISKLIB_HWVERSION_WORKSTATION_6, 6);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX30, 4);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX4X, 7);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX50, 8);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX51, 9);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX55, 10);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX60, 11);
   CHECK_CONST(VIXDISKLIB_HWVERSION_ESX65, 13);
   CHECK_CONST(VIXDISKLIB_HWVERSION_CURRENT, 13);

   /* error codes (sample; the full table is the library's business) */
   CHECK_CONST(VIX_OK, 0);
   CHECK_CONST(VIX_E_FAIL, 1);
   CHECK_CONST(VIX_E_OUT_OF_MEMORY, 2);
   CHECK_CONST(VIX_E_INVALID_ARG, 3);
   CHECK_CONST(VIX_E_FILE_NOT_FOUND, 4);
   CHECK_CONST(VIX_E_NOT_SUPPORTED, 6);
   CHECK_CONST(VIX_E_FILE_READ_ONLY, 11);
   CHECK_CONST(VIX_E_FILE_ALREADY_EXISTS, 12);
   CHECK_CONST(VIX_E_FILE_ALREADY_LOCKED, 15);
   CHECK_CONST(VIX_E_BUFFER_TOOSMALL, 24);
   CHECK_CONST(VIX_E_INVALID_UTF8_STRING, 27);
   CHECK_CONST(VIX_E_INVALID_HANDLE, 1000);
   CHECK_CONST(VIX_E_HOST_SERVER_SHUTDOWN, 14014);
   CHECK_CONST(VIX_E_HOST_SERVER_NOT_AVAILABLE, 14015);
   CHECK_CONST(VIX_E_DISK_INVAL, 16000);
   CHECK_CONST(VIX_E_DISK_NEEDSREPAIR, 16006);
   CHECK_CONST(VIX_E_DISK_OUTOFRANGE, 16007);
   CHECK_CONST(VIX_E_DISK_CID_MISMATCH, 16008);
   CHECK_CONST(VIX_E_DISK_OPENPARENT, 16012);
   CHECK_CONST(VIX_E_DISK_KEY_NOTFOUND, 16052);
   CHECK_CONST(VIX_E_DISK_INVALIDDISK, 16063);
   CHECK_CONST(VIX_E_DISK_CAPACITY_MISMATCH, 16067);
   CHECK_CONST(VIX_ASYNC, 25000);
   CHECK_CONST(VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, 26000);
   CHECK_CONST(VIX_E_NET_HTTP_GENERIC, 30202);

   /* error macros */
   {
      VixError ok = VIX_OK;
      VixError async = VIX_ASYNC;
      VixError wrapped = 0xABCD000000000000ULL | VIX_E_DISK_CID_MISMATCH;

      CHECK_EQ("VIX_ERROR_CODE(0xABCD000000000000 | 16008)", VIX_ERROR_CODE(wrapped), 16008);
      CHECK_EQ("VIX_ERROR_CODE(VIX_ASYNC)", VIX_ERROR_CODE(async), 25000);
      CHECK_TRUE("VIX_SUCCEEDED(VIX_OK)", VIX_SUCCEEDED(ok));
      CHECK_TRUE("!VIX_FAILED(VIX_OK)", !VIX_FAILED(ok));
      CHECK_TRUE("VIX_FAILED(VIX_ASYNC) (async success is == VIX_ASYNC)", VIX_FAILED(async));
      CHECK_TRUE("!VIX_SUCCEEDED(VIX_ASYNC)", !VIX_SUCCEEDED(async));
      CHECK_TRUE("VIX_FAILED(wrapped code)", VIX_FAILED(wrapped));
   }
}

/* ------------------------------------------------------------------------ */
/* Namespace: the header must not define names VMware's header does not     */
/* (clients may use them themselves; a redefinition breaks -Werror builds). */
/* ------------------------------------------------------------------------ */

static void
check_namespace(void)
{
   static const char *const leaked[] = {
#ifdef MIN_CHUNK
      "MIN_CHUNK",
#endif
#ifdef MAX_CHUNK
      "MAX_CHUNK",
#endif
#ifdef MAX_CHUNKS
      "MAX_CHUNKS",
#endif
#ifdef MAX_CHAIN_LINKS
      "MAX_CHAIN_LINKS",
#endif
#ifdef SECTOR_SIZE
      "SECTOR_SIZE",
#endif
      NULL
   };
   size_t i;

   for (i = 0; leaked[i] != NULL; i++) {
      char what[96];
      snprintf(what, sizeof what, "vixDiskLib.h does not define %s", leaked[i]);
      CHECK_TRUE(what, 0);
   }
   if (i == 0) {
      CHECK_TRUE("no stray generic macros (MIN_CHUNK, MAX_CHUNK, ...)", 1);
   }
}

/* ------------------------------------------------------------------------ */
/* An 8.x client: its ConnectParams end at byte 128                         */
/* ------------------------------------------------------------------------ */

static void
check_8x_connect_params(void)
{
   long page = sysconf(_SC_PAGESIZE);
   unsigned char *area;
   VixDiskLibConnectParams *old_params;
   VixDiskLibConnection conn = NULL;
   VixError err;

   /* Two pages, the second inaccessible: a read past byte 128 would fault. */
   area = (unsigned char *)mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   if (area == MAP_FAILED || mprotect(area + page, (size_t)page, PROT_NONE) != 0) {
      CHECK_TRUE("mmap a guard page for the 8.x ConnectParams", 0);
      return;
   }
   old_params = (VixDiskLibConnectParams *)(area + page - 128);
   memset(old_params, 0, 128);

   err = VixDiskLib_InitEx(6, 5, NULL, NULL, NULL, NULL, NULL);
   CHECK_EQ("InitEx before the 8.x ConnectParams check", err, VIX_OK);
   err = VixDiskLib_ConnectEx(old_params, TRUE, NULL, NULL, &conn);
   CHECK_EQ("ConnectEx(128-byte 8.x params ending at a guard page)", err, VIX_OK);
   err = VixDiskLib_Connect(old_params, &conn);
   CHECK_EQ("Connect(128-byte 8.x params ending at a guard page)", err, VIX_OK);
   err = VixDiskLib_Cleanup(old_params, NULL, NULL);
   CHECK_EQ("Cleanup(128-byte 8.x params ending at a guard page)", err, VIX_OK);
   VixDiskLib_Exit();
   munmap(area, (size_t)page * 2);
}

int
main(void)
{
   check_prototypes();
   check_basic_types();
   check_layouts();
   check_constants();
   check_namespace();
   check_8x_connect_params();

   printf("\n%d checks, %d failed (%s)\n", checks, failures,
#ifdef __cplusplus
          "C++"
#else
          "C"
#endif
   );
   return failures == 0 ? 0 : 1;
}
