/*
 * backup_recovery: a change-tracking backup cycle through the VDDK 9.0 API, on disks it creates.
 *
 *   backup_recovery DIR
 *
 * A tracked 64 MiB disk is backed up three times. Each backup takes a snapshot (CreateChild:
 * the base freezes, the "VM" writes to the child), reads the frozen base, then deletes the
 * snapshot (VixDiskLibExt_Commit folds the child back into the base):
 *   T1  full backup of the blocks QueryAllocatedBlocks reports, recording changeId_T1;
 *   T2  incremental: OpenEx(changeId_T1) + QueryChangedAreas;
 *   T3  incremental since T2, and a differential since T1.
 * The change id of each snapshot is taken one of two ways, and the whole cycle runs once each
 * (in DIR/id-before-snapshot and DIR/id-after-snapshot): on the writable handle just before
 * CreateChild, or after it from a read-only open of the frozen disk, as backup programs do.
 * Then the disk at T3 is restored twice into new disks, newest backup first, skipping sectors
 * already restored (T3 incremental, T2 incremental, T1 full; and T3 differential, T1 full),
 * and each is compared with the base at T3: through the library and with `qemu-img compare`.
 * The bytes each step moved are printed and checked against the 64 KiB grains written.
 * Exit status 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vixDiskLib.h"
#include "vixDiskLibExt.h"

#define CAPACITY_SECTORS (64 * 2048) /* 64 MiB */
#define GRAIN_SECTORS 128
#define GRAIN_BYTES (GRAIN_SECTORS * 512)

static VixDiskLibConnection conn;

static int check(VixError err, const char *what)
{
   if (err == VIX_OK) {
      return 1;
   }
   char *text = VixDiskLib_GetErrorText(err, NULL);
   fprintf(stderr, "FAILED: %s: %s\n", what, text ? text : "?");
   VixDiskLib_FreeErrorText(text);
   return 0;
}

static int expect(int cond, const char *what)
{
   if (!cond) {
      fprintf(stderr, "FAILED: %s\n", what);
   }
   return cond;
}

/* One write of the "VM": `count` sectors of `byte` at `sector`. */
struct fill {
   uint64_t sector, count;
   int byte;
};

static int write_fills(const char *path, const struct fill *fills, size_t n)
{
   VixDiskLibHandle h;
   int ok = check(VixDiskLib_Open(conn, path, 0, &h), path);
   for (size_t i = 0; ok && i < n; i++) {
      uint8_t *buf = malloc(fills[i].count * 512);
      ok = expect(buf != NULL, "malloc");
      if (ok) {
         memset(buf, fills[i].byte, fills[i].count * 512);
         ok = check(VixDiskLib_Write(h, fills[i].sector, fills[i].count, buf), "Write");
      }
      free(buf);
   }
   return check(VixDiskLib_Close(h), "Close") && ok;
}

/* A backup: areas (sector runs) and their data, back to back. */
struct backup {
   const char *name;
   size_t count, cap;
   uint64_t *offset, *length;
   uint8_t *data;
   uint64_t bytes;
};

static int backup_add(struct backup *b, VixDiskLibHandle h, uint64_t offset, uint64_t length)
{
   if (b->count == b->cap) {
      size_t cap = b->cap ? b->cap * 2 : 16;
      uint64_t *o = realloc(b->offset, cap * sizeof *o);
      if (o != NULL) {
         b->offset = o;
      }
      uint64_t *l = realloc(b->length, cap * sizeof *l);
      if (l != NULL) {
         b->length = l;
      }
      if (!expect(o != NULL && l != NULL, "realloc")) {
         return 0;
      }
      b->cap = cap;
   }
   uint8_t *d = realloc(b->data, b->bytes + length * 512);
   if (!expect(d != NULL, "realloc")) {
      return 0;
   }
   b->data = d;
   b->offset[b->count] = offset;
   b->length[b->count] = length;
   b->count++;
   int ok = check(VixDiskLib_Read(h, offset, length, b->data + b->bytes), "Read");
   b->bytes += length * 512;
   return ok;
}

static void backup_free(struct backup *b)
{
   free(b->offset);
   free(b->length);
   free(b->data);
}

/* The full backup: every block QueryAllocatedBlocks reports on the frozen base. */
static int full_backup(const char *base, struct backup *b)
{
   VixDiskLibHandle h;
   VixDiskLibBlockList *list = NULL;
   int ok = check(VixDiskLib_Open(conn, base, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), base) &&
            check(VixDiskLib_QueryAllocatedBlocks(h, 0, CAPACITY_SECTORS, GRAIN_SECTORS, &list),
                  "QueryAllocatedBlocks");
   for (uint32_t i = 0; ok && i < list->numBlocks; i++) {
      ok = backup_add(b, h, list->blocks[i].offset, list->blocks[i].length);
   }
   if (list != NULL) {
      VixDiskLib_FreeBlockList(list);
   }
   return check(VixDiskLib_Close(h), "Close") && ok;
}

/* An incremental or differential backup: what changed on the frozen base since `since`. */
static int changed_backup(const char *base, const char *since, struct backup *b)
{
   VixDiskLibOpenParams params;
   VixDiskLibHandle h;
   memset(&params, 0, sizeof params);
   params.path = (char *)base;
   params.flags = VIXDISKLIB_FLAG_OPEN_READ_ONLY;
   params.changeId = (char *)since;
   if (!check(VixDiskLib_OpenEx(conn, &params, &h), "OpenEx")) {
      return 0;
   }
   int ok = 1;
   for (uint64_t start = 0; ok && start < CAPACITY_SECTORS;) {
      VixDiskLibQueryChangedAreaParams q;
      VixDiskLibDiskChangeInfo *info = NULL;
      q.startOffset = start;
      ok = check(VixDiskLib_QueryChangedAreas(h, &q, &info), "QueryChangedAreas") &&
           expect(info->startOffset == start && info->length > 0, "answer covers the query");
      for (uint32_t i = 0; ok && i < info->areas->numBlocks; i++) {
         ok = backup_add(b, h, info->areas->blocks[i].offset, info->areas->blocks[i].length);
      }
      if (info != NULL) {
         start += info->length;
         VixDiskLib_FreeChangedAreas(info);
      }
   }
   return check(VixDiskLib_Close(h), "Close") && ok;
}

/* Set by main: take each snapshot's id after CreateChild, from a read-only open. */
static int id_after_snapshot;

/* Snapshot: freeze `base` under `snap`, and record the change id of the frozen content: on
 * the writable handle before CreateChild, or (id_after_snapshot) from a read-only open of the
 * frozen disk afterwards. */
static int snapshot(const char *base, const char *snap, char *id, size_t id_size)
{
   VixDiskLibHandle h;
   char *change_id = NULL;
   int ok = check(VixDiskLib_Open(conn, base, 0, &h), base) &&
            (id_after_snapshot || check(VixDiskLibExt_GetChangeId(h, &change_id), "GetChangeId")) &&
            check(VixDiskLib_CreateChild(h, snap, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
                  "CreateChild");
   ok = check(VixDiskLib_Close(h), "Close") && ok;
   if (ok && id_after_snapshot) {
      ok = check(VixDiskLib_Open(conn, base, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h), base) &&
           check(VixDiskLibExt_GetChangeId(h, &change_id), "GetChangeId (read-only, frozen)");
      ok = check(VixDiskLib_Close(h), "Close") && ok;
   }
   if (change_id != NULL) {
      snprintf(id, id_size, "%s", change_id);
      VixDiskLibExt_FreeChangeId(change_id);
   }
   return ok;
}

static int report(const struct backup *b, uint64_t want_grains)
{
   printf("%-26s %3zu area(s), %8llu bytes moved\n", b->name, b->count,
          (unsigned long long)b->bytes);
   return expect(b->bytes == want_grains * GRAIN_BYTES, b->name);
}

/* Restores `n` backups, newest first, into a new disk; each sector comes from the newest
 * backup that holds it. */
static int restore(const char *path, struct backup *const *newest_first, size_t n)
{
   VixDiskLibCreateParams cp;
   VixDiskLibHandle h;
   uint8_t *done = calloc(CAPACITY_SECTORS, 1);
   uint64_t moved = 0;
   memset(&cp, 0, sizeof cp);
   cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
   cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_6;
   cp.capacity = CAPACITY_SECTORS;
   int ok = expect(done != NULL, "calloc") &&
            check(VixDiskLib_Create(conn, path, &cp, NULL, NULL), "Create restore target") &&
            check(VixDiskLib_Open(conn, path, 0, &h), path);
   for (size_t k = 0; ok && k < n; k++) {
      const struct backup *b = newest_first[k];
      uint64_t at = 0;
      for (size_t i = 0; ok && i < b->count; at += b->length[i] * 512, i++) {
         uint64_t s = b->offset[i], end = b->offset[i] + b->length[i];
         while (ok && s < end) {
            uint64_t run = s;
            while (run < end && !done[run]) {
               run++;
            }
            if (run > s) {
               ok = check(VixDiskLib_Write(h, s, run - s, b->data + at + (s - b->offset[i]) * 512),
                          "Write");
               memset(done + s, 1, run - s);
               moved += (run - s) * 512;
            }
            for (s = run; s < end && done[s]; s++) {
            }
         }
      }
   }
   if (ok) {
      ok = check(VixDiskLib_Close(h), "Close");
   }
   free(done);
   printf("%-26s %8llu bytes written into %s\n", "restore", (unsigned long long)moved, path);
   return ok;
}

/* The restored disk reads like `reference` (through the library) and qemu-img agrees. */
static int verify(const char *restored, const char *reference)
{
   VixDiskLibHandle a, b;
   enum { CHUNK = 2048 };
   uint8_t *x = malloc(CHUNK * 512), *y = malloc(CHUNK * 512);
   int ok = expect(x && y, "malloc") &&
            check(VixDiskLib_Open(conn, restored, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &a), restored);
   if (ok) {
      ok = check(VixDiskLib_Open(conn, reference, VIXDISKLIB_FLAG_OPEN_READ_ONLY |
                                                      VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, &b),
                 reference);
      for (uint64_t s = 0; ok && s < CAPACITY_SECTORS; s += CHUNK) {
         ok = check(VixDiskLib_Read(a, s, CHUNK, x), "Read") &&
              check(VixDiskLib_Read(b, s, CHUNK, y), "Read") &&
              expect(memcmp(x, y, CHUNK * 512) == 0, "restored data equals the disk at T3");
      }
      if (ok) {
         ok = check(VixDiskLib_Close(b), "Close");
      }
      ok = check(VixDiskLib_Close(a), "Close") && ok;
   }
   free(x);
   free(y);
   if (ok && system("command -v qemu-img >/dev/null 2>&1") == 0) {
      char cmd[9000];
      snprintf(cmd, sizeof cmd, "qemu-img compare -q -f vmdk -F vmdk '%s' '%s'", restored,
               reference);
      ok = expect(system(cmd) == 0, "qemu-img compare: restored disk equals the disk at T3");
      if (ok) {
         printf("qemu-img compare %s: identical to the disk at T3\n", restored);
      }
   } else if (ok) {
      printf("qemu-img not installed: compared through the library only\n");
   }
   return ok;
}

/* One backup cycle (T1..T3 and two restores) in `dir`. */
static int cycle(const char *dir)
{
   char base[4096], snap[3][4096], restored_incr[4096], restored_diff[4096];
   char id_t1[256] = "", id_t2[256] = "", id_t3[256] = "";
   snprintf(base, sizeof base, "%s/base.vmdk", dir);
   for (int i = 0; i < 3; i++) {
      snprintf(snap[i], sizeof snap[i], "%s/snapshot-T%d.vmdk", dir, i + 1);
   }
   snprintf(restored_incr, sizeof restored_incr, "%s/restored-incremental.vmdk", dir);
   snprintf(restored_diff, sizeof restored_diff, "%s/restored-differential.vmdk", dir);

   /* Before T1 (base), between T1 and T2 (snapshot 1), T2..T3 (snapshot 2), after T3. */
   static const struct fill w0[] = {{0, 2048, 0x10}, {20000, 100, 0x11}, {CAPACITY_SECTORS - 8, 8, 0x12}};
   static const struct fill w1[] = {{4096, 300, 0x21}, {10, 5, 0x22}, {70000, 1, 0x23}};
   static const struct fill w2[] = {{4100, 50, 0x31}, {90000, 256, 0x32}};
   static const struct fill w3[] = {{50000, 64, 0x41}, {0, 1, 0x42}};
   struct backup full = {.name = "full backup T1"}, incr2 = {.name = "incremental T2 (since T1)"},
                 incr3 = {.name = "incremental T3 (since T2)"},
                 diff3 = {.name = "differential T3 (since T1)"};

   printf("== change ids taken %s ==\n",
          id_after_snapshot ? "after CreateChild, read-only" : "before CreateChild");
   int ok = 1;
   VixDiskLibCreateParams cp;
   memset(&cp, 0, sizeof cp);
   cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
   cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_6;
   cp.capacity = CAPACITY_SECTORS;
   ok = ok && check(VixDiskLib_Create(conn, base, &cp, NULL, NULL), "Create base") &&
        check(VixDiskLibExt_SetChangeTracking(conn, base, TRUE), "SetChangeTracking") &&
        write_fills(base, w0, 3);

   /* T1: snapshot, full backup of the frozen base, the VM writes, snapshot deleted. */
   ok = ok && snapshot(base, snap[0], id_t1, sizeof id_t1) && full_backup(base, &full) &&
        write_fills(snap[0], w1, 3) && check(VixDiskLibExt_Commit(conn, snap[0], NULL, NULL), "Commit");
   ok = ok && report(&full, 16 + 2 + 1);
   printf("changeId_T1 = %s\n", id_t1);

   /* T2: incremental since T1. */
   ok = ok && snapshot(base, snap[1], id_t2, sizeof id_t2) && changed_backup(base, id_t1, &incr2) &&
        write_fills(snap[1], w2, 2) && check(VixDiskLibExt_Commit(conn, snap[1], NULL, NULL), "Commit");
   ok = ok && report(&incr2, 3 + 1 + 1);

   /* T3: incremental since T2 and differential since T1; the snapshot stays, the base is T3. */
   ok = ok && snapshot(base, snap[2], id_t3, sizeof id_t3) && changed_backup(base, id_t2, &incr3) &&
        changed_backup(base, id_t1, &diff3) && write_fills(snap[2], w3, 2);
   ok = ok && report(&incr3, 1 + 3) && report(&diff3, 1 + 3 + 1 + 3);
   ok = ok && expect(strcmp(id_t1, id_t2) != 0 && strcmp(id_t2, id_t3) != 0, "ids differ");

   /* Recovery of the disk at T3, newest backup first. */
   struct backup *chain_incr[] = {&incr3, &incr2, &full};
   struct backup *chain_diff[] = {&diff3, &full};
   ok = ok && restore(restored_incr, chain_incr, 3) && verify(restored_incr, base);
   ok = ok && restore(restored_diff, chain_diff, 2) && verify(restored_diff, base);

   backup_free(&full);
   backup_free(&incr2);
   backup_free(&incr3);
   backup_free(&diff3);
   return ok;
}

int main(int argc, char **argv)
{
   if (argc != 2) {
      fprintf(stderr, "usage: %s DIR\n", argv[0]);
      return 2;
   }
   int ok = check(VixDiskLib_InitEx(6, 5, NULL, NULL, NULL, NULL, NULL), "InitEx") &&
            check(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn), "ConnectEx");
   static const char *const modes[2] = {"id-before-snapshot", "id-after-snapshot"};
   for (int m = 0; ok && m < 2; m++) {
      char dir[3072]; /* leaves room for the file names cycle() appends in its 4096-byte paths */
      snprintf(dir, sizeof dir, "%s/%s", argv[1], modes[m]);
      ok = expect(mkdir(dir, 0777) == 0 || errno == EEXIST, "mkdir");
      id_after_snapshot = m;
      ok = ok && cycle(dir);
   }
   VixDiskLib_Disconnect(conn);
   VixDiskLib_Exit();
   printf(ok ? "backup_recovery: all checks passed\n" : "backup_recovery: FAILED\n");
   return ok ? 0 : 1;
}
