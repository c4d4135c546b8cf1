// Thin wrappers over the Fortran LAPACK/BLAS symbols of the system OpenBLAS (hidden
// character-length arguments passed explicitly, as gfortran's calling convention has them), so
// Swift calls plain C functions.
//
// The library is loaded on first use (dlopen), not linked: Debian's OpenBLAS 0.3.21 is built with
// DYNAMIC_ARCH and picks its kernels from OPENBLAS_CORETYPE or, failing that, its own CPU
// detection, once, when it is loaded; on CPUs that detection does not recognise (virtual machines
// reporting a generic "Intel Xeon Processor") it falls back to Prescott (SSE3) kernels, 4× slower
// at FID's 2048² products than its AVX-512 ones. Unless the user set OPENBLAS_CORETYPE, it is set
// from the CPU's features before loading: SkylakeX with AVX-512 F/DQ/BW/VL, Haswell with AVX2 and
// FMA, otherwise left to OpenBLAS. It runs on one thread unless OPENBLAS_NUM_THREADS or
// OMP_NUM_THREADS is set (see `load`).
#include "linalg.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

typedef void (*dgemm_fn)(const char *, const char *, const int *, const int *, const int *, const double *, const double *,
                         const int *, const double *, const int *, const double *, double *, const int *, size_t, size_t);
typedef void (*dsyevd_2stage_fn)(const char *, const char *, const int *, double *, const int *, double *, double *,
                                 const int *, int *, const int *, int *, size_t, size_t);
typedef void (*dpstrf_fn)(const char *, const int *, double *, const int *, int *, int *, const double *, double *, int *, size_t);

static dgemm_fn p_dgemm;
static dsyevd_2stage_fn p_dsyevd_2stage;
static dpstrf_fn p_dpstrf;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void) {
    if (!getenv("OPENBLAS_CORETYPE")) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl")) {
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
        } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            setenv("OPENBLAS_CORETYPE", "Haswell", 0);
        }
    }
    const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    for (int i = 0; i < 2; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        dgemm_fn g = (dgemm_fn)dlsym(h, "dgemm_");
        dsyevd_2stage_fn e = (dsyevd_2stage_fn)dlsym(h, "dsyevd_2stage_");
        dpstrf_fn c = (dpstrf_fn)dlsym(h, "dpstrf_");
        if (g && e && c) {
            // One thread unless the user says otherwise: OpenBLAS's worker threads spin at their
            // barriers, and where cores are shared the two-stage reduction took 13–76 s instead of
            // 2 s single-threaded (2 vCPUs, load ≈ 10); FID runs once per evaluation.
            void (*set_threads)(int) = (void (*)(int))dlsym(h, "openblas_set_num_threads");
            if (set_threads && !getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS")) set_threads(1);
            p_dgemm = g; p_dsyevd_2stage = e; p_dpstrf = c;
            return;
        }
        dlclose(h);
    }
}

int fr_linear_algebra_available(void) {
    pthread_once(&load_once, load);
    return p_dgemm != NULL;
}

int fr_symmetric_eigenvalues(int n, double *a, double *w) {
    if (!fr_linear_algebra_available()) return FR_LINALG_UNAVAILABLE;
    const char jobz = 'N', uplo = 'L';
    int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    p_dsyevd_2stage(&jobz, &uplo, &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    if (info != 0) return info;
    if (!(work_query >= 0 && work_query < 2147483000.0) || iwork_query < 0 || iwork_query > 2147483000) return -1000;
    lwork = (int)work_query + 1;
    liwork = iwork_query + 1;
    double *work = malloc(sizeof(double) * (size_t)lwork);
    int *iwork = malloc(sizeof(int) * (size_t)liwork);
    if (!work || !iwork) { free(work); free(iwork); return -1000; }
    p_dsyevd_2stage(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    return info;
}

int fr_pivoted_cholesky(int n, double *a, int *piv, int *rank) {
    if (!fr_linear_algebra_available()) return FR_LINALG_UNAVAILABLE;
    const char uplo = 'L';
    const double tol = -1;
    int info = 0;
    double *work = malloc(sizeof(double) * 2 * (size_t)(n > 0 ? n : 1));
    if (!work) return -1000;
    p_dpstrf(&uplo, &n, a, &n, piv, rank, &tol, work, &info, 1);
    free(work);
    return info;
}

int fr_gemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
            const double *b, int ldb, double beta, double *c, int ldc) {
    if (!fr_linear_algebra_available()) return FR_LINALG_UNAVAILABLE;
    const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    p_dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
    return 0;
}
