/*
 * dlopen_cycle.c - load the library at run time the way nbdkit's vddk plugin
 * does, use it, unload it, and do it all again in the same process.
 *
 *   dlopen_cycle LIBDIR WORKDIR
 *
 * LIBDIR is the directory holding libvixDiskLib.so.{9,8} (a VDDK-style
 * lib64/).  For each of two rounds: dlopen(RTLD_NOW) the first of
 * LIBDIR/libvixDiskLib.so.9 and .so.8 that loads, dlsym every function
 * nbdkit >= 1.44 requires, InitEx(6, 5, ...), AllocateConnectParams,
 * ConnectEx, Create (first round), Open, GetInfo, WriteAsync/ReadAsync +
 * Wait, Flush, QueryAllocatedBlocks, Close, Disconnect, FreeConnectParams,
 * Exit, dlclose.  Background threads or handlers the library leaves behind
 * after Exit would crash or hang the second round or the process exit.
 *
 * This program is deliberately not linked against the library.
 * Exit status: 0 if every step succeeded.
 */

#define _GNU_SOURCE                      /* RTLD_NOLOAD */

#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vixDiskLib.h"

#define SECTORS 2048                     /* 1 MiB disk */
#define IO_SECTORS 128

struct api {
   VixError (*InitEx)(uint32, uint32, VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                      VixDiskLibGenericLogFunc *, const char *, const char *);
   void (*Exit)(void);
   char *(*GetErrorText)(VixError, const char *);
   void (*FreeErrorText)(char *);
   VixDiskLibConnectParams *(*AllocateConnectParams)(void);
   void (*FreeConnectParams)(VixDiskLibConnectParams *);
   VixError (*ConnectEx)(const VixDiskLibConnectParams *, Bool, const char *, const char *,
                         VixDiskLibConnection *);
   VixError (*Disconnect)(VixDiskLibConnection);
   VixError (*Create)(const VixDiskLibConnection, const char *, const VixDiskLibCreateParams *,
                      VixDiskLibProgressFunc, void *);
   VixError (*Open)(const VixDiskLibConnection, const char *, uint32, VixDiskLibHandle *);
   VixError (*Close)(VixDiskLibHandle);
   const char *(*GetTransportMode)(VixDiskLibHandle);
   const char *(*ListTransportModes)(void);
   VixError (*GetInfo)(VixDiskLibHandle, VixDiskLibInfo **);
   void (*FreeInfo)(VixDiskLibInfo *);
   VixError (*Read)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, uint8 *);
   VixError (*Write)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, const uint8 *);
   VixError (*ReadAsync)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, uint8 *,
                         VixDiskLibCompletionCB, void *);
   VixError (*WriteAsync)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                          const uint8 *, VixDiskLibCompletionCB, void *);
   VixError (*Wait)(VixDiskLibHandle);
   VixError (*Flush)(VixDiskLibHandle);
   VixError (*QueryAllocatedBlocks)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                                    VixDiskLibSectorType, VixDiskLibBlockList **);
   VixError (*FreeBlockList)(VixDiskLibBlockList *);
};

static int failures;

static void
log_func(const char *fmt, va_list args)
{
   printf("      [lib] ");
   vprintf(fmt, args);
}

static void
completion(void *data, VixError result)
{
   *(VixError *)data = result;
}

static int
ok(const struct api *api, VixError err, const char *what)
{
   char *text;

   if (err == VIX_OK) {
      printf("ok    %s\n", what);
      return 1;
   }
   text = api->GetErrorText(err, NULL);
   printf("FAIL  %s: %lu (%s)\n", what, (unsigned long)err, text ? text : "?");
   api->FreeErrorText(text);
   failures++;
   return 0;
}

static int
expect(int cond, const char *what)
{
   printf("%s  %s\n", cond ? "ok  " : "FAIL", what);
   failures += !cond;
   return cond;
}

static int
count_threads(void)
{
   DIR *d = opendir("/proc/self/task");
   struct dirent *e;
   int n = 0;

   if (d == NULL) {
      return -1;
   }
   while ((e = readdir(d)) != NULL) {
      n += e->d_name[0] != '.';
   }
   closedir(d);
   return n;
}

/* dlsym into a function pointer without an object-to-function pointer cast. */
#define LOAD(lib, api, name)                                                      \
   do {                                                                           \
      *(void **)(&(api)->name) = dlsym((lib), "VixDiskLib_" #name);               \
      if ((api)->name == NULL) {                                                  \
         printf("FAIL  required symbol VixDiskLib_%s is missing\n", #name);       \
         missing++;                                                               \
      }                                                                           \
   } while (0)

static void
round_trip(const char *libdir, const char *disk, int round)
{
   static const char *const names[] = { "libvixDiskLib.so.9", "libvixDiskLib.so.8" };
   char path[4096], what[256];
   void *lib = NULL;
   struct api api;
   VixDiskLibConnectParams *params;
   VixDiskLibConnection conn = NULL;
   VixDiskLibHandle h = NULL;
   VixDiskLibInfo *info = NULL;
   VixDiskLibBlockList *blocks = NULL;
   uint8 *out, *in;
   VixError wres = 1, rres = 1;
   size_t i;
   int missing = 0;

   printf("--- round %d\n", round);
   for (i = 0; i < sizeof names / sizeof names[0] && lib == NULL; i++) {
      snprintf(path, sizeof path, "%s/%s", libdir, names[i]);
      lib = dlopen(path, RTLD_NOW);
   }
   if (!expect(lib != NULL, "dlopen libvixDiskLib.so.{9,8}")) {
      printf("      %s\n", dlerror());
      return;
   }
   printf("      loaded %s\n", path);

   memset(&api, 0, sizeof api);
   LOAD(lib, &api, InitEx);
   LOAD(lib, &api, Exit);
   LOAD(lib, &api, GetErrorText);
   LOAD(lib, &api, FreeErrorText);
   LOAD(lib, &api, AllocateConnectParams);
   LOAD(lib, &api, FreeConnectParams);
   LOAD(lib, &api, ConnectEx);
   LOAD(lib, &api, Disconnect);
   LOAD(lib, &api, Create);
   LOAD(lib, &api, Open);
   LOAD(lib, &api, Close);
   LOAD(lib, &api, GetTransportMode);
   LOAD(lib, &api, ListTransportModes);
   LOAD(lib, &api, GetInfo);
   LOAD(lib, &api, FreeInfo);
   LOAD(lib, &api, Read);
   LOAD(lib, &api, Write);
   LOAD(lib, &api, ReadAsync);
   LOAD(lib, &api, WriteAsync);
   LOAD(lib, &api, Wait);
   LOAD(lib, &api, Flush);
   LOAD(lib, &api, QueryAllocatedBlocks);
   LOAD(lib, &api, FreeBlockList);
   if (!expect(missing == 0, "every symbol nbdkit requires is present")) {
      dlclose(lib);
      return;
   }

   out = (uint8 *)malloc(IO_SECTORS * VIXDISKLIB_SECTOR_SIZE);
   in = (uint8 *)calloc(IO_SECTORS, VIXDISKLIB_SECTOR_SIZE);
   if (out == NULL || in == NULL) {
      expect(0, "allocate buffers");
      free(out);
      free(in);
      dlclose(lib);
      return;
   }
   memset(out, 0x40 + round, IO_SECTORS * VIXDISKLIB_SECTOR_SIZE);

   if (!ok(&api, api.InitEx(6, 5, log_func, log_func, log_func, libdir, NULL), "InitEx(6, 5)")) {
      goto out_close_lib;
   }
   printf("      transport modes: %s\n", api.ListTransportModes());
   params = api.AllocateConnectParams();
   if (!expect(params != NULL, "AllocateConnectParams")) {
      goto out_exit;
   }
   if (!ok(&api, api.ConnectEx(params, FALSE, NULL, NULL, &conn), "ConnectEx (local)")) {
      goto out_free_params;
   }
   if (round == 1) {
      VixDiskLibCreateParams cp;
      memset(&cp, 0, sizeof cp);
      cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
      cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC;
      cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
      cp.capacity = SECTORS;
      if (!ok(&api, api.Create(conn, disk, &cp, NULL, NULL), "Create")) {
         goto out_disconnect;
      }
   }
   if (!ok(&api, api.Open(conn, disk, 0, &h), "Open")) {
      goto out_disconnect;
   }
   printf("      transport mode: %s\n", api.GetTransportMode(h));
   if (ok(&api, api.GetInfo(h, &info), "GetInfo")) {
      expect(info->capacity == SECTORS, "capacity");
      api.FreeInfo(info);
   }

   /* nbdkit's pattern: async I/O, any result but VIX_ASYNC is an error. */
   expect(api.WriteAsync(h, 0, IO_SECTORS, out, completion, &wres) == VIX_ASYNC,
          "WriteAsync returns VIX_ASYNC");
   ok(&api, api.Wait(h), "Wait");
   ok(&api, wres, "write completion result");
   ok(&api, api.Flush(h), "Flush");
   expect(api.ReadAsync(h, 0, IO_SECTORS, in, completion, &rres) == VIX_ASYNC,
          "ReadAsync returns VIX_ASYNC");
   ok(&api, api.Wait(h), "Wait");
   ok(&api, rres, "read completion result");
   snprintf(what, sizeof what, "data read back matches round %d", round);
   expect(memcmp(in, out, IO_SECTORS * VIXDISKLIB_SECTOR_SIZE) == 0, what);

   /* nbdkit's can_extents probe. */
   if (ok(&api, api.QueryAllocatedBlocks(h, 0, VIXDISKLIB_MIN_CHUNK_SIZE,
                                         VIXDISKLIB_MIN_CHUNK_SIZE, &blocks),
          "QueryAllocatedBlocks(0, 128, 128)")) {
      expect(blocks->numBlocks == 1 && blocks->blocks[0].offset == 0 &&
                blocks->blocks[0].length == VIXDISKLIB_MIN_CHUNK_SIZE,
             "first chunk reported allocated");
      ok(&api, api.FreeBlockList(blocks), "FreeBlockList");
   }
   ok(&api, api.Close(h), "Close");

out_disconnect:
   ok(&api, api.Disconnect(conn), "Disconnect");
out_free_params:
   api.FreeConnectParams(params);
out_exit:
   api.Exit();
out_close_lib:
   free(out);
   free(in);
   expect(dlclose(lib) == 0, "dlclose");

   /* Informational: whether the library really went away, and what it left running. */
   lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
   printf("      after dlclose: library %s, %d thread(s) in the process\n",
          lib != NULL ? "still mapped" : "unmapped", count_threads());
   if (lib != NULL) {
      dlclose(lib);
   }
}

int
main(int argc, char **argv)
{
   char disk[4096];
   struct timespec pause = { 0, 200 * 1000 * 1000 };

   if (argc != 3) {
      fprintf(stderr, "usage: %s LIBDIR WORKDIR\n", argv[0]);
      return 2;
   }
   snprintf(disk, sizeof disk, "%s/dlopen-cycle.vmdk", argv[2]);
   remove(disk);

   round_trip(argv[1], disk, 1);
   round_trip(argv[1], disk, 2);

   /* Give anything the library left running a chance to misbehave. */
   nanosleep(&pause, NULL);
   remove(disk);

   printf("\n%s: %d failure(s)\n", failures == 0 ? "PASS" : "FAIL", failures);
   return failures == 0 ? 0 : 1;
}
