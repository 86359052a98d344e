/*
 * tracking.c - what change tracking costs, for bench/tracking.sh.
 *
 *   tracking create    PATH CAPACITY_MiB TRACK        (TRACK 0 or 1)
 *   tracking seqwrite  PATH MiB                       1 MiB sequential writes from 0
 *   tracking randwrite PATH COUNT SPAN_MiB            4 KiB writes at random 4 KiB
 *                                                     offsets inside the first SPAN_MiB
 *   tracking query     PATH CHANGED_MiB SCATTER       (SCATTER 0: one run; 1: spread)
 *
 * create:    a monolithic sparse disk; TRACK 1 turns change tracking on while it is
 *            closed (VixDiskLibExt_SetChangeTracking), as a user would.
 * seqwrite,
 * randwrite: open, write, Flush, Close; the shell times the whole process.  The
 *            random offsets come from a fixed xorshift seed, so every run and both
 *            sides (tracked, untracked) write the same sectors in the same order.
 * query:     take a change id (GetChangeId), write CHANGED_MiB as 64 KiB pieces
 *            (one contiguous run from the middle of the disk, or spread evenly over
 *            the whole capacity), Flush, Close, then OpenEx with the id and time the
 *            QueryChangedAreas loop over the whole disk twice (first and repeated)
 *            in-process.  The answer must cover every written sector: checked.
 *
 * Output: "RESULT ..." lines on stdout, a human line on stderr.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "vixDiskLibExt.h"

#define PROG "tracking"
#define failed(err, what) bench_failed(PROG, (err), (what))
#define number(s, what) bench_number(PROG, (s), (what))

#define SECTOR 512u
#define PIECE_SECTORS 128u /* 64 KiB */

static int
usage(void)
{
   fprintf(stderr, "usage: tracking create    PATH CAPACITY_MiB TRACK\n"
                   "       tracking seqwrite  PATH MiB\n"
                   "       tracking randwrite PATH COUNT SPAN_MiB\n"
                   "       tracking query     PATH CHANGED_MiB SCATTER\n");
   return 2;
}

/* A number that may be 0 (TRACK, SCATTER). */
static unsigned long
flag(const char *s)
{
   if (strcmp(s, "0") == 0) {
      return 0;
   }
   return number(s, "flag");
}

static int
do_create(VixDiskLibConnection conn, const char *path, unsigned long cap_mib, unsigned long track)
{
   if (bench_create_disk(PROG, conn, path, cap_mib)) {
      return 1;
   }
   return track ? failed(VixDiskLibExt_SetChangeTracking(conn, path, TRUE), "SetChangeTracking")
                : 0;
}

static int
write_and_close(VixDiskLibHandle h, int rc)
{
   if (!rc) {
      rc = failed(VixDiskLib_Flush(h), "Flush");
   }
   return failed(VixDiskLib_Close(h), "Close") || rc;
}

static int
do_seqwrite(VixDiskLibConnection conn, const char *path, unsigned long mib)
{
   VixDiskLibHandle h = NULL;
   static uint8 buf[1 << 20];
   unsigned long i;
   int rc = 0;

   memset(buf, 0xA5, sizeof buf);
   if (failed(VixDiskLib_Open(conn, path, 0, &h), "Open")) {
      return 1;
   }
   for (i = 0; i < mib && !rc; i++) {
      buf[0] = (uint8)i;
      rc = failed(VixDiskLib_Write(h, (VixDiskLibSectorType)i * 2048, 2048, buf), "Write");
   }
   return write_and_close(h, rc);
}

static uint64_t
xorshift(uint64_t *s)
{
   *s ^= *s << 13;
   *s ^= *s >> 7;
   *s ^= *s << 17;
   return *s;
}

static int
do_randwrite(VixDiskLibConnection conn, const char *path, unsigned long count,
             unsigned long span_mib)
{
   VixDiskLibHandle h = NULL;
   uint8 buf[4096];
   uint64_t seed = 0x9E3779B97F4A7C15ull, slots = (uint64_t)span_mib * 256;
   unsigned long i;
   int rc = 0;

   memset(buf, 0x5A, sizeof buf);
   if (failed(VixDiskLib_Open(conn, path, 0, &h), "Open")) {
      return 1;
   }
   for (i = 0; i < count && !rc; i++) {
      uint64_t slot = xorshift(&seed) % slots;

      memcpy(buf, &i, sizeof i);
      rc = failed(VixDiskLib_Write(h, slot * 8, 8, buf), "Write");
   }
   return write_and_close(h, rc);
}

/* One full pass of QueryChangedAreas; sums the sectors reported inside [lo, hi). */
static int
query_pass(VixDiskLibHandle h, VixDiskLibSectorType capacity, unsigned long *calls,
           unsigned long *areas, VixDiskLibSectorType lo, VixDiskLibSectorType hi,
           VixDiskLibSectorType *covered)
{
   VixDiskLibQueryChangedAreaParams q;
   VixDiskLibSectorType at = 0;

   *calls = *areas = 0;
   *covered = 0;
   while (at < capacity) {
      VixDiskLibDiskChangeInfo *info = NULL;
      uint32 i;

      q.startOffset = at;
      if (failed(VixDiskLib_QueryChangedAreas(h, &q, &info), "QueryChangedAreas")) {
         return 1;
      }
      for (i = 0; i < info->areas->numBlocks; i++) {
         VixDiskLibSectorType s = info->areas->blocks[i].offset;
         VixDiskLibSectorType e = s + info->areas->blocks[i].length;

         s = s < lo ? lo : s;
         e = e > hi ? hi : e;
         if (e > s) {
            *covered += e - s;
         }
      }
      (*calls)++;
      *areas += info->areas->numBlocks;
      at = info->startOffset + info->length;
      VixDiskLib_FreeChangedAreas(info);
   }
   return 0;
}

static int
do_query(VixDiskLibConnection conn, const char *path, unsigned long changed_mib,
         unsigned long scatter)
{
   VixDiskLibHandle h = NULL;
   VixDiskLibInfo *info = NULL;
   VixDiskLibOpenParams op;
   VixDiskLibSectorType capacity, pieces = (VixDiskLibSectorType)changed_mib * 16, i, step,
                                  first, covered, written = 0;
   static uint8 buf[PIECE_SECTORS * SECTOR];
   unsigned long calls1, areas1, calls2, areas2;
   char *id = NULL;
   double t0, t1, t2;
   int rc = 0;

   memset(buf, 0x3C, sizeof buf);
   if (failed(VixDiskLib_Open(conn, path, 0, &h), "Open") ||
       failed(VixDiskLib_GetInfo(h, &info), "GetInfo") ||
       failed(VixDiskLibExt_GetChangeId(h, &id), "GetChangeId")) {
      return 1;
   }
   capacity = info->capacity;
   VixDiskLib_FreeInfo(info);
   if (pieces * PIECE_SECTORS > capacity) {
      fprintf(stderr, "tracking: CHANGED_MiB exceeds the capacity\n");
      VixDiskLib_Close(h);
      return 2;
   }
   /* Evenly spread pieces, or one run starting in the middle of the disk. */
   step = scatter ? capacity / pieces / PIECE_SECTORS * PIECE_SECTORS : PIECE_SECTORS;
   first = scatter ? 0 : capacity / 2 / PIECE_SECTORS * PIECE_SECTORS;
   for (i = 0; i < pieces && !rc; i++) {
      rc = failed(VixDiskLib_Write(h, first + i * step, PIECE_SECTORS, buf), "Write");
      written += PIECE_SECTORS;
   }
   if (write_and_close(h, rc)) {
      VixDiskLibExt_FreeChangeId(id);
      return 1;
   }

   memset(&op, 0, sizeof op);
   op.path = (char *)path;
   op.flags = VIXDISKLIB_FLAG_OPEN_READ_ONLY;
   op.changeId = id;
   if (failed(VixDiskLib_OpenEx(conn, &op, &h), "OpenEx")) {
      VixDiskLibExt_FreeChangeId(id);
      return 1;
   }
   t0 = bench_now();
   rc = query_pass(h, capacity, &calls1, &areas1, 0, capacity, &covered);
   t1 = bench_now();
   rc = rc || query_pass(h, capacity, &calls2, &areas2, 0, capacity, &covered);
   t2 = bench_now();
   failed(VixDiskLib_Close(h), "Close");
   VixDiskLibExt_FreeChangeId(id);
   if (rc) {
      return 1;
   }
   if (covered < written || covered > written + pieces * PIECE_SECTORS) {
      fprintf(stderr, "tracking: the answer covers %llu sectors, %llu were written\n",
              (unsigned long long)covered, (unsigned long long)written);
      return 1;
   }
   fprintf(stderr,
           "tracking: %llu GiB disk, %lu MiB changed (%s): QueryChangedAreas %lu call(s), "
           "%lu areas, %llu sectors: first %.3f ms, repeated %.3f ms\n",
           (unsigned long long)(capacity / 2048 / 1024), changed_mib,
           scatter ? "spread" : "one run", calls1, areas1, (unsigned long long)covered,
           (t1 - t0) * 1e3, (t2 - t1) * 1e3);
   printf("RESULT query %lu %lu %.6f %.6f\n", calls1, areas1, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
   return 0;
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
   if (bench_connect(PROG, &params, &conn)) {
      return 1;
   }
   if (strcmp(argv[1], "create") == 0 && argc == 5) {
      rc = do_create(conn, argv[2], number(argv[3], "capacity"), flag(argv[4]));
   } else if (strcmp(argv[1], "seqwrite") == 0 && argc == 4) {
      rc = do_seqwrite(conn, argv[2], number(argv[3], "size"));
   } else if (strcmp(argv[1], "randwrite") == 0 && argc == 5) {
      rc = do_randwrite(conn, argv[2], number(argv[3], "count"), number(argv[4], "span"));
   } else if (strcmp(argv[1], "query") == 0 && argc == 5) {
      rc = do_query(conn, argv[2], number(argv[3], "changed size"), flag(argv[4]));
   } else {
      rc = usage();
   }
   bench_disconnect(params, conn);
   return rc;
}
