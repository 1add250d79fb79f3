#ifndef CFUZZ_H
#define CFUZZ_H
#include <stddef.h>
#include <stdint.h>

typedef int (*cfuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer's driver when the binary is linked with -sanitize=fuzzer; otherwise
/// feeds each file named on the command line to the callback once (a regression runner).
int cfuzz_run(int *argc, char ***argv, cfuzz_callback callback);
#endif
