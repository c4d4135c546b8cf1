// oneDNN 2.x C API. Debian's libdnnl is built with OpenMP (libgomp): the thread count of the
// calling thread's parallel regions is set with omp_set_num_threads, which is a per-thread
// OpenMP ICV, so FaceRestore passes its thread count in rather than setting a process global.
#include <oneapi/dnnl/dnnl.h>

void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);

// libgomp's entry point for `#pragma omp parallel`: runs fn(data) on a team of num_threads
// threads (the caller is thread 0, omp_get_thread_num numbers them) and returns when all are
// done. FaceRestore's own row loops run on it, on the same worker threads as oneDNN's kernels:
// a second thread pool would compete with the OpenMP workers, which spin for a while after
// each primitive.
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned int flags);
int omp_get_thread_num(void);

// glibc <malloc.h> (not part of Swift's Glibc module): lets executables keep freed activation
// buffers in the heap instead of returning each one to the kernel (see ProcessTuning.swift).
#if defined(__GLIBC__)
int mallopt(int param, int value);
#endif
