/*
 * vm_basic_types.h: the basic type names VixDiskLib clients use, for vixdisklib (an open
 * implementation of the VixDiskLib API for hosted VMDK disks). Written for this project.
 */
#ifndef _VM_BASIC_TYPES_H_
#define _VM_BASIC_TYPES_H_

#include <stdint.h>
#include <stddef.h>

typedef uint8_t uint8;
typedef uint16_t uint16;
typedef uint32_t uint32;
typedef uint64_t uint64;
typedef int8_t int8;
typedef int16_t int16;
typedef int32_t int32;
typedef int64_t int64;

/* VMware's boolean is one byte. */
typedef char Bool;
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* printf length modifiers: "%"FMT64"u" for uint64, "%"FMTSZ"u" for size_t (x86-64 Linux). */
#ifndef FMT64
#define FMT64 "l"
#endif
#ifndef FMTSZ
#define FMTSZ "z"
#endif

#endif /* _VM_BASIC_TYPES_H_ */
