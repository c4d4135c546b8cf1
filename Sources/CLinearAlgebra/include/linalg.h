#ifndef FR_LINALG_H
#define FR_LINALG_H
#include <stddef.h>

/* Double-precision dense linear algebra through the system LAPACK/BLAS (Debian's OpenBLAS,
   libopenblas-dev, which exports the reference LAPACK interface). Matrices are column-major as
   LAPACK sees them; for the symmetric matrices used here the order does not matter.
   Every function returns LAPACK's `info` (0 on success) or -1000 when memory ran out. */

/* Eigen-decomposition of the symmetric n×n `a` (dsyevd, lower triangle): eigenvalues ascending in
   `w`; with `vectors` non-zero, `a` is overwritten with the orthonormal eigenvectors (columns). */
int fr_symmetric_eigen(int n, double *a, double *w, int vectors);

/* c = alpha·op(a)·op(b) + beta·c for n×n matrices (dgemm, column-major); trans_a/trans_b: 0 or 1. */
void fr_gemm_square(int n, int trans_a, int trans_b, double alpha, const double *a, const double *b, double beta, double *c);

#endif
