/*
 * shared_base: the "Sharing Virtual Disk Base Images" seed, step by step, through the
 * VixDiskLib C API plus vixDiskLibExt.h (Commit, nonpersistent opens).
 *
 *   shared_base DIR
 *
 * 1. The base machine: DIR/mydisk.vmdk with its "installed software".
 * 2. An undoable session on it: CreateChild -> DIR/mydisk.vmdk.REDO, powered off at once and
 *    kept (an empty redo log); from now on that redo log is machine 1's disk.
 * 3. The base is made read-only (chmod 0444); a commit into it is refused.
 * 4. Machines 2 and 3 get redo directories, DIR/vm2 and DIR/vm3, with
 *    mydisk.vmdk.REDO_a01000 and mydisk.vmdk.REDO_c03000 over the same base.
 * 5. All three run at once, each in its own process:
 *      machine 1 runs nonpersistent (VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT): its writes
 *        vanish at power-off;
 *      machine 2 writes its own software, then an undoable session
 *        (...REDO_a01000.REDO_b02000) that it commits into its own redo log;
 *      machine 3 writes its own software, then an undoable session
 *        (...REDO_c03000.REDO_d04000) that it discards (VixDiskLib_Unlink).
 *    While they run, committing machine 1's redo log is refused (it is in use).
 * 6. Checks: the base is byte-for-byte unchanged, every disk reads what it should (here and
 *    with `qemu-img compare`), `qemu-img check` passes on every link, no scratch file is
 *    left in DIR/scratch.
 *
 * Exit status 0 only if every check passed. The machines are this program run again
 * (`shared_base --machine N DIR`).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vixDiskLibExt.h"

#define CAPACITY_SECTORS (32 * 2048) /* 32 MiB */
#define MACHINES 3
#define DIR_LEN 3072  /* leaves room for the names below it */
#define PATH_LEN 4096

/* A run of sectors all filled with one byte. */
struct area {
   uint64_t start;
   uint64_t count;
   uint8_t byte;
};

/* What the disks hold (each applied over the previous ones). */
static const struct area BASE_DATA[] = {{0, 8192, 0xb0}};              /* the OS install */
static const struct area M1_PRIVATE[] = {{1000, 256, 0x11}, {20000, 128, 0x12}};
static const struct area M2_OWN[] = {{4096, 64, 0x22}, {40000, 256, 0x23}};
static const struct area M2_SESSION[] = {{40064, 512, 0x2b}, {8000, 8, 0x2c}};
static const struct area M3_OWN[] = {{4096, 64, 0x33}, {60000, 128, 0x34}};
static const struct area M3_SESSION[] = {{60000, 64, 0x3d}, {0, 8, 0x3e}};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static VixDiskLibConnection conn;
static char dir[DIR_LEN];
static const char *who = "setup";

static void quiet(const char *fmt, va_list args)
{
   (void)fmt;
   (void)args;
}

static void to_stderr(const char *fmt, va_list args)
{
   vfprintf(stderr, fmt, args);
}

static void say(const char *fmt, ...)
{
   va_list args;
   va_start(args, fmt);
   printf("[%s] ", who);
   vprintf(fmt, args);
   printf("\n");
   fflush(stdout);
   va_end(args);
}

static int check(VixError err, const char *what)
{
   if (err == VIX_OK) {
      return 1;
   }
   char *text = VixDiskLib_GetErrorText(err, NULL);
   fprintf(stderr, "[%s] FAILED: %s: %s\n", who, what, text ? text : "?");
   VixDiskLib_FreeErrorText(text);
   return 0;
}

/* True if `err` is the refusal `code`; says so either way. */
static int refused_with(VixError err, uint64_t code, const char *what)
{
   char *text = VixDiskLib_GetErrorText(err, NULL);
   int ok = VIX_ERROR_CODE(err) == code;
   if (ok) {
      say("%s: refused as it should be (%s)", what, text ? text : "?");
   } else {
      fprintf(stderr, "[%s] FAILED: %s: expected error %llu, got %llu (%s)\n", who, what,
              (unsigned long long)code, (unsigned long long)VIX_ERROR_CODE(err),
              text ? text : "?");
   }
   VixDiskLib_FreeErrorText(text);
   return ok;
}

static void path_in(char *out, const char *name)
{
   snprintf(out, PATH_LEN, "%s/%s", dir, name);
}

static int open_disk(const char *path, uint32_t flags, VixDiskLibHandle *h)
{
   return check(VixDiskLib_Open(conn, path, flags, h), path);
}

static int write_areas(VixDiskLibHandle h, const struct area *a, size_t n)
{
   for (size_t i = 0; i < n; i++) {
      uint8_t *buf = malloc(a[i].count * 512);
      if (buf == NULL) {
         return 0;
      }
      memset(buf, a[i].byte, a[i].count * 512);
      int ok = check(VixDiskLib_Write(h, a[i].start, a[i].count, buf), "Write");
      free(buf);
      if (!ok) {
         return 0;
      }
   }
   return 1;
}

/* model[s] = the byte sector s holds: the base data, then each list of areas in turn. */
static void build_model(uint8_t *model, const struct area *const *lists, const size_t *sizes,
                        size_t nlists)
{
   memset(model, 0, CAPACITY_SECTORS);
   for (size_t i = 0; i < N(BASE_DATA); i++) {
      memset(model + BASE_DATA[i].start, BASE_DATA[i].byte, BASE_DATA[i].count);
   }
   for (size_t l = 0; l < nlists; l++) {
      for (size_t i = 0; i < sizes[l]; i++) {
         memset(model + lists[l][i].start, lists[l][i].byte, lists[l][i].count);
      }
   }
}

/* Reads the whole disk through an open handle and compares it with the model. */
static int matches_model(VixDiskLibHandle h, const uint8_t *model, const char *what)
{
   enum { CHUNK = 2048 };
   uint8_t *buf = malloc(CHUNK * 512);
   int ok = buf != NULL;
   for (uint64_t s = 0; ok && s < CAPACITY_SECTORS; s += CHUNK) {
      ok = check(VixDiskLib_Read(h, s, CHUNK, buf), "Read");
      for (uint64_t i = 0; ok && i < CHUNK * 512; i++) {
         if (buf[i] != model[s + i / 512]) {
            fprintf(stderr, "[%s] FAILED: %s: sector %llu holds 0x%02x, expected 0x%02x\n",
                    who, what, (unsigned long long)(s + i / 512), buf[i], model[s + i / 512]);
            ok = 0;
         }
      }
   }
   free(buf);
   return ok;
}

static int disk_matches(const char *path, const uint8_t *model, const char *what)
{
   VixDiskLibHandle h;
   return open_disk(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) && matches_model(h, model, what) &&
          check(VixDiskLib_Close(h), "Close");
}

/* FNV-1a of a whole file: "byte-for-byte unchanged" without a crypto library. */
static uint64_t file_hash(const char *path)
{
   uint64_t hash = 0xcbf29ce484222325ull;
   uint8_t buf[65536];
   ssize_t n;
   int fd = open(path, O_RDONLY);
   if (fd < 0) {
      return 0;
   }
   while ((n = read(fd, buf, sizeof buf)) > 0) {
      for (ssize_t i = 0; i < n; i++) {
         hash = (hash ^ buf[i]) * 0x100000001b3ull;
      }
   }
   close(fd);
   return hash;
}

static int exists(const char *path)
{
   struct stat st;
   return stat(path, &st) == 0;
}

static void wait_for(const char *path)
{
   struct timespec pause = {0, 20 * 1000 * 1000};
   for (int i = 0; i < 3000 && !exists(path); i++) { /* at most a minute */
      nanosleep(&pause, NULL);
   }
}

static void touch(const char *path)
{
   int fd = open(path, O_CREAT | O_WRONLY, 0644);
   if (fd >= 0) {
      close(fd);
   }
}

static int connect_lib(void)
{
   return check(VixDiskLib_InitEx(6, 5, quiet, to_stderr, to_stderr, NULL, NULL), "InitEx") &&
          check(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn), "ConnectEx");
}

/* ------------------------------------------------------------------------------------------ */
/* The machines (child processes)                                                             */
/* ------------------------------------------------------------------------------------------ */

/* Tells the setup process this machine is up, and waits for the signal to go on. */
static void ready_and_wait(int n)
{
   char ready[PATH_LEN], go[PATH_LEN];
   snprintf(ready, sizeof ready, "%s/ready-%d", dir, n);
   path_in(go, "go");
   touch(ready);
   wait_for(go);
}

static int machine1(void)
{
   char redo[PATH_LEN];
   uint8_t *model = malloc(CAPACITY_SECTORS);
   const struct area *lists[] = {M1_PRIVATE};
   const size_t sizes[] = {N(M1_PRIVATE)};
   VixDiskLibHandle h;
   path_in(redo, "mydisk.vmdk.REDO");
   int ok = model != NULL && open_disk(redo, VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT, &h);
   if (!ok) {
      free(model);
      return 0;
   }
   say("powered on nonpersistent on mydisk.vmdk.REDO");
   ready_and_wait(1);
   build_model(model, lists, sizes, 1);
   ok = write_areas(h, M1_PRIVATE, N(M1_PRIVATE)) &&
        matches_model(h, model, "machine 1 sees its own writes");
   if (ok) {
      say("wrote %zu areas; they read back", N(M1_PRIVATE));
   }
   ok = check(VixDiskLib_Close(h), "Close") && ok;
   say("powered off: the nonpersistent changes are gone");
   free(model);
   return ok;
}

/* Machines 2 and 3: own software into the redo log, then an undoable session on top of it
 * that is committed (machine 2) or discarded (machine 3). */
static int machine_undoable(int n)
{
   int commit = n == 2;
   const struct area *own = commit ? M2_OWN : M3_OWN;
   const struct area *session = commit ? M2_SESSION : M3_SESSION;
   size_t own_n = commit ? N(M2_OWN) : N(M3_OWN);
   size_t session_n = commit ? N(M2_SESSION) : N(M3_SESSION);
   const char *redo_id = commit ? "a01000" : "c03000", *nested_id = commit ? "b02000" : "d04000";
   char redo[PATH_LEN], nested[PATH_LEN];
   snprintf(redo, sizeof redo, "%s/vm%d/mydisk.vmdk.REDO_%s", dir, n, redo_id);
   snprintf(nested, sizeof nested, "%s/vm%d/mydisk.vmdk.REDO_%s.REDO_%s", dir, n, redo_id,
            nested_id);
   uint8_t *model = malloc(CAPACITY_SECTORS);
   const struct area *lists[] = {own, session};
   const size_t sizes[] = {own_n, session_n};
   VixDiskLibHandle h;

   int ok = model != NULL && open_disk(redo, 0, &h);
   if (!ok) {
      free(model);
      return 0;
   }
   say("powered on vm%d/%s", n, strrchr(redo, '/') + 1);
   ready_and_wait(n);
   ok = write_areas(h, own, own_n) &&
        check(VixDiskLib_CreateChild(h, nested, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
              "CreateChild") &&
        check(VixDiskLib_Close(h), "Close");
   say("installed its own software; undoable session in %s", strrchr(nested, '/') + 1);
   build_model(model, lists, sizes, 2);
   ok = ok && open_disk(nested, 0, &h) && write_areas(h, session, session_n) &&
        matches_model(h, model, "the session sees base, own software and its changes") &&
        check(VixDiskLib_Close(h), "Close");
   if (ok && commit) {
      ok = check(VixDiskLibExt_Commit(conn, nested, NULL, NULL), "Commit");
      say("powered off, Commit: the session's changes are now in %s", strrchr(redo, '/') + 1);
   } else if (ok) {
      ok = check(VixDiskLib_Unlink(conn, nested), "Unlink");
      say("powered off, Discard: %s deleted", strrchr(nested, '/') + 1);
   }
   build_model(model, lists, sizes, commit ? 2 : 1);
   ok = ok && !exists(nested) && disk_matches(redo, model, "the redo log after the session");
   free(model);
   return ok;
}

static int run_machine(int n)
{
   static char name[16];
   snprintf(name, sizeof name, "machine %d", n);
   who = name;
   int ok = connect_lib() && (n == 1 ? machine1() : machine_undoable(n));
   VixDiskLib_Disconnect(conn);
   VixDiskLib_Exit();
   return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */
/* The setup and the checks                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int create_base(const char *base)
{
   VixDiskLibCreateParams cp;
   VixDiskLibHandle h;
   memset(&cp, 0, sizeof cp);
   cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
   cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_6;
   cp.capacity = CAPACITY_SECTORS;
   return check(VixDiskLib_Create(conn, base, &cp, NULL, NULL), "Create") &&
          open_disk(base, 0, &h) && write_areas(h, BASE_DATA, N(BASE_DATA)) &&
          check(VixDiskLib_Close(h), "Close");
}

/* CreateChild of `parent` at `child` (the parent opened read-only, as a shared base is). */
static int redo_log(const char *parent, const char *child)
{
   VixDiskLibHandle h;
   return open_disk(parent, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h) &&
          check(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
                "CreateChild") &&
          check(VixDiskLib_Close(h), "Close");
}

static pid_t spawn_machine(int n)
{
   char num[8];
   snprintf(num, sizeof num, "%d", n);
   fflush(stdout);
   pid_t pid = fork();
   if (pid == 0) {
      execl("/proc/self/exe", "shared_base", "--machine", num, dir, (char *)NULL);
      _exit(127);
   }
   return pid;
}

static int have_qemu;

/* Runs a qemu-img command; true if it succeeds (or qemu-img is not installed). */
static int qemu(const char *what, const char *fmt, ...)
{
   char cmd[3 * PATH_LEN];
   va_list args;
   if (!have_qemu) {
      return 1;
   }
   va_start(args, fmt);
   vsnprintf(cmd, sizeof cmd, fmt, args);
   va_end(args);
   int ok = system(cmd) == 0;
   if (ok) {
      say("qemu-img: %s", what);
   } else {
      fprintf(stderr, "[%s] FAILED: %s: %s\n", who, what, cmd);
   }
   return ok;
}

/* Writes the model as a raw image and has qemu-img compare it with the disk. */
static int qemu_same(const uint8_t *model, const char *disk, const char *what)
{
   char raw[PATH_LEN];
   int ok = 1;
   if (!have_qemu) {
      return 1;
   }
   snprintf(raw, sizeof raw, "%s.expected.raw", disk);
   int fd = open(raw, O_CREAT | O_TRUNC | O_WRONLY, 0644);
   ok = fd >= 0 && ftruncate(fd, (off_t)CAPACITY_SECTORS * 512) == 0;
   uint8_t sector[512];
   for (uint64_t s = 0; ok && s < CAPACITY_SECTORS; s++) {
      if (model[s] != 0) {
         memset(sector, model[s], sizeof sector);
         ok = pwrite(fd, sector, sizeof sector, (off_t)s * 512) == (ssize_t)sizeof sector;
      }
   }
   if (fd >= 0) {
      close(fd);
   }
   ok = ok && qemu(what, "qemu-img compare -q -f raw -F vmdk '%s' '%s'", raw, disk);
   unlink(raw);
   return ok;
}

static int dir_is_empty(const char *path)
{
   char cmd[PATH_LEN + 64];
   snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", path);
   return system(cmd) == 0;
}

int main(int argc, char **argv)
{
   if (argc == 4 && strcmp(argv[1], "--machine") == 0) {
      snprintf(dir, sizeof dir, "%s", argv[3]);
      return run_machine(atoi(argv[2]));
   }
   if (argc != 2) {
      fprintf(stderr, "usage: %s DIR\n", argv[0]);
      return 2;
   }
   snprintf(dir, sizeof dir, "%s", argv[1]);
   char base[PATH_LEN], kept[PATH_LEN], vm2[PATH_LEN], vm3[PATH_LEN], scratch[PATH_LEN];
   char go[PATH_LEN], ready[PATH_LEN];
   path_in(base, "mydisk.vmdk");
   path_in(kept, "mydisk.vmdk.REDO");
   path_in(vm2, "vm2/mydisk.vmdk.REDO_a01000");
   path_in(vm3, "vm3/mydisk.vmdk.REDO_c03000");
   path_in(scratch, "scratch");
   path_in(go, "go");
   have_qemu = system("qemu-img --version >/dev/null 2>&1") == 0;
   if (!have_qemu) {
      say("qemu-img not found: the in-program checks run, the qemu-img ones do not");
   }
   /* Nonpersistent redo logs go to $TMPDIR (no config file here): a directory we can check. */
   char sub[PATH_LEN];
   int ok = 1;
   for (int i = 2; i <= MACHINES; i++) {
      snprintf(sub, sizeof sub, "%s/vm%d", dir, i);
      ok = ok && (mkdir(sub, 0755) == 0 || errno == EEXIST);
   }
   ok = ok && (mkdir(scratch, 0755) == 0 || errno == EEXIST) && setenv("TMPDIR", scratch, 1) == 0;
   ok = ok && connect_lib();

   /* 1-2: the base machine, then an undoable session powered off at once and kept. */
   ok = ok && create_base(base);
   say("step 1: created mydisk.vmdk with the software installed (4 MiB of 0xb0)");
   ok = ok && redo_log(base, kept);
   say("step 2: undoable session: mydisk.vmdk.REDO created, powered off at once, Keep;"
       " machine 1 now uses the redo log as its disk");

   /* 3: protect the base. */
   ok = ok && chmod(base, 0444) == 0;
   say("step 3: chmod 0444 mydisk.vmdk");
   ok = ok && refused_with(VixDiskLibExt_Commit(conn, kept, NULL, NULL), VIX_E_FILE_READ_ONLY,
                           "committing mydisk.vmdk.REDO into the protected base");

   /* 4: two more machines with their own redo directories. */
   ok = ok && redo_log(base, vm2) && redo_log(base, vm3);
   say("step 4: machine 2 on vm2/mydisk.vmdk.REDO_a01000, machine 3 on"
       " vm3/mydisk.vmdk.REDO_c03000, both over mydisk.vmdk");
   uint64_t base_hash = file_hash(base), kept_hash = file_hash(kept);

   /* 5: run all three at once. */
   pid_t pids[MACHINES] = {0};
   for (int n = 1; ok && n <= MACHINES; n++) {
      pids[n - 1] = spawn_machine(n);
      ok = pids[n - 1] > 0;
   }
   for (int n = 1; ok && n <= MACHINES; n++) {
      snprintf(ready, sizeof ready, "%s/ready-%d", dir, n);
      wait_for(ready);
      ok = exists(ready);
   }
   if (ok) {
      say("step 5: all three machines are running on the same base");
      ok = refused_with(VixDiskLibExt_Commit(conn, kept, NULL, NULL), VIX_E_FILE_ALREADY_LOCKED,
                        "committing machine 1's redo log while it runs");
   }
   touch(go);
   for (int n = 1; n <= MACHINES; n++) {
      int status = 0;
      if (pids[n - 1] > 0 && (waitpid(pids[n - 1], &status, 0) != pids[n - 1] ||
                              !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
         fprintf(stderr, "[setup] FAILED: machine %d did not finish cleanly\n", n);
         ok = 0;
      }
   }

   /* 6: checks. */
   say("step 6: checking every disk");
   uint8_t *model = malloc(CAPACITY_SECTORS);
   const struct area *m2[] = {M2_OWN, M2_SESSION};
   const size_t m2n[] = {N(M2_OWN), N(M2_SESSION)};
   const struct area *m3[] = {M3_OWN};
   const size_t m3n[] = {N(M3_OWN)};
   ok = ok && model != NULL;
   if (ok && (file_hash(base) != base_hash || file_hash(kept) != kept_hash)) {
      fprintf(stderr, "[setup] FAILED: the base or machine 1's redo log changed\n");
      ok = 0;
   }
   if (ok) {
      build_model(model, NULL, NULL, 0);
      ok = disk_matches(base, model, "base") && disk_matches(kept, model, "machine 1") &&
           qemu_same(model, base, "the base holds only its own software") &&
           qemu_same(model, kept, "machine 1's disk reads as the base");
      build_model(model, m2, m2n, 2);
      ok = ok && disk_matches(vm2, model, "machine 2") &&
           qemu_same(model, vm2, "machine 2: base + own software + the committed session");
      build_model(model, m3, m3n, 1);
      ok = ok && disk_matches(vm3, model, "machine 3") &&
           qemu_same(model, vm3, "machine 3: base + own software, the session discarded");
   }
   const char *links[] = {base, kept, vm2, vm3};
   char label[PATH_LEN + 32];
   for (size_t i = 0; ok && i < N(links); i++) {
      snprintf(label, sizeof label, "check passes on %s", links[i] + strlen(dir) + 1);
      ok = qemu(label, "qemu-img check -q '%s'", links[i]);
   }
   if (ok && !dir_is_empty(scratch)) {
      fprintf(stderr, "[setup] FAILED: a nonpersistent scratch file was left in %s\n", scratch);
      ok = 0;
   }
   free(model);
   VixDiskLib_Disconnect(conn);
   VixDiskLib_Exit();
   printf(ok ? "shared_base: all checks passed\n" : "shared_base: FAILED\n");
   return ok ? 0 : 1;
}
