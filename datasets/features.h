/* datasets/features.h: MFCC and log-mel features of 16 kHz audio clips, as used by the
 * keyword-spotting models of Hello Edge (Zhang et al. 2017) and MLPerf Tiny KWS.
 * Ownership: nas_feat owns its FFTW plan and buffers; build with nas_feat_build, free with
 * nas_feat_free (NULL-safe). FFTW's planner is not thread-safe: build (and free) extractors
 * from one thread; one extractor may then be used by one thread at a time.
 *
 * Definition (every step, so an independent implementation gives the same numbers; the
 * fixture tests/fixtures/make_mfcc_fixture.py is one):
 *   input      x[0..n) float samples at sample_rate (16000), int16 PCM scaled by 1/32768;
 *              clips are 1 s (16000 samples) in the dataset, shorter ones are zero-padded
 *   pre-emph.  none
 *   framing    frame length L = window_ms * sample_rate / 1000 (480 for 30 ms, 640 for
 *              40 ms), hop H = stride_ms * sample_rate / 1000 (320 for 20 ms); frame t takes
 *              x[t*H .. t*H+L), no centring or padding of the signal; frames =
 *              1 + (n - L) / H (integer division) = 49 for a 1 s clip with 30 or 40 ms
 *   window     periodic Hann, w[i] = 0.5 - 0.5 cos(2 pi i / L), i = 0..L-1
 *   FFT        real FFT of size N = smallest power of two >= L (512 for 30 ms, 1024 for
 *              40 ms), the windowed frame zero-padded at its end; magnitude |X[k]| (not
 *              power), k = 0..N/2 (FFTW single precision, fftwf_plan_dft_r2c_1d)
 *   mel        n_mels (40) triangular filters, HTK mel scale m(f) = 2595 log10(1 + f/700),
 *              between f_min 20 Hz and f_max 4000 Hz: n_mels+2 points equally spaced in mel,
 *              mapped back to Hz (f_0 .. f_{M+1}); bin k has frequency k*sample_rate/N and
 *              filter j weight max(0, min((f-f_j)/(f_{j+1}-f_j), (f_{j+2}-f)/(f_{j+2}-f_{j+1})))
 *              (peak 1, no area normalisation; torchaudio melscale_fbanks(norm=None, "htk"))
 *   log        natural log(mel + 1e-6)  (the floor of MLPerf Tiny KWS)
 *   DCT        orthonormal DCT-II over the n_mels log energies,
 *              c_k = sqrt(2/M) s_k sum_j logmel_j cos(pi k (j + 0.5) / M), s_0 = 1/sqrt(2),
 *              s_k = 1 otherwise; the first n_mfcc (10) coefficients c_0..c_9 are kept
 *   output     [frames, n_mfcc] for mfcc, [frames, n_mels] for log-mel (row = one frame) */
#ifndef NAS_DATASETS_FEATURES_H
#define NAS_DATASETS_FEATURES_H

#include <stdint.h>

#include "core/error.h"

enum nas_feat_kind {
  NAS_FEAT_MFCC = 0,  /* n_mfcc DCT coefficients of the log-mel energies */
  NAS_FEAT_LOGMEL = 1 /* the n_mels log-mel energies */
};

typedef struct nas_feat_params {
  int kind;          /* enum nas_feat_kind */
  int sample_rate;   /* Hz (16000) */
  int window_ms;     /* frame length in ms (30 or 40; anything giving L >= 2 is accepted) */
  int stride_ms;     /* hop in ms (20) */
  int n_mels;        /* mel filters (40) */
  int n_mfcc;        /* coefficients kept (10); <= n_mels */
  float f_min, f_max;/* filterbank edges in Hz (20, 4000); f_max <= sample_rate / 2 */
  float log_floor;   /* added before the log (1e-6) */
} nas_feat_params;

/* Fills p with the defaults above (MFCC, 16 kHz, 30 ms window, 20 ms stride, 40 mels, 10
 * coefficients, 20-4000 Hz, floor 1e-6). */
void nas_feat_params_default(nas_feat_params *p);

typedef struct nas_feat nas_feat; /* opaque extractor */

/* Validates p and builds an extractor for clips of n_samples samples. */
int nas_feat_build(const nas_feat_params *p, int n_samples, nas_feat **out, nas_err *e);
void nas_feat_free(nas_feat *f); /* NULL-safe */

/* Output shape for the clip length given at build: frames x width (width = n_mfcc or n_mels). */
void nas_feat_shape(const nas_feat *f, int *frames, int *width);

/* x: [n_samples] -> out: [frames, width]. Never fails once built. */
void nas_feat_compute(nas_feat *f, const float *x, float *out);

/* 64-bit FNV-1a of every parameter (for cache keys); equal params give equal hashes. */
uint64_t nas_feat_params_hash(const nas_feat_params *p, uint64_t h);

#endif
