/*
 * nightly_backup: the seed scenario through the VixDiskLib C API, on disks it creates.
 *
 *   nightly_backup DIR
 *
 * 1. a base disk and three nightly redo logs (CreateChild), each night writing other sectors;
 * 2. a past generation opened read-only and checked;
 * 3. a day re-created with Create + Open(SINGLE_LINK) + Attach, then written through;
 * 4. a full backup of the newest generation that copies only the blocks QueryAllocatedBlocks
 *    reports into DIR/backup.raw (the demo script checks it with qemu-img compare).
 * Exit status 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vixDiskLib.h"

#define CAPACITY_SECTORS (64 * 2048) /* 64 MiB */
#define NIGHTS 3

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

static int write_fill(VixDiskLibHandle h, uint64_t sector, uint64_t count, int byte)
{
   uint8_t *buf = malloc(count * 512);
   if (buf == NULL) {
      return 0;
   }
   memset(buf, byte, count * 512);
   int ok = check(VixDiskLib_Write(h, sector, count, buf), "Write");
   free(buf);
   return ok;
}

/* True if sector `sector` of the open disk is filled with `byte`. */
static int sector_is(VixDiskLibHandle h, uint64_t sector, int byte)
{
   uint8_t buf[512];
   if (!check(VixDiskLib_Read(h, sector, 1, buf), "Read")) {
      return 0;
   }
   for (int i = 0; i < 512; i++) {
      if (buf[i] != (uint8_t)byte) {
         fprintf(stderr, "FAILED: sector %llu holds 0x%02x, expected 0x%02x\n",
                 (unsigned long long)sector, buf[i], byte);
         return 0;
      }
   }
   return 1;
}

static int open_disk(const char *path, uint32_t flags, VixDiskLibHandle *h)
{
   return check(VixDiskLib_Open(conn, path, flags, h), path);
}

static int full_backup(const char *disk, const char *raw_path, uint64_t *copied)
{
   VixDiskLibHandle h;
   if (!open_disk(disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h)) {
      return 0;
   }
   int fd = open(raw_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
   int ok = fd >= 0 && ftruncate(fd, (off_t)CAPACITY_SECTORS * 512) == 0;
   uint8_t *buf = malloc(VIXDISKLIB_MIN_CHUNK_SIZE * 512);
   const uint64_t chunk = VIXDISKLIB_MIN_CHUNK_SIZE;
   const uint64_t per_query = (uint64_t)VIXDISKLIB_MAX_CHUNK_NUMBER * chunk;
   *copied = 0;
   for (uint64_t start = 0; ok && buf && start < CAPACITY_SECTORS; start += per_query) {
      uint64_t count = CAPACITY_SECTORS - start < per_query ? CAPACITY_SECTORS - start : per_query;
      VixDiskLibBlockList *list = NULL;
      ok = check(VixDiskLib_QueryAllocatedBlocks(h, start, count, chunk, &list),
                 "QueryAllocatedBlocks");
      for (uint32_t i = 0; ok && i < list->numBlocks; i++) {
         for (uint64_t s = list->blocks[i].offset;
              ok && s < list->blocks[i].offset + list->blocks[i].length; s += chunk) {
            ok = check(VixDiskLib_Read(h, s, chunk, buf), "Read") &&
                 pwrite(fd, buf, chunk * 512, (off_t)s * 512) == (ssize_t)(chunk * 512);
            *copied += chunk;
         }
      }
      if (list != NULL) {
         VixDiskLib_FreeBlockList(list);
      }
   }
   free(buf);
   if (fd >= 0) {
      ok = fsync(fd) == 0 && ok;
      close(fd);
   }
   return check(VixDiskLib_Close(h), "Close") && ok;
}

int main(int argc, char **argv)
{
   if (argc != 2) {
      fprintf(stderr, "usage: %s DIR\n", argv[0]);
      return 2;
   }
   char gen[NIGHTS + 1][4096];
   char redo[4096], raw[4096];
   snprintf(gen[0], sizeof gen[0], "%s/base.vmdk", argv[1]);
   for (int n = 1; n <= NIGHTS; n++) {
      snprintf(gen[n], sizeof gen[n], "%s/base-%06d.vmdk", argv[1], n);
   }
   snprintf(redo, sizeof redo, "%s/day2-recreated.vmdk", argv[1]);
   snprintf(raw, sizeof raw, "%s/backup.raw", argv[1]);

   int ok = check(VixDiskLib_InitEx(6, 5, NULL, NULL, NULL, NULL, NULL), "InitEx") &&
            check(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn), "ConnectEx");
   VixDiskLibCreateParams cp;
   memset(&cp, 0, sizeof cp);
   cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
   cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_6;
   cp.capacity = CAPACITY_SECTORS;
   ok = ok && check(VixDiskLib_Create(conn, gen[0], &cp, NULL, NULL), "Create base");

   VixDiskLibHandle h;
   ok = ok && open_disk(gen[0], 0, &h) && write_fill(h, 0, 2048, 0xb0) &&
        check(VixDiskLib_Close(h), "Close");
   printf("base: 1 MiB of 0xb0 at sector 0\n");

   /* Nightly redo logs: the newest link is always the one written. */
   for (int n = 1; ok && n <= NIGHTS; n++) {
      ok = open_disk(gen[n - 1], 0, &h) &&
           check(VixDiskLib_CreateChild(h, gen[n], VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
                 "CreateChild") &&
           check(VixDiskLib_Close(h), "Close");
      ok = ok && open_disk(gen[n], 0, &h) &&
           write_fill(h, (uint64_t)n * 4096, 128, 0xd0 + n) && /* a new area each night */
           write_fill(h, (uint64_t)n, 1, 0xe0 + n) &&         /* one sector inside the base data */
           check(VixDiskLib_Close(h), "Close");
      printf("night %d: child %s written\n", n, gen[n]);
   }

   /* A past generation: night 1 sees its own writes but not night 2's. */
   ok = ok && open_disk(gen[1], VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) && sector_is(h, 1, 0xe1) &&
        sector_is(h, 4096, 0xd1) && sector_is(h, 2 * 4096, 0x00) && sector_is(h, 100, 0xb0) &&
        check(VixDiskLib_Close(h), "Close");
   printf("past generation 1 reads as night 1\n");

   /* Re-create night 2: a new disk attached to generation 2, written without touching it. */
   VixDiskLibHandle parent, child;
   VixDiskLibInfo *info = NULL;
   ok = ok && check(VixDiskLib_Create(conn, redo, &cp, NULL, NULL), "Create redo") &&
        open_disk(gen[2], VIXDISKLIB_FLAG_OPEN_READ_ONLY, &parent) &&
        open_disk(redo, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, &child) &&
        check(VixDiskLib_Attach(parent, child), "Attach") && write_fill(child, 3 * 4096, 8, 0x5a) &&
        sector_is(child, 2 * 4096, 0xd2) && sector_is(child, 3 * 4096, 0x5a) &&
        sector_is(child, 2, 0xe2) && check(VixDiskLib_GetInfo(child, &info), "GetInfo");
   if (ok) {
      printf("re-created night 2 over %d links (parent hint %s)\n", info->numLinks,
             info->parentFileNameHint ? info->parentFileNameHint : "-");
      ok = info->numLinks == 4;
      VixDiskLib_FreeInfo(info);
   }
   ok = ok && check(VixDiskLib_Close(child), "Close child") &&
        check(VixDiskLib_Close(parent), "Close of the attached parent (a no-op)");

   /* Full backup of the newest generation: only allocated blocks are read. */
   uint64_t copied = 0;
   ok = ok && full_backup(gen[NIGHTS], raw, &copied);
   if (ok) {
      printf("full backup of %s: copied %llu of %d sectors into %s\n", gen[NIGHTS],
             (unsigned long long)copied, CAPACITY_SECTORS, raw);
   }

   VixDiskLib_Disconnect(conn);
   VixDiskLib_Exit();
   printf(ok ? "nightly_backup: all checks passed\n" : "nightly_backup: FAILED\n");
   return ok ? 0 : 1;
}
