/* datasets/features.c: MFCC / log-mel extraction (definition in features.h) on FFTW's
 * single-precision real FFT. The filterbank and DCT matrices are built once per extractor in
 * double precision and stored as float; accumulations in double. */
#include "core/hash.h"
#include "core/alloc.h"
#include "datasets/features.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

struct nas_feat {
  nas_feat_params p; /* the parameters it was built with */
  int n_samples;     /* clip length */
  int L, H, N;       /* frame length, hop, FFT size */
  int frames;        /* output rows */
  int width;         /* output columns */
  int bins;          /* N/2 + 1 spectrum bins */
  float *window;     /* [L] periodic Hann */
  float *fb;         /* [n_mels, bins] triangular filters */
  int *fb_lo, *fb_hi;/* [n_mels] first and one-past-last non-zero bin of each filter */
  float *dct;        /* [n_mfcc, n_mels] orthonormal DCT-II rows */
  float *frame;      /* [N] FFT input (fftwf_malloc) */
  fftwf_complex *spec; /* [bins] FFT output (fftwf_malloc) */
  float *mag;        /* [bins] magnitudes */
  double *logmel;    /* [n_mels] */
  fftwf_plan plan;   /* r2c plan of size N */
};

void nas_feat_params_default(nas_feat_params *p) {
  memset(p, 0, sizeof *p);
  p->kind = NAS_FEAT_MFCC;
  p->sample_rate = 16000;
  p->window_ms = 30;
  p->stride_ms = 20;
  p->n_mels = 40;
  p->n_mfcc = 10;
  p->f_min = 20.0f;
  p->f_max = 4000.0f;
  p->log_floor = 1e-6f;
}


uint64_t nas_feat_params_hash(const nas_feat_params *p, uint64_t h) {
  int32_t iv[6] = {p->kind, p->sample_rate, p->window_ms, p->stride_ms, p->n_mels, p->n_mfcc};
  float fv[3] = {p->f_min, p->f_max, p->log_floor};
  h = nas_fnv1a(h, iv, sizeof iv);
  return nas_fnv1a(h, fv, sizeof fv);
}

static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

#define MAX_MELS 512 /* the largest n_mels accepted */

static int check(const nas_feat_params *p, int n_samples, nas_err *e) {
  if (p->kind != NAS_FEAT_MFCC && p->kind != NAS_FEAT_LOGMEL)
    return nas_errf(e, NAS_EINVAL, "features: unknown kind %d", p->kind);
  if (p->sample_rate < 1000 || p->sample_rate > 384000)
    return nas_errf(e, NAS_EINVAL, "features: sample rate %d out of range 1000..384000",
                    p->sample_rate);
  if (p->window_ms < 1 || p->window_ms > 1000 || p->stride_ms < 1 || p->stride_ms > 1000)
    return nas_errf(e, NAS_EINVAL, "features: window %d ms / stride %d ms out of range 1..1000",
                    p->window_ms, p->stride_ms);
  long L = (long)p->window_ms * p->sample_rate / 1000;
  if (L < 2 || L > n_samples)
    return nas_errf(e, NAS_EINVAL, "features: window of %ld samples does not fit a clip of %d",
                    L, n_samples);
  if (p->n_mels < 1 || p->n_mels > MAX_MELS)
    return nas_errf(e, NAS_EINVAL, "features: n_mels %d out of range 1..%d", p->n_mels, MAX_MELS);
  if (p->kind == NAS_FEAT_MFCC && (p->n_mfcc < 1 || p->n_mfcc > p->n_mels))
    return nas_errf(e, NAS_EINVAL, "features: n_mfcc %d out of range 1..n_mels (%d)", p->n_mfcc,
                    p->n_mels);
  if (!(p->f_min >= 0.0f && p->f_min < p->f_max && p->f_max <= p->sample_rate / 2.0f))
    return nas_errf(e, NAS_EINVAL, "features: mel range %g..%g Hz is not within 0..%d Hz",
                    p->f_min, p->f_max, p->sample_rate / 2);
  if (!(p->log_floor > 0.0f))
    return nas_errf(e, NAS_EINVAL, "features: log floor %g must be > 0", p->log_floor);
  return NAS_OK;
}

static void build_filterbank(nas_feat *f) {
  int M = f->p.n_mels, B = f->bins;
  double mlo = hz_to_mel(f->p.f_min), mhi = hz_to_mel(f->p.f_max);
  double fp[MAX_MELS + 2]; /* filter edges in Hz (check() bounds n_mels) */
  for (int j = 0; j < M + 2; j++) fp[j] = mel_to_hz(mlo + (mhi - mlo) * j / (M + 1));
  for (int j = 0; j < M; j++) {
    f->fb_lo[j] = B;
    f->fb_hi[j] = 0;
    for (int k = 0; k < B; k++) {
      double hz = (double)k * f->p.sample_rate / f->N;
      double down = (hz - fp[j]) / (fp[j + 1] - fp[j]);
      double up = (fp[j + 2] - hz) / (fp[j + 2] - fp[j + 1]);
      double w = down < up ? down : up;
      w = w > 0.0 ? w : 0.0;
      f->fb[(size_t)j * B + k] = (float)w;
      if (w > 0.0) {
        if (k < f->fb_lo[j]) f->fb_lo[j] = k;
        f->fb_hi[j] = k + 1;
      }
    }
    if (f->fb_lo[j] > f->fb_hi[j]) f->fb_lo[j] = f->fb_hi[j]; /* an empty filter */
  }
}

static void build_dct(nas_feat *f) {
  int M = f->p.n_mels;
  for (int k = 0; k < f->p.n_mfcc; k++) {
    double s = sqrt(2.0 / M) * (k == 0 ? sqrt(0.5) : 1.0);
    for (int j = 0; j < M; j++) f->dct[(size_t)k * M + j] = (float)(s * cos(M_PI * k * (j + 0.5) / M));
  }
}

int nas_feat_build(const nas_feat_params *p, int n_samples, nas_feat **out, nas_err *e) {
  *out = NULL;
  int rc = check(p, n_samples, e);
  if (rc) return rc;
  nas_feat *f = nas_calloc(1, sizeof *f);
  if (!f) return nas_errf(e, NAS_ENOMEM, "features: out of memory");
  f->p = *p;
  f->n_samples = n_samples;
  f->L = (int)((long)p->window_ms * p->sample_rate / 1000);
  f->H = (int)((long)p->stride_ms * p->sample_rate / 1000);
  if (f->H < 1) f->H = 1;
  f->N = 1;
  while (f->N < f->L) f->N *= 2;
  f->bins = f->N / 2 + 1;
  f->frames = 1 + (n_samples - f->L) / f->H;
  f->width = p->kind == NAS_FEAT_MFCC ? p->n_mfcc : p->n_mels;
  f->window = nas_malloc(sizeof(float) * (size_t)f->L);
  f->fb = nas_malloc(sizeof(float) * (size_t)p->n_mels * f->bins);
  f->fb_lo = nas_malloc(sizeof(int) * (size_t)p->n_mels);
  f->fb_hi = nas_malloc(sizeof(int) * (size_t)p->n_mels);
  f->dct = nas_malloc(sizeof(float) * (size_t)p->n_mels * p->n_mels);
  f->mag = nas_malloc(sizeof(float) * (size_t)f->bins);
  f->logmel = nas_malloc(sizeof(double) * (size_t)p->n_mels);
  f->frame = fftwf_malloc(sizeof(float) * (size_t)f->N);
  f->spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)f->bins);
  if (!f->window || !f->fb || !f->fb_lo || !f->fb_hi || !f->dct || !f->mag || !f->logmel ||
      !f->frame || !f->spec) {
    nas_feat_free(f);
    return nas_errf(e, NAS_ENOMEM, "features: out of memory");
  }
  for (int i = 0; i < f->L; i++) f->window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / f->L));
  build_filterbank(f);
  build_dct(f);
  f->plan = fftwf_plan_dft_r2c_1d(f->N, f->frame, f->spec, FFTW_ESTIMATE);
  if (!f->plan) {
    nas_feat_free(f);
    return nas_errf(e, NAS_ENOMEM, "features: FFTW could not plan an FFT of size %d", f->N);
  }
  *out = f;
  return NAS_OK;
}

void nas_feat_free(nas_feat *f) {
  if (!f) return;
  if (f->plan) fftwf_destroy_plan(f->plan);
  if (f->frame) fftwf_free(f->frame);
  if (f->spec) fftwf_free(f->spec);
  free(f->window);
  free(f->fb);
  free(f->fb_lo);
  free(f->fb_hi);
  free(f->dct);
  free(f->mag);
  free(f->logmel);
  free(f);
}

void nas_feat_shape(const nas_feat *f, int *frames, int *width) {
  *frames = f->frames;
  *width = f->width;
}

void nas_feat_compute(nas_feat *f, const float *x, float *out) {
  int M = f->p.n_mels, B = f->bins;
  for (int t = 0; t < f->frames; t++) {
    const float *s = x + (size_t)t * f->H;
    for (int i = 0; i < f->L; i++) f->frame[i] = s[i] * f->window[i];
    for (int i = f->L; i < f->N; i++) f->frame[i] = 0.0f;
    fftwf_execute(f->plan);
    for (int k = 0; k < B; k++) {
      double re = f->spec[k][0], im = f->spec[k][1];
      f->mag[k] = (float)sqrt(re * re + im * im);
    }
    float *o = out + (size_t)t * f->width;
    for (int j = 0; j < M; j++) {
      const float *w = f->fb + (size_t)j * B;
      double acc = 0.0;
      for (int k = f->fb_lo[j]; k < f->fb_hi[j]; k++) acc += (double)w[k] * f->mag[k];
      f->logmel[j] = log(acc + (double)f->p.log_floor);
    }
    if (f->p.kind == NAS_FEAT_LOGMEL) {
      for (int j = 0; j < M; j++) o[j] = (float)f->logmel[j];
    } else {
      for (int k = 0; k < f->p.n_mfcc; k++) {
        const float *d = f->dct + (size_t)k * M;
        double acc = 0.0;
        for (int j = 0; j < M; j++) acc += (double)d[j] * f->logmel[j];
        o[k] = (float)acc;
      }
    }
  }
}
