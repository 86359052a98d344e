/*
 * demo.c - an ordinary VixDiskLib client working on a local (hosted) disk.
 *
 *   demo PATH.vmdk [CAPACITY_MiB]      (default 64 MiB, at least 4)
 *
 * Creates a new monolithic sparse disk at PATH, writes recognisable data with
 * both the synchronous and the asynchronous API, flushes, reads everything
 * back and verifies it, prints what GetInfo reports, then closes, reopens the
 * disk read-only and verifies the data once more.
 *
 * Nothing in here is specific to this implementation: it is written the way
 * programs written for VMware's VDDK use the library.
 *
 * Exit status: 0 only if every step and every check succeeded.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vixDiskLib.h"

/* The header does not define these; every client picks its own. */
#define VIXDISKLIB_VERSION_MAJOR 6
#define VIXDISKLIB_VERSION_MINOR 5

#define SECTOR VIXDISKLIB_SECTOR_SIZE
#define MiB (1024u * 1024u)
#define SECTORS_PER_MiB (MiB / SECTOR)

/* Asynchronous writes: NUM_ASYNC requests of ASYNC_SECTORS each, starting at
 * 1 MiB and spaced ASYNC_STRIDE sectors apart (leaving holes in between). */
#define NUM_ASYNC 8
#define ASYNC_SECTORS 128                /* 64 KiB */
#define ASYNC_STRIDE 256                 /* 128 KiB */
#define ASYNC_FIRST SECTORS_PER_MiB

static int failures;

/* ------------------------------------------------------------------------ */
/* Logging callbacks handed to InitEx                                       */
/* ------------------------------------------------------------------------ */

static void
log_func(const char *fmt, va_list args)
{
   printf("[log] ");
   vprintf(fmt, args);
}

static void
warn_func(const char *fmt, va_list args)
{
   printf("[warn] ");
   vprintf(fmt, args);
}

static void
panic_func(const char *fmt, va_list args)
{
   printf("[panic] ");
   vprintf(fmt, args);
   abort();
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* Print an error with the library's text.  Returns 1 if err is VIX_OK. */
static int
check_vix(VixError err, const char *what)
{
   char *text;

   if (err == VIX_OK) {
      printf("ok    %s\n", what);
      return 1;
   }
   text = VixDiskLib_GetErrorText(err, NULL);
   printf("FAIL  %s: error %lu (%s)\n", what, (unsigned long)VIX_ERROR_CODE(err),
          text != NULL ? text : "no error text");
   VixDiskLib_FreeErrorText(text);
   failures++;
   return 0;
}

static int
check(int cond, const char *what)
{
   printf("%s  %s\n", cond ? "ok  " : "FAIL", what);
   if (!cond) {
      failures++;
   }
   return cond;
}

/*
 * Recognisable content: every sector starts with its own sector number and a
 * tag, followed by bytes derived from both, so misplaced, stale or zero data
 * is detected.
 */
static void
fill_sectors(uint8 *buf, VixDiskLibSectorType first, VixDiskLibSectorType count, uint8 tag)
{
   VixDiskLibSectorType s;
   size_t i;

   for (s = 0; s < count; s++) {
      uint8 *p = buf + s * SECTOR;
      uint64 sector = first + s;

      memset(p, 0, 64);
      snprintf((char *)p, 64, "sector %08lu tag %02x", (unsigned long)sector, (unsigned)tag);
      for (i = 64; i < SECTOR; i++) {
         p[i] = (uint8)(sector * 31u + i * 7u + tag);
      }
   }
}

/* Returns the index of the first bad sector, or -1 if all match. */
static long
verify_sectors(const uint8 *buf, VixDiskLibSectorType first, VixDiskLibSectorType count,
               uint8 tag)
{
   uint8 expected[SECTOR];
   VixDiskLibSectorType s;

   for (s = 0; s < count; s++) {
      fill_sectors(expected, first + s, 1, tag);
      if (memcmp(buf + s * SECTOR, expected, SECTOR) != 0) {
         return (long)s;
      }
   }
   return -1;
}

static int
all_zero(const uint8 *buf, size_t len)
{
   size_t i;

   for (i = 0; i < len; i++) {
      if (buf[i] != 0) {
         return 0;
      }
   }
   return 1;
}

static const char *
adapter_name(VixDiskLibAdapterType type)
{
   switch (type) {
   case VIXDISKLIB_ADAPTER_IDE:           return "ide";
   case VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC: return "buslogic";
   case VIXDISKLIB_ADAPTER_SCSI_LSILOGIC: return "lsilogic";
   default:                               return "unknown";
   }
}

/* ------------------------------------------------------------------------ */
/* Asynchronous completion                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The library may call completions on any thread, but only before Wait()
 * returns; Wait() is the synchronisation point, after which the main thread
 * reads these fields.
 */
struct async_request {
   int completed;                        /* times the callback ran */
   VixError result;
};

static void
completion_cb(void *cbData, VixError result)
{
   struct async_request *req = (struct async_request *)cbData;

   req->completed++;
   req->result = result;
}

/* ------------------------------------------------------------------------ */
/* The steps on an open disk                                                */
/* ------------------------------------------------------------------------ */

static void
write_data(VixDiskLibHandle disk, VixDiskLibSectorType capacity)
{
   uint8 *mib = (uint8 *)malloc(MiB);
   uint8 *async_bufs = (uint8 *)malloc((size_t)NUM_ASYNC * ASYNC_SECTORS * SECTOR);
   struct async_request reqs[NUM_ASYNC];
   uint8 tail[8 * SECTOR];
   int i, submitted = 0;
   char what[128];

   if (mib == NULL || async_bufs == NULL) {
      check(0, "allocate I/O buffers");
      free(mib);
      free(async_bufs);
      return;
   }

   /* 1 MiB synchronous write at sector 0. */
   fill_sectors(mib, 0, SECTORS_PER_MiB, 0xA1);
   check_vix(VixDiskLib_Write(disk, 0, SECTORS_PER_MiB, mib), "Write 1 MiB at sector 0");

   /* The last 8 sectors of the disk, synchronously. */
   fill_sectors(tail, capacity - 8, 8, 0xE7);
   check_vix(VixDiskLib_Write(disk, capacity - 8, 8, tail), "Write the last 8 sectors");

   /* A batch of asynchronous writes, completed by Wait(). */
   memset(reqs, 0, sizeof reqs);
   for (i = 0; i < NUM_ASYNC; i++) {
      VixDiskLibSectorType start = ASYNC_FIRST + (VixDiskLibSectorType)i * ASYNC_STRIDE;
      uint8 *buf = async_bufs + (size_t)i * ASYNC_SECTORS * SECTOR;
      VixError err;

      fill_sectors(buf, start, ASYNC_SECTORS, (uint8)(0x30 + i));
      err = VixDiskLib_WriteAsync(disk, start, ASYNC_SECTORS, buf, completion_cb, &reqs[i]);
      snprintf(what, sizeof what, "WriteAsync #%d (sectors %lu+%u) returns VIX_ASYNC", i,
               (unsigned long)start, ASYNC_SECTORS);
      if (err == VIX_ASYNC) {
         check(1, what);
         submitted++;
      } else {
         check_vix(err == VIX_OK ? (VixError)VIX_E_FAIL : err, what);
         reqs[i].completed = -1;         /* no callback expected */
      }
   }
   check_vix(VixDiskLib_Wait(disk), "Wait for the asynchronous writes");
   for (i = 0; i < NUM_ASYNC; i++) {
      if (reqs[i].completed == -1) {
         continue;
      }
      snprintf(what, sizeof what, "WriteAsync #%d completed exactly once with VIX_OK", i);
      check(reqs[i].completed == 1 && reqs[i].result == VIX_OK, what);
   }
   printf("      %d asynchronous writes submitted\n", submitted);

   check_vix(VixDiskLib_Flush(disk), "Flush");

   free(mib);
   free(async_bufs);
}

static void
verify_data(VixDiskLibHandle disk, VixDiskLibSectorType capacity, int use_async)
{
   uint8 *mib = (uint8 *)malloc(MiB);
   uint8 *async_bufs = (uint8 *)calloc((size_t)NUM_ASYNC, ASYNC_SECTORS * SECTOR);
   struct async_request reqs[NUM_ASYNC];
   uint8 tail[8 * SECTOR];
   uint8 hole[ASYNC_SECTORS * SECTOR];
   long bad;
   int i;
   char what[128];

   if (mib == NULL || async_bufs == NULL) {
      check(0, "allocate I/O buffers");
      free(mib);
      free(async_bufs);
      return;
   }

   if (check_vix(VixDiskLib_Read(disk, 0, SECTORS_PER_MiB, mib), "Read 1 MiB at sector 0")) {
      bad = verify_sectors(mib, 0, SECTORS_PER_MiB, 0xA1);
      snprintf(what, sizeof what, "first 1 MiB matches (first bad sector: %ld)", bad);
      check(bad < 0, what);
   }

   if (check_vix(VixDiskLib_Read(disk, capacity - 8, 8, tail), "Read the last 8 sectors")) {
      check(verify_sectors(tail, capacity - 8, 8, 0xE7) < 0, "last 8 sectors match");
   }

   /* The gap after every asynchronously written block was never written. */
   if (check_vix(VixDiskLib_Read(disk, ASYNC_FIRST + ASYNC_SECTORS, ASYNC_SECTORS, hole),
                 "Read an unwritten range")) {
      check(all_zero(hole, sizeof hole), "unwritten range reads as zeros");
   }

   memset(reqs, 0, sizeof reqs);
   for (i = 0; i < NUM_ASYNC; i++) {
      VixDiskLibSectorType start = ASYNC_FIRST + (VixDiskLibSectorType)i * ASYNC_STRIDE;
      uint8 *buf = async_bufs + (size_t)i * ASYNC_SECTORS * SECTOR;

      if (use_async) {
         VixError err = VixDiskLib_ReadAsync(disk, start, ASYNC_SECTORS, buf, completion_cb,
                                             &reqs[i]);
         snprintf(what, sizeof what, "ReadAsync #%d returns VIX_ASYNC", i);
         if (err != VIX_ASYNC) {
            check_vix(err == VIX_OK ? (VixError)VIX_E_FAIL : err, what);
            reqs[i].completed = -1;
         }
      } else {
         snprintf(what, sizeof what, "Read async-written block #%d", i);
         if (!check_vix(VixDiskLib_Read(disk, start, ASYNC_SECTORS, buf), what)) {
            reqs[i].completed = -1;
         } else {
            reqs[i].completed = 1;
         }
      }
   }
   if (use_async) {
      check_vix(VixDiskLib_Wait(disk), "Wait for the asynchronous reads");
   }
   for (i = 0; i < NUM_ASYNC; i++) {
      VixDiskLibSectorType start = ASYNC_FIRST + (VixDiskLibSectorType)i * ASYNC_STRIDE;

      if (reqs[i].completed == -1) {
         continue;
      }
      if (use_async) {
         snprintf(what, sizeof what, "ReadAsync #%d completed exactly once with VIX_OK", i);
         if (!check(reqs[i].completed == 1 && reqs[i].result == VIX_OK, what)) {
            continue;
         }
      }
      bad = verify_sectors(async_bufs + (size_t)i * ASYNC_SECTORS * SECTOR, start,
                           ASYNC_SECTORS, (uint8)(0x30 + i));
      snprintf(what, sizeof what, "async-written block #%d matches (first bad sector: %ld)", i,
               bad);
      check(bad < 0, what);
   }

   free(mib);
   free(async_bufs);
}

static void
show_info(VixDiskLibHandle disk, VixDiskLibSectorType capacity)
{
   VixDiskLibInfo *info = NULL;
   const char *mode;

   if (check_vix(VixDiskLib_GetInfo(disk, &info), "GetInfo") && check(info != NULL, "info set")) {
      printf("      capacity            %lu sectors (%lu MiB)\n", (unsigned long)info->capacity,
             (unsigned long)(info->capacity / SECTORS_PER_MiB));
      printf("      BIOS geometry       %u/%u/%u (C/H/S)\n", (unsigned)info->biosGeo.cylinders,
             (unsigned)info->biosGeo.heads, (unsigned)info->biosGeo.sectors);
      printf("      physical geometry   %u/%u/%u (C/H/S)\n", (unsigned)info->physGeo.cylinders,
             (unsigned)info->physGeo.heads, (unsigned)info->physGeo.sectors);
      printf("      adapter type        %d (%s)\n", (int)info->adapterType,
             adapter_name(info->adapterType));
      printf("      links               %d\n", info->numLinks);
      printf("      parent hint         %s\n",
             info->parentFileNameHint != NULL ? info->parentFileNameHint : "(none)");
      printf("      uuid                %s\n", info->uuid != NULL ? info->uuid : "(none)");
      printf("      logical sector      %u bytes\n", (unsigned)info->logicalSectorSize);
      printf("      physical sector     %u bytes\n", (unsigned)info->physicalSectorSize);

      check(info->capacity == capacity, "capacity is what was created");
      check(info->adapterType == VIXDISKLIB_ADAPTER_SCSI_LSILOGIC, "adapter is lsilogic");
      check(info->numLinks == 1, "a base disk has one link");
      check(info->parentFileNameHint == NULL || info->parentFileNameHint[0] == '\0',
            "a base disk has no parent");
      check((uint64)info->biosGeo.cylinders * info->biosGeo.heads * info->biosGeo.sectors <=
               capacity && info->biosGeo.heads != 0 && info->biosGeo.sectors != 0,
            "BIOS geometry is plausible");
      check(info->logicalSectorSize == SECTOR && info->physicalSectorSize == SECTOR,
            "sector sizes are 512 bytes");
      VixDiskLib_FreeInfo(info);
   }

   mode = VixDiskLib_GetTransportMode(disk);
   printf("      transport mode      %s\n", mode != NULL ? mode : "(null)");
   check(mode != NULL && strcmp(mode, "file") == 0, "transport mode is \"file\"");
}

/* ------------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
   const char *path;
   unsigned long mib = 64;
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   VixDiskLibCreateParams create;
   VixDiskLibHandle disk = NULL;
   VixDiskLibSectorType capacity;
   const char *modes;
   VixError err;

   if (argc < 2 || argc > 3) {
      fprintf(stderr, "usage: %s PATH.vmdk [CAPACITY_MiB]\n", argv[0]);
      return 2;
   }
   path = argv[1];
   if (argc == 3) {
      char *end;
      mib = strtoul(argv[2], &end, 10);
      if (*end != '\0' || mib < 4) {
         fprintf(stderr, "%s: capacity must be a number of MiB >= 4\n", argv[0]);
         return 2;
      }
   }
   capacity = (VixDiskLibSectorType)mib * SECTORS_PER_MiB;

   params = VixDiskLib_AllocateConnectParams();
   if (!check(params != NULL, "AllocateConnectParams")) {
      return 1;
   }

   err = VixDiskLib_InitEx(VIXDISKLIB_VERSION_MAJOR, VIXDISKLIB_VERSION_MINOR,
                           log_func, warn_func, panic_func, NULL, NULL);
   if (!check_vix(err, "InitEx(6, 5)")) {
      VixDiskLib_FreeConnectParams(params);
      return 1;
   }

   modes = VixDiskLib_ListTransportModes();
   printf("      transport modes     %s\n", modes != NULL ? modes : "(null)");
   check(modes != NULL && strstr(modes, "file") != NULL, "ListTransportModes includes \"file\"");

   /* No server name: a local connection for hosted disks. */
   err = VixDiskLib_ConnectEx(params, FALSE, NULL, NULL, &conn);
   if (!check_vix(err, "ConnectEx (local)")) {
      goto out_exit;
   }

   memset(&create, 0, sizeof create);
   create.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
   create.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   create.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;          /* 7 */
   create.capacity = capacity;
   create.logicalSectorSize = 0;                           /* 0 = 512 */
   create.physicalSectorSize = 0;
   printf("      creating %s, %lu MiB\n", path, mib);
   err = VixDiskLib_Create(conn, path, &create, NULL, NULL);
   if (!check_vix(err, "Create monolithic sparse disk")) {
      goto out_disconnect;
   }

   err = VixDiskLib_Open(conn, path, 0, &disk);
   if (check_vix(err, "Open read-write")) {
      show_info(disk, capacity);
      write_data(disk, capacity);
      verify_data(disk, capacity, 1);
      check_vix(VixDiskLib_Close(disk), "Close");
      disk = NULL;
   }

   /* Everything must have reached the file: reopen read-only and re-check. */
   err = VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &disk);
   if (check_vix(err, "Open read-only")) {
      verify_data(disk, capacity, 0);
      check_vix(VixDiskLib_Close(disk), "Close");
   }

out_disconnect:
   check_vix(VixDiskLib_Disconnect(conn), "Disconnect");
out_exit:
   VixDiskLib_FreeConnectParams(params);
   VixDiskLib_Exit();

   printf("\n%s: %d check(s) failed\n", failures == 0 ? "PASS" : "FAIL", failures);
   return failures == 0 ? 0 : 1;
}
