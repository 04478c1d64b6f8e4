// A CUDA injection library that writes every kernel and memory copy the process runs on the GPU,
// with CUPTI's GPU timestamps, to a text file: onnxruntime's own profiler times CUDA nodes on the
// host (when they are queued), which says nothing about where the GPU's time goes.
//   CUDA_INJECTION64_PATH=kernel-trace.so CUPTI_LIB=/path/libcupti.so.13 KERNEL_TRACE_OUT=trace.tsv node …
// Lines: "K start end stream name" and "M start end copyKind bytes" (tab-separated, ns).
// bench/cupti/summarize.py reads them. The few CUPTI declarations are written out here so the
// library builds without CUDA's headers: kernel and memcpy records have kept these offsets in
// every record version since CUDA 8 (start and end at 16 and 24, the kernel's name at 104).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUptiResult;
typedef struct { uint32_t kind; } CUpti_Activity;
typedef void (*BufferRequested)(uint8_t **buffer, size_t *size, size_t *maxNumRecords);
typedef void (*BufferCompleted)(void *ctx, uint32_t streamId, uint8_t *buffer, size_t size, size_t validSize);

enum { KIND_MEMCPY = 1, KIND_KERNEL = 3, KIND_CONCURRENT_KERNEL = 10 };
static CUptiResult (*activityEnable)(int);
static CUptiResult (*registerCallbacks)(BufferRequested, BufferCompleted);
static CUptiResult (*getNextRecord)(uint8_t *, size_t, CUpti_Activity **);
static CUptiResult (*flushAll)(uint32_t);
static FILE *out;

#define BUFFER_BYTES (16u << 20)

static void requested(uint8_t **buffer, size_t *size, size_t *maxNumRecords) {
  *buffer = aligned_alloc(8, BUFFER_BYTES);
  *size = BUFFER_BYTES;
  *maxNumRecords = 0;
}

static void completed(void *ctx, uint32_t streamId, uint8_t *buffer, size_t size, size_t validSize) {
  (void)ctx; (void)streamId; (void)size;
  CUpti_Activity *r = NULL;
  while (getNextRecord(buffer, validSize, &r) == 0) {
    const uint8_t *p = (const uint8_t *)r;
    uint64_t start = *(const uint64_t *)(p + 16), end = *(const uint64_t *)(p + 24);
    if (r->kind == KIND_CONCURRENT_KERNEL || r->kind == KIND_KERNEL)
      fprintf(out, "K\t%llu\t%llu\t%u\t%s\n", (unsigned long long)start, (unsigned long long)end,
              *(const uint32_t *)(p + 48), *(const char *const *)(p + 104));
    else if (r->kind == KIND_MEMCPY)
      fprintf(out, "M\t%llu\t%llu\t%u\t%llu\n", (unsigned long long)start, (unsigned long long)end,
              (unsigned)p[4], (unsigned long long)*(const uint64_t *)(p + 8));
  }
  free(buffer);
}

static void finish(void) {
  if (flushAll) flushAll(1);
  if (out) fclose(out), out = NULL;
}

int InitializeInjection(void) {
  const char *lib = getenv("CUPTI_LIB"), *path = getenv("KERNEL_TRACE_OUT");
  void *h = dlopen(lib ? lib : "libcupti.so", RTLD_NOW | RTLD_GLOBAL);
  if (!h) { fprintf(stderr, "kernel-trace: %s\n", dlerror()); return 0; }
  activityEnable = dlsym(h, "cuptiActivityEnable");
  registerCallbacks = dlsym(h, "cuptiActivityRegisterCallbacks");
  getNextRecord = dlsym(h, "cuptiActivityGetNextRecord");
  flushAll = dlsym(h, "cuptiActivityFlushAll");
  if (!activityEnable || !registerCallbacks || !getNextRecord || !flushAll) { fprintf(stderr, "kernel-trace: CUPTI symbols missing\n"); return 0; }
  out = fopen(path ? path : "kernel-trace.tsv", "w");
  if (!out) { perror("kernel-trace"); return 0; }
  setvbuf(out, NULL, _IOFBF, 1 << 20);
  int rc = registerCallbacks(requested, completed);
  rc |= activityEnable(KIND_CONCURRENT_KERNEL);
  rc |= activityEnable(KIND_MEMCPY);
  if (rc) fprintf(stderr, "kernel-trace: CUPTI refused (%d)\n", rc);
  atexit(finish);
  return 1;
}
