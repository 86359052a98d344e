/*
 * nbd_read.c - reads the allocated areas of a remote (NBD) disk through this VixDiskLib, as
 * a backup does: QueryAllocatedBlocks over the whole disk, then ReadAsync of every allocated
 * block, DEPTH requests in flight per handle, all issued from this one thread (completions
 * arrive on the library's one NBD poller thread).  With N > 1 it opens N handles (N NBD
 * connections) and gives each 1/N of the allocated blocks, all in flight at once.
 *
 *   nbd_read URI N DEPTH REQ_SECTORS
 *
 * Prints "bytes=B secs=S threads=T" (T: this process's threads while reading).  Every sector
 * read is checked: its first 8 bytes hold its byte offset (bench/nbd.sh's pattern).
 */

#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define PROG "nbd_read"
#define CHUNK 2048 /* sectors (1 MiB) per allocation chunk */
#define CHECK(what, expr) \
   do { \
      if (bench_failed(PROG, (expr), (what))) { \
         return 1; \
      } \
   } while (0)

struct req {
   struct disk *d;
   uint64_t start, count;
   uint8_t *buf; /* REQ_SECTORS sectors, reused (a backup keeps its buffers too) */
   int busy;
};

struct disk {
   VixDiskLibHandle h;
   uint64_t *blocks; /* pairs (start, count), cut to REQ_SECTORS */
   size_t nblocks, next;
   int inflight;
   struct req *reqs; /* DEPTH of them */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int bad;
static uint64_t bytes_done;

static void
done(void *data, VixError err)
{
   struct req *r = data;
   if (err != VIX_OK) {
      fprintf(stderr, PROG ": ReadAsync failed: %llu\n", (unsigned long long)err);
      bad = 1;
   } else {
      for (uint64_t s = 0; s < r->count; s++) {
         uint64_t v;
         memcpy(&v, r->buf + s * 512, 8);
         if (v != (r->start + s) * 512) {
            fprintf(stderr, PROG ": sector %llu holds %llu\n",
                    (unsigned long long)(r->start + s), (unsigned long long)v);
            bad = 1;
            break;
         }
      }
   }
   pthread_mutex_lock(&lock);
   r->d->inflight--;
   bytes_done += r->count * 512;
   r->busy = 0;
   pthread_cond_signal(&cond);
   pthread_mutex_unlock(&lock);
}

static int
threads_now(void)
{
   char line[256];
   int n = -1;
   FILE *f = fopen("/proc/self/status", "r");
   if (!f) {
      return -1;
   }
   while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "Threads:", 8) == 0) {
         n = atoi(line + 8);
      }
   }
   fclose(f);
   return n;
}

int
main(int argc, char **argv)
{
   if (argc != 5) {
      fprintf(stderr, "usage: %s URI N DEPTH REQ_SECTORS\n", argv[0]);
      return 2;
   }
   int n = atoi(argv[2]), depth = atoi(argv[3]);
   uint64_t req = strtoull(argv[4], NULL, 10);
   VixDiskLibConnectParams *p = VixDiskLib_AllocateConnectParams();
   VixDiskLibConnection conn;
   CHECK("InitEx", VixDiskLib_InitEx(6, 7, bench_quiet, NULL, NULL, NULL, NULL));
   p->serverName = argv[1];
   CHECK("ConnectEx", VixDiskLib_ConnectEx(p, 1, NULL, "nbd", &conn));
   struct disk *disks = calloc((size_t)n, sizeof *disks);
   for (int i = 0; i < n; i++) {
      CHECK("Open", VixDiskLib_Open(conn, "", VIXDISKLIB_FLAG_OPEN_READ_ONLY, &disks[i].h));
      disks[i].blocks = malloc(sizeof(uint64_t) * 2 * 65536);
      disks[i].reqs = calloc((size_t)depth, sizeof(struct req));
      for (int k = 0; k < depth; k++) {
         disks[i].reqs[k].d = &disks[i];
         disks[i].reqs[k].buf = malloc(req * 512);
         memset(disks[i].reqs[k].buf, 0, req * 512);
      }
   }
   double t0 = bench_now();
   VixDiskLibInfo *info;
   CHECK("GetInfo", VixDiskLib_GetInfo(disks[0].h, &info));
   uint64_t cap = info->capacity / CHUNK * CHUNK;
   VixDiskLib_FreeInfo(info);
   /* Allocated blocks, dealt round-robin to the handles in REQ_SECTORS pieces. */
   size_t dealt = 0;
   for (uint64_t at = 0; at < cap;) {
      uint64_t count = cap - at;
      if (count > (uint64_t)VIXDISKLIB_MAX_CHUNK_NUMBER * CHUNK) {
         count = (uint64_t)VIXDISKLIB_MAX_CHUNK_NUMBER * CHUNK;
      }
      VixDiskLibBlockList *list;
      CHECK("QueryAllocatedBlocks",
                  VixDiskLib_QueryAllocatedBlocks(disks[0].h, at, count, CHUNK, &list));
      for (uint32_t b = 0; b < list->numBlocks; b++) {
         VixDiskLibBlock *blk = &list->blocks[b];
         for (uint64_t s = blk->offset; s < blk->offset + blk->length; s += req) {
            struct disk *d = &disks[dealt++ % (size_t)n];
            uint64_t left = blk->offset + blk->length - s;
            if (d->nblocks < 65536) {
               d->blocks[2 * d->nblocks] = s;
               d->blocks[2 * d->nblocks + 1] = left < req ? left : req;
               d->nblocks++;
            }
         }
      }
      VixDiskLib_FreeBlockList(list);
      at += count;
   }
   int threads = 0;
   pthread_mutex_lock(&lock);
   for (;;) {
      int pending = 0, issued = 0;
      for (int i = 0; i < n; i++) {
         struct disk *d = &disks[i];
         while (d->inflight < depth && d->next < d->nblocks) {
            struct req *r = d->reqs;
            while (r->busy) {
               r++;
            }
            r->busy = 1;
            r->start = d->blocks[2 * d->next];
            r->count = d->blocks[2 * d->next + 1];
            d->next++;
            d->inflight++;
            issued = 1;
            pthread_mutex_unlock(&lock);
            VixError e = VixDiskLib_ReadAsync(d->h, r->start, r->count, r->buf, done, r);
            pthread_mutex_lock(&lock);
            if (e != VIX_ASYNC) {
               fprintf(stderr, PROG ": ReadAsync: %llu\n", (unsigned long long)e);
               return 1;
            }
         }
         pending += d->inflight;
      }
      if (issued) {
         int t = threads_now();
         threads = t > threads ? t : threads;
      }
      if (pending == 0) {
         break;
      }
      pthread_cond_wait(&cond, &lock);
   }
   pthread_mutex_unlock(&lock);
   double secs = bench_now() - t0;
   for (int i = 0; i < n; i++) {
      CHECK("Close", VixDiskLib_Close(disks[i].h));
   }
   VixDiskLib_Disconnect(conn);
   p->serverName = NULL;
   VixDiskLib_FreeConnectParams(p);
   VixDiskLib_Exit();
   printf("bytes=%llu secs=%.3f threads=%d\n", (unsigned long long)bytes_done, secs, threads);
   return bad;
}
