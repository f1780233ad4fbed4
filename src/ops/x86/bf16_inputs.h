// Helpers of the kernel files that round inputs to bf16 (kernels_amx.cpp,
// kernels_avx512bf16.cpp), included only by them. Everything here has internal linkage,
// so each file gets its own copy compiled with its own flags: a shared inline function
// compiled with wider instruction sets could be linked into code that runs on any CPU.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ops/x86/thread_buffer.h"

namespace mambacpp {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// Rounds 16 f32 to bf16 (nearest, ties to even), into the low halves of 16 lanes. A NaN
// keeps its top half with the quiet bit set, as f32_to_bf16() does.
inline __m512i round_to_bf16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), rounded, quiet_nan);
}

// Rounds the `left` (1 to 32) floats at p to bf16 and returns them as 32 consecutive bf16,
// zero past `left`.
inline __m512i load_as_bf16(const float* p, int64_t left) {
  const __mmask16 lo_mask = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
  const __mmask16 hi_mask = left >= 32   ? 0xffff
                            : left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1)
                                        : 0;
  const __m512i lo = round_to_bf16(_mm512_maskz_loadu_ps(lo_mask, p));
  const __m512i hi = round_to_bf16(_mm512_maskz_loadu_ps(hi_mask, p + 16));
  // Word w of the result is word 2w of lo for w < 16 and word 2(w - 16) of hi after.
  return _mm512_permutex2var_epi16(
      lo, _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28, 26,
                           24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
      hi);
}

}  // namespace
}  // namespace mambacpp
