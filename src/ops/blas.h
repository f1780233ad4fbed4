#pragma once

namespace mambacpp {

// Prepares OpenBLAS: call before each use (only the first call does work, and any thread
// may call it). It makes OpenBLAS single-threaded, because every sgemm here runs inside a
// pool thread on its own slice, and makes it use kernels for this CPU's vector units
// when it did not recognize the CPU (see blas.cpp).
void prepare_blas();

}  // namespace mambacpp
