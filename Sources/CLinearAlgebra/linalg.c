// Thin wrappers over the Fortran LAPACK/BLAS symbols (hidden character-length arguments passed
// explicitly, as gfortran's calling convention has them), so Swift calls plain C functions.
#include "linalg.h"
#include <stdlib.h>

extern void dgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                   const double *alpha, const double *a, const int *lda, const double *b, const int *ldb,
                   const double *beta, double *c, const int *ldc, size_t transa_len, size_t transb_len);

extern void dsyevd_2stage_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                           double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                           size_t jobz_len, size_t uplo_len);
extern void dpstrf_(const char *uplo, const int *n, double *a, const int *lda, int *piv, int *rank, const double *tol,
                    double *work, int *info, size_t uplo_len);

int fr_symmetric_eigenvalues(int n, double *a, double *w) {
    const char jobz = 'N', uplo = 'L';
    int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    dsyevd_2stage_(&jobz, &uplo, &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    if (info != 0) return info;
    lwork = (int)work_query + 1;
    liwork = iwork_query + 1;
    double *work = malloc(sizeof(double) * (size_t)lwork);
    int *iwork = malloc(sizeof(int) * (size_t)liwork);
    if (!work || !iwork) { free(work); free(iwork); return -1000; }
    dsyevd_2stage_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    return info;
}

int fr_pivoted_cholesky(int n, double *a, int *piv, int *rank) {
    const char uplo = 'L';
    const double tol = -1;
    int info = 0;
    double *work = malloc(sizeof(double) * 2 * (size_t)(n > 0 ? n : 1));
    if (!work) return -1000;
    dpstrf_(&uplo, &n, a, &n, piv, rank, &tol, work, &info, 1);
    free(work);
    return info;
}

void fr_gemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
             const double *b, int ldb, double beta, double *c, int ldc) {
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    dgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
}
