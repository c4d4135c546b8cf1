// Measures this core's fp32 FMA throughput (for benchmark "% of peak" figures).
#include <stdint.h>
/// Runs `iterations` rounds of 24 independent 16-lane FMAs; returns a value so nothing is elided.
float cpeak_fma_avx512(int64_t iterations);
/// 1 if the CPU supports AVX-512F.
int cpeak_has_avx512(void);
