// EI_KERNEL_CLONES: compiles a hot kernel twice, for x86-64-v3 (AVX2 + FMA) and for the baseline,
// and lets the loader pick one by CPU (GCC target_clones / ifunc). The build targets baseline
// x86-64 (SSE2), which leaves half of the vector width of current x86 CPUs unused.
// Apply it to functions that process a whole plane or row, so the dispatch cost is amortized.
#pragma once

// A build may predefine it (e.g. empty, to test the baseline code under sanitizers).
#if defined(EI_KERNEL_CLONES)
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define EI_KERNEL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define EI_KERNEL_CLONES
#endif
