#include "cfuzz.h"
#include <stdio.h>
#include <stdlib.h>

/* SwiftPM renames an executable's main, so libFuzzer's own main never runs: its driver is
   called explicitly. Declared weak so that a normal build links without libFuzzer. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t)) __attribute__((weak));

int cfuzz_run(int *argc, char ***argv, cfuzz_callback callback) {
    if (LLVMFuzzerRunDriver) return LLVMFuzzerRunDriver(argc, argv, callback);
    for (int i = 1; i < *argc; i++) {
        FILE *f = fopen((*argv)[i], "rb");
        if (!f) { perror((*argv)[i]); return 1; }
        unsigned char *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        callback(buf, n);
        free(buf);
    }
    return 0;
}
