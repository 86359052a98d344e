/*
 * bench_common.h - helpers shared by the benchmark programs (seqio.c,
 * chain_read.c, clone.c).  Header only: every helper is static inline.
 *
 * Each program passes its own name (PROG) so that messages keep their
 * prefix, e.g. "seqio: Open: error ...".
 *
 * Needs POSIX (clock_gettime, posix_memalign in the programs): a program
 * that includes a system header before this one must define
 * _POSIX_C_SOURCE 200809L itself, first.
 */

#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vixDiskLib.h"

/* Log callbacks for InitEx: drop the library's log, show warnings and panics. */
static inline void
bench_quiet(const char *fmt, va_list args)
{
   (void)fmt;
   (void)args;
}

static inline void
bench_to_stderr(const char *fmt, va_list args)
{
   vfprintf(stderr, fmt, args);
}

/* Monotonic clock, in seconds. */
static inline double
bench_now(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 0 if err is VIX_OK; otherwise prints "PROG: WHAT: error N (text)" and returns 1. */
static inline int
bench_failed(const char *prog, VixError err, const char *what)
{
   char *text;

   if (err == VIX_OK) {
      return 0;
   }
   text = VixDiskLib_GetErrorText(err, NULL);
   fprintf(stderr, "%s: %s: error %lu (%s)\n", prog, what, (unsigned long)VIX_ERROR_CODE(err),
           text ? text : "?");
   VixDiskLib_FreeErrorText(text);
   return 1;
}

/* A positive decimal argument; anything else prints "PROG: bad WHAT: S" and exits 2. */
static inline unsigned long
bench_number(const char *prog, const char *s, const char *what)
{
   char *end;
   unsigned long v = strtoul(s, &end, 10);

   if (*end != '\0' || v == 0) {
      fprintf(stderr, "%s: bad %s: %s\n", prog, what, s);
      exit(2);
   }
   return v;
}

/* Create parameters used by every benchmark: lsilogic, hw version 7 (ESX4X). */
static inline void
bench_create_params(VixDiskLibCreateParams *cp, VixDiskLibDiskType type, unsigned long cap_mib)
{
   memset(cp, 0, sizeof *cp);
   cp->diskType = type;
   cp->adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
   cp->hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
   cp->capacity = (VixDiskLibSectorType)cap_mib * 2048;
}

/* Create a new monolithic sparse disk of CAP_MIB MiB at PATH; 0 on success. */
static inline int
bench_create_disk(const char *prog, VixDiskLibConnection conn, const char *path,
                  unsigned long cap_mib)
{
   VixDiskLibCreateParams cp;

   bench_create_params(&cp, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, cap_mib);
   return bench_failed(prog, VixDiskLib_Create(conn, path, &cp, NULL, NULL), "Create");
}

/*
 * AllocateConnectParams, InitEx (6.5) with CONFIG (a config file path, or
 * NULL for none) and a local ConnectEx; 0 on success.
 */
static inline int
bench_connect_config(const char *prog, const char *config, VixDiskLibConnectParams **params,
                     VixDiskLibConnection *conn)
{
   *params = VixDiskLib_AllocateConnectParams();
   if (*params == NULL) {
      fprintf(stderr, "%s: AllocateConnectParams failed\n", prog);
      return 1;
   }
   if (bench_failed(prog,
                    VixDiskLib_InitEx(6, 5, bench_quiet, bench_to_stderr, bench_to_stderr, NULL,
                                      config),
                    "InitEx") ||
       bench_failed(prog, VixDiskLib_ConnectEx(*params, FALSE, NULL, NULL, conn), "ConnectEx")) {
      return 1;
   }
   return 0;
}

/* bench_connect_config without a config file. */
static inline int
bench_connect(const char *prog, VixDiskLibConnectParams **params, VixDiskLibConnection *conn)
{
   return bench_connect_config(prog, NULL, params, conn);
}

/* Undo bench_connect. */
static inline void
bench_disconnect(VixDiskLibConnectParams *params, VixDiskLibConnection conn)
{
   VixDiskLib_Disconnect(conn);
   VixDiskLib_FreeConnectParams(params);
   VixDiskLib_Exit();
}

#endif /* BENCH_COMMON_H */
