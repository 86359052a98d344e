/*
 * seqio.c - sequential I/O through VixDiskLib, for bench/run.sh.
 *
 *   seqio create PATH CAPACITY_MiB
 *   seqio write  PATH TOTAL_MiB REQUEST_KiB
 *   seqio read   PATH TOTAL_MiB REQUEST_KiB
 *
 * create: new monolithic sparse disk (lsilogic, hw version 7).
 * write:  Open read-write, synchronous Write of TOTAL_MiB from sector 0 in
 *         REQUEST_KiB requests (every byte 0xA5), Flush, Close.
 * read:   Open read-only, synchronous Read of the same range, Close; spot-checks
 *         the data so that a read of unallocated (zero) space is noticed.
 *
 * Environment: SEQIO_UNBUFFERED=1 adds VIXDISKLIB_FLAG_OPEN_UNBUFFERED.
 *
 * Prints one line "RESULT op bytes seconds" (Open to Close inclusive) plus a
 * breakdown on stderr.  Exit status 0 on success.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define PROG "seqio"
/* Shared helpers with this program's name as the message prefix. */
#define failed(err, what) bench_failed(PROG, (err), (what))
#define number(s, what) bench_number(PROG, (s), (what))

#define PATTERN 0xA5

static int
usage(void)
{
   fprintf(stderr, "usage: seqio create PATH CAPACITY_MiB\n"
                   "       seqio write  PATH TOTAL_MiB REQUEST_KiB\n"
                   "       seqio read   PATH TOTAL_MiB REQUEST_KiB\n");
   return 2;
}

static int
do_io(VixDiskLibConnection conn, const char *path, int writing, unsigned long total_mib,
      unsigned long req_kib)
{
   VixDiskLibSectorType req_sectors = (VixDiskLibSectorType)req_kib * 2;
   VixDiskLibSectorType total = (VixDiskLibSectorType)total_mib * 2048;
   VixDiskLibSectorType pos;
   size_t req_bytes = (size_t)req_kib * 1024;
   uint32 flags = writing ? 0 : VIXDISKLIB_FLAG_OPEN_READ_ONLY;
   VixDiskLibHandle h = NULL;
   void *mem = NULL;
   uint8 *buf;
   double t0, t1, t2, t3;
   int rc = 0;

   if (total % req_sectors != 0) {
      fprintf(stderr, "seqio: TOTAL must be a multiple of REQUEST\n");
      return 2;
   }
   if (getenv("SEQIO_UNBUFFERED") != NULL && strcmp(getenv("SEQIO_UNBUFFERED"), "1") == 0) {
      flags |= VIXDISKLIB_FLAG_OPEN_UNBUFFERED;
   }
   if (posix_memalign(&mem, 4096, req_bytes) != 0) {
      fprintf(stderr, "seqio: out of memory\n");
      return 1;
   }
   buf = (uint8 *)mem;
   memset(buf, writing ? PATTERN : 0, req_bytes);

   t0 = bench_now();
   if (failed(VixDiskLib_Open(conn, path, flags, &h), "Open")) {
      free(mem);
      return 1;
   }
   t1 = bench_now();
   for (pos = 0; pos < total; pos += req_sectors) {
      if (writing) {
         if (failed(VixDiskLib_Write(h, pos, req_sectors, buf), "Write")) {
            rc = 1;
            break;
         }
      } else {
         if (failed(VixDiskLib_Read(h, pos, req_sectors, buf), "Read")) {
            rc = 1;
            break;
         }
         if (buf[0] != PATTERN || buf[req_bytes - 1] != PATTERN) {
            fprintf(stderr, "seqio: unexpected data at sector %lu\n", (unsigned long)pos);
            rc = 1;
            break;
         }
      }
   }
   t2 = bench_now();
   if (writing && rc == 0 && failed(VixDiskLib_Flush(h), "Flush")) {
      rc = 1;
   }
   if (failed(VixDiskLib_Close(h), "Close")) {
      rc = 1;
   }
   t3 = bench_now();
   free(mem);

   if (rc == 0) {
      fprintf(stderr, "seqio: %s %lu MiB in %lu KiB requests: open %.3fs, I/O %.3fs, %s %.3fs\n",
              writing ? "write" : "read", total_mib, req_kib, t1 - t0, t2 - t1,
              writing ? "flush+close" : "close", t3 - t2);
      printf("RESULT %s %llu %.6f\n", writing ? "write" : "read",
             (unsigned long long)total * 512ull, t3 - t0);
   }
   return rc;
}

int
main(int argc, char **argv)
{
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   int rc;

   if (argc < 4) {
      return usage();
   }
   if (strcmp(argv[1], "create") != 0 && argc != 5) {
      return usage();
   }

   if (bench_connect(PROG, &params, &conn)) {
      return 1;
   }

   if (strcmp(argv[1], "create") == 0 && argc == 4) {
      rc = bench_create_disk(PROG, conn, argv[2], number(argv[3], "capacity"));
   } else if (strcmp(argv[1], "write") == 0) {
      rc = do_io(conn, argv[2], 1, number(argv[3], "total"), number(argv[4], "request size"));
   } else if (strcmp(argv[1], "read") == 0) {
      rc = do_io(conn, argv[2], 0, number(argv[3], "total"), number(argv[4], "request size"));
   } else {
      rc = usage();
   }

   bench_disconnect(params, conn);
   return rc;
}
