/* ch3d_embed.h -- run an exported ch3d CRNN step (models/NAME.onnx) from C, C++ or Fortran.
 *
 * A small C API over onnxruntime's C API (onnxruntime >= 1.21, API version 21), the native twin of
 * the Python runtime export.runtime.Rollout:
 *
 *   ch3d_handle *h;
 *   if (ch3d_open("models/crnn.onnx", 4, "cpu", &h) != CH3D_OK) { puts(ch3d_last_error()); ... }
 *   ch3d_step(h, phi, n, nx, ny, nz);          // one network step, phi updated in place
 *   ch3d_rollout(h, phi, n, nx, ny, nz, 100);  // 100 more steps, hidden states carried
 *   ch3d_reset(h);                             // hidden states back to zero
 *   ch3d_close(h);
 *
 * Fields: float32, C order (z fastest, like numpy), shape (n, 1, nx, ny, nz) = n independent fields
 * of nx*ny*nz values each, at the NETWORK resolution (the ground-truth grid sampled every
 * ch3d_downscale()-th voxel, from voxel 0), periodic along x, y, z. The hidden states h1, h2
 * (n, hidden, nx, ny, nz) live inside the handle: zero after ch3d_open / ch3d_reset, carried from one
 * ch3d_step / ch3d_rollout to the next. Fortran's phi(nz, ny, nx) is this (nx, ny, nz) array.
 *
 * Errors: every function returning int returns CH3D_OK (0) or one of the codes below, and never
 * throws, aborts or exits; ch3d_last_error() is the one-line text of the calling thread's last error.
 * Threads: a handle is used by one thread at a time; separate handles may run concurrently (each has
 * its own onnxruntime session; `threads` intra-op threads each; with MPI, threads = cores per rank).
 */
#ifndef CH3D_EMBED_H
#define CH3D_EMBED_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CH3D_EMBED_VERSION "1.0"

/* Status codes (docs/embedding.md has the table of bad inputs, shared with the Python runtime). */
enum ch3d_status {
  CH3D_OK = 0,
  CH3D_ERR_ARGUMENT = 1,    /* a NULL pointer, n < 1, steps < 0, threads < 0, unknown provider, ... */
  CH3D_ERR_MODEL = 2,       /* not a readable ONNX file, or not a ch3d step (signature, metadata) */
  CH3D_ERR_ORT_TOO_OLD = 3, /* the onnxruntime library lacks C API version 21 (onnxruntime < 1.21) */
  CH3D_ERR_PROVIDER = 4,    /* "cuda" asked for but the CUDA provider cannot be used */
  CH3D_ERR_NONFINITE = 5,   /* an input field holds NaN or Inf */
  CH3D_ERR_GRID = 6,        /* an edge below ch3d_min_grid(), or sizes too large */
  CH3D_ERR_STATE = 7,       /* grid or batch differs from the running state's without ch3d_reset */
  CH3D_ERR_HALO = 8,        /* step_halo: fewer ghost layers than ch3d_halo(), or an interior < halo */
  CH3D_ERR_RUNTIME = 9,     /* onnxruntime failed while running the step */
  CH3D_ERR_MEMORY = 10,     /* out of memory */
  CH3D_ERR_ORT_MISSING = 11 /* the onnxruntime library cannot be loaded ($CH3D_ORT_LIB or the build's) */
};

typedef struct ch3d_handle ch3d_handle;

/* Open a model. threads: intra-op threads on the CPU (0: all cores of the process).
 * provider: "cpu", "cuda", "cuda:N" (device N) or "auto"/NULL (CUDA when usable, else the CPU).
 * The CUDA provider runs with TF32 off (use_tf32=0), as the Python runtime does.
 * On success *out is a new handle; on failure *out is NULL and an error code is returned. */
int ch3d_open(const char *model_path, int threads, const char *provider, ch3d_handle **out);
/* Free the handle (NULL is fine). */
void ch3d_close(ch3d_handle *h);

/* One-line text of the calling thread's last error ("" if none). Valid until the next call. */
const char *ch3d_last_error(void);
/* Text of a status code ("ok", "bad argument", ...). */
const char *ch3d_status_name(int status);

/* Metadata (the model's "ch3d" JSON, parsed by the library; -1 / NaN when h is NULL). */
int64_t ch3d_hidden(const ch3d_handle *h);     /* hidden channels H of h1, h2 */
int64_t ch3d_downscale(const ch3d_handle *h);  /* network grid = ground-truth grid / downscale */
int64_t ch3d_kernel(const ch3d_handle *h);     /* k of the k^3 convolutions */
int64_t ch3d_min_grid(const ch3d_handle *h);   /* smallest network grid edge accepted (= kernel) */
int64_t ch3d_halo(const ch3d_handle *h);       /* ghost layers one step needs (network cells) */
int ch3d_conservative(const ch3d_handle *h);   /* 1: mass (mean phi) kept to round-off */
double ch3d_time_per_step(const ch3d_handle *h); /* physical time of one step = steps_per_frame * dt */
/* Any numeric top-level metadata entry (physics: "epsilon", "mobility", "W", "dx", "dt",
 * "steps_per_frame", "network_dx", ...): CH3D_OK and *value, or CH3D_ERR_ARGUMENT if absent. */
int ch3d_metadata_number(const ch3d_handle *h, const char *key, double *value);
/* The whole metadata JSON text (owned by the handle). */
const char *ch3d_metadata_json(const ch3d_handle *h);
/* Where the steps run: "cpu" or "cuda" (owned by the handle). */
const char *ch3d_device(const ch3d_handle *h);
/* Steps since open / the last reset. */
int64_t ch3d_steps_done(const ch3d_handle *h);

/* Forget the hidden states: the next step starts from zero states (any grid and batch). */
int ch3d_reset(ch3d_handle *h);

/* One network step: phi (n, 1, nx, ny, nz) in, phi one step later out (in place). The first step
 * after open/reset fixes (n, nx, ny, nz); later steps must use the same sizes (CH3D_ERR_STATE).
 * Feeding the previous output gives a free run; feeding solver frames warms the states up. */
int ch3d_step(ch3d_handle *h, float *phi, int64_t n, int64_t nx, int64_t ny, int64_t nz);

/* `steps` network steps from phi (the same as `steps` calls of ch3d_step, with no copies between
 * steps); phi holds the field after the last step. Call ch3d_reset first for a fresh rollout. */
int ch3d_rollout(ch3d_handle *h, float *phi, int64_t n, int64_t nx, int64_t ny, int64_t nz, int64_t steps);

/* Domain decomposition, stateless (the handle's running state is not touched): one step of a
 * subdomain with `halo` ghost layers on every side (halo >= ch3d_halo(h), each interior edge >= halo).
 * Inputs, C order: phi (n, 1, nx+2g, ny+2g, nz+2g), h1 and h2 (n, H, nx+2g, ...), g = halo, filled
 * from the neighbouring subdomains (periodic box); outputs: the interiors (n, 1, nx, ny, nz) and
 * (n, H, nx, ny, nz) after one step. nx, ny, nz are the INTERIOR sizes. Equal to the whole-box step
 * up to round-off; no mean needs exchanging. */
int ch3d_step_halo(ch3d_handle *h, const float *phi, const float *h1, const float *h2, int64_t n, int64_t nx,
                   int64_t ny, int64_t nz, int64_t halo, float *phi_out, float *h1_out, float *h2_out);

#ifdef __cplusplus
}
#endif

#endif /* CH3D_EMBED_H */
