/*
 * chain_read.c - redo-log chains through VixDiskLib, for bench/chain.sh.
 *
 *   chain_read build DIR CAPACITY_MiB BASE_MiB LINKS
 *   chain_read read  DIR DEPTH CAPACITY_MiB BASE_MiB READ_MiB REQUEST_KiB
 *   chain_read qab   DIR DEPTH CHUNK_SECTORS
 *   chain_read pieces DIR LINK CAPACITY_MiB
 *
 * Files: DIR/link-001.vmdk is the base, DIR/link-NNN.vmdk (NNN = 2..LINKS) the
 * child created over link-(NNN-1).  "Depth" is the number of links (files) in
 * the chain, so the leaf of a depth-D chain is DIR/link-DDD.vmdk and depth 1 is
 * the base on its own.
 *
 * build: Create the base (monolithic sparse, lsilogic, hw version 7), write
 *        BASE_MiB from sector 0 in 1 MiB sequential requests, Flush, Close; then
 *        LINKS-1 times: Open the current leaf (whole chain), CreateChild
 *        (monolithic sparse), Close, Open the new child and write PIECES
 *        scattered 64 KiB pieces (grain aligned, positions from a fixed hash,
 *        anywhere in the capacity), Flush, Close.
 * read:  Open the depth-DEPTH leaf read-only (whole chain), synchronous Read of
 *        READ_MiB from sector 0 in REQUEST_KiB requests, Close.  Every sector's
 *        first 8 bytes are checked against what the builder wrote (the newest
 *        link holding the sector wins; unwritten sectors read as zeros).
 * pieces: No library call: write the PIECES 64 KiB pieces child link LINK would
 *        get from "build" into DIR/piece-LLL-J.bin and print "BYTE_OFFSET FILE"
 *        per piece, so that bench/chain.sh can build the same chain with
 *        qemu-img create -b and qemu-io "write -s FILE".
 * qab:   Open the leaf read-only, QueryAllocatedBlocks over the whole capacity
 *        in calls of at most VIXDISKLIB_MAX_CHUNK_NUMBER chunks, twice (first
 *        and repeated call), each timed in-process, then Close.
 *
 * Sector stamps: every written sector starts with a uint64 (little or big
 * endian: native) = TAG(link) << 48 | sector number, the rest of the sector
 * is filled with a byte that depends on the link.  TAG(base) = 0xB000.
 *
 * Output: "RESULT ..." lines on stdout, a human breakdown on stderr.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define PROG "chain_read"
/* Shared helpers with this program's name as the message prefix. */
#define failed(err, what) bench_failed(PROG, (err), (what))
#define number(s, what) bench_number(PROG, (s), (what))

#define SECTOR 512u
#define GRAIN_SECTORS 128u /* 64 KiB pieces */
#define PIECES 4           /* 64 KiB pieces written by each child */
#define BASE_TAG 0xB000ull
#define MAX_LINKS 255

static int
usage(void)
{
   fprintf(stderr, "usage: chain_read build DIR CAPACITY_MiB BASE_MiB LINKS\n"
                   "       chain_read read  DIR DEPTH CAPACITY_MiB BASE_MiB READ_MiB REQUEST_KiB\n"
                   "       chain_read qab   DIR DEPTH CHUNK_SECTORS\n"
                   "       chain_read pieces DIR LINK CAPACITY_MiB\n");
   return 2;
}

static void
link_path(char *out, size_t n, const char *dir, unsigned long link)
{
   snprintf(out, n, "%s/link-%03lu.vmdk", dir, link);
}

/* Tag in the high 16 bits of a sector stamp: base 0xB000, child link L (2..) is L. */
static uint64_t
tag_of(unsigned long link)
{
   return link == 1 ? BASE_TAG : (uint64_t)link;
}

static uint8
fill_of(unsigned long link)
{
   return link == 1 ? 0xA5 : (uint8)(0x40 + link);
}

/* Grain index of piece `j` of child link `link` (splitmix64 of both). */
static uint64_t
piece_grain(unsigned long link, unsigned j, uint64_t grains)
{
   uint64_t z = ((uint64_t)link << 8 | j) + 0x9E3779B97F4A7C15ull;

   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
   z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
   z ^= z >> 31;
   return z % grains;
}

static void
stamp(uint8 *buf, VixDiskLibSectorType first, VixDiskLibSectorType count, unsigned long link)
{
   VixDiskLibSectorType i;

   for (i = 0; i < count; i++) {
      uint64_t v = tag_of(link) << 48 | (uint64_t)(first + i);
      memcpy(buf + i * SECTOR, &v, sizeof v);
   }
}

static int
do_build(VixDiskLibConnection conn, const char *dir, unsigned long cap_mib,
         unsigned long base_mib, unsigned long links)
{
   VixDiskLibSectorType mib = 2048, pos;
   uint64_t grains = (uint64_t)cap_mib * 2048 / GRAIN_SECTORS;
   VixDiskLibHandle h = NULL;
   char path[4096], child[4096];
   uint8 *buf;
   unsigned long link;
   unsigned j;
   double t0 = bench_now(), t1;

   if (links > MAX_LINKS || base_mib > cap_mib) {
      fprintf(stderr, "chain_read: at most %d links; BASE_MiB must fit the capacity\n", MAX_LINKS);
      return 2;
   }
   buf = malloc(mib * SECTOR);
   if (buf == NULL) {
      return 1;
   }

   link_path(path, sizeof path, dir, 1);
   if (bench_create_disk(PROG, conn, path, cap_mib) ||
       failed(VixDiskLib_Open(conn, path, 0, &h), "Open base")) {
      free(buf);
      return 1;
   }
   memset(buf, fill_of(1), mib * SECTOR);
   for (pos = 0; pos < (VixDiskLibSectorType)base_mib * 2048; pos += mib) {
      stamp(buf, pos, mib, 1);
      if (failed(VixDiskLib_Write(h, pos, mib, buf), "Write base")) {
         VixDiskLib_Close(h);
         free(buf);
         return 1;
      }
   }
   if (failed(VixDiskLib_Flush(h), "Flush base") || failed(VixDiskLib_Close(h), "Close base")) {
      free(buf);
      return 1;
   }
   t1 = bench_now();
   fprintf(stderr, "chain_read: base: %lu MiB written in %.3fs\n", base_mib, t1 - t0);

   for (link = 2; link <= links; link++) {
      link_path(path, sizeof path, dir, link - 1);
      link_path(child, sizeof child, dir, link);
      if (failed(VixDiskLib_Open(conn, path, 0, &h), "Open leaf") ||
          failed(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
                 "CreateChild") ||
          failed(VixDiskLib_Close(h), "Close parent") ||
          failed(VixDiskLib_Open(conn, child, 0, &h), "Open child")) {
         free(buf);
         return 1;
      }
      memset(buf, fill_of(link), GRAIN_SECTORS * SECTOR);
      for (j = 0; j < PIECES; j++) {
         VixDiskLibSectorType at = piece_grain(link, j, grains) * GRAIN_SECTORS;

         stamp(buf, at, GRAIN_SECTORS, link);
         if (failed(VixDiskLib_Write(h, at, GRAIN_SECTORS, buf), "Write child")) {
            VixDiskLib_Close(h);
            free(buf);
            return 1;
         }
      }
      if (failed(VixDiskLib_Flush(h), "Flush child") || failed(VixDiskLib_Close(h), "Close child")) {
         free(buf);
         return 1;
      }
   }
   fprintf(stderr, "chain_read: %lu children with %d x 64 KiB each in %.3fs\n", links - 1, PIECES,
           bench_now() - t1);
   free(buf);
   return 0;
}

static int
do_read(VixDiskLibConnection conn, const char *dir, unsigned long depth, unsigned long cap_mib,
        unsigned long base_mib, unsigned long read_mib, unsigned long req_kib)
{
   VixDiskLibSectorType req = (VixDiskLibSectorType)req_kib * 2;
   VixDiskLibSectorType total = (VixDiskLibSectorType)read_mib * 2048;
   VixDiskLibSectorType base_end = (VixDiskLibSectorType)base_mib * 2048;
   uint64_t grains = (uint64_t)cap_mib * 2048 / GRAIN_SECTORS;
   VixDiskLibSectorType pos, i;
   VixDiskLibHandle h = NULL;
   unsigned char *owner; /* newest child link per grain, 0 if none */
   unsigned long link;
   unsigned j;
   char path[4096];
   void *mem = NULL;
   uint8 *buf;
   double t0, t1, t2, t3;
   int rc = 0;

   if (total % req != 0 || req % GRAIN_SECTORS != 0 || read_mib > cap_mib) {
      fprintf(stderr, "chain_read: READ_MiB must be a multiple of the request (64 KiB multiple)\n");
      return 2;
   }
   owner = calloc(grains, 1);
   if (owner == NULL || posix_memalign(&mem, 4096, req * SECTOR) != 0) {
      free(owner);
      return 1;
   }
   buf = mem;
   for (link = 2; link <= depth; link++) {
      for (j = 0; j < PIECES; j++) {
         owner[piece_grain(link, j, grains)] = (unsigned char)link;
      }
   }
   link_path(path, sizeof path, dir, depth);

   t0 = bench_now();
   if (failed(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), "Open")) {
      free(mem);
      free(owner);
      return 1;
   }
   t1 = bench_now();
   for (pos = 0; pos < total && rc == 0; pos += req) {
      if (failed(VixDiskLib_Read(h, pos, req, buf), "Read")) {
         rc = 1;
         break;
      }
      for (i = 0; i < req; i++) {
         VixDiskLibSectorType s = pos + i;
         unsigned long who = owner[s / GRAIN_SECTORS];
         uint64_t want, got;

         if (who == 0) {
            who = s < base_end ? 1 : 0;
         }
         want = who == 0 ? 0 : (tag_of(who) << 48 | (uint64_t)s);
         memcpy(&got, buf + i * SECTOR, sizeof got);
         if (got != want) {
            fprintf(stderr, "chain_read: sector %llu: stamp %016llx, expected %016llx\n",
                    (unsigned long long)s, (unsigned long long)got, (unsigned long long)want);
            rc = 1;
            break;
         }
      }
   }
   t2 = bench_now();
   if (failed(VixDiskLib_Close(h), "Close")) {
      rc = 1;
   }
   t3 = bench_now();
   free(mem);
   free(owner);
   if (rc == 0) {
      fprintf(stderr, "chain_read: depth %lu: read %lu MiB in %lu KiB requests: open %.3fs, "
                      "I/O %.3fs, close %.3fs\n",
              depth, read_mib, req_kib, t1 - t0, t2 - t1, t3 - t2);
      printf("RESULT read %lu %llu %.6f %.6f\n", depth, (unsigned long long)total * SECTOR,
             t3 - t0, t2 - t1);
   }
   return rc;
}

/* One pass of QueryAllocatedBlocks over [0, capacity); returns sectors allocated or -1. */
static long long
qab_pass(VixDiskLibHandle h, VixDiskLibSectorType capacity, VixDiskLibSectorType chunk,
         unsigned long *blocks, unsigned long *calls)
{
   VixDiskLibSectorType max_span = (VixDiskLibSectorType)VIXDISKLIB_MAX_CHUNK_NUMBER * chunk;
   VixDiskLibSectorType pos = 0;
   long long allocated = 0;

   *blocks = 0;
   *calls = 0;
   while (pos < capacity) {
      VixDiskLibSectorType span = capacity - pos;
      VixDiskLibBlockList *list = NULL;
      uint32_t k;

      if (span > max_span) {
         span = max_span;
      }
      span -= span % chunk; /* whole chunks only; the capacity is a multiple here */
      if (span == 0 ||
          failed(VixDiskLib_QueryAllocatedBlocks(h, pos, span, chunk, &list), "QueryAllocatedBlocks")) {
         return -1;
      }
      for (k = 0; k < list->numBlocks; k++) {
         allocated += (long long)list->blocks[k].length;
      }
      *blocks += list->numBlocks;
      (*calls)++;
      VixDiskLib_FreeBlockList(list);
      pos += span;
   }
   return allocated;
}

static int
do_qab(VixDiskLibConnection conn, const char *dir, unsigned long depth, unsigned long chunk)
{
   VixDiskLibHandle h = NULL;
   VixDiskLibInfo *info = NULL;
   VixDiskLibSectorType capacity;
   unsigned long blocks1, calls1, blocks2, calls2;
   long long alloc1, alloc2;
   char path[4096];
   double t0, t1, t2, t3;

   link_path(path, sizeof path, dir, depth);
   t0 = bench_now();
   if (failed(VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), "Open")) {
      return 1;
   }
   t1 = bench_now();
   if (failed(VixDiskLib_GetInfo(h, &info), "GetInfo")) {
      VixDiskLib_Close(h);
      return 1;
   }
   capacity = info->capacity;
   VixDiskLib_FreeInfo(info);
   if (capacity % chunk != 0) {
      fprintf(stderr, "chain_read: capacity is not a multiple of the chunk\n");
      VixDiskLib_Close(h);
      return 2;
   }
   t1 = bench_now();
   alloc1 = qab_pass(h, capacity, chunk, &blocks1, &calls1);
   t2 = bench_now();
   alloc2 = alloc1 < 0 ? -1 : qab_pass(h, capacity, chunk, &blocks2, &calls2);
   t3 = bench_now();
   VixDiskLib_Close(h);
   if (alloc1 < 0 || alloc2 < 0) {
      return 1;
   }
   if (alloc1 != alloc2 || blocks1 != blocks2) {
      fprintf(stderr, "chain_read: the two QueryAllocatedBlocks passes disagree\n");
      return 1;
   }
   fprintf(stderr, "chain_read: depth %lu: open %.3f ms; QueryAllocatedBlocks %lu call(s), "
                   "%lu blocks, %lld sectors: first %.3f ms, repeated %.3f ms\n",
           depth, (t1 - t0) * 1e3, calls1, blocks1, alloc1, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
   printf("RESULT qab %lu %lld %lu %.6f %.6f %.6f\n", depth, alloc1 * (long long)SECTOR, blocks1,
          (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
   return 0;
}

static int
do_pieces(const char *dir, unsigned long link, unsigned long cap_mib)
{
   uint64_t grains = (uint64_t)cap_mib * 2048 / GRAIN_SECTORS;
   uint8 buf[GRAIN_SECTORS * SECTOR];
   char path[4096];
   unsigned j;

   if (link < 2 || link > MAX_LINKS || grains == 0) {
      fprintf(stderr, "chain_read: pieces exist for child links 2..%d of a non-empty disk\n",
              MAX_LINKS);
      return 2;
   }
   memset(buf, fill_of(link), sizeof buf);
   for (j = 0; j < PIECES; j++) {
      VixDiskLibSectorType at = piece_grain(link, j, grains) * GRAIN_SECTORS;
      FILE *f;

      stamp(buf, at, GRAIN_SECTORS, link);
      snprintf(path, sizeof path, "%s/piece-%03lu-%u.bin", dir, link, j);
      f = fopen(path, "wb");
      if (f == NULL || fwrite(buf, 1, sizeof buf, f) != sizeof buf || fclose(f) != 0) {
         perror(path);
         return 1;
      }
      printf("%llu %s\n", (unsigned long long)at * SECTOR, path);
   }
   return 0;
}

int
main(int argc, char **argv)
{
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   int rc;

   if (argc < 5) {
      return usage();
   }
   if (strcmp(argv[1], "pieces") == 0) {
      return argc == 5 ? do_pieces(argv[2], number(argv[3], "link"), number(argv[4], "capacity"))
                       : usage();
   }
   if (bench_connect(PROG, &params, &conn)) {
      return 1;
   }

   if (strcmp(argv[1], "build") == 0 && argc == 6) {
      rc = do_build(conn, argv[2], number(argv[3], "capacity"), number(argv[4], "base size"),
                    number(argv[5], "links"));
   } else if (strcmp(argv[1], "read") == 0 && argc == 8) {
      rc = do_read(conn, argv[2], number(argv[3], "depth"), number(argv[4], "capacity"),
                   number(argv[5], "base size"), number(argv[6], "read size"),
                   number(argv[7], "request size"));
   } else if (strcmp(argv[1], "qab") == 0 && argc == 5) {
      rc = do_qab(conn, argv[2], number(argv[3], "depth"), number(argv[4], "chunk"));
   } else {
      rc = usage();
   }

   bench_disconnect(params, conn);
   return rc;
}
