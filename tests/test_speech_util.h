/* tests/test_speech_util.h: helpers shared by the Speech Commands tests (test_speech.c,
 * test_speech_aug.c): a fresh mkdtemp root per run, WAV and text writers, a warning
 * counter, and a small Speech Commands tree. Header-only (each test is one executable);
 * include after <cmocka.h>. */
#ifndef NAS_TESTS_TEST_SPEECH_UTIL_H
#define NAS_TESTS_TEST_SPEECH_UTIL_H

#include <dirent.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "datasets/speech.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static char g_root[64];

static inline int setup(void **state) {
  (void)state;
  snprintf(g_root, sizeof g_root, "/tmp/test_speech_XXXXXX");
  return mkdtemp(g_root) ? 0 : -1;
}

static inline int teardown(void **state) {
  (void)state;
  test_rm_rf(g_root);
  return 0;
}

/* Writes n frames of a tone (seeded by id) with the given rate/channels/format. */
static inline void write_wav(const char *path, int rate, int channels, int format, int n, int id) {
  SF_INFO info;
  memset(&info, 0, sizeof info);
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  assert_non_null(f);
  float *x = malloc(sizeof(float) * (size_t)n * channels);
  assert_non_null(x);
  for (int i = 0; i < n * channels; i++)
    x[i] = 0.3f * (float)sin(2.0 * M_PI * (200.0 + 50.0 * id) * i / rate) + 0.001f * (float)(id % 7);
  assert_int_equal(sf_writef_float(f, x, n), n);
  free(x);
  assert_int_equal(sf_close(f), 0);
}

#define PCM16 (SF_FORMAT_WAV | SF_FORMAT_PCM_16)

static inline void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static inline void mkdirp(const char *path) { assert_int_equal(mkdir(path, 0700), 0); }

/* Counts warning lines. */
typedef struct warnings {
  int n;
  char last[1024];
} warnings;

static inline void on_warn(void *ctx, const char *line) {
  warnings *w = ctx;
  w->n++;
  snprintf(w->last, sizeof w->last, "%s", line);
}

/* ---- a small tree ---- */

/* Words yes, no, go (20 clips each, files 0-1 in validation, 2-3 in testing), cat and dog
 * (5 each, cat/c0 in validation, dog/d0 in testing), 5 broken files in yes/ (all training),
 * one 3 s noise file. */
static inline void make_tree(const char *dir, int with_broken) {
  char p[512], sub[300];
  mkdirp(dir);
  const char *kw[3] = {"yes", "no", "go"};
  char val[4096] = "", test[4096] = "";
  int id = 0;
  for (int w = 0; w < 3; w++) {
    snprintf(sub, sizeof sub, "%s/%s", dir, kw[w]);
    mkdirp(sub);
    for (int i = 0; i < 20; i++) {
      snprintf(p, sizeof p, "%s/k%02d_nohash_0.wav", sub, i);
      write_wav(p, 16000, 1, PCM16, i == 5 ? 9000 : 16000, id++);
      char line[64];
      snprintf(line, sizeof line, "%s/k%02d_nohash_0.wav\n", kw[w], i);
      if (i < 2) strcat(val, line);
      else if (i < 4) strcat(test, line);
    }
  }
  const char *other[2] = {"cat", "dog"};
  for (int w = 0; w < 2; w++) {
    snprintf(sub, sizeof sub, "%s/%s", dir, other[w]);
    mkdirp(sub);
    for (int i = 0; i < 5; i++) {
      snprintf(p, sizeof p, "%s/%c%d.wav", sub, other[w][0], i);
      write_wav(p, 16000, 1, PCM16, 16000, id++);
    }
  }
  strcat(val, "cat/c0.wav\n");
  strcat(test, "dog/d0.wav\r\n");
  snprintf(p, sizeof p, "%s/validation_list.txt", dir);
  write_text(p, val);
  snprintf(p, sizeof p, "%s/testing_list.txt", dir);
  write_text(p, test);
  snprintf(sub, sizeof sub, "%s/_background_noise_", dir);
  mkdirp(sub);
  snprintf(p, sizeof p, "%s/white.wav", sub);
  write_wav(p, 16000, 1, PCM16, 48000, 99);
  snprintf(p, sizeof p, "%s/README.md", sub);
  write_text(p, "noise\n");
  if (with_broken) {
    snprintf(p, sizeof p, "%s/yes/b_8k.wav", dir);
    write_wav(p, 8000, 1, PCM16, 8000, 1);
    snprintf(p, sizeof p, "%s/yes/b_stereo.wav", dir);
    write_wav(p, 16000, 2, PCM16, 16000, 1);
    snprintf(p, sizeof p, "%s/yes/b_float.wav", dir);
    write_wav(p, 16000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1);
    snprintf(p, sizeof p, "%s/yes/b_trunc.wav", dir);
    write_wav(p, 16000, 1, PCM16, 16000, 1);
    assert_int_equal(truncate(p, 5000), 0);
    snprintf(p, sizeof p, "%s/yes/b_text.wav", dir);
    write_text(p, "RIFF? no.\n");
  }
}

static inline void count_labels(const nas_dataset *ds, int *counts, int classes) {
  memset(counts, 0, sizeof(int) * (size_t)classes);
  for (int i = 0; i < ds->n; i++) {
    assert_true(ds->y[i] >= 0 && ds->y[i] < classes);
    counts[ds->y[i]]++;
  }
}

#endif
