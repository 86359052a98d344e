/*
 * error_cases.c - VixDiskLib error paths on local disks.
 *
 *   error_cases [WORKDIR]
 *
 * Calls the API the wrong way (NULL handles and buffers, double Close, I/O
 * outside the disk, writes through read-only handles, conflicting opens, ...)
 * and checks that every call fails cleanly with the expected VixError code
 * instead of crashing.  Disks are created in WORKDIR (created if missing;
 * default: a fresh directory under $TMPDIR or /tmp), which is removed at the
 * end if every check passed.
 *
 * Exit status: 0 if every check passed, 1 otherwise.
 */

#define _XOPEN_SOURCE 700

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vixDiskLib.h"

#define VIXDISKLIB_VERSION_MAJOR 6
#define VIXDISKLIB_VERSION_MINOR 5

#define SECTOR VIXDISKLIB_SECTOR_SIZE
#define CAPACITY (10 * 2048)             /* 10 MiB in sectors */

static int failures;
static int checks;

/* ------------------------------------------------------------------------ */

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
   if (!ok) {
      failures++;
   }
   printf("%s  %s%s%s\n", ok ? "ok  " : "FAIL", what, detail[0] ? ": " : "", detail);
}

/* Check that err is exactly the expected code; print both with their texts. */
static void
expect_code(VixError err, VixError want, const char *what)
{
   char detail[512];
   char *text = VixDiskLib_GetErrorText(err, NULL);

   if (err == want) {
      snprintf(detail, sizeof detail, "%lu (%s)", (unsigned long)err, text ? text : "no text");
   } else {
      char *want_text = VixDiskLib_GetErrorText(want, NULL);
      snprintf(detail, sizeof detail, "got %lu (%s), expected %lu (%s)", (unsigned long)err,
               text ? text : "no text", (unsigned long)want, want_text ? want_text : "no text");
      VixDiskLib_FreeErrorText(want_text);
   }
   VixDiskLib_FreeErrorText(text);
   report(err == want, what, detail);
}

/* Check only that the call failed (for cases where VDDK's code is unknown). */
static void
expect_failure(VixError err, const char *what)
{
   char detail[256];
   char *text = VixDiskLib_GetErrorText(err, NULL);

   snprintf(detail, sizeof detail, "%lu (%s)", (unsigned long)err, text ? text : "no text");
   VixDiskLib_FreeErrorText(text);
   report(err != VIX_OK && err != VIX_ASYNC, what, detail);
}

static void
expect_true(int cond, const char *what)
{
   report(cond, what, "");
}

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
   (void)sb;
   (void)flag;
   (void)ftw;
   if (remove(path) != 0) {
      fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
   }
   return 0;
}

struct async_result {
   int calls;
   VixError result;
};

static void
completion_cb(void *data, VixError result)
{
   struct async_result *r = (struct async_result *)data;
   r->calls++;
   r->result = result;
}

/* ------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
   char workdir[4096];
   char disk[4200], missing[4200], other[4200], junk[4200];
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL, ro_conn = NULL;
   VixDiskLibCreateParams create;
   VixDiskLibHandle h = NULL, h2 = NULL;
   VixDiskLibInfo *info = NULL;
   VixDiskLibBlockList *blocks = NULL;
   uint8 buf[4 * SECTOR];
   const char *mode;
   char *text;
   VixError err;
   FILE *f;

   /* ------------------------------------------------------------------ */
   /* Work directory                                                      */
   /* ------------------------------------------------------------------ */
   if (argc > 2) {
      fprintf(stderr, "usage: %s [WORKDIR]\n", argv[0]);
      return 2;
   }
   if (argc == 2) {
      snprintf(workdir, sizeof workdir, "%s", argv[1]);
      if (mkdir(workdir, 0700) != 0 && errno != EEXIST) {
         fprintf(stderr, "mkdir %s: %s\n", workdir, strerror(errno));
         return 2;
      }
   } else {
      const char *tmp = getenv("TMPDIR");
      snprintf(workdir, sizeof workdir, "%s/vixdisklib-errors-XXXXXX", tmp && *tmp ? tmp : "/tmp");
      if (mkdtemp(workdir) == NULL) {
         fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
         return 2;
      }
   }
   {
      /* Local disk paths are conventionally absolute (nbdkit insists). */
      char *abs = realpath(workdir, NULL);
      if (abs == NULL || strlen(abs) >= sizeof workdir) {
         fprintf(stderr, "realpath %s: %s\n", workdir, strerror(errno));
         return 2;
      }
      memcpy(workdir, abs, strlen(abs) + 1);
      free(abs);
   }
   snprintf(disk, sizeof disk, "%s/disk.vmdk", workdir);
   snprintf(missing, sizeof missing, "%s/does-not-exist.vmdk", workdir);
   snprintf(other, sizeof other, "%s/other.vmdk", workdir);
   snprintf(junk, sizeof junk, "%s/not-a-disk.vmdk", workdir);
   printf("      working in %s\n", workdir);

   memset(buf, 0x5A, sizeof buf);

   /* ------------------------------------------------------------------ */
   /* Error texts                                                         */
   /* ------------------------------------------------------------------ */
   VixDiskLib_FreeErrorText(NULL);
   expect_true(1, "FreeErrorText(NULL) is harmless");

   text = VixDiskLib_GetErrorText(VIX_E_FILE_NOT_FOUND, NULL);
   expect_true(text != NULL && text[0] != '\0', "GetErrorText(VIX_E_FILE_NOT_FOUND) has a text");
   VixDiskLib_FreeErrorText(text);
   text = VixDiskLib_GetErrorText(VIX_E_DISK_CID_MISMATCH, NULL);
   expect_true(text != NULL && text[0] != '\0', "GetErrorText(VIX_E_DISK_CID_MISMATCH) has a text");
   VixDiskLib_FreeErrorText(text);
   text = VixDiskLib_GetErrorText(0xBEEF, NULL);
   printf("      text of unknown code 0xBEEF: %s\n", text ? text : "(null)");
   VixDiskLib_FreeErrorText(text);

   /* ------------------------------------------------------------------ */
   /* Setup                                                               */
   /* ------------------------------------------------------------------ */
   params = VixDiskLib_AllocateConnectParams();
   expect_true(params != NULL, "AllocateConnectParams");
   if (params == NULL) {
      return 1;
   }
   err = VixDiskLib_InitEx(VIXDISKLIB_VERSION_MAJOR, VIXDISKLIB_VERSION_MINOR,
                           quiet_log, print_log, print_log, NULL, NULL);
   expect_code(err, VIX_OK, "InitEx");
   if (err != VIX_OK) {
      return 1;
   }

   expect_code(VixDiskLib_ConnectEx(params, FALSE, NULL, NULL, NULL), VIX_E_INVALID_ARG,
               "ConnectEx with NULL connection pointer");
   err = VixDiskLib_ConnectEx(params, FALSE, NULL, NULL, &conn);
   expect_code(err, VIX_OK, "ConnectEx (local)");
   if (err != VIX_OK) {
      VixDiskLib_Exit();
      return 1;
   }

   memset(&create, 0, sizeof create);
   create.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
   create.adapterType = VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC;
   create.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
   create.capacity = CAPACITY;

   /* ------------------------------------------------------------------ */
   /* NULL arguments                                                      */
   /* ------------------------------------------------------------------ */
   expect_code(VixDiskLib_Create(conn, NULL, &create, NULL, NULL), VIX_E_INVALID_ARG,
               "Create with NULL path");
   expect_code(VixDiskLib_Create(conn, other, NULL, NULL, NULL), VIX_E_INVALID_ARG,
               "Create with NULL create params");
   expect_true(access(other, F_OK) != 0, "... and no file was left behind");

   h = NULL;
   expect_code(VixDiskLib_Open(conn, NULL, 0, &h), VIX_E_INVALID_ARG, "Open with NULL path");
   expect_true(h == NULL, "... handle stays NULL");
   expect_code(VixDiskLib_Open(conn, missing, 0, NULL), VIX_E_INVALID_ARG,
               "Open with NULL handle pointer");

   expect_code(VixDiskLib_Close(NULL), VIX_E_INVALID_ARG, "Close(NULL)");
   expect_code(VixDiskLib_Read(NULL, 0, 1, buf), VIX_E_INVALID_ARG, "Read on NULL handle");
   expect_code(VixDiskLib_Write(NULL, 0, 1, buf), VIX_E_INVALID_ARG, "Write on NULL handle");
   expect_code(VixDiskLib_GetInfo(NULL, &info), VIX_E_INVALID_ARG, "GetInfo on NULL handle");
   expect_code(VixDiskLib_Flush(NULL), VIX_E_INVALID_ARG, "Flush on NULL handle");
   expect_code(VixDiskLib_Wait(NULL), VIX_E_INVALID_ARG, "Wait on NULL handle");
   {
      struct async_result r = { 0, VIX_OK };
      expect_code(VixDiskLib_ReadAsync(NULL, 0, 1, buf, completion_cb, &r), VIX_E_INVALID_ARG,
                  "ReadAsync on NULL handle");
      expect_true(r.calls == 0, "... and no completion callback");
   }
   expect_code(VixDiskLib_QueryAllocatedBlocks(NULL, 0, 128, 128, &blocks), VIX_E_INVALID_ARG,
               "QueryAllocatedBlocks on NULL handle");
   mode = VixDiskLib_GetTransportMode(NULL);
   expect_true(mode == NULL, "GetTransportMode(NULL) returns NULL");
   VixDiskLib_FreeInfo(NULL);
   expect_true(1, "FreeInfo(NULL) is harmless");
   VixDiskLib_FreeConnectParams(NULL);
   expect_true(1, "FreeConnectParams(NULL) is harmless");

   /* ------------------------------------------------------------------ */
   /* Missing files                                                       */
   /* ------------------------------------------------------------------ */
   h = NULL;
   expect_code(VixDiskLib_Open(conn, missing, 0, &h), VIX_E_FILE_NOT_FOUND,
               "Open of a missing file");
   expect_true(h == NULL, "... handle stays NULL");
   expect_code(VixDiskLib_Open(conn, missing, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_FILE_NOT_FOUND, "Open read-only of a missing file");

   /* ------------------------------------------------------------------ */
   /* A real disk                                                         */
   /* ------------------------------------------------------------------ */
   err = VixDiskLib_Create(conn, disk, &create, NULL, NULL);
   expect_code(err, VIX_OK, "Create a 10 MiB monolithic sparse disk");
   if (err != VIX_OK) {
      goto out;
   }
   expect_code(VixDiskLib_Create(conn, disk, &create, NULL, NULL), VIX_E_FILE_ALREADY_EXISTS,
               "Create over an existing file");

   err = VixDiskLib_Open(conn, disk, 0, &h);
   expect_code(err, VIX_OK, "Open read-write");
   if (err != VIX_OK) {
      goto out;
   }

   expect_code(VixDiskLib_Read(h, 0, 1, NULL), VIX_E_INVALID_ARG, "Read into a NULL buffer");
   expect_code(VixDiskLib_Write(h, 0, 1, NULL), VIX_E_INVALID_ARG, "Write from a NULL buffer");
   expect_code(VixDiskLib_GetInfo(h, NULL), VIX_E_INVALID_ARG, "GetInfo with NULL result pointer");
   expect_code(VixDiskLib_QueryAllocatedBlocks(h, 0, 128, 128, NULL), VIX_E_INVALID_ARG,
               "QueryAllocatedBlocks with NULL result pointer");

   /* Bounds: the last sector is fine, anything beyond is out of range. */
   expect_code(VixDiskLib_Write(h, CAPACITY - 1, 1, buf), VIX_OK, "Write the last sector");
   expect_code(VixDiskLib_Read(h, CAPACITY - 1, 1, buf), VIX_OK, "Read the last sector");
   expect_code(VixDiskLib_Read(h, CAPACITY, 1, buf), VIX_E_DISK_OUTOFRANGE,
               "Read one sector past the end");
   expect_code(VixDiskLib_Read(h, CAPACITY - 1, 2, buf), VIX_E_DISK_OUTOFRANGE,
               "Read straddling the end");
   expect_code(VixDiskLib_Read(h, ~(VixDiskLibSectorType)0, 2, buf), VIX_E_DISK_OUTOFRANGE,
               "Read where start + count overflows");
   expect_code(VixDiskLib_Write(h, CAPACITY, 1, buf), VIX_E_DISK_OUTOFRANGE,
               "Write one sector past the end");
   expect_code(VixDiskLib_Write(h, CAPACITY - 2, 4, buf), VIX_E_DISK_OUTOFRANGE,
               "Write straddling the end");

   /* A second read-write open of the same disk is refused by the lock. */
   h2 = NULL;
   expect_code(VixDiskLib_Open(conn, disk, 0, &h2), VIX_E_FILE_ALREADY_LOCKED,
               "Second read-write Open of the same disk");
   expect_true(h2 == NULL, "... handle stays NULL");
   if (h2 != NULL) {
      VixDiskLib_Close(h2);
      h2 = NULL;
   }

   /* Double Close: the second one must fail, not crash. */
   expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
   expect_code(VixDiskLib_Close(h), VIX_E_INVALID_ARG, "Close of an already closed handle");
   h = NULL;

   /* The lock is gone with the handle. */
   err = VixDiskLib_Open(conn, disk, 0, &h);
   expect_code(err, VIX_OK, "Open read-write again after Close");
   if (err == VIX_OK) {
      expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
   }
   h = NULL;

   /* Read-only handle: writes are refused. */
   err = VixDiskLib_Open(conn, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h);
   expect_code(err, VIX_OK, "Open read-only");
   if (err == VIX_OK) {
      struct async_result r = { 0, VIX_OK };

      expect_code(VixDiskLib_Read(h, CAPACITY - 1, 1, buf), VIX_OK, "Read on read-only handle");
      expect_code(VixDiskLib_Write(h, 0, 1, buf), VIX_E_FILE_READ_ONLY,
                  "Write on a read-only handle");

      /* Either refused at submission or completed with the error. */
      err = VixDiskLib_WriteAsync(h, 0, 1, buf, completion_cb, &r);
      if (err == VIX_ASYNC) {
         expect_code(VixDiskLib_Wait(h), VIX_OK, "Wait");
         expect_true(r.calls == 1, "WriteAsync on a read-only handle completed once");
         expect_code(r.result, VIX_E_FILE_READ_ONLY, "WriteAsync on a read-only handle (callback)");
      } else {
         expect_code(err, VIX_E_FILE_READ_ONLY, "WriteAsync on a read-only handle");
         expect_true(r.calls == 0, "... and no completion callback");
      }
      expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
   }
   h = NULL;

   /* A read-only connection makes every open read-only. */
   err = VixDiskLib_ConnectEx(params, TRUE, NULL, NULL, &ro_conn);
   expect_code(err, VIX_OK, "ConnectEx read-only (local)");
   if (err == VIX_OK) {
      err = VixDiskLib_Open(ro_conn, disk, 0, &h);
      expect_code(err, VIX_OK, "Open through the read-only connection");
      if (err == VIX_OK) {
         expect_code(VixDiskLib_Write(h, 0, 1, buf), VIX_E_FILE_READ_ONLY,
                     "Write through a read-only connection");
         expect_code(VixDiskLib_Close(h), VIX_OK, "Close");
      }
      h = NULL;
      expect_code(VixDiskLib_Disconnect(ro_conn), VIX_OK, "Disconnect read-only connection");
   }

   /* Something that is not a VMDK. */
   f = fopen(junk, "w");
   if (f != NULL) {
      fputs("this is not a virtual disk\n", f);
      fclose(f);
      h = NULL;
      expect_failure(VixDiskLib_Open(conn, junk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
                     "Open of a file that is not a VMDK fails");
      expect_true(h == NULL, "... handle stays NULL");
      if (h != NULL) {
         VixDiskLib_Close(h);
         h = NULL;
      }
   }

   /* Unlink removes the disk; opening it afterwards is "not found". */
   expect_code(VixDiskLib_Unlink(conn, disk), VIX_OK, "Unlink");
   expect_true(access(disk, F_OK) != 0, "... file is gone");
   expect_code(VixDiskLib_Open(conn, disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h),
               VIX_E_FILE_NOT_FOUND, "Open after Unlink");

out:
   expect_code(VixDiskLib_Disconnect(conn), VIX_OK, "Disconnect");
   VixDiskLib_FreeConnectParams(params);
   VixDiskLib_Exit();

   if (failures == 0) {
      nftw(workdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
   } else {
      printf("      keeping %s for inspection\n", workdir);
   }
   printf("\n%s: %d checks, %d failed\n", failures == 0 ? "PASS" : "FAIL", checks, failures);
   return failures == 0 ? 0 : 1;
}
