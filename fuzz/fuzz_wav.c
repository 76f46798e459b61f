/* fuzz/fuzz_wav.c: libFuzzer harness of WAV files through the Speech Commands reader
 * (datasets/speech*.c): nas_wav_read on the file, then a whole nas_speech_load_dir on a tiny
 * Speech Commands folder in which the input is one training clip (yes/a.wav) and the only
 * background-noise recording (_background_noise_/noise.wav), 12-class task, one augmented
 * variant per training clip (noise mixing on), no cache. The other clips are valid 16-bit
 * files written once: no/b.wav (training), no/c.wav (validation list), yes/d.wav (testing
 * list). A broken input must be skipped with a warning, never crash the load.
 * With NAS_FUZZ_SEEDS=DIR in the environment the harness writes seed WAV files (16-bit,
 * 8-bit, 24-bit, 32-bit, WAVEX, stereo, 8 kHz, float, one longer than a clip) into DIR and
 * exits. */
#include "fuzz/fuzz_util.h"

#include <math.h>
#include <sndfile.h>
#include <sys/stat.h>

#include "datasets/speech.h"

static char g_dir[600], g_clip[700], g_noise[700];

static void cleanup(void) { fuzz_rm_tree(g_dir); }

/* Writes n samples of a 440 Hz tone as a WAV file with the given libsndfile format. */
static void write_wav(const char *path, int format, int rate, int channels, int n) {
  SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  if (!f) FUZZ_FAIL("cannot write %s: %s", path, sf_strerror(NULL));
  float *x = malloc(sizeof(float) * (size_t)n * (size_t)channels);
  if (!x) FUZZ_FAIL("out of memory");
  for (int i = 0; i < n * channels; i++) x[i] = 0.5f * sinf(6.2831853f * 440.0f * (float)(i / channels) / (float)rate);
  if (sf_writef_float(f, x, n) != n) FUZZ_FAIL("short write %s", path);
  free(x);
  sf_close(f);
}

static void seeds(const char *dir) {
  mkdir(dir, 0777);
  static const struct {
    const char *name;
    int format, rate, channels, n;
  } S[] = {
      {"pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 400},
      {"pcmu8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 16000, 1, 300},
      {"pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 16000, 1, 200},
      {"pcm32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 16000, 1, 100},
      {"wavex16.wav", SF_FORMAT_WAVEX | SF_FORMAT_PCM_16, 16000, 1, 200},
      {"stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 2, 100},
      {"rate8k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, 100},
      {"float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, 100},
      {"long16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16400},
  };
  for (size_t i = 0; i < sizeof S / sizeof S[0]; i++) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, S[i].name);
    write_wav(p, S[i].format, S[i].rate, S[i].channels, S[i].n);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *sd = getenv("NAS_FUZZ_SEEDS");
  if (sd && sd[0]) {
    seeds(sd);
    exit(0);
  }
  snprintf(g_dir, sizeof g_dir, "%s", fuzz_tmpdir());
  char p[800];
  static const char *const SUB[] = {"yes", "no", "_background_noise_"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", g_dir, SUB[i]);
    if (mkdir(p, 0777) != 0) FUZZ_FAIL("mkdir %s", p);
  }
  static const char *const VALID[] = {"no/b.wav", "no/c.wav", "yes/d.wav"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", g_dir, VALID[i]);
    write_wav(p, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 4000 + 1000 * i);
  }
  snprintf(p, sizeof p, "%s/validation_list.txt", g_dir);
  fuzz_write_file(p, "no/c.wav\n", 9);
  snprintf(p, sizeof p, "%s/testing_list.txt", g_dir);
  fuzz_write_file(p, "yes/d.wav\n", 10);
  snprintf(g_clip, sizeof g_clip, "%s/yes/a.wav", g_dir);
  snprintf(g_noise, sizeof g_noise, "%s/_background_noise_/noise.wav", g_dir);
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write_file(g_clip, data, size);
  fuzz_write_file(g_noise, data, size);
  float *x = NULL;
  int n = 0;
  nas_err e = {0};
  int rc = nas_wav_read(g_clip, &x, &n, &e);
  fuzz_check_err(rc, &e, "nas_wav_read");
  if (rc == NAS_OK) {
    if (n < 1 || !x) FUZZ_FAIL("nas_wav_read: %d samples", n);
    for (int i = 0; i < n; i++)
      if (!(x[i] >= -1.0f && x[i] <= 1.0f)) FUZZ_FAIL("sample %d is %g, outside [-1, 1]", i, (double)x[i]);
  }
  free(x);
  nas_speech_opts o;
  nas_speech_opts_default(&o);
  o.task = 12;
  o.cache_dir = NULL;
  o.aug_n = 1;
  nas_data d;
  memset(&d, 0, sizeof d);
  nas_speech_stats st;
  nas_err e2 = {0};
  rc = nas_speech_load_dir(g_dir, &o, &d, &st, &e2);
  fuzz_check_err(rc, &e2, "nas_speech_load_dir");
  if (rc == NAS_OK) {
    for (size_t i = 0; i < (size_t)d.train.n * d.train.h * d.train.w * d.train.c; i++)
      if (!isfinite(d.train.x[i])) FUZZ_FAIL("non-finite training feature %zu", i);
  }
  nas_data_free(&d);
  return 0;
}
