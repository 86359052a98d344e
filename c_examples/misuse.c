/*
 * misuse.c - the API used wrongly and disks that lie: every call must be refused with a clear
 * VixError, promptly; none may hang, crash or report a false success.
 *
 *   misuse [WORKDIR]
 *
 * Sections: calls before InitEx; NULL for every pointer argument of every exported function;
 * NULL, disconnected, foreign (a disk handle) and garbage connections; FIFOs where disks or
 * extents should be (an open must never block); the VDDK 9.0 calls (OpenEx, QueryChangedAreas,
 * FreeChangedAreas, GetConnectionFromDisk) and our VixDiskLibExt_* calls with NULL, stale and
 * wrong arguments; ReadAsync + Wait in a child forked after the
 * async workers started; hostile disks (flat extent shorter than its extent line, NOACCESS
 * extent, unknown compression algorithm, a grain that inflates past one grain); calls after
 * Exit, and InitEx working again.
 * (error_cases.c covers ordinary error paths: bounds, locks, read-only handles.)
 *
 * A watchdog alarm turns any hang into a failure. Disks are made in WORKDIR (default: a fresh
 * directory under $TMPDIR or /tmp), removed at the end if every check passed.
 * Exit status: 0 if every check passed, 1 otherwise.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vixDiskLib.h"
#include "vixDiskLibExt.h"

#define SECTOR VIXDISKLIB_SECTOR_SIZE
#define CAPACITY 2048                    /* 1 MiB in sectors */
#define WATCHDOG_SECONDS 20

static int failures;
static int checks;
static const char *volatile section = "start";

/* ------------------------------------------------------------------------ */

static void
on_alarm(int sig)
{
   static const char msg[] = "FAIL  watchdog: a call blocked in section ";
   (void)sig;
   if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0 ||
       write(STDOUT_FILENO, section, strlen(section)) < 0 ||
       write(STDOUT_FILENO, "\n", 1) < 0) {
      /* nothing more to do: exiting anyway */
   }
   _exit(3);
}

static void
begin(const char *name)
{
   section = name;
   printf("\n== %s\n", name);
   alarm(WATCHDOG_SECONDS);
}

static void
quiet_log(const char *fmt, va_list args)
{
   (void)fmt;
   (void)args;
}

static void
print_log(const char *fmt, va_list args)
{
   printf("      [lib] ");
   vprintf(fmt, args);
}

static void
report(int ok, const char *what, const char *detail)
{
   checks++;
   failures += !ok;
   printf("%s  %s%s%s\n", ok ? "ok  " : "FAIL", what, detail[0] ? ": " : "", detail);
}

static void
expect_code(VixError err, VixError want, const char *what)
{
   char detail[512];
   char *text = VixDiskLib_GetErrorText(err, NULL);

   if (err == want) {
      snprintf(detail, sizeof detail, "%lu (%s)", (unsigned long)err, text ? text : "?");
   } else {
      snprintf(detail, sizeof detail, "got %lu (%s), expected %lu", (unsigned long)err,
               text ? text : "?", (unsigned long)want);
   }
   VixDiskLib_FreeErrorText(text);
   report(err == want, what, detail);
}

static void
expect_true(int cond, const char *what)
{
   report(cond, what, "");
}

static void
join(char *out, size_t n, const char *dir, const char *name)
{
   snprintf(out, n, "%s/%s", dir, name);
}

static int
exists(const char *path)
{
   return access(path, F_OK) == 0;
}

static int
write_file(const char *path, const void *data, size_t len)
{
   FILE *f = fopen(path, "wb");
   int ok;

   if (f == NULL) {
      return 0;
   }
   ok = fwrite(data, 1, len, f) == len;
   return fclose(f) == 0 && ok;
}

static int
write_filled(const char *path, int byte, size_t len)
{
   char *b = malloc(len);
   int ok;

   if (b == NULL) {
      return 0;
   }
   memset(b, byte, len);
   ok = write_file(path, b, len);
   free(b);
   return ok;
}

static int
patch(const char *path, off_t at, const void *bytes, size_t len)
{
   int fd = open(path, O_WRONLY);
   int ok;

   if (fd < 0) {
      return 0;
   }
   ok = pwrite(fd, bytes, len, at) == (ssize_t)len;
   return close(fd) == 0 && ok;
}

static int
write_descriptor(const char *path, const char *extent_lines)
{
   char text[2048];

   snprintf(text, sizeof text,
            "# Disk DescriptorFile\nversion=1\nCID=0000abcd\nparentCID=ffffffff\n"
            "createType=\"monolithicFlat\"\n\n# Extent description\n%s\n\n"
            "# The Disk Data Base\n#DDB\n\n",
            extent_lines);
   return write_file(path, text, strlen(text));
}

static VixDiskLibCreateParams
create_params(VixDiskLibDiskType type)
{
   VixDiskLibCreateParams cp;

   memset(&cp, 0, sizeof cp);
   cp.diskType = type;
   cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_6;
   cp.capacity = CAPACITY;
   return cp;
}

struct async_result {
   int calls;
   VixError result;
};

static void
completion_cb(void *data, VixError result)
{
   struct async_result *r = data;
   r->calls++;
   r->result = result;
}

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
   (void)sb;
   (void)flag;
   (void)ftw;
   remove(path);
   return 0;
}

/* ------------------------------------------------------------------------ */
/* Before InitEx: disk calls are refused; the documented exceptions work.    */
/* ------------------------------------------------------------------------ */

static void
before_init(const char *disk)
{
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   VixDiskLibHandle h = NULL;
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   uint8 buf[SECTOR];
   char *text;

   begin("before InitEx");
   params = VixDiskLib_AllocateConnectParams();
   expect_true(params != NULL, "AllocateConnectParams works before InitEx");
   text = VixDiskLib_GetErrorText(VIX_E_DISK_NOINIT, NULL);
   expect_true(text != NULL, "GetErrorText works before InitEx");
   VixDiskLib_FreeErrorText(text);
   expect_true(VixDiskLib_ListTransportModes() == NULL, "ListTransportModes is NULL before InitEx");
   expect_code(VixDiskLib_ConnectEx(params, FALSE, NULL, NULL, &conn), VIX_E_DISK_NOINIT,
               "ConnectEx before InitEx");
   expect_true(conn == NULL, "... no connection handed out");
   expect_code(VixDiskLib_Connect(NULL, &conn), VIX_E_DISK_NOINIT, "Connect before InitEx");
   expect_code(VixDiskLib_Create(conn, disk, &cp, NULL, NULL), VIX_E_DISK_NOINIT,
               "Create before InitEx");
   expect_true(!exists(disk), "... and no file was created");
   expect_code(VixDiskLib_Open(conn, disk, 0, &h), VIX_E_DISK_NOINIT, "Open before InitEx");
   expect_true(h == NULL, "... handle stays NULL");
   expect_code(VixDiskLib_Read(h, 0, 1, buf), VIX_E_DISK_NOINIT, "Read before InitEx");
   expect_code(VixDiskLib_CheckRepair(conn, disk, FALSE), VIX_E_DISK_NOINIT,
               "CheckRepair before InitEx");
   VixDiskLib_FreeConnectParams(params);
   expect_true(1, "FreeConnectParams works before InitEx");
}

/* ------------------------------------------------------------------------ */
/* NULL for every pointer argument of every exported function.               */
/* ------------------------------------------------------------------------ */

static void
null_pointers(VixDiskLibConnection conn, const char *dir, const char *disk)
{
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   VixDiskLibConnectParams *params = NULL;
   VixDiskLibConnection c2 = NULL;
   VixDiskLibHandle h = NULL, h2 = NULL;
   VixDiskLibInfo *info = NULL;
   VixDiskLibBlockList *blocks = NULL;
   struct async_result r = { 0, VIX_OK };
   char other[4200], key[64];
   char *text;
   uint8 buf[SECTOR];
   uint64 space = 0;
   uint32 n1 = 7, n2 = 7;
   size_t need = 0;
   int fault = 0;

   begin("NULL pointer arguments");
   join(other, sizeof other, dir, "other.vmdk");
   memset(buf, 0x5a, sizeof buf);

   /* Library, texts, connections. */
   VixDiskLib_FreeErrorText(NULL);
   VixDiskLib_FreeConnectParams(NULL);
   text = VixDiskLib_GetErrorText(VIX_OK, NULL);
   expect_true(text != NULL, "GetErrorText(locale NULL)");
   VixDiskLib_FreeErrorText(text);
   expect_code(VixDiskLib_Connect(NULL, NULL), VIX_E_INVALID_ARG, "Connect(NULL, NULL)");
   expect_code(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, NULL), VIX_E_INVALID_ARG,
               "ConnectEx(NULL, ..., NULL)");
   expect_code(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c2), VIX_OK,
               "ConnectEx(NULL params, NULL snapshotRef, NULL transportModes): local");
   expect_code(VixDiskLib_Disconnect(c2), VIX_OK, "Disconnect");
   expect_code(VixDiskLib_Disconnect(NULL), VIX_E_INVALID_ARG, "Disconnect(NULL)");
   expect_code(VixDiskLib_Cleanup(NULL, NULL, NULL), VIX_OK, "Cleanup(NULL, NULL, NULL)");
   expect_code(VixDiskLib_Cleanup(NULL, &n1, &n2), VIX_OK, "Cleanup(NULL, &n, &n)");
   expect_true(n1 == 0 && n2 == 0, "... counters 0");
   expect_code(VixDiskLib_PrepareForAccess(NULL, NULL), VIX_OK, "PrepareForAccess(NULL, NULL)");
   expect_code(VixDiskLib_EndAccess(NULL, NULL), VIX_OK, "EndAccess(NULL, NULL)");
   expect_code(VixDiskLib_GetConnectParams(conn, NULL), VIX_E_INVALID_ARG,
               "GetConnectParams(conn, NULL)");
   expect_code(VixDiskLib_GetConnectParams(NULL, &params), VIX_E_INVALID_ARG,
               "GetConnectParams(NULL, &p)");
   expect_true(VixDiskLib_IsFaultEnabled_Func(1, NULL) == FALSE, "IsFaultEnabled_Func(1, NULL)");
   expect_true(VixDiskLib_IsFaultEnabled_Func(1, &fault) == FALSE, "IsFaultEnabled_Func(1, &f)");
   VixDiskLib_SetConfigOption(1, NULL);
   expect_true(VixDiskLib_SetInjectedFault(1, TRUE, 0) == FALSE, "SetInjectedFault");

   /* Disk lifecycle. */
   expect_code(VixDiskLib_Create(NULL, other, &cp, NULL, NULL), VIX_E_INVALID_ARG,
               "Create(NULL connection)");
   expect_code(VixDiskLib_Create(conn, NULL, &cp, NULL, NULL), VIX_E_INVALID_ARG,
               "Create(NULL path)");
   expect_code(VixDiskLib_Create(conn, other, NULL, NULL, NULL), VIX_E_INVALID_ARG,
               "Create(NULL createParams)");
   expect_true(!exists(other), "... nothing created");
   expect_code(VixDiskLib_Open(NULL, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), VIX_E_INVALID_ARG,
               "Open(NULL connection, READ_ONLY)");
   expect_code(VixDiskLib_Open(NULL, disk, 0, &h), VIX_E_INVALID_ARG, "Open(NULL connection)");
   expect_code(VixDiskLib_Open(conn, NULL, 0, &h), VIX_E_INVALID_ARG, "Open(NULL path)");
   expect_code(VixDiskLib_Open(conn, disk, 0, NULL), VIX_E_INVALID_ARG, "Open(NULL diskHandle)");
   expect_code(VixDiskLib_Close(NULL), VIX_E_INVALID_ARG, "Close(NULL)");
   expect_code(VixDiskLib_GetInfo(NULL, &info), VIX_E_INVALID_ARG, "GetInfo(NULL, &info)");
   VixDiskLib_FreeInfo(NULL);
   expect_true(VixDiskLib_GetTransportMode(NULL) == NULL, "GetTransportMode(NULL) is NULL");

   /* Everything that needs an open disk. */
   if (VixDiskLib_Open(conn, disk, 0, &h) != VIX_OK) {
      report(0, "Open the test disk", "");
      return;
   }
   expect_code(VixDiskLib_GetInfo(h, NULL), VIX_E_INVALID_ARG, "GetInfo(h, NULL)");
   expect_code(VixDiskLib_Read(NULL, 0, 1, buf), VIX_E_INVALID_ARG, "Read(NULL handle)");
   expect_code(VixDiskLib_Read(h, 0, 1, NULL), VIX_E_INVALID_ARG, "Read(NULL buffer)");
   expect_code(VixDiskLib_Write(NULL, 0, 1, buf), VIX_E_INVALID_ARG, "Write(NULL handle)");
   expect_code(VixDiskLib_Write(h, 0, 1, NULL), VIX_E_INVALID_ARG, "Write(NULL buffer)");
   expect_code(VixDiskLib_ReadAsync(NULL, 0, 1, buf, completion_cb, &r), VIX_E_INVALID_ARG,
               "ReadAsync(NULL handle)");
   expect_code(VixDiskLib_ReadAsync(h, 0, 1, NULL, completion_cb, &r), VIX_E_INVALID_ARG,
               "ReadAsync(NULL buffer)");
   expect_code(VixDiskLib_WriteAsync(NULL, 0, 1, buf, completion_cb, &r), VIX_E_INVALID_ARG,
               "WriteAsync(NULL handle)");
   expect_code(VixDiskLib_WriteAsync(h, 0, 1, NULL, completion_cb, &r), VIX_E_INVALID_ARG,
               "WriteAsync(NULL buffer)");
   expect_true(r.calls == 0, "... refused requests call no callback");
   expect_code(VixDiskLib_WriteAsync(h, 0, 1, buf, NULL, NULL), VIX_ASYNC,
               "WriteAsync(NULL callback, NULL data) is accepted");
   expect_code(VixDiskLib_ReadAsync(h, 0, 1, buf, NULL, NULL), VIX_ASYNC,
               "ReadAsync(NULL callback, NULL data) is accepted");
   expect_code(VixDiskLib_Wait(h), VIX_OK, "Wait");
   expect_code(VixDiskLib_Wait(NULL), VIX_E_INVALID_ARG, "Wait(NULL)");
   expect_code(VixDiskLib_Flush(NULL), VIX_E_INVALID_ARG, "Flush(NULL)");
   expect_code(VixDiskLib_QueryAllocatedBlocks(NULL, 0, 128, 128, &blocks), VIX_E_INVALID_ARG,
               "QueryAllocatedBlocks(NULL handle)");
   expect_code(VixDiskLib_QueryAllocatedBlocks(h, 0, 128, 128, NULL), VIX_E_INVALID_ARG,
               "QueryAllocatedBlocks(NULL blockList)");
   expect_code(VixDiskLib_FreeBlockList(NULL), VIX_E_INVALID_ARG, "FreeBlockList(NULL)");
   expect_code(VixDiskLib_GetMetadataKeys(NULL, NULL, 0, &need), VIX_E_INVALID_ARG,
               "GetMetadataKeys(NULL handle)");
   expect_code(VixDiskLib_GetMetadataKeys(h, NULL, 0, NULL), VIX_E_BUFFER_TOOSMALL,
               "GetMetadataKeys(h, NULL, 0, NULL)");
   expect_code(VixDiskLib_GetMetadataKeys(h, NULL, 0, &need), VIX_E_BUFFER_TOOSMALL,
               "GetMetadataKeys(h, NULL, 0, &need)");
   expect_true(need > 1, "... says how much is needed");
   expect_code(VixDiskLib_ReadMetadata(NULL, "uuid", key, sizeof key, NULL), VIX_E_INVALID_ARG,
               "ReadMetadata(NULL handle)");
   expect_code(VixDiskLib_ReadMetadata(h, NULL, key, sizeof key, NULL), VIX_E_INVALID_ARG,
               "ReadMetadata(NULL key)");
   expect_code(VixDiskLib_ReadMetadata(h, "adapterType", NULL, 0, NULL), VIX_E_BUFFER_TOOSMALL,
               "ReadMetadata(NULL buffer, NULL requiredLen)");
   expect_code(VixDiskLib_WriteMetadata(NULL, "k", "v"), VIX_E_INVALID_ARG,
               "WriteMetadata(NULL handle)");
   expect_code(VixDiskLib_WriteMetadata(h, NULL, "v"), VIX_E_INVALID_ARG,
               "WriteMetadata(NULL key)");
   expect_code(VixDiskLib_WriteMetadata(h, "k", NULL), VIX_E_INVALID_ARG,
               "WriteMetadata(NULL value)");
   expect_code(VixDiskLib_SpaceNeededForClone(NULL, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, &space),
               VIX_E_INVALID_ARG, "SpaceNeededForClone(NULL handle)");
   expect_code(VixDiskLib_SpaceNeededForClone(h, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL),
               VIX_E_INVALID_ARG, "SpaceNeededForClone(NULL result)");
   expect_code(VixDiskLib_Shrink(NULL, NULL, NULL), VIX_E_INVALID_ARG, "Shrink(NULL)");
   expect_code(VixDiskLib_Defragment(NULL, NULL, NULL), VIX_E_INVALID_ARG, "Defragment(NULL)");
   expect_code(VixDiskLib_CreateChild(NULL, other, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
               VIX_E_INVALID_ARG, "CreateChild(NULL handle)");
   expect_code(VixDiskLib_CreateChild(h, NULL, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
               VIX_E_INVALID_ARG, "CreateChild(NULL path)");
   expect_code(VixDiskLib_IsAttachPossible(NULL, NULL), VIX_E_INVALID_ARG,
               "IsAttachPossible(NULL, NULL)");
   expect_code(VixDiskLib_IsAttachPossible(h, NULL), VIX_E_INVALID_ARG,
               "IsAttachPossible(h, NULL)");
   expect_code(VixDiskLib_Attach(NULL, NULL), VIX_E_INVALID_ARG, "Attach(NULL, NULL)");
   expect_code(VixDiskLib_Close(h), VIX_OK, "Close");

   /* Maintenance by path. */
   expect_code(VixDiskLib_Clone(NULL, other, conn, disk, &cp, NULL, NULL, FALSE),
               VIX_E_INVALID_ARG, "Clone(NULL dstConnection)");
   expect_code(VixDiskLib_Clone(conn, NULL, conn, disk, &cp, NULL, NULL, FALSE),
               VIX_E_INVALID_ARG, "Clone(NULL dstPath)");
   expect_code(VixDiskLib_Clone(conn, other, NULL, disk, &cp, NULL, NULL, FALSE),
               VIX_E_INVALID_ARG, "Clone(NULL srcConnection)");
   expect_code(VixDiskLib_Clone(conn, other, conn, NULL, &cp, NULL, NULL, FALSE),
               VIX_E_INVALID_ARG, "Clone(NULL srcPath)");
   expect_code(VixDiskLib_Clone(conn, other, conn, disk, NULL, NULL, NULL, FALSE),
               VIX_E_INVALID_ARG, "Clone(NULL createParams)");
   expect_true(!exists(other), "... nothing created");
   expect_code(VixDiskLib_Grow(NULL, disk, 2 * CAPACITY, FALSE, NULL, NULL), VIX_E_INVALID_ARG,
               "Grow(NULL connection)");
   expect_code(VixDiskLib_Grow(conn, NULL, 2 * CAPACITY, FALSE, NULL, NULL), VIX_E_INVALID_ARG,
               "Grow(NULL path)");
   expect_code(VixDiskLib_CheckRepair(NULL, disk, FALSE), VIX_E_INVALID_ARG,
               "CheckRepair(NULL connection)");
   expect_code(VixDiskLib_CheckRepair(NULL, disk, TRUE), VIX_E_INVALID_ARG,
               "CheckRepair(NULL connection, repair)");
   expect_code(VixDiskLib_CheckRepair(conn, NULL, FALSE), VIX_E_INVALID_ARG,
               "CheckRepair(NULL filename)");
   expect_code(VixDiskLib_Unlink(NULL, disk), VIX_E_INVALID_ARG, "Unlink(NULL connection)");
   expect_code(VixDiskLib_Unlink(conn, NULL), VIX_E_INVALID_ARG, "Unlink(NULL path)");
   expect_code(VixDiskLib_Rename(NULL, other), VIX_E_INVALID_ARG, "Rename(NULL, dst)");
   expect_code(VixDiskLib_Rename(disk, NULL), VIX_E_INVALID_ARG, "Rename(src, NULL)");
   expect_true(exists(disk), "... the disk is still there");

   /* Still a good disk after all that. */
   if (VixDiskLib_Open(conn, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h2) == VIX_OK) {
      uint8 back[SECTOR];
      expect_code(VixDiskLib_Read(h2, 0, 1, back), VIX_OK, "Read back");
      expect_true(memcmp(back, buf, SECTOR) == 0, "... the async write landed");
      VixDiskLib_Close(h2);
   }
   expect_code(VixDiskLib_CheckRepair(conn, disk, FALSE), VIX_OK, "CheckRepair: clean");
}

/* ------------------------------------------------------------------------ */
/* Disconnected, foreign and garbage connections, read-only and read-write.  */
/* ------------------------------------------------------------------------ */

static void
bad_connections(VixDiskLibConnection conn, const char *dir, const char *disk)
{
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   VixDiskLibConnection stale = NULL, bad[3];
   VixDiskLibConnectParams *params = NULL;
   VixDiskLibHandle h = NULL, out;
   const char *names[3] = { "disconnected", "foreign (a disk handle)", "garbage" };
   char other[4200], what[256];
   int i;

   begin("bad connections");
   join(other, sizeof other, dir, "bad-conn.vmdk");
   if (VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &stale) != VIX_OK ||
       VixDiskLib_Disconnect(stale) != VIX_OK ||
       VixDiskLib_Open(conn, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) != VIX_OK) {
      report(0, "setup", "");
      return;
   }
   bad[0] = stale;
   bad[1] = (VixDiskLibConnection)h;
   bad[2] = (VixDiskLibConnection)(uintptr_t)0xdeadbee0;
   for (i = 0; i < 3; i++) {
#define BAD(call, label)                                                        \
   do {                                                                         \
      snprintf(what, sizeof what, "%s with a %s connection", label, names[i]); \
      expect_code(call, VIX_E_INVALID_ARG, what);                               \
   } while (0)
      out = NULL;
      BAD(VixDiskLib_Open(bad[i], disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &out), "Open READ_ONLY");
      expect_true(out == NULL, "... handle stays NULL");
      BAD(VixDiskLib_Open(bad[i], disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY |
                                        VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, &out),
          "Open READ_ONLY|SINGLE_LINK");
      BAD(VixDiskLib_Open(bad[i], disk, 0, &out), "Open read-write");
      BAD(VixDiskLib_Create(bad[i], other, &cp, NULL, NULL), "Create");
      BAD(VixDiskLib_Clone(conn, other, bad[i], disk, &cp, NULL, NULL, FALSE), "Clone (source)");
      BAD(VixDiskLib_Clone(bad[i], other, conn, disk, &cp, NULL, NULL, FALSE), "Clone (target)");
      BAD(VixDiskLib_CheckRepair(bad[i], disk, FALSE), "CheckRepair");
      BAD(VixDiskLib_CheckRepair(bad[i], disk, TRUE), "CheckRepair(repair)");
      BAD(VixDiskLib_Grow(bad[i], other, 2 * CAPACITY, FALSE, NULL, NULL), "Grow");
      BAD(VixDiskLib_Unlink(bad[i], other), "Unlink");
      BAD(VixDiskLib_GetConnectParams(bad[i], &params), "GetConnectParams");
      BAD(VixDiskLib_Disconnect(bad[i]), "Disconnect");
#undef BAD
   }
   expect_true(!exists(other), "no file was created through a bad connection");
   expect_code(VixDiskLib_Read(h, 0, 1, (uint8[SECTOR]){ 0 }), VIX_OK,
               "the disk handle passed as a connection still works");
   expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
}

/* ------------------------------------------------------------------------ */
/* FIFOs: every open must return at once.                                   */
/* ------------------------------------------------------------------------ */

static void
fifos(VixDiskLibConnection conn, const char *dir)
{
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   char fifo[4200], efifo[4200], desc[4200], dst[4200];
   VixDiskLibHandle h = NULL;

   begin("FIFOs");
   join(fifo, sizeof fifo, dir, "pipe.vmdk");
   join(efifo, sizeof efifo, dir, "pipe-flat.raw");
   join(desc, sizeof desc, dir, "fifo-extent.vmdk");
   join(dst, sizeof dst, dir, "from-fifo.vmdk");
   if (mkfifo(fifo, 0600) != 0 || mkfifo(efifo, 0600) != 0 ||
       !write_descriptor(desc, "RW 2048 FLAT \"pipe-flat.raw\" 0")) {
      report(0, "mkfifo", strerror(errno));
      return;
   }
   expect_code(VixDiskLib_Open(conn, fifo, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_DISK_INVALIDDISK, "Open READ_ONLY of a FIFO");
   expect_true(h == NULL, "... handle stays NULL");
   expect_code(VixDiskLib_Open(conn, fifo, 0, &h), VIX_E_DISK_INVALIDDISK,
               "Open read-write of a FIFO");
   expect_code(VixDiskLib_CheckRepair(conn, fifo, FALSE), VIX_E_DISK_INVALIDDISK,
               "CheckRepair of a FIFO");
   expect_code(VixDiskLib_CheckRepair(conn, fifo, TRUE), VIX_E_DISK_INVALIDDISK,
               "CheckRepair(repair) of a FIFO");
   expect_code(VixDiskLib_Clone(conn, dst, conn, fifo, &cp, NULL, NULL, FALSE),
               VIX_E_DISK_INVALIDDISK, "Clone from a FIFO");
   expect_true(!exists(dst), "... no target left behind");
   expect_code(VixDiskLib_Grow(conn, fifo, 2 * CAPACITY, FALSE, NULL, NULL),
               VIX_E_DISK_INVALIDDISK, "Grow of a FIFO");
   expect_code(VixDiskLib_Open(conn, desc, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_DISK_INVALIDDISK, "Open READ_ONLY of a descriptor whose extent is a FIFO");
   expect_code(VixDiskLib_Open(conn, desc, 0, &h), VIX_E_DISK_INVALIDDISK,
               "Open read-write of a descriptor whose extent is a FIFO");
   expect_true(VixDiskLib_CheckRepair(conn, desc, FALSE) != VIX_OK,
               "CheckRepair of a descriptor whose extent is a FIFO fails");
   expect_code(VixDiskLib_Clone(conn, dst, conn, desc, &cp, NULL, NULL, FALSE),
               VIX_E_DISK_INVALIDDISK, "Clone from a descriptor whose extent is a FIFO");
   expect_true(!exists(dst), "... no target left behind");
   expect_code(VixDiskLib_Open(conn, dir, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_DISK_INVALIDDISK, "Open of a directory");
   expect_code(VixDiskLib_Open(conn, "/dev/zero", VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_DISK_INVALIDDISK, "Open of a character device");
}

/* ------------------------------------------------------------------------ */
/* fork() after the async workers started: the child gets its own.          */
/* ------------------------------------------------------------------------ */

static void
fork_child(VixDiskLibConnection conn, const char *disk)
{
   VixDiskLibHandle h = NULL;
   struct async_result r = { 0, VIX_OK };
   uint8 buf[SECTOR];
   pid_t pid;
   int status = 0;

   begin("fork after async I/O");
   if (VixDiskLib_Open(conn, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) != VIX_OK) {
      report(0, "Open", "");
      return;
   }
   expect_code(VixDiskLib_ReadAsync(h, 0, 1, buf, completion_cb, &r), VIX_ASYNC,
               "ReadAsync in the parent (starts the workers)");
   expect_code(VixDiskLib_Wait(h), VIX_OK, "Wait in the parent");
   expect_true(r.calls == 1 && r.result == VIX_OK, "... completed");
   fflush(stdout);
   pid = fork();
   if (pid == 0) {
      VixDiskLibHandle h2 = NULL;
      int bad = 0;

      alarm(10);
      r.calls = 0;
      bad |= VixDiskLib_ReadAsync(h, 0, 1, buf, completion_cb, &r) != VIX_ASYNC;
      bad |= VixDiskLib_Wait(h) != VIX_OK;
      bad |= r.calls != 1 || r.result != VIX_OK;
      r.calls = 0;
      bad |= VixDiskLib_Open(conn, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h2) != VIX_OK;
      bad |= VixDiskLib_ReadAsync(h2, 0, 1, buf, completion_cb, &r) != VIX_ASYNC;
      bad |= VixDiskLib_Wait(h2) != VIX_OK;
      bad |= r.calls != 1 || r.result != VIX_OK;
      bad |= VixDiskLib_Close(h2) != VIX_OK;
      _exit(bad);
   }
   expect_true(pid > 0, "fork");
   if (pid > 0) {
      expect_true(waitpid(pid, &status, 0) == pid, "waitpid");
      expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child's ReadAsync + Wait completed (inherited and new handle)");
   }
   r.calls = 0;
   expect_code(VixDiskLib_ReadAsync(h, 0, 1, buf, completion_cb, &r), VIX_ASYNC,
               "ReadAsync in the parent after the fork");
   expect_code(VixDiskLib_Wait(h), VIX_OK, "Wait");
   expect_true(r.calls == 1 && r.result == VIX_OK, "... completed");
   expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
}

/* ------------------------------------------------------------------------ */
/* Disks that lie.                                                          */
/* ------------------------------------------------------------------------ */

static uint64
le64(const uint8 *b)
{
   uint64 v = 0;
   int i;

   for (i = 7; i >= 0; i--) {
      v = v << 8 | b[i];
   }
   return v;
}

/*
 * A zlib stream of `len` zero bytes in stored (uncompressed) deflate blocks; returns its size.
 * The Adler-32 trailer is for the data as written.
 */
static size_t
zlib_stored_zeros(uint8 *out, size_t len)
{
   size_t n = 0, left = len;

   out[n++] = 0x78;
   out[n++] = 0x01;
   do {
      size_t chunk = left > 65535 ? 65535 : left;
      out[n++] = left == chunk;                  /* BFINAL on the last block, BTYPE 00 */
      out[n++] = chunk & 0xff;
      out[n++] = chunk >> 8;
      out[n++] = ~chunk & 0xff;
      out[n++] = (~chunk >> 8) & 0xff;
      memset(out + n, 0, chunk);
      n += chunk;
      left -= chunk;
   } while (left > 0);
   {
      uint32 b = (uint32)(len % 65521), a = 1;   /* zeros leave a at 1; b grows by a each byte */
      out[n++] = b >> 8;
      out[n++] = b & 0xff;
      out[n++] = a >> 8;
      out[n++] = a & 0xff;
   }
   return n;
}

static void
overlong_grain(VixDiskLibConnection conn, const char *path)
{
   VixDiskLibCreateParams stream = create_params(VIXDISKLIB_DISK_STREAM_OPTIMIZED);
   enum { GRAIN = 128 * SECTOR };
   static uint8 grain[GRAIN], packed[GRAIN + 1024];
   uint8 header[SECTOR], marker[12];
   uint64 x = 0x9e3779b97f4a7c15ULL, at;
   uint32 old_size, new_size;
   VixDiskLibHandle h = NULL;
   size_t i;
   int fd;

   for (i = 0; i < GRAIN; i++) {                /* incompressible: the slot stays large */
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      grain[i] = (uint8)x;
   }
   if (VixDiskLib_Create(conn, path, &stream, NULL, NULL) != VIX_OK ||
       VixDiskLib_Open(conn, path, 0, &h) != VIX_OK ||
       VixDiskLib_Write(h, 0, 128, grain) != VIX_OK || VixDiskLib_Close(h) != VIX_OK) {
      report(0, "write a one-grain stream", "");
      return;
   }
   /* Our streams put the first grain's marker right after the header's overHead sectors. */
   fd = open(path, O_RDWR);
   if (fd < 0 || pread(fd, header, sizeof header, 0) != (ssize_t)sizeof header) {
      report(0, "read the stream header", strerror(errno));
      if (fd >= 0) {
         close(fd);
      }
      return;
   }
   /* Grain 0's marker: the first sector at or after overHead holding LBA 0 and a non-zero
    * compressed size (metadata markers have size 0). Durable tails may come before it. */
   for (at = le64(header + 64) * SECTOR;; at += SECTOR) {
      if (pread(fd, marker, sizeof marker, (off_t)at) != (ssize_t)sizeof marker) {
         at = 0;
         break;
      }
      old_size = (uint32)marker[8] | (uint32)marker[9] << 8 | (uint32)marker[10] << 16 |
                 (uint32)marker[11] << 24;
      if (le64(marker) == 0 && old_size != 0 && old_size <= GRAIN + 1024) {
         break;
      }
   }
   if (at == 0) {
      report(0, "find grain 0's marker", "");
      close(fd);
      return;
   }
   old_size = marker[8] | marker[9] << 8 | marker[10] << 16 | (uint32)marker[11] << 24;
   /* First exactly one grain (a control: the crafted stream is valid), then one byte more. */
   for (i = 0; i < 2; i++) {
      new_size = (uint32)zlib_stored_zeros(packed, GRAIN + i);
      /* The new stream must fit in the old one's sectors. */
      expect_true((12 + old_size + SECTOR - 1) / SECTOR >= (12 + new_size + SECTOR - 1) / SECTOR,
                  "the crafted stream fits in the grain's slot");
      marker[8] = new_size & 0xff;
      marker[9] = (new_size >> 8) & 0xff;
      marker[10] = (new_size >> 16) & 0xff;
      marker[11] = new_size >> 24;
      expect_true(pwrite(fd, marker, sizeof marker, (off_t)at) == (ssize_t)sizeof marker &&
                  pwrite(fd, packed, new_size, (off_t)at + 12) == (ssize_t)new_size,
                  i ? "replace grain 0 with a stream of one grain + 1 byte"
                    : "replace grain 0 with a stream of exactly one grain of zeros");
      if (VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) != VIX_OK) {
         report(0, "Open the stream", "");
         break;
      }
      grain[0] = 1;
      if (i == 0) {
         expect_code(VixDiskLib_Read(h, 0, 1, grain), VIX_OK, "Read of the one-grain stream");
         expect_true(grain[0] == 0, "... reads zeros");
      } else {
         expect_code(VixDiskLib_Read(h, 0, 1, grain), VIX_E_DISK_NEEDSREPAIR,
                     "Read of a grain that inflates past its size");
      }
      VixDiskLib_Close(h);
   }
   close(fd);
}

static void
hostile_disks(VixDiskLibConnection conn, const char *dir)
{
   VixDiskLibCreateParams flat = create_params(VIXDISKLIB_DISK_MONOLITHIC_FLAT);
   VixDiskLibCreateParams stream = create_params(VIXDISKLIB_DISK_STREAM_OPTIMIZED);
   char path[4200], extent[4200], a[4200], b[4200];
   VixDiskLibHandle h = NULL;
   uint8 buf[64 * SECTOR];
   const uint8 algorithm[2] = { 2, 0 };

   begin("hostile disks");

   /* A flat extent shorter than its extent line. */
   join(path, sizeof path, dir, "short.vmdk");
   join(extent, sizeof extent, dir, "short-flat.vmdk");
   expect_code(VixDiskLib_Create(conn, path, &flat, NULL, NULL), VIX_OK, "Create flat");
   expect_true(truncate(extent, CAPACITY / 2 * SECTOR) == 0, "truncate its extent to half");
   if (VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) == VIX_OK) {
      expect_code(VixDiskLib_Read(h, 0, 64, buf), VIX_OK, "Read inside the file");
      expect_code(VixDiskLib_Read(h, CAPACITY / 2 - 8, 16, buf), VIX_E_DISK_NEEDSREPAIR,
                  "Read across the end of the file");
      expect_code(VixDiskLib_Read(h, CAPACITY - 1, 1, buf), VIX_E_DISK_NEEDSREPAIR,
                  "Read past the end of the file");
      VixDiskLib_Close(h);
      h = NULL;
   } else {
      report(0, "Open the short flat disk", "");
   }

   /* A NOACCESS extent. */
   join(path, sizeof path, dir, "noaccess.vmdk");
   join(a, sizeof a, dir, "na-a.raw");
   join(b, sizeof b, dir, "na-b.raw");
   if (write_filled(a, 0xa1, 8 * SECTOR) && write_filled(b, 0xb2, 8 * SECTOR) &&
       write_descriptor(path, "RW 8 FLAT \"na-a.raw\" 0\nNOACCESS 8 FLAT \"na-b.raw\" 0") &&
       VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) == VIX_OK) {
      expect_code(VixDiskLib_Read(h, 0, 8, buf), VIX_OK, "Read the accessible extent");
      expect_true(buf[0] == 0xa1 && buf[8 * SECTOR - 1] == 0xa1, "... its data");
      expect_code(VixDiskLib_Read(h, 8, 1, buf), VIX_E_FILE_ACCESS_ERROR,
                  "Read of the NOACCESS extent");
      expect_code(VixDiskLib_Read(h, 4, 8, buf), VIX_E_FILE_ACCESS_ERROR,
                  "Read touching the NOACCESS extent");
      VixDiskLib_Close(h);
      h = NULL;
   } else {
      report(0, "set up the NOACCESS disk", "");
   }

   /* An unknown compression algorithm (the header's compressAlgorithm at byte 77). */
   join(path, sizeof path, dir, "algo.vmdk");
   expect_code(VixDiskLib_Create(conn, path, &stream, NULL, NULL), VIX_OK, "Create stream");
   expect_code(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), VIX_OK,
               "Open the stream");
   VixDiskLib_Close(h);
   h = NULL;
   expect_true(patch(path, 77, algorithm, sizeof algorithm), "set compressAlgorithm to 2");
   expect_code(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_DISK_UNSUPPORTEDDISKVERSION, "Open with an unknown compression algorithm");
   expect_true(h == NULL, "... handle stays NULL");

   /* A compressed grain whose zlib stream inflates to one byte more than a grain. */
   join(path, sizeof path, dir, "bomb.vmdk");
   overlong_grain(conn, path);
}

/* ------------------------------------------------------------------------ */
/* After Exit: refused; leftovers were closed; InitEx works again.           */
/* ------------------------------------------------------------------------ */

static void
after_exit(const char *dir, const char *disk)
{
   VixDiskLibConnection conn = NULL, c2 = NULL;
   VixDiskLibHandle h = NULL, h2 = NULL;
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   VixDiskLibConnectParams *params;
   uint8 buf[SECTOR], back[SECTOR];
   char other[4200], fifo[4200];
   char *text;

   begin("after Exit");
   join(other, sizeof other, dir, "after-exit.vmdk");
   join(fifo, sizeof fifo, dir, "config.fifo");
   memset(buf, 0xe7, sizeof buf);
   if (VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn) != VIX_OK ||
       VixDiskLib_Open(conn, disk, 0, &h) != VIX_OK) {
      report(0, "setup", "");
      return;
   }
   expect_code(VixDiskLib_Write(h, 5, 1, buf), VIX_OK, "Write, then Exit with the disk open");
   VixDiskLib_Exit();
   expect_code(VixDiskLib_Read(h, 5, 1, back), VIX_E_DISK_NOINIT, "Read after Exit");
   expect_code(VixDiskLib_Write(h, 5, 1, buf), VIX_E_DISK_NOINIT, "Write after Exit");
   expect_code(VixDiskLib_Open(conn, disk, 0, &h2), VIX_E_DISK_NOINIT, "Open after Exit");
   expect_code(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c2), VIX_E_DISK_NOINIT,
               "ConnectEx after Exit");
   expect_code(VixDiskLib_Create(conn, other, &cp, NULL, NULL), VIX_E_DISK_NOINIT,
               "Create after Exit");
   expect_true(!exists(other), "... nothing created");
   expect_code(VixDiskLib_Close(h), VIX_E_DISK_NOINIT, "Close after Exit");
   expect_code(VixDiskLib_Disconnect(conn), VIX_E_DISK_NOINIT, "Disconnect after Exit");
   params = VixDiskLib_AllocateConnectParams();
   expect_true(params != NULL, "AllocateConnectParams after Exit");
   VixDiskLib_FreeConnectParams(params);
   text = VixDiskLib_GetErrorText(VIX_E_DISK_NOINIT, NULL);
   expect_true(text != NULL, "GetErrorText after Exit");
   VixDiskLib_FreeErrorText(text);
   VixDiskLib_Exit();
   expect_true(1, "a second Exit is harmless");

   /* A FIFO as config file must not block InitEx either. */
   if (mkfifo(fifo, 0600) != 0) {
      report(0, "mkfifo", strerror(errno));
   }
   expect_code(VixDiskLib_InitEx(6, 5, quiet_log, print_log, print_log, NULL, fifo), VIX_OK,
               "InitEx again (config file is a FIFO: ignored with a warning)");
   expect_code(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c2), VIX_OK, "ConnectEx");
   expect_code(VixDiskLib_Read(h, 5, 1, back), VIX_E_INVALID_ARG,
               "a handle from before Exit stays invalid");
   expect_code(VixDiskLib_Open(c2, disk, 0, &h2), VIX_OK,
               "Open read-write: Exit released the lock");
   expect_code(VixDiskLib_Read(h2, 5, 1, back), VIX_OK, "Read");
   expect_true(memcmp(back, buf, SECTOR) == 0, "... the write made before Exit is there");
   expect_code(VixDiskLib_Close(h2), VIX_OK, "Close");
   expect_code(VixDiskLib_CheckRepair(c2, disk, FALSE), VIX_OK,
               "CheckRepair: Exit closed the disk cleanly");
   expect_code(VixDiskLib_Disconnect(c2), VIX_OK, "Disconnect");
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* VDDK 9.0 and VixDiskLibExt_*: NULL, stale and wrong arguments.            */
/* ------------------------------------------------------------------------ */

static void
vddk9_and_ext(VixDiskLibConnection conn, const char *dir)
{
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   VixDiskLibOpenParams op;
   VixDiskLibQueryChangedAreaParams q;
   VixDiskLibDiskChangeInfo *info = NULL;
   VixDiskLibConnection from = NULL;
   VixDiskLibHandle h = NULL, plain = NULL, stale = NULL;
   char disk[4200], child[4200], *id = NULL, *other_id = NULL;
   uint8 buf[SECTOR];
   long junk[8] = { 0 };

   begin("VDDK 9.0 and VixDiskLibExt_* calls");
   join(disk, sizeof disk, dir, "tracked.vmdk");
   join(child, sizeof child, dir, "tracked-child.vmdk");
   memset(buf, 0x5A, sizeof buf);
   expect_code(VixDiskLib_Create(conn, disk, &cp, NULL, NULL), VIX_OK, "Create a disk to track");

   /* SetChangeTracking */
   expect_code(VixDiskLibExt_SetChangeTracking(NULL, disk, TRUE), VIX_E_INVALID_ARG,
               "SetChangeTracking: NULL connection");
   expect_code(VixDiskLibExt_SetChangeTracking(conn, NULL, TRUE), VIX_E_INVALID_ARG,
               "SetChangeTracking: NULL path");
   expect_code(VixDiskLibExt_SetChangeTracking(conn, child, TRUE), VIX_E_FILE_NOT_FOUND,
               "SetChangeTracking: no such disk");
   expect_code(VixDiskLibExt_SetChangeTracking(conn, disk, TRUE), VIX_OK, "SetChangeTracking on");

   /* OpenEx */
   memset(&op, 0, sizeof op);
   op.path = disk;
   expect_code(VixDiskLib_OpenEx(conn, NULL, &h), VIX_E_INVALID_ARG, "OpenEx: NULL params");
   expect_code(VixDiskLib_OpenEx(conn, &op, NULL), VIX_E_INVALID_ARG, "OpenEx: NULL handle out");
   expect_code(VixDiskLib_OpenEx(NULL, &op, &h), VIX_E_INVALID_ARG, "OpenEx: NULL connection");
   op.path = NULL;
   expect_code(VixDiskLib_OpenEx(conn, &op, &h), VIX_E_INVALID_ARG, "OpenEx: NULL path");
   expect_true(h == NULL, "... no handle handed out");
   op.path = disk;
   op.changeId = (char *)"";
   expect_code(VixDiskLib_OpenEx(conn, &op, &plain), VIX_OK, "OpenEx with \"\" is a plain Open");

   /* GetChangeId / GetConnectionFromDisk */
   expect_code(VixDiskLibExt_GetChangeId(NULL, &id), VIX_E_INVALID_ARG, "GetChangeId: NULL handle");
   expect_code(VixDiskLibExt_GetChangeId(plain, NULL), VIX_E_INVALID_ARG, "GetChangeId: NULL out");
   expect_code(VixDiskLibExt_GetChangeId(plain, &id), VIX_OK, "GetChangeId");
   expect_code(VixDiskLib_GetConnectionFromDisk(NULL, &from), VIX_E_INVALID_ARG,
               "GetConnectionFromDisk: NULL handle");
   expect_code(VixDiskLib_GetConnectionFromDisk(plain, NULL), VIX_E_INVALID_ARG,
               "GetConnectionFromDisk: NULL out");
   expect_code(VixDiskLib_GetConnectionFromDisk(plain, &from), VIX_OK, "GetConnectionFromDisk");
   expect_true(from == conn, "... the connection it was opened through");
   expect_code(VixDiskLib_Write(plain, 0, 1, buf), VIX_OK, "Write after the id");

   /* QueryChangedAreas */
   q.startOffset = 0;
   expect_code(VixDiskLib_QueryChangedAreas(plain, &q, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: handle opened without a change id");
   expect_code(VixDiskLib_QueryChangedAreas(NULL, &q, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: NULL handle");
   expect_code(VixDiskLib_Close(plain), VIX_OK, "Close");
   op.changeId = id;
   op.flags = VIXDISKLIB_FLAG_OPEN_READ_ONLY;
   expect_code(VixDiskLib_OpenEx(conn, &op, &h), VIX_OK, "OpenEx with the id");
   expect_code(VixDiskLib_QueryChangedAreas(h, NULL, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: NULL params");
   expect_code(VixDiskLib_QueryChangedAreas(h, &q, NULL), VIX_E_INVALID_ARG,
               "QueryChangedAreas: NULL out");
   q.startOffset = CAPACITY;
   expect_code(VixDiskLib_QueryChangedAreas(h, &q, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: start at the end");
   q.startOffset = ~(VixDiskLibSectorType)0;
   expect_code(VixDiskLib_QueryChangedAreas(h, &q, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: start 2^64-1");
   expect_true(info == NULL, "... no answer handed out");
   q.startOffset = 0;
   expect_code(VixDiskLib_QueryChangedAreas(h, &q, &info), VIX_OK, "QueryChangedAreas");
   expect_true(info != NULL && info->length == CAPACITY && info->areas != NULL &&
                  info->areas->numBlocks == 1 && info->areas->blocks[0].offset == 0,
               "... one area: the written grain");
   VixDiskLib_FreeChangedAreas(info);
   VixDiskLib_FreeChangedAreas(NULL);
   expect_true(1, "FreeChangedAreas(NULL) is harmless");
   VixDiskLib_FreeChangedAreas((VixDiskLibDiskChangeInfo *)junk);
   expect_true(1, "FreeChangedAreas of a pointer that is no answer is ignored");
   stale = h;
   expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
   expect_code(VixDiskLib_QueryChangedAreas(stale, &q, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: closed handle");
   expect_code(VixDiskLibExt_GetChangeId(stale, &other_id), VIX_E_INVALID_ARG,
               "GetChangeId: closed handle");
   expect_true(other_id == NULL, "... no id handed out");
   expect_code(VixDiskLib_GetConnectionFromDisk(stale, &from), VIX_E_INVALID_ARG,
               "GetConnectionFromDisk: closed handle");
   op.changeId = (char *)"nonsense";
   expect_code(VixDiskLib_OpenEx(conn, &op, &h), VIX_OK,
               "OpenEx with a malformed id (ids are checked by QueryChangedAreas)");
   expect_code(VixDiskLib_QueryChangedAreas(h, &q, &info), VIX_E_INVALID_ARG,
               "QueryChangedAreas: malformed id");
   VixDiskLib_Close(h);
   op.changeId = (char *)"52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/1";
   expect_code(VixDiskLib_OpenEx(conn, &op, &h), VIX_OK, "OpenEx with another history's id");
   expect_code(VixDiskLib_QueryChangedAreas(h, &q, &info), VIX_E_OBJECT_NOT_FOUND,
               "QueryChangedAreas: another history's id (do a full backup)");
   VixDiskLib_Close(h);
   VixDiskLibExt_FreeChangeId(id);
   VixDiskLibExt_FreeChangeId(NULL);
   expect_true(1, "FreeChangeId(NULL) is harmless");

   /* Commit */
   expect_code(VixDiskLibExt_Commit(NULL, disk, NULL, NULL), VIX_E_INVALID_ARG,
               "Commit: NULL connection");
   expect_code(VixDiskLibExt_Commit(conn, NULL, NULL, NULL), VIX_E_INVALID_ARG, "Commit: NULL path");
   expect_code(VixDiskLibExt_Commit(conn, disk, NULL, NULL), VIX_E_INVALID_ARG,
               "Commit: a disk without a parent");
   expect_code(VixDiskLib_Open(conn, disk, 0, &h), VIX_OK, "Open the parent");
   expect_code(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
               VIX_OK, "CreateChild");
   VixDiskLib_Close(h);
   expect_code(VixDiskLib_Open(conn, child, 0, &h), VIX_OK, "Open the child");
   expect_code(VixDiskLibExt_Commit(conn, child, NULL, NULL), VIX_E_FILE_ALREADY_LOCKED,
               "Commit: the child is open");
   VixDiskLib_Close(h);
   expect_code(VixDiskLibExt_SetChangeTracking(conn, child, FALSE), VIX_OK,
               "SetChangeTracking off on the child");
   expect_code(VixDiskLibExt_Commit(conn, child, NULL, NULL), VIX_OK, "Commit");
   expect_true(!exists(child), "... the child is gone");
}

int
main(int argc, char **argv)
{
   char workdir[4096], disk[4200];
   VixDiskLibConnection conn = NULL;
   VixDiskLibCreateParams cp = create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
   VixError err;

   setvbuf(stdout, NULL, _IOLBF, 0);
   signal(SIGALRM, on_alarm);
   if (argc > 1) {
      snprintf(workdir, sizeof workdir, "%s", argv[1]);
      if (mkdir(workdir, 0700) != 0 && errno != EEXIST) {
         fprintf(stderr, "mkdir %s: %s\n", workdir, strerror(errno));
         return 1;
      }
   } else {
      const char *tmp = getenv("TMPDIR");
      snprintf(workdir, sizeof workdir, "%s/vdl-misuse-XXXXXX", tmp ? tmp : "/tmp");
      if (mkdtemp(workdir) == NULL) {
         perror("mkdtemp");
         return 1;
      }
   }
   printf("working in %s\n", workdir);
   join(disk, sizeof disk, workdir, "disk.vmdk");
   remove(disk);

   before_init(disk);

   err = VixDiskLib_InitEx(6, 5, quiet_log, print_log, print_log, NULL, NULL);
   expect_code(err, VIX_OK, "InitEx");
   if (err == VIX_OK) {
      expect_code(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn), VIX_OK, "ConnectEx");
      expect_code(VixDiskLib_Create(conn, disk, &cp, NULL, NULL), VIX_OK, "Create the test disk");
      null_pointers(conn, workdir, disk);
      bad_connections(conn, workdir, disk);
      fifos(conn, workdir);
      vddk9_and_ext(conn, workdir);
      fork_child(conn, disk);
      hostile_disks(conn, workdir);
      expect_code(VixDiskLib_Disconnect(conn), VIX_OK, "Disconnect");
      after_exit(workdir, disk);
      VixDiskLib_Exit();
   }
   alarm(0);

   printf("\n%d checks, %d failed\n", checks, failures);
   if (failures == 0) {
      nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
   }
   return failures ? 1 : 0;
}
