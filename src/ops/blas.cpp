#include "ops/blas.h"

#include <cblas.h>

#include <cstdlib>
#include <cstring>

// OpenBLAS builds that pick their kernels at run time (Debian's do) export these. In
// other builds the weak references are null.
extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace mambacpp {

namespace {

// OpenBLAS picks its kernels from the CPU model when it loads. A model newer than the
// library gets its SSE3-only "Prescott" kernels, as OpenBLAS 0.3.21 does on Intel's Emerald
// Rapids (family 6 model 207). There mamba-130m prefilled 512 tokens at 175-235 tokens/s,
// and at 530-750 with OpenBLAS's AVX-512 kernels. In that case this picks the kernels by the
// vector units the CPU reports, as OPENBLAS_CORETYPE would. A user's own OPENBLAS_CORETYPE
// is left alone.
const char* core_for_this_cpu() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

void replace_fallback_kernels() {
  if (gotoblas_dynamic_init == nullptr || gotoblas_dynamic_quit == nullptr) return;
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* detected = openblas_get_corename();
  if (detected == nullptr || std::strcmp(detected, "Prescott") != 0) return;
  const char* core = core_for_this_cpu();
  if (core == nullptr) return;

  setenv("OPENBLAS_CORETYPE", core, 0);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

void prepare_blas() {
  static const bool done = [] {
    replace_fallback_kernels();
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

}  // namespace mambacpp
