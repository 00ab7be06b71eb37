/* host.c -- a C host of ch3d_embed: read a field, warm the states up, roll out, check mass, write.
 *
 *   host_c MODEL INPUT OUTPUT STEPS [--grid NX NY NZ] [--warmup FRAMES K] [--threads T]
 *
 * INPUT: the initial field on the network grid, float32: a .npy of shape (NX, NY, NZ) (C order,
 * '<f4', as np.save writes it) or a raw file of NX*NY*NZ float32 values (C order) with --grid.
 * FRAMES (optional): K solver frames (K, NX, NY, NZ) on the network grid, fed through ch3d_step one
 * by one to warm the hidden states up (teacher forcing); the rollout then starts from INPUT with the
 * warmed-up states. OUTPUT: the field after STEPS steps (.npy, or raw float32 otherwise).
 * Exit status 0, or 1 with one line on stderr (a ch3d_embed error, a file error, mass not kept).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ch3d_embed.h"

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

/* read `count` float32 values of a .npy ('<f4', C order; shape into dims[0..*ndim-1]) or a raw file */
static float *read_field(const char *path, int64_t *dims, int *ndim, size_t count) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  if (ends_with(path, ".npy")) {
    unsigned char pre[10];
    char header[4096];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1) goto bad;
    size_t hlen = pre[8] | (pre[9] << 8);
    if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) goto bad;
    header[hlen] = 0;
    if (!strstr(header, "'<f4'") || strstr(header, "'fortran_order': True")) goto bad;
    char *p = strchr(strstr(header, "'shape'"), '(');
    *ndim = 0;
    count = 1;
    while (p && *ndim < 4) {
      char *end;
      long long v = strtoll(p + 1, &end, 10);
      if (end == p + 1) break;
      dims[(*ndim)++] = v;
      count *= (size_t)v;
      p = strchr(end, ',');
    }
  }
  float *a = malloc(count * sizeof *a);
  if (!a || fread(a, sizeof *a, count, f) != count) {
    free(a);
    goto bad;
  }
  fclose(f);
  return a;
bad:
  fclose(f);
  return NULL;
}

static int write_field(const char *path, const float *a, int64_t nx, int64_t ny, int64_t nz) {
  FILE *f = fopen(path, "wb");
  if (!f) return 1;
  if (ends_with(path, ".npy")) {
    char header[128];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld, %lld), }",
                     (long long)nx, (long long)ny, (long long)nz);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((n + pad + 1) & 0xff),
                             (unsigned char)((n + pad + 1) >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; ++i) fputc(' ', f);
    fputc('\n', f);
  }
  size_t count = (size_t)(nx * ny * nz);
  int bad = fwrite(a, sizeof *a, count, f) != count;
  return fclose(f) != 0 || bad;
}

static double mean(const float *a, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += a[i];
  return s / (double)n;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL INPUT OUTPUT STEPS [--grid NX NY NZ] [--warmup FRAMES K] [--threads T]\n", argv[0]);
    return 1;
  }
  const char *model = argv[1], *input = argv[2], *output = argv[3], *frames = NULL;
  long long steps = atoll(argv[4]), k = 0;
  int64_t g[4] = {0, 0, 0, 0};
  int ndim = 3, threads = 1;
  for (int i = 5; i < argc; ++i) {
    if (!strcmp(argv[i], "--grid") && i + 3 < argc) {
      for (int a = 0; a < 3; ++a) g[a] = atoll(argv[++i]);
    } else if (!strcmp(argv[i], "--warmup") && i + 2 < argc) {
      frames = argv[++i];
      k = atoll(argv[++i]);
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = atoi(argv[++i]);
    } else {
      fprintf(stderr, "host_c: unknown argument %s\n", argv[i]);
      return 1;
    }
  }
  float *phi = read_field(input, g, &ndim, (size_t)(g[0] * g[1] * g[2]));
  if (!phi || ndim != 3 || g[0] < 1 || g[1] < 1 || g[2] < 1) {
    fprintf(stderr, "host_c: cannot read a float32 (X, Y, Z) field from %s (raw files need --grid)\n", input);
    return 1;
  }
  const size_t voxels = (size_t)(g[0] * g[1] * g[2]);

  ch3d_handle *h;
  if (ch3d_open(model, threads, "cpu", &h) != CH3D_OK) {
    fprintf(stderr, "host_c: %s\n", ch3d_last_error());
    return 1;
  }
  printf("model %s: hidden %lld, downscale %lld, kernel %lld, halo %lld, time per step %g\n", model,
         (long long)ch3d_hidden(h), (long long)ch3d_downscale(h), (long long)ch3d_kernel(h), (long long)ch3d_halo(h),
         ch3d_time_per_step(h));
  int rc = 0;
  if (frames) { /* warm the hidden states up on K solver frames (teacher forcing) */
    int64_t fd[4] = {k, g[0], g[1], g[2]};
    int fn = 4;
    float *w = read_field(frames, fd, &fn, (size_t)k * voxels);
    if (!w || fd[0] != k || fd[1] != g[0] || fd[2] != g[1] || fd[3] != g[2]) {
      fprintf(stderr, "host_c: cannot read %lld frames of %lldx%lldx%lld from %s\n", k, (long long)g[0],
              (long long)g[1], (long long)g[2], frames);
      return 1;
    }
    for (long long i = 0; i < k && !rc; ++i) rc = ch3d_step(h, w + i * voxels, 1, g[0], g[1], g[2]);
    free(w);
  }
  const double m0 = mean(phi, voxels);
  if (!rc) rc = ch3d_rollout(h, phi, 1, g[0], g[1], g[2], steps);
  if (rc) {
    fprintf(stderr, "host_c: %s\n", ch3d_last_error());
    ch3d_close(h);
    return 1;
  }
  const double m1 = mean(phi, voxels);
  printf("%lld steps: mean phi %.7f -> %.7f, phi[0] %.7f\n", steps, m0, m1, phi[0]);
  if (ch3d_conservative(h) && fabs(m1 - m0) > 1e-5) {
    fprintf(stderr, "host_c: mass not kept: mean phi %.7f -> %.7f\n", m0, m1);
    rc = 1;
  }
  if (write_field(output, phi, g[0], g[1], g[2])) {
    fprintf(stderr, "host_c: cannot write %s\n", output);
    rc = 1;
  }
  ch3d_close(h);
  free(phi);
  return rc ? 1 : 0;
}
