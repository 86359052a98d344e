/*
 * extents.c - reads spread over the extent files of a large twoGbMaxExtentSparse disk,
 * for bench/extents.sh (the per-process cache of extent descriptors, issue 18).
 *
 *   extents create PATH CAPACITY_GiB
 *   extents open   PATH
 *   extents seq    PATH ROUNDS
 *   extents rand   PATH READS
 *   extents many   PATH HANDLES THREADS READS
 *
 * create: a new split sparse disk, then one 64 KiB grain written at the start of every
 *         extent (stamped with the extent number) and 1 MiB in extents 1, 2000 and 4095
 *         (when the disk has them).
 * open:   Open read-only and Close; prints "RESULT open SECONDS MAXRSS_KiB".
 * seq:    ROUNDS passes reading the first 64 KiB of every extent in order (each read
 *         touches another file: the worst case for a cache smaller than the disk).
 * rand:   READS reads of the first 64 KiB of a pseudo-random extent.
 *         Both check each stamp and print "RESULT name READS SECONDS CPU_SECONDS" (reads
 *         only, the open excluded; CPU = user + system time of the process, steadier than
 *         wall time on a shared machine).
 *
 * many:   HANDLES read-only opens of the disk at once (as many disks would be), read by
 *         THREADS threads, READS pseudo-random extent reads each, spread over the handles;
 *         prints "RESULT many READS SECONDS" (all threads' reads).
 *
 * Environment: EXTENTS_CONFIG names the InitEx config file (vixDiskLib.maxOpenFiles).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>

#include "bench_common.h"

#define PROG "extents"
#define failed(err, what) bench_failed(PROG, (err), (what))
#define number(s, what) bench_number(PROG, (s), (what))

/* Sectors per extent of a twoGbMaxExtentSparse disk (2047 MiB). */
#define EXTENT_SECTORS (2047ull * 2048ull)
#define GRAIN 128u

static int
usage(void)
{
   fprintf(stderr, "usage: extents create PATH CAPACITY_GiB\n"
                   "       extents open PATH\n"
                   "       extents seq PATH ROUNDS\n"
                   "       extents rand PATH READS\n"
                   "       extents many PATH HANDLES THREADS READS\n");
   return 2;
}

/* User + system CPU seconds of this process so far. */
static double
cpu_seconds(void)
{
   struct rusage ru;

   getrusage(RUSAGE_SELF, &ru);
   return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
stamp(uint8 *buf, unsigned long extent)
{
   memset(buf, (int)(extent % 251u) + 1, GRAIN * 512u);
   memcpy(buf, &extent, sizeof extent);
}

static int
check(const uint8 *buf, unsigned long extent)
{
   unsigned long got;

   memcpy(&got, buf, sizeof got);
   if (got != extent || buf[GRAIN * 512u - 1] != (uint8)(extent % 251u + 1)) {
      fprintf(stderr, "extents: wrong data at the start of extent %lu\n", extent);
      return 1;
   }
   return 0;
}

static int
create(VixDiskLibConnection conn, const char *path, unsigned long gib)
{
   VixDiskLibCreateParams cp;
   VixDiskLibHandle h = NULL;
   static uint8 buf[2048 * 512];
   unsigned long e, extents;
   const unsigned long extra[] = {1, 2000, 4095};
   size_t i;
   int rc = 0;

   bench_create_params(&cp, VIXDISKLIB_DISK_SPLIT_SPARSE, gib * 1024);
   if (failed(VixDiskLib_Create(conn, path, &cp, NULL, NULL), "Create") ||
       failed(VixDiskLib_Open(conn, path, 0, &h), "Open")) {
      return 1;
   }
   extents = (unsigned long)((cp.capacity + EXTENT_SECTORS - 1) / EXTENT_SECTORS);
   for (e = 0; e < extents && rc == 0; e++) {
      stamp(buf, e);
      rc = failed(VixDiskLib_Write(h, e * EXTENT_SECTORS, GRAIN, buf), "Write");
   }
   memset(buf, 0x5a, sizeof buf);
   for (i = 0; i < sizeof extra / sizeof extra[0] && rc == 0; i++) {
      if (extra[i] < extents && (extra[i] + 1) * EXTENT_SECTORS <= cp.capacity) {
         rc = failed(VixDiskLib_Write(h, extra[i] * EXTENT_SECTORS + 4096, 2048, buf), "Write");
      }
   }
   if (failed(VixDiskLib_Close(h), "Close")) {
      rc = 1;
   }
   return rc;
}

static int
reads(VixDiskLibConnection conn, const char *path, int random, unsigned long count)
{
   VixDiskLibHandle h = NULL;
   VixDiskLibInfo *info = NULL;
   static uint8 buf[GRAIN * 512];
   unsigned long extents, n, e = 0, done = 0;
   unsigned long long x = 88172645463325252ull;
   double t0, t1, c0, c1;
   int rc = 0;

   if (failed(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), "Open")) {
      return 1;
   }
   if (failed(VixDiskLib_GetInfo(h, &info), "GetInfo")) {
      VixDiskLib_Close(h);
      return 1;
   }
   extents = (unsigned long)((info->capacity + EXTENT_SECTORS - 1) / EXTENT_SECTORS);
   VixDiskLib_FreeInfo(info);
   n = random ? count : count * extents;
   t0 = bench_now();
   c0 = cpu_seconds();
   for (done = 0; done < n && rc == 0; done++) {
      if (random) {
         x ^= x << 13;
         x ^= x >> 7;
         x ^= x << 17;
         e = (unsigned long)(x % extents);
      } else {
         e = done % extents;
      }
      rc = failed(VixDiskLib_Read(h, e * EXTENT_SECTORS, GRAIN, buf), "Read") || check(buf, e);
   }
   t1 = bench_now();
   c1 = cpu_seconds();
   if (failed(VixDiskLib_Close(h), "Close")) {
      rc = 1;
   }
   if (rc == 0) {
      printf("RESULT %s %lu %.6f %.6f\n", random ? "rand" : "seq", n, t1 - t0, c1 - c0);
   }
   return rc;
}

struct worker {
   VixDiskLibHandle *handles;
   unsigned long nhandles, extents, reads, seed;
   int rc;
};

static void *
work(void *arg)
{
   struct worker *w = arg;
   static __thread uint8 buf[GRAIN * 512];
   unsigned long long x = 88172645463325252ull ^ (w->seed * 0x9E3779B97F4A7C15ull);
   unsigned long i, e;

   for (i = 0; i < w->reads && w->rc == 0; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      e = (unsigned long)(x % w->extents);
      w->rc = failed(VixDiskLib_Read(w->handles[(x >> 32) % w->nhandles], e * EXTENT_SECTORS,
                                     GRAIN, buf),
                     "Read") ||
              check(buf, e);
   }
   return NULL;
}

static int
many(VixDiskLibConnection conn, const char *path, unsigned long nhandles, unsigned long nthreads,
     unsigned long nreads)
{
   VixDiskLibHandle *handles = calloc(nhandles, sizeof *handles);
   struct worker *workers = calloc(nthreads, sizeof *workers);
   pthread_t *threads = calloc(nthreads, sizeof *threads);
   VixDiskLibInfo *info = NULL;
   unsigned long i, opened = 0, extents = 0;
   double t0, t1;
   int rc = 0;

   if (handles == NULL || workers == NULL || threads == NULL) {
      fprintf(stderr, "extents: out of memory\n");
      rc = 1;
   }
   for (i = 0; i < nhandles && rc == 0; i++, opened++) {
      rc = failed(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &handles[i]),
                  "Open");
   }
   if (rc != 0) {
      opened = opened > 0 ? opened - 1 : 0;
   } else if (failed(VixDiskLib_GetInfo(handles[0], &info), "GetInfo")) {
      rc = 1;
   } else {
      extents = (unsigned long)((info->capacity + EXTENT_SECTORS - 1) / EXTENT_SECTORS);
      VixDiskLib_FreeInfo(info);
   }
   t0 = bench_now();
   for (i = 0; i < nthreads && rc == 0; i++) {
      workers[i] = (struct worker){handles, nhandles, extents, nreads, i + 1, 0};
      if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) {
         fprintf(stderr, "extents: pthread_create failed\n");
         nthreads = i;
         rc = 1;
      }
   }
   for (i = 0; i < nthreads && extents > 0; i++) {
      pthread_join(threads[i], NULL);
      rc |= workers[i].rc;
   }
   t1 = bench_now();
   for (i = 0; i < opened; i++) {
      if (failed(VixDiskLib_Close(handles[i]), "Close")) {
         rc = 1;
      }
   }
   if (rc == 0) {
      printf("RESULT many %lu %.6f\n", nthreads * nreads, t1 - t0);
   }
   free(handles);
   free(workers);
   free(threads);
   return rc;
}

static int
open_only(VixDiskLibConnection conn, const char *path)
{
   VixDiskLibHandle h = NULL;
   struct rusage ru;
   double t0, t1;

   t0 = bench_now();
   if (failed(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), "Open")) {
      return 1;
   }
   t1 = bench_now();
   getrusage(RUSAGE_SELF, &ru);
   if (failed(VixDiskLib_Close(h), "Close")) {
      return 1;
   }
   printf("RESULT open %.6f %ld\n", t1 - t0, ru.ru_maxrss);
   return 0;
}

int
main(int argc, char **argv)
{
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   int rc;

   if (argc < 3 || argc > 6) {
      return usage();
   }
   if (bench_connect_config(PROG, getenv("EXTENTS_CONFIG"), &params, &conn)) {
      return 1;
   }
   if (strcmp(argv[1], "create") == 0 && argc == 4) {
      rc = create(conn, argv[2], number(argv[3], "capacity"));
   } else if (strcmp(argv[1], "open") == 0 && argc == 3) {
      rc = open_only(conn, argv[2]);
   } else if (strcmp(argv[1], "seq") == 0 && argc == 4) {
      rc = reads(conn, argv[2], 0, number(argv[3], "rounds"));
   } else if (strcmp(argv[1], "many") == 0 && argc == 6) {
      rc = many(conn, argv[2], number(argv[3], "handles"), number(argv[4], "threads"),
                number(argv[5], "reads"));
   } else if (strcmp(argv[1], "rand") == 0 && argc == 4) {
      rc = reads(conn, argv[2], 1, number(argv[3], "reads"));
   } else {
      rc = usage();
   }
   bench_disconnect(params, conn);
   return rc;
}
