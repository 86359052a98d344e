/* Calls a VixDiskLibGenericLogFunc, which takes a va_list: stable Rust cannot build one. */
#include <stdarg.h>

typedef void (vdl_log_fn)(const char *fmt, va_list args);

static void vdl_call_va(vdl_log_fn *fn, const char *fmt, ...)
{
   va_list ap;
   va_start(ap, fmt);
   fn(fmt, ap);
   va_end(ap);
}

/* Passes `message` through a "%s" format so callers' vprintf never interprets it. */
void vixdisklib_call_log(vdl_log_fn *fn, const char *message)
{
   if (fn != 0 && message != 0) {
      vdl_call_va(fn, "%s", message);
   }
}
