/*
 * clone.c - VixDiskLib_Clone, for bench/clone.sh.
 *
 *   clone create SRC CAPACITY_MiB ALLOC_MiB
 *   clone clone  SRC DST sparse|stream
 *
 * create: new monolithic sparse disk (lsilogic, hw version 7) of CAPACITY_MiB;
 *         writes ALLOC_MiB of data as 1 MiB pieces, one at the start of every
 *         CAPACITY/ALLOC MiB stride (with 4096 and 2048: 1 MiB written, 1 MiB
 *         hole, ...), in sector order, then Flush and Close.
 *         Data: every 4 KiB block begins with its 64-bit block counter and is
 *         followed by 8-byte words drawn pseudo-randomly (xorshift seeded by
 *         the counter) from a fixed 256-word vocabulary.  No block repeats and
 *         none is zero, but deflate has real matching and coding to do (the
 *         data compresses to roughly a quarter to a third).
 * clone:  VixDiskLib_Clone(SRC -> DST) to MONOLITHIC_SPARSE or STREAM_OPTIMIZED
 *         (lsilogic, hw version 7, overWrite TRUE, no progress callback).
 *
 * Prints "RESULT clone TYPE wall user sys" for the Clone call alone (wall and
 * CPU seconds from clock_gettime and getrusage(RUSAGE_SELF), which counts
 * every thread of the process) plus a human line on stderr.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_common.h"

#define PROG "clone"
/* Shared helpers with this program's name as the message prefix. */
#define failed(err, what) bench_failed(PROG, (err), (what))
#define number(s, what) bench_number(PROG, (s), (what))

#define BLOCK 4096u
#define WORDS 256u

static uint8 vocabulary[WORDS][8];

static double
cpu(int which)
{
   struct rusage ru;
   struct timeval tv;

   getrusage(RUSAGE_SELF, &ru);
   tv = which ? ru.ru_stime : ru.ru_utime;
   return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int
usage(void)
{
   fprintf(stderr, "usage: clone create SRC CAPACITY_MiB ALLOC_MiB\n"
                   "       clone clone  SRC DST sparse|stream\n");
   return 2;
}

static uint64_t
xorshift(uint64_t *s)
{
   uint64_t x = *s;

   x ^= x << 13;
   x ^= x >> 7;
   x ^= x << 17;
   *s = x;
   return x;
}

static void
make_vocabulary(void)
{
   static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";
   uint64_t s = 0x5EEDF00DCAFEBABEull;
   unsigned w, k;

   for (w = 0; w < WORDS; w++) {
      uint64_t r = xorshift(&s);
      unsigned len = 2 + (unsigned)(r % 6); /* 2..7 letters, then a space */

      for (k = 0; k < 8; k++) {
         vocabulary[w][k] = k < len ? (uint8)letters[(r >> (8 + 5 * k)) % 26] : ' ';
      }
   }
}

static void
fill_block(uint8 *b, uint64_t counter)
{
   uint64_t s = counter * 0x9E3779B97F4A7C15ull + 1, r = 0;
   unsigned i;

   memcpy(b, &counter, 8);
   for (i = 1; i < BLOCK / 8; i++) {
      if ((i & 7) == 1) {
         r = xorshift(&s);
      }
      memcpy(b + 8 * i, vocabulary[r & 0xff], 8);
      r >>= 8;
   }
}

static int
do_create(VixDiskLibConnection conn, const char *path, unsigned long cap_mib,
          unsigned long alloc_mib)
{
   VixDiskLibHandle h = NULL;
   unsigned long stride = cap_mib / alloc_mib, m;
   uint8 *buf;
   size_t k;
   double t0 = bench_now();
   int rc = 0;

   if (alloc_mib > cap_mib) {
      fprintf(stderr, "clone: ALLOC_MiB must fit the capacity\n");
      return 2;
   }
   buf = malloc(1u << 20);
   if (buf == NULL) {
      return 1;
   }
   make_vocabulary();
   if (bench_create_disk(PROG, conn, path, cap_mib) ||
       failed(VixDiskLib_Open(conn, path, 0, &h), "Open")) {
      free(buf);
      return 1;
   }
   for (m = 0; m < alloc_mib && rc == 0; m++) {
      uint64_t mib_at = (uint64_t)m * stride;

      for (k = 0; k < (1u << 20) / BLOCK; k++) {
         fill_block(buf + k * BLOCK, mib_at * ((1u << 20) / BLOCK) + k);
      }
      rc = failed(VixDiskLib_Write(h, (VixDiskLibSectorType)mib_at * 2048, 2048, buf), "Write");
   }
   if (rc == 0) {
      rc = failed(VixDiskLib_Flush(h), "Flush");
   }
   if (failed(VixDiskLib_Close(h), "Close")) {
      rc = 1;
   }
   free(buf);
   if (rc == 0) {
      fprintf(stderr, "clone: source: %lu MiB in %lu MiB capacity (1 MiB every %lu MiB) written "
                      "in %.3fs\n",
              alloc_mib, cap_mib, stride, bench_now() - t0);
   }
   return rc;
}

static int
do_clone(VixDiskLibConnection conn, const char *src, const char *dst, const char *type)
{
   VixDiskLibCreateParams cp;
   double w0, u0, s0, w1, u1, s1;

   if (strcmp(type, "sparse") == 0) {
      bench_create_params(&cp, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 0);
   } else if (strcmp(type, "stream") == 0) {
      bench_create_params(&cp, VIXDISKLIB_DISK_STREAM_OPTIMIZED, 0);
   } else {
      return usage();
   }

   w0 = bench_now();
   u0 = cpu(0);
   s0 = cpu(1);
   if (failed(VixDiskLib_Clone(conn, dst, conn, src, &cp, NULL, NULL, TRUE), "Clone")) {
      return 1;
   }
   w1 = bench_now();
   u1 = cpu(0);
   s1 = cpu(1);
   fprintf(stderr, "clone: %s: %.3fs wall, %.3fs user, %.3fs sys, CPU %.0f%%\n", type, w1 - w0,
           u1 - u0, s1 - s0, 100.0 * ((u1 - u0) + (s1 - s0)) / (w1 - w0));
   printf("RESULT clone %s %.6f %.6f %.6f\n", type, w1 - w0, u1 - u0, s1 - s0);
   return 0;
}

int
main(int argc, char **argv)
{
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   int rc;

   if (argc != 5) {
      return usage();
   }
   if (bench_connect(PROG, &params, &conn)) {
      return 1;
   }

   if (strcmp(argv[1], "create") == 0) {
      rc = do_create(conn, argv[2], number(argv[3], "capacity"), number(argv[4], "allocated size"));
   } else if (strcmp(argv[1], "clone") == 0) {
      rc = do_clone(conn, argv[2], argv[3], argv[4]);
   } else {
      rc = usage();
   }

   bench_disconnect(params, conn);
   return rc;
}
