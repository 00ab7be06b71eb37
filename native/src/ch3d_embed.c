/* ch3d_embed.c -- the C API of ch3d_embed.h over onnxruntime's C API (version 21).
 *
 * One session per handle; six float32 state buffers (phi, h1, h2 and their successors) owned by the
 * handle and wrapped as onnxruntime tensors, swapped after each step (no allocation per step). The
 * "ch3d" metadata JSON is parsed here (top-level entries; nested objects skipped) and checked as
 * export/runtime/spec.py check_metadata does. Nothing here throws or aborts: every onnxruntime
 * status is turned into a code and a one-line, thread-local message.
 */
#define _POSIX_C_SOURCE 200809L
#include "ch3d_embed.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <onnxruntime_c_api.h>

#define CH3D_ORT_API 21
#ifndef CH3D_ORT_LIB_DEFAULT /* the library found at build time (tools/ort_headers.sh), -D by native/Makefile */
#define CH3D_ORT_LIB_DEFAULT "libonnxruntime.so.1"
#endif
#define MAX_ENTRIES 128

static _Thread_local char last_error[512];

static int fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  for (char *p = last_error; *p; ++p)  /* one line */
    if (*p == '\n' || *p == '\r') *p = ' ';
  return code;
}

const char *ch3d_last_error(void) { return last_error; }

const char *ch3d_status_name(int s) {
  switch (s) {
    case CH3D_OK: return "ok";
    case CH3D_ERR_ARGUMENT: return "bad argument";
    case CH3D_ERR_MODEL: return "not a ch3d step model";
    case CH3D_ERR_ORT_TOO_OLD: return "onnxruntime too old";
    case CH3D_ERR_PROVIDER: return "provider unavailable";
    case CH3D_ERR_NONFINITE: return "NaN or Inf in input";
    case CH3D_ERR_GRID: return "grid too small";
    case CH3D_ERR_STATE: return "grid or batch differs from the running state";
    case CH3D_ERR_HALO: return "bad halo";
    case CH3D_ERR_RUNTIME: return "onnxruntime error";
    case CH3D_ERR_MEMORY: return "out of memory";
    case CH3D_ERR_ORT_MISSING: return "onnxruntime not found";
    default: return "unknown status";
  }
}

/* ------------------------------------------------------------------ onnxruntime, loaded once
 * dlopen'ed, not linked: the wheel's library versions its symbols (OrtGetApiBase@VERS_1.32.0), so a
 * linked libch3d_embed.so would refuse to load with any other onnxruntime; loaded at run time it takes
 * any library with C API >= 21 and says in one line when the library is missing or too old.
 * $CH3D_ORT_LIB names another library; default: the one found at build time. */
typedef const OrtApiBase *(*get_api_base_fn)(void);
static pthread_once_t ort_once = PTHREAD_ONCE_INIT;
static const OrtApiBase *ort_base;
static char ort_problem[1024];

static void load_ort(void) {
  const char *path = getenv("CH3D_ORT_LIB");
  if (!path || !*path) path = CH3D_ORT_LIB_DEFAULT;
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib && !getenv("CH3D_ORT_LIB")) { /* the build's library moved away: the loader's search path */
    char first[200];
    snprintf(first, sizeof first, "%s", dlerror());
    lib = dlopen("libonnxruntime.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      snprintf(ort_problem, sizeof ort_problem,
               "cannot load onnxruntime %s (%s) nor libonnxruntime.so.1; set CH3D_ORT_LIB to a libonnxruntime.so.1.* "
               "(onnxruntime >= 1.21)",
               path, first);
      return;
    }
  }
  if (!lib) {
    snprintf(ort_problem, sizeof ort_problem, "cannot load onnxruntime %s (%s); set CH3D_ORT_LIB to a libonnxruntime.so.1.* (onnxruntime >= 1.21)", path, dlerror());
    return;
  }
  get_api_base_fn get = (get_api_base_fn)dlsym(lib, "OrtGetApiBase");
  ort_base = get ? get() : NULL;
  if (!ort_base) snprintf(ort_problem, sizeof ort_problem, "%s has no OrtGetApiBase: not an onnxruntime library", path);
}

/* ------------------------------------------------------------------ metadata JSON (top level) */
typedef struct {
  char key[48];
  double value;
  int is_int; /* written without '.', 'e' */
  int is_bool;
  int is_string;
  char text[32]; /* a string value (first 31 bytes) */
} entry;

typedef struct {
  const char *p, *end;
} scanner;

static void skip_ws(scanner *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* a JSON string at s->p; copies up to cap-1 bytes (escapes kept raw) into buf if buf != NULL */
static int scan_string(scanner *s, char *buf, size_t cap) {
  size_t n = 0;
  if (s->p >= s->end || *s->p != '"') return 0;
  s->p++;
  while (s->p < s->end && *s->p != '"') {
    if (*s->p == '\\') {
      s->p++;
      if (s->p >= s->end) return 0;
    }
    if (buf && n + 1 < cap) buf[n++] = *s->p;
    s->p++;
  }
  if (s->p >= s->end) return 0;
  s->p++;
  if (buf) buf[n] = 0;
  return 1;
}

static int skip_value(scanner *s, int depth) {
  skip_ws(s);
  if (s->p >= s->end || depth > 64) return 0;
  char c = *s->p;
  if (c == '"') return scan_string(s, NULL, 0);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
      s->p++;
      return 1;
    }
    for (;;) {
      if (c == '{') {
        skip_ws(s);
        if (!scan_string(s, NULL, 0)) return 0;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') return 0;
        s->p++;
      }
      if (!skip_value(s, depth + 1)) return 0;
      skip_ws(s);
      if (s->p >= s->end) return 0;
      if (*s->p == ',') {
        s->p++;
        continue;
      }
      if (*s->p == close) {
        s->p++;
        return 1;
      }
      return 0;
    }
  }
  while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' && *s->p != '\n') s->p++;
  return 1;
}

/* parse the top-level object; numeric and boolean entries go to out[]; returns count or -1 */
static int parse_metadata(const char *json, entry *out, int cap) {
  scanner s = {json, json + strlen(json)};
  int n = 0;
  skip_ws(&s);
  if (s.p >= s.end || *s.p != '{') return -1;
  s.p++;
  skip_ws(&s);
  if (s.p < s.end && *s.p == '}') return 0;
  for (;;) {
    char key[48];
    skip_ws(&s);
    if (!scan_string(&s, key, sizeof key)) return -1;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != ':') return -1;
    s.p++;
    skip_ws(&s);
    const char *start = s.p;
    if (!skip_value(&s, 0)) return -1;
    if (n < cap && start < s.end) {
      entry *e = &out[n];
      size_t len = (size_t)(s.p - start);
      if (len == 4 && !strncmp(start, "true", 4)) {
        *e = (entry){.value = 1, .is_bool = 1};
      } else if (len == 5 && !strncmp(start, "false", 5)) {
        *e = (entry){.value = 0, .is_bool = 1};
      } else if (*start == '"') {
        scanner t = {start, s.p};
        *e = (entry){.is_string = 1, .value = NAN};
        scan_string(&t, e->text, sizeof e->text);
      } else if (*start == '-' || (*start >= '0' && *start <= '9')) {
        char num[64], *endp;
        if (len >= sizeof num) len = sizeof num - 1;
        memcpy(num, start, len);
        num[len] = 0;
        *e = (entry){.value = strtod(num, &endp)};
        e->is_int = strpbrk(num, ".eE") == NULL;
      } else {
        e = NULL;
      }
      if (e) {
        snprintf(e->key, sizeof e->key, "%s", key);
        n++;
      }
    }
    skip_ws(&s);
    if (s.p < s.end && *s.p == ',') {
      s.p++;
      continue;
    }
    if (s.p < s.end && *s.p == '}') return n;
    return -1;
  }
}

/* ------------------------------------------------------------------ the handle */
struct ch3d_handle {
  const OrtApi *api;
  OrtEnv *env;
  OrtSession *session;
  OrtMemoryInfo *mem;
  char *json;
  entry meta[MAX_ENTRIES];
  int n_meta;
  int64_t hidden, downscale, kernel, min_grid, halo;
  int conservative;
  double time_per_step;
  char device[16];
  /* running state */
  int64_t shape[4]; /* n, nx, ny, nz; shape[0] == 0: no state */
  float *buf[6];    /* phi, h1, h2, phi', h1', h2' */
  OrtValue *val[6];
  int cur; /* 0: inputs are buf[0..2]; 3: inputs are buf[3..5] */
  int64_t steps_done;
};

static const char *IN_NAMES[3] = {"phi", "h1", "h2"};
static const char *OUT_NAMES[3] = {"phi_next", "h1_next", "h2_next"};

/* take an OrtStatus: NULL -> CH3D_OK, else code with "what: message" */
static int ort_fail(const OrtApi *api, OrtStatus *st, int code, const char *what) {
  if (!st) return CH3D_OK;
  const char *msg = api->GetErrorMessage(st);
  char first[320];
  snprintf(first, sizeof first, "%s", msg ? msg : "");
  first[strcspn(first, "\n")] = 0;
  fail(code, "%s (%s)", what, first);
  api->ReleaseStatus(st);
  return code;
}

static const entry *find(const ch3d_handle *h, const char *key) {
  for (int i = 0; i < h->n_meta; ++i)
    if (!strcmp(h->meta[i].key, key)) return &h->meta[i];
  return NULL;
}

static void free_state(ch3d_handle *h) {
  for (int i = 0; i < 6; ++i) {
    if (h->val[i]) h->api->ReleaseValue(h->val[i]);
    free(h->buf[i]);
    h->val[i] = NULL;
    h->buf[i] = NULL;
  }
  h->shape[0] = 0;
  h->cur = 0;
  h->steps_done = 0;
}

void ch3d_close(ch3d_handle *h) {
  if (!h) return;
  free_state(h);
  if (h->mem) h->api->ReleaseMemoryInfo(h->mem);
  if (h->session) h->api->ReleaseSession(h->session);
  if (h->env) h->api->ReleaseEnv(h->env);
  free(h->json);
  free(h);
}

/* the signature check of export/runtime/session.py _check_signature */
static int check_signature(ch3d_handle *h, const char *path) {
  const OrtApi *api = h->api;
  OrtAllocator *alloc = NULL;
  size_t nin = 0, nout = 0;
  int code;
  if ((code = ort_fail(api, api->GetAllocatorWithDefaultOptions(&alloc), CH3D_ERR_RUNTIME, "allocator"))) return code;
  if ((code = ort_fail(api, api->SessionGetInputCount(h->session, &nin), CH3D_ERR_MODEL, path))) return code;
  if ((code = ort_fail(api, api->SessionGetOutputCount(h->session, &nout), CH3D_ERR_MODEL, path))) return code;
  char got_in[200] = "", got_out[200] = "";
  int found_in = 0, found_out = 0, bad_type = 0;
  int64_t hch[2] = {-1, -1}, phich = -1;
  for (int pass = 0; pass < 2; ++pass) {
    size_t count = pass ? nout : nin;
    for (size_t i = 0; i < count; ++i) {
      char *name = NULL;
      OrtStatus *st = pass ? api->SessionGetOutputName(h->session, i, alloc, &name)
                           : api->SessionGetInputName(h->session, i, alloc, &name);
      if ((code = ort_fail(api, st, CH3D_ERR_MODEL, path))) return code;
      char *got = pass ? got_out : got_in;
      if (strlen(got) + strlen(name) + 3 < sizeof got_in) {
        if (*got) strcat(got, ", ");
        strcat(got, name);
      }
      const char **names = pass ? OUT_NAMES : IN_NAMES;
      for (int k = 0; k < 3; ++k) {
        if (strcmp(name, names[k])) continue;
        if (pass) {
          found_out |= 1 << k;
        } else {
          found_in |= 1 << k;
          OrtTypeInfo *ti = NULL;
          const OrtTensorTypeAndShapeInfo *tsi = NULL;
          ONNXTensorElementDataType et = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
          size_t nd = 0;
          int64_t dims[8] = {0};
          if (!api->SessionGetInputTypeInfo(h->session, i, &ti) && !api->CastTypeInfoToTensorInfo(ti, &tsi) && tsi &&
              !api->GetTensorElementType(tsi, &et) && !api->GetDimensionsCount(tsi, &nd) && nd == 5 &&
              !api->GetDimensions(tsi, dims, 5)) {
            if (k == 0) phich = dims[1];
            else hch[k - 1] = dims[1];
          }
          if (et != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT || nd != 5) bad_type = 1;
          if (ti) api->ReleaseTypeInfo(ti);
        }
      }
      alloc->Free(alloc, name);
    }
  }
  if (found_in != 7 || found_out != 7 || nin != 3 || nout != 3)
    return fail(CH3D_ERR_MODEL,
                "%s is not a ch3d CRNN step: expected inputs phi, h1, h2 and outputs phi_next, h1_next, h2_next, got "
                "inputs %s and outputs %s",
                path, *got_in ? got_in : "none", *got_out ? got_out : "none");
  if (bad_type) return fail(CH3D_ERR_MODEL, "%s: inputs must be float32 tensors (N, C, X, Y, Z)", path);
  if (phich != 1) return fail(CH3D_ERR_MODEL, "%s: input phi has %lld channels, expected 1", path, (long long)phich);
  if (hch[0] < 1 || hch[0] != hch[1])
    return fail(CH3D_ERR_MODEL, "%s: inputs h1, h2 have channels %lld, %lld; expected one fixed number", path,
                (long long)hch[0], (long long)hch[1]);
  h->hidden = hch[0];
  return CH3D_OK;
}

/* the metadata check of export/runtime/spec.py check_metadata, and the derived numbers */
static int read_metadata(ch3d_handle *h, const char *path) {
  const OrtApi *api = h->api;
  OrtAllocator *alloc = NULL;
  OrtModelMetadata *mm = NULL;
  char *value = NULL;
  int code;
  if ((code = ort_fail(api, api->GetAllocatorWithDefaultOptions(&alloc), CH3D_ERR_RUNTIME, "allocator"))) return code;
  if ((code = ort_fail(api, api->SessionGetModelMetadata(h->session, &mm), CH3D_ERR_MODEL, path))) return code;
  code = ort_fail(api, api->ModelMetadataLookupCustomMetadataMap(mm, alloc, "ch3d", &value), CH3D_ERR_MODEL, path);
  api->ReleaseModelMetadata(mm);
  if (code) return code;
  if (!value)
    return fail(CH3D_ERR_MODEL,
                "%s has no 'ch3d' metadata (not written by `python -m export`?); it lacks the physics (dt, steps "
                "per frame) and the downscale factor a rollout needs",
                path);
  h->json = strdup(value);
  alloc->Free(alloc, value);
  if (!h->json) return fail(CH3D_ERR_MEMORY, "out of memory");
  h->n_meta = parse_metadata(h->json, h->meta, MAX_ENTRIES);
  if (h->n_meta < 0) return fail(CH3D_ERR_MODEL, "%s: the 'ch3d' metadata is not a valid JSON object", path);
  static const char *required[] = {"format_version", "conservative", "hidden", "kernel",
                                   "downscale",      "dt",           "steps_per_frame"};
  char missing[200] = "";
  for (size_t i = 0; i < sizeof required / sizeof *required; ++i)
    if (!find(h, required[i])) {
      if (*missing) strcat(missing, ", ");
      strcat(missing, required[i]);
    }
  if (*missing) return fail(CH3D_ERR_MODEL, "%s: the 'ch3d' metadata lacks %s", path, missing);
  const entry *v = find(h, "format_version");
  if (!v->is_int || v->is_bool || v->is_string || v->value > 1)
    return fail(CH3D_ERR_MODEL, "%s: metadata format_version %g is newer than this library reads (1); upgrade ch3d",
                path, v->value);
  static const char *positive[] = {"hidden", "kernel", "downscale", "steps_per_frame"};
  for (size_t i = 0; i < 4; ++i) {
    v = find(h, positive[i]);
    int odd = !strcmp(positive[i], "kernel");
    if (!v->is_int || v->is_bool || v->is_string || v->value < 1 || (odd && fmod(v->value, 2.0) == 0))
      return fail(CH3D_ERR_MODEL, "%s: metadata %s=%g is not a positive%s integer", path, positive[i], v->value,
                  odd ? " odd" : "");
  }
  v = find(h, "dt");
  if (v->is_bool || v->is_string || !(v->value > 0))
    return fail(CH3D_ERR_MODEL, "%s: metadata dt=%g is not a positive number", path, v->value);
  if ((int64_t)find(h, "hidden")->value != h->hidden)
    return fail(CH3D_ERR_MODEL, "%s: metadata says hidden=%lld but the graph's h1 has %lld channels", path,
                (long long)find(h, "hidden")->value, (long long)h->hidden);
  h->kernel = (int64_t)find(h, "kernel")->value;
  h->downscale = (int64_t)find(h, "downscale")->value;
  h->conservative = find(h, "conservative")->value != 0;
  h->min_grid = h->kernel;
  /* one step's reach (export/runtime/spec.py halo_cells): 5 (k // 2) (+1 for the divergence) */
  v = find(h, "halo");
  h->halo = (v && v->is_int && v->value >= 0) ? (int64_t)v->value : 5 * (h->kernel / 2) + (h->conservative ? 1 : 0);
  h->time_per_step = find(h, "steps_per_frame")->value * find(h, "dt")->value;
  return CH3D_OK;
}

/* session options + provider; returns a code, sets h->device */
static int make_options(ch3d_handle *h, int threads, const char *provider, OrtSessionOptions **so_out, int *cuda_tried) {
  const OrtApi *api = h->api;
  OrtSessionOptions *so = NULL;
  int code;
  *cuda_tried = 0;
  if ((code = ort_fail(api, api->CreateSessionOptions(&so), CH3D_ERR_RUNTIME, "session options"))) return code;
  *so_out = so;
  if ((code = ort_fail(api, api->SetIntraOpNumThreads(so, threads), CH3D_ERR_ARGUMENT, "threads"))) return code;
  if ((code = ort_fail(api, api->SetInterOpNumThreads(so, 1), CH3D_ERR_RUNTIME, "threads"))) return code;
  if ((code = ort_fail(api, api->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), CH3D_ERR_RUNTIME, "options")))
    return code;
  if ((code = ort_fail(api, api->SetSessionExecutionMode(so, ORT_SEQUENTIAL), CH3D_ERR_RUNTIME, "options"))) return code;
  if ((code = ort_fail(api, api->SetSessionLogSeverityLevel(so, 3), CH3D_ERR_RUNTIME, "options"))) return code;
  snprintf(h->device, sizeof h->device, "cpu");
  int want_cuda = 0, need_cuda = 0;
  char device_id[24] = "0";
  if (!provider || !strcmp(provider, "auto")) {
    want_cuda = 1;
  } else if (!strcmp(provider, "cuda") || !strncmp(provider, "cuda:", 5)) {
    want_cuda = need_cuda = 1;
    if (provider[4] == ':') {
      char *endp;
      long id = strtol(provider + 5, &endp, 10);
      if (*endp || endp == provider + 5 || id < 0) return fail(CH3D_ERR_ARGUMENT, "provider '%s': expected cuda:N, N >= 0", provider);
      snprintf(device_id, sizeof device_id, "%ld", id);
    }
  } else if (strcmp(provider, "cpu")) {
    return fail(CH3D_ERR_ARGUMENT, "provider must be one of auto, cpu, cuda, cuda:N; got '%s'", provider);
  }
  if (!want_cuda) return CH3D_OK;
  *cuda_tried = 1;
  OrtCUDAProviderOptionsV2 *cuda = NULL;
  OrtStatus *st = api->CreateCUDAProviderOptions(&cuda);
  if (!st) {
    /* TF32 off: full float32 convolutions, as export/runtime/providers.py cuda_provider_options */
    const char *keys[] = {"device_id", "use_tf32"};
    const char *vals[] = {device_id, "0"};
    st = api->UpdateCUDAProviderOptions(cuda, keys, vals, 2);
    if (!st) st = api->SessionOptionsAppendExecutionProvider_CUDA_V2(so, cuda);
  }
  if (cuda) api->ReleaseCUDAProviderOptions(cuda);
  if (st) {
    if (need_cuda)
      return ort_fail(api, st, CH3D_ERR_PROVIDER,
                      "provider 'cuda' but this onnxruntime cannot use the CUDA provider; use 'cpu' or 'auto'");
    api->ReleaseStatus(st);
    *cuda_tried = 0;
    return CH3D_OK;
  }
  snprintf(h->device, sizeof h->device, "cuda");
  return CH3D_OK;
}

int ch3d_open(const char *model_path, int threads, const char *provider, ch3d_handle **out) {
  last_error[0] = 0;
  if (!out) return fail(CH3D_ERR_ARGUMENT, "ch3d_open: out is NULL");
  *out = NULL;
  if (!model_path) return fail(CH3D_ERR_ARGUMENT, "ch3d_open: model_path is NULL");
  if (threads < 0) return fail(CH3D_ERR_ARGUMENT, "threads must be >= 0 (0: all cores), got %d", threads);
  pthread_once(&ort_once, load_ort);
  const OrtApiBase *base = ort_base;
  if (!base) return fail(CH3D_ERR_ORT_MISSING, "%s", ort_problem);
  int need = CH3D_ORT_API;
  const char *test_api = getenv("CH3D_TEST_REQUIRE_ORT_API"); /* tests: ask for a newer API than exists */
  if (test_api && atoi(test_api) > 0) need = atoi(test_api);
  const OrtApi *api = base->GetApi((uint32_t)need);
  if (!api)
    return fail(CH3D_ERR_ORT_TOO_OLD,
                "onnxruntime %s is too old: ch3d_embed needs onnxruntime >= 1.21 (C API version %d); point CH3D_ORT_LIB "
                "at a newer libonnxruntime.so",
                base->GetVersionString(), need);
  FILE *f = fopen(model_path, "rb");
  if (!f) return fail(CH3D_ERR_MODEL, "%s: no such model file (or not readable)", model_path);
  fclose(f);
  ch3d_handle *h = calloc(1, sizeof *h);
  if (!h) return fail(CH3D_ERR_MEMORY, "out of memory");
  h->api = api;
  int code = ort_fail(api, api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "ch3d", &h->env), CH3D_ERR_RUNTIME,
                      "onnxruntime environment");
  OrtSessionOptions *so = NULL;
  int cuda_tried = 0;
  if (!code) code = make_options(h, threads, provider, &so, &cuda_tried);
  if (!code) {
    OrtStatus *st = api->CreateSession(h->env, model_path, so, &h->session);
    if (st && cuda_tried) {
      /* tell a CUDA failure from an unreadable file: retry on the CPU alone */
      api->ReleaseStatus(st);
      OrtSessionOptions *cpu = NULL;
      code = make_options(h, threads, "cpu", &cpu, &cuda_tried);
      if (!code) st = api->CreateSession(h->env, model_path, cpu, &h->session);
      if (cpu) api->ReleaseSessionOptions(cpu);
      if (!code && !st && provider && strncmp(provider, "cuda", 4) == 0)
        code = fail(CH3D_ERR_PROVIDER, "provider 'cuda' but the CUDA provider did not start; use 'cpu' or 'auto'");
    }
    if (!code && st) {
      char what[600];
      snprintf(what, sizeof what, "%s is not a readable ONNX model", model_path);
      code = ort_fail(api, st, CH3D_ERR_MODEL, what);
    }
  }
  if (so) api->ReleaseSessionOptions(so);
  if (!code) code = check_signature(h, model_path);
  if (!code) code = read_metadata(h, model_path);
  if (!code)
    code = ort_fail(api, api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &h->mem), CH3D_ERR_RUNTIME,
                    "memory info");
  if (code) {
    ch3d_close(h);
    return code;
  }
  *out = h;
  return CH3D_OK;
}

/* ------------------------------------------------------------------ getters */
int64_t ch3d_hidden(const ch3d_handle *h) { return h ? h->hidden : -1; }
int64_t ch3d_downscale(const ch3d_handle *h) { return h ? h->downscale : -1; }
int64_t ch3d_kernel(const ch3d_handle *h) { return h ? h->kernel : -1; }
int64_t ch3d_min_grid(const ch3d_handle *h) { return h ? h->min_grid : -1; }
int64_t ch3d_halo(const ch3d_handle *h) { return h ? h->halo : -1; }
int ch3d_conservative(const ch3d_handle *h) { return h ? h->conservative : -1; }
double ch3d_time_per_step(const ch3d_handle *h) { return h ? h->time_per_step : NAN; }
const char *ch3d_metadata_json(const ch3d_handle *h) { return h ? h->json : ""; }
const char *ch3d_device(const ch3d_handle *h) { return h ? h->device : ""; }
int64_t ch3d_steps_done(const ch3d_handle *h) { return h ? h->steps_done : -1; }

int ch3d_metadata_number(const ch3d_handle *h, const char *key, double *value) {
  if (!h || !key || !value) return fail(CH3D_ERR_ARGUMENT, "ch3d_metadata_number: NULL argument");
  const entry *e = find(h, key);
  if (!e || e->is_string) return fail(CH3D_ERR_ARGUMENT, "the model's metadata has no number '%s'", key);
  *value = e->value;
  return CH3D_OK;
}

/* ------------------------------------------------------------------ stepping */
/* the grid check of export/runtime/grid.py check_kernel; sets *voxels = n*nx*ny*nz */
static int check_sizes(const ch3d_handle *h, int64_t n, int64_t nx, int64_t ny, int64_t nz, size_t *voxels) {
  if (n < 1) return fail(CH3D_ERR_ARGUMENT, "expected a batch of at least 1, got n=%lld", (long long)n);
  if (nx < h->min_grid || ny < h->min_grid || nz < h->min_grid)
    return fail(CH3D_ERR_GRID,
                "the network grid %lldx%lldx%lld is smaller than the model's kernel %lld along an axis; each of X, "
                "Y, Z must be >= %lld (periodic %lld^3 stencils)",
                (long long)nx, (long long)ny, (long long)nz, (long long)h->kernel, (long long)h->min_grid,
                (long long)h->kernel);
  double total = (double)n * nx * ny * nz * (double)(h->hidden + 1) * sizeof(float);
  if (total > 9.0e18 || total > (double)SIZE_MAX / 2)
    return fail(CH3D_ERR_GRID, "the sizes %lld x %lldx%lldx%lld are too large", (long long)n, (long long)nx,
                (long long)ny, (long long)nz);
  *voxels = (size_t)n * (size_t)nx * (size_t)ny * (size_t)nz;
  return CH3D_OK;
}

static int check_finite(const float *a, size_t count, const char *name) {
  for (size_t i = 0; i < count; ++i)
    if (!isfinite(a[i])) return fail(CH3D_ERR_NONFINITE, "%s contains NaN or Inf values", name);
  return CH3D_OK;
}

static int wrap(ch3d_handle *h, float *data, size_t count, const int64_t shape[5], OrtValue **v) {
  return ort_fail(h->api,
                  h->api->CreateTensorWithDataAsOrtValue(h->mem, data, count * sizeof(float), shape, 5,
                                                         ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, v),
                  CH3D_ERR_RUNTIME, "tensor");
}

/* allocate the six buffers for (n, nx, ny, nz), hidden states zero */
static int start_state(ch3d_handle *h, int64_t n, int64_t nx, int64_t ny, int64_t nz, size_t voxels) {
  free_state(h);
  const int64_t sphi[5] = {n, 1, nx, ny, nz}, sh[5] = {n, h->hidden, nx, ny, nz};
  for (int i = 0; i < 6; ++i) {
    size_t count = (i % 3 == 0) ? voxels : voxels * (size_t)h->hidden;
    h->buf[i] = calloc(count, sizeof(float));
    if (!h->buf[i]) {
      free_state(h);
      return fail(CH3D_ERR_MEMORY, "out of memory for the state of %lld x %lldx%lldx%lld", (long long)n,
                  (long long)nx, (long long)ny, (long long)nz);
    }
    int code = wrap(h, h->buf[i], count, (i % 3 == 0) ? sphi : sh, &h->val[i]);
    if (code) {
      free_state(h);
      return code;
    }
  }
  h->shape[0] = n;
  h->shape[1] = nx;
  h->shape[2] = ny;
  h->shape[3] = nz;
  h->cur = 0;
  h->steps_done = 0;
  return CH3D_OK;
}

/* load phi into the running state (starting one after open/reset) */
static int load(ch3d_handle *h, const float *phi, int64_t n, int64_t nx, int64_t ny, int64_t nz) {
  size_t voxels;
  int code = check_sizes(h, n, nx, ny, nz, &voxels);
  if (code) return code;
  if ((code = check_finite(phi, voxels, "phi"))) return code;
  if (h->shape[0] == 0) {
    if ((code = start_state(h, n, nx, ny, nz, voxels))) return code;
  } else if (h->shape[0] != n || h->shape[1] != nx || h->shape[2] != ny || h->shape[3] != nz) {
    return fail(CH3D_ERR_STATE,
                "phi has shape (%lld, 1, %lld, %lld, %lld) but the running state has (%lld, 1, %lld, %lld, %lld); "
                "call ch3d_reset to start a rollout on another grid or batch",
                (long long)n, (long long)nx, (long long)ny, (long long)nz, (long long)h->shape[0],
                (long long)h->shape[1], (long long)h->shape[2], (long long)h->shape[3]);
  }
  memcpy(h->buf[h->cur], phi, voxels * sizeof(float));
  return CH3D_OK;
}

static int run_one(ch3d_handle *h) {
  const OrtValue *in[3] = {h->val[h->cur], h->val[h->cur + 1], h->val[h->cur + 2]};
  int nxt = 3 - h->cur;
  OrtValue *outv[3] = {h->val[nxt], h->val[nxt + 1], h->val[nxt + 2]};
  int code = ort_fail(h->api, h->api->Run(h->session, NULL, IN_NAMES, in, 3, OUT_NAMES, 3, outv), CH3D_ERR_RUNTIME,
                      "onnxruntime failed to run the step");
  if (code) return code;
  h->cur = nxt;
  h->steps_done++;
  return CH3D_OK;
}

int ch3d_reset(ch3d_handle *h) {
  if (!h) return fail(CH3D_ERR_ARGUMENT, "ch3d_reset: handle is NULL");
  free_state(h);
  return CH3D_OK;
}

int ch3d_rollout(ch3d_handle *h, float *phi, int64_t n, int64_t nx, int64_t ny, int64_t nz, int64_t steps) {
  if (!h || !phi) return fail(CH3D_ERR_ARGUMENT, "ch3d_rollout: NULL handle or phi");
  if (steps < 0) return fail(CH3D_ERR_ARGUMENT, "steps must be an integer >= 0, got %lld", (long long)steps);
  int code = load(h, phi, n, nx, ny, nz);
  if (code) return code;
  for (int64_t s = 0; s < steps; ++s)
    if ((code = run_one(h))) return code;
  memcpy(phi, h->buf[h->cur], (size_t)n * nx * ny * nz * sizeof(float));
  return CH3D_OK;
}

int ch3d_step(ch3d_handle *h, float *phi, int64_t n, int64_t nx, int64_t ny, int64_t nz) {
  return ch3d_rollout(h, phi, n, nx, ny, nz, 1);
}

int ch3d_step_halo(ch3d_handle *h, const float *phi, const float *h1, const float *h2, int64_t n, int64_t nx,
                   int64_t ny, int64_t nz, int64_t halo, float *phi_out, float *h1_out, float *h2_out) {
  if (!h || !phi || !h1 || !h2 || !phi_out || !h1_out || !h2_out)
    return fail(CH3D_ERR_ARGUMENT, "ch3d_step_halo: NULL argument");
  if (halo < h->halo)
    return fail(CH3D_ERR_HALO,
                "halo %lld is less than the model's halo %lld: the interior would differ from the whole-box step",
                (long long)halo, (long long)h->halo);
  if (nx < halo || ny < halo || nz < halo)
    return fail(CH3D_ERR_HALO, "the interior %lldx%lldx%lld is smaller than the halo %lld along an axis",
                (long long)nx, (long long)ny, (long long)nz, (long long)halo);
  const int64_t ex = nx + 2 * halo, ey = ny + 2 * halo, ez = nz + 2 * halo;
  size_t voxels;
  int code = check_sizes(h, n, ex, ey, ez, &voxels);
  if (code) return code;
  const size_t hc = (size_t)h->hidden;
  if ((code = check_finite(phi, voxels, "phi")) || (code = check_finite(h1, voxels * hc, "h1")) ||
      (code = check_finite(h2, voxels * hc, "h2")))
    return code;
  const int64_t sphi[5] = {n, 1, ex, ey, ez}, sh[5] = {n, h->hidden, ex, ey, ez};
  float *obuf[3] = {NULL, NULL, NULL};
  OrtValue *in[3] = {NULL, NULL, NULL}, *outv[3] = {NULL, NULL, NULL};
  const float *ins[3] = {phi, h1, h2};
  for (int i = 0; i < 3 && !code; ++i) {
    size_t count = i ? voxels * hc : voxels;
    obuf[i] = malloc(count * sizeof(float));
    if (!obuf[i]) code = fail(CH3D_ERR_MEMORY, "out of memory");
    if (!code) code = wrap(h, (float *)ins[i], count, i ? sh : sphi, &in[i]); /* read only by Run */
    if (!code) code = wrap(h, obuf[i], count, i ? sh : sphi, &outv[i]);
  }
  if (!code)
    code = ort_fail(h->api, h->api->Run(h->session, NULL, IN_NAMES, (const OrtValue *const *)in, 3, OUT_NAMES, 3, outv),
                    CH3D_ERR_RUNTIME, "onnxruntime failed to run the step");
  if (!code) { /* copy the interiors out: rows of nz contiguous values */
    float *dst[3] = {phi_out, h1_out, h2_out};
    for (int i = 0; i < 3; ++i) {
      int64_t planes = n * (i ? h->hidden : 1);
      float *d = dst[i];
      for (int64_t c = 0; c < planes; ++c)
        for (int64_t x = 0; x < nx; ++x)
          for (int64_t y = 0; y < ny; ++y) {
            const float *s = obuf[i] + ((c * ex + x + halo) * ey + y + halo) * ez + halo;
            memcpy(d, s, (size_t)nz * sizeof(float));
            d += nz;
          }
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (in[i]) h->api->ReleaseValue(in[i]);
    if (outv[i]) h->api->ReleaseValue(outv[i]);
    free(obuf[i]);
  }
  return code;
}
