// Thin wrappers over the Fortran LAPACK/BLAS symbols (hidden character-length arguments passed
// explicitly, as gfortran's calling convention has them), so Swift calls plain C functions.
#include "linalg.h"
#include <stdlib.h>

extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                    size_t jobz_len, size_t uplo_len);
extern void dgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                   const double *alpha, const double *a, const int *lda, const double *b, const int *ldb,
                   const double *beta, double *c, const int *ldc, size_t transa_len, size_t transb_len);

int fr_symmetric_eigen(int n, double *a, double *w, int vectors) {
    const char jobz = vectors ? 'V' : 'N', uplo = 'L';
    int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    dsyevd_(&jobz, &uplo, &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    if (info != 0) return info;
    lwork = (int)work_query + 1;
    liwork = iwork_query + 1;
    double *work = malloc(sizeof(double) * (size_t)lwork);
    int *iwork = malloc(sizeof(int) * (size_t)liwork);
    if (!work || !iwork) { free(work); free(iwork); return -1000; }
    dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    return info;
}

void fr_gemm_square(int n, int trans_a, int trans_b, double alpha, const double *a, const double *b, double beta, double *c) {
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    dgemm_(&ta, &tb, &n, &n, &n, &alpha, a, &n, b, &n, &beta, c, &n, 1, 1);
}
