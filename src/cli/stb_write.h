/*
 * stb_write.h - stb_image_write.h (libstb-dev) without the warnings its
 * declarations raise under our flags (-Wshadow, -Wstrict-prototypes).
 * The implementation is in Debian's libstb; link with -lstb.
 */
#ifndef NN_STB_WRITE_H
#define NN_STB_WRITE_H

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif
