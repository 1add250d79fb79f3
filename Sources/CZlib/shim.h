#include <zlib.h>

/* deflateInit2/inflateInit2 are macros. Raw deflate (negative window bits), as
   COMPRESS=DEFLATE (RFC 4978) requires. */
static inline int czlib_deflate_init_raw(z_stream *s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}
static inline int czlib_inflate_init_raw(z_stream *s) {
    return inflateInit2(s, -15);
}
