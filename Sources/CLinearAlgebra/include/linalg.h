#ifndef FR_LINALG_H
#define FR_LINALG_H
#include <stddef.h>

/* Double-precision dense linear algebra through the system OpenBLAS (Debian libopenblas0, which
   exports the reference LAPACK interface), loaded on first use. Matrices are column-major as
   LAPACK sees them. Functions return LAPACK's `info` (0 on success), -1000 when memory ran out,
   or FR_LINALG_UNAVAILABLE when libopenblas.so.0 could not be loaded. */
#define FR_LINALG_UNAVAILABLE (-2000)

/* 1 when OpenBLAS is loaded (loading it on the first call), else 0. */
int fr_linear_algebra_available(void);

/* Eigenvalues only (ascending, in `w`) of the symmetric n×n `a` (lower triangle, destroyed):
   dsyevd_2stage, whose two-stage tridiagonal reduction is mostly matrix-matrix work. */
int fr_symmetric_eigenvalues(int n, double *a, double *w);

/* Pivoted Cholesky of the symmetric positive semi-definite n×n `a` (dpstrf, lower, LAPACK's
   default tolerance n·eps·max aᵢᵢ): Pᵀ·A·P = L·Lᵀ with L in the lower triangle of `a`'s first
   `*rank` columns (the rest of `a` is not meaningful), P(piv[k]−1, k) = 1. Returns 0, or 1 when
   the rank is below n (not an error), or a negative value. */
int fr_pivoted_cholesky(int n, double *a, int *piv, int *rank);

/* c = alpha·op(a)·op(b) + beta·c (dgemm, column-major): op(a) m×k, op(b) k×n, c m×n;
   trans_a/trans_b: 0 or 1. */
int fr_gemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
            const double *b, int ldb, double beta, double *c, int ldc);

#endif
