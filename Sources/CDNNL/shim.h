// oneDNN 2.x C API. Debian's libdnnl is built with OpenMP (libgomp): the thread count of the
// calling thread's parallel regions is set with omp_set_num_threads, which is a per-thread
// OpenMP ICV, so FaceRestore passes its thread count in rather than setting a process global.
#include <oneapi/dnnl/dnnl.h>

void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
