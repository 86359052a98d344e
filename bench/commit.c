/*
 * commit.c - redo-log commit and big-chain opens through VixDiskLib, for bench/commit.sh.
 *
 *   commit build  DIR CAPACITY_MiB CHANGE_MiB
 *   commit commit CHILD
 *   commit big    DIR CAPACITY_GiB
 *   commit open   CHILD
 *
 * build:  DIR/base.vmdk, a monolithic sparse disk of CAPACITY_MiB, gets CHANGE_MiB of data:
 *         1 MiB at the start of every 2 MiB. Then CreateChild DIR/base.vmdk.REDO
 *         (monolithic sparse) and the child gets CHANGE_MiB of changes: 1 MiB at 512 KiB
 *         into every 2 MiB, so half of each change lands on base data (overwrites) and
 *         half in a hole of the base (new grains). Written in 1 MiB requests, Flush, Close.
 * commit: VixDiskLibExt_Commit(CHILD) timed in-process (it is durable when it returns:
 *         the parent is flushed before the commit point, the child's deletion is synced).
 * big:    DIR/big.vmdk, a monolithic sparse disk of CAPACITY_GiB with 1 MiB written at
 *         its start and end, and CreateChild DIR/big.vmdk.REDO over it.
 * open:   Open CHILD (whole chain, read-write as a VM would), timed in-process, then read
 *         1 MiB at its start and end; max RSS (getrusage) after InitEx and at the end.
 *
 * Sector stamps: every written sector starts with a uint64 = TAG << 48 | sector number,
 * the rest is filled with a byte of the tag (base 0xB0, child 0xC1).
 *
 * Output: "RESULT ..." lines on stdout, a human breakdown on stderr.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_common.h"
#include "vixDiskLibExt.h"

#define PROG "commit"
#define failed(err, what) bench_failed(PROG, (err), (what))
#define number(s, what) bench_number(PROG, (s), (what))

#define MIB_SECTORS 2048u
#define BASE_TAG 0xB0ull
#define CHILD_TAG 0xC1ull

static int
usage(void)
{
   fprintf(stderr, "usage: commit build  DIR CAPACITY_MiB CHANGE_MiB\n"
                   "       commit commit CHILD\n"
                   "       commit big    DIR CAPACITY_GiB\n"
                   "       commit open   CHILD\n");
   return 2;
}

static void
stamp(uint8 *buf, uint64_t first_sector, uint64_t tag)
{
   unsigned i;

   for (i = 0; i < MIB_SECTORS; i++) {
      uint64_t v = tag << 48 | (first_sector + i);

      memset(buf + i * 512, (int)tag, 512);
      memcpy(buf + i * 512, &v, 8);
   }
}

/* Writes 1 MiB stamped with TAG at each of the COUNT sectors START + k * STEP. */
static int
write_mibs(VixDiskLibHandle h, uint64_t start, uint64_t step, unsigned long count, uint64_t tag)
{
   uint8 *buf = malloc(MIB_SECTORS * 512);
   unsigned long k;
   int rc = buf == NULL;

   for (k = 0; k < count && rc == 0; k++) {
      uint64_t s = start + k * step;

      stamp(buf, s, tag);
      rc = failed(VixDiskLib_Write(h, s, MIB_SECTORS, buf), "Write");
   }
   free(buf);
   return rc || failed(VixDiskLib_Flush(h), "Flush");
}

static int
child_of(VixDiskLibConnection conn, const char *parent, const char *child)
{
   VixDiskLibHandle h;

   if (failed(VixDiskLib_Open(conn, parent, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), "Open parent")) {
      return 1;
   }
   if (failed(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
              "CreateChild")) {
      VixDiskLib_Close(h);
      return 1;
   }
   return failed(VixDiskLib_Close(h), "Close parent");
}

static int
do_build(VixDiskLibConnection conn, const char *dir, unsigned long cap_mib,
         unsigned long change_mib)
{
   char base[4096], child[4096];
   VixDiskLibHandle h;
   double t0 = bench_now();
   int rc;

   if (2 * change_mib > cap_mib) {
      fprintf(stderr, "commit: CHANGE_MiB must be at most half the capacity\n");
      return 2;
   }
   snprintf(base, sizeof base, "%s/base.vmdk", dir);
   snprintf(child, sizeof child, "%s/base.vmdk.REDO", dir);
   if (bench_create_disk(PROG, conn, base, cap_mib) ||
       failed(VixDiskLib_Open(conn, base, 0, &h), "Open base")) {
      return 1;
   }
   rc = write_mibs(h, 0, 2 * MIB_SECTORS, change_mib, BASE_TAG);
   rc = failed(VixDiskLib_Close(h), "Close base") || rc;
   rc = rc || child_of(conn, base, child);
   if (rc || failed(VixDiskLib_Open(conn, child, 0, &h), "Open child")) {
      return 1;
   }
   rc = write_mibs(h, MIB_SECTORS / 2, 2 * MIB_SECTORS, change_mib, CHILD_TAG);
   rc = failed(VixDiskLib_Close(h), "Close child") || rc;
   if (rc == 0) {
      fprintf(stderr, "commit: built %s (%lu MiB written) and %s (%lu MiB of changes) in %.3fs\n",
              base, change_mib, child, change_mib, bench_now() - t0);
   }
   return rc;
}

/* A progress callback, as a client showing a progress bar would pass one. */
static Bool
progress_quiet(void *data, int percent)
{
   (void)data;
   (void)percent;
   return TRUE;
}

static int
do_commit(VixDiskLibConnection conn, const char *child)
{
   double t0 = bench_now(), t1;

   if (failed(VixDiskLibExt_Commit(conn, child, progress_quiet, NULL), "Commit")) {
      return 1;
   }
   t1 = bench_now();
   fprintf(stderr, "commit: VixDiskLibExt_Commit %.3fs\n", t1 - t0);
   printf("RESULT commit %.6f\n", t1 - t0);
   return 0;
}

static int
do_big(VixDiskLibConnection conn, const char *dir, unsigned long cap_gib)
{
   char base[4096], child[4096];
   VixDiskLibHandle h;
   uint64_t cap_sectors = (uint64_t)cap_gib << 21;
   int rc;

   snprintf(base, sizeof base, "%s/big.vmdk", dir);
   snprintf(child, sizeof child, "%s/big.vmdk.REDO", dir);
   if (bench_create_disk(PROG, conn, base, cap_gib * 1024) ||
       failed(VixDiskLib_Open(conn, base, 0, &h), "Open big base")) {
      return 1;
   }
   rc = write_mibs(h, 0, 0, 1, BASE_TAG) ||
        write_mibs(h, cap_sectors - MIB_SECTORS, 0, 1, BASE_TAG);
   rc = failed(VixDiskLib_Close(h), "Close big base") || rc;
   return rc || child_of(conn, base, child);
}

static long
max_rss_kib(void)
{
   struct rusage ru;

   getrusage(RUSAGE_SELF, &ru);
   return ru.ru_maxrss;
}

static int
do_open(VixDiskLibConnection conn, const char *child)
{
   VixDiskLibHandle h;
   VixDiskLibInfo *info = NULL;
   uint8 *buf = malloc(MIB_SECTORS * 512);
   long rss0 = max_rss_kib(), rss1;
   double t0, t1;
   int rc;

   if (buf == NULL) {
      return 1;
   }
   t0 = bench_now();
   rc = failed(VixDiskLib_Open(conn, child, 0, &h), "Open");
   t1 = bench_now();
   if (rc) {
      free(buf);
      return 1;
   }
   rc = failed(VixDiskLib_GetInfo(h, &info), "GetInfo");
   if (rc == 0) {
      uint64_t last = info->capacity - MIB_SECTORS, v;

      rc = failed(VixDiskLib_Read(h, 0, MIB_SECTORS, buf), "Read start") ||
           failed(VixDiskLib_Read(h, last, MIB_SECTORS, buf), "Read end");
      memcpy(&v, buf, 8);
      if (rc == 0 && v != (BASE_TAG << 48 | last)) {
         fprintf(stderr, "commit: the end of the disk does not hold the base's data\n");
         rc = 1;
      }
      fprintf(stderr, "commit: opened %s (%d links, %llu GiB) in %.3f ms\n", child, info->numLinks,
              (unsigned long long)(info->capacity >> 21), 1000 * (t1 - t0));
      VixDiskLib_FreeInfo(info);
   }
   rc = failed(VixDiskLib_Close(h), "Close") || rc;
   rss1 = max_rss_kib();
   free(buf);
   fprintf(stderr, "commit: max RSS %ld KiB after InitEx, %ld KiB after open + reads + close\n",
           rss0, rss1);
   printf("RESULT open %.6f %ld %ld\n", t1 - t0, rss0, rss1);
   return rc;
}

int
main(int argc, char **argv)
{
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   int rc;

   if (argc < 3) {
      return usage();
   }
   if (bench_connect(PROG, &params, &conn)) {
      return 1;
   }
   if (strcmp(argv[1], "build") == 0 && argc == 5) {
      rc = do_build(conn, argv[2], number(argv[3], "capacity"), number(argv[4], "change size"));
   } else if (strcmp(argv[1], "commit") == 0 && argc == 3) {
      rc = do_commit(conn, argv[2]);
   } else if (strcmp(argv[1], "big") == 0 && argc == 4) {
      rc = do_big(conn, argv[2], number(argv[3], "capacity"));
   } else if (strcmp(argv[1], "open") == 0 && argc == 3) {
      rc = do_open(conn, argv[2]);
   } else {
      rc = usage();
   }
   bench_disconnect(params, conn);
   return rc;
}
