#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>

/* res_query is a macro for __res_query in glibc: Swift cannot call it directly. */
static inline int cresolv_query(const char *name, int type, unsigned char *answer, int length) {
    return res_query(name, ns_c_in, type, answer, length);
}
