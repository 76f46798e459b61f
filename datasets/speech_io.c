/* datasets/speech_io.c: the file side of the Speech Commands reader: warnings, sorted
 * directory listings, WAV decoding through libsndfile and the background-noise folder.
 * Behaviour is specified in speech.h; shared helpers are declared in speech_impl.h.
 *
 * Truncation: libsndfile opens a WAV whose data chunk is shorter than its header declares
 * and silently reads what is there; it records the mismatch in its log
 * (SFC_GET_LOG_INFO, a line "data : 32000 (should be 19956)"). A file whose data line
 * carries "should be" is treated as truncated. */
#include "datasets/speech_impl.h"
#include "core/alloc.h"

#include <dirent.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- small helpers ---- */

void speech_warnf(const nas_speech_opts *o, const char *fmt, ...) {
  if (!o->warn) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  o->warn(o->warn_user, line);
}

int speech_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_wav(const char *name) {
  size_t n = strlen(name);
  return n > 4 && strcasecmp(name + n - 4, ".wav") == 0;
}

int speech_strv_push(speech_strv *v, const char *s) {
  if (v->n == v->cap) {
    int cap = v->cap ? v->cap * 2 : 64;
    char **p = nas_realloc(v->s, sizeof(char *) * (size_t)cap);
    if (!p) return -1;
    v->s = p;
    v->cap = cap;
  }
  v->s[v->n] = nas_strdup(s);
  if (!v->s[v->n]) return -1;
  v->n++;
  return 0;
}

void speech_strv_free(speech_strv *v) {
  for (int i = 0; i < v->n; i++) free(v->s[i]);
  free(v->s);
  memset(v, 0, sizeof *v);
}

int speech_list_dir(const char *dir, int want_dirs, speech_strv *out) {
  DIR *d = opendir(dir);
  if (!d) return NAS_EIO;
  struct dirent *de;
  char path[SPEECH_PATH_CAP];
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    int is_dir = S_ISDIR(st.st_mode);
    if (want_dirs ? !is_dir : (is_dir || !ends_with_wav(de->d_name))) continue;
    if (speech_strv_push(out, de->d_name)) {
      rc = NAS_ENOMEM;
      break;
    }
  }
  closedir(d);
  if (out->n > 1) qsort(out->s, (size_t)out->n, sizeof(char *), speech_cmp_str);
  return rc;
}

/* ---- WAV ---- */

/* NAS_OK unless libsndfile's log says the data chunk is shorter than the header declares. */
static int check_truncation(SNDFILE *f, const char *path, nas_err *e) {
  char log[2048];
  log[0] = 0;
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
  for (char *l = log; l && *l;) {
    char *nl = strchr(l, '\n');
    if (nl) *nl = 0;
    if (strncmp(l, "data", 4) == 0 && strstr(l, "should be"))
      return nas_errf(e, NAS_EFORMAT, "%s: truncated (header: %s)", path, l);
    l = nl ? nl + 1 : NULL;
  }
  return NAS_OK;
}

int nas_wav_read(const char *path, float **out, int *n, nas_err *e) {
  *out = NULL;
  *n = 0;
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) return nas_errf(e, NAS_EFORMAT, "%s: not a readable sound file (%s)", path, sf_strerror(NULL));
  int type = info.format & SF_FORMAT_TYPEMASK, sub = info.format & SF_FORMAT_SUBMASK;
  int rc = NAS_OK;
  if (type != SF_FORMAT_WAV && type != SF_FORMAT_WAVEX)
    rc = nas_errf(e, NAS_EFORMAT, "%s: not a WAV file (format 0x%x)", path, (unsigned)type);
  else if (sub != SF_FORMAT_PCM_16 && sub != SF_FORMAT_PCM_S8 && sub != SF_FORMAT_PCM_U8 &&
           sub != SF_FORMAT_PCM_24 && sub != SF_FORMAT_PCM_32)
    rc = nas_errf(e, NAS_EFORMAT, "%s: not integer PCM (encoding 0x%x)", path, (unsigned)sub);
  else if (info.samplerate != NAS_SPEECH_RATE)
    rc = nas_errf(e, NAS_EFORMAT, "%s: sample rate %d Hz (expected %d)", path, info.samplerate,
                  NAS_SPEECH_RATE);
  else if (info.channels != 1)
    rc = nas_errf(e, NAS_EFORMAT, "%s: %d channels (expected mono)", path, info.channels);
  else if (info.frames <= 0)
    rc = nas_errf(e, NAS_EFORMAT, "%s: no samples", path);
  else if (info.frames > 100000000)
    rc = nas_errf(e, NAS_EFORMAT, "%s: %lld samples is too long", path, (long long)info.frames);
  if (!rc) rc = check_truncation(f, path, e);
  if (!rc) {
    float *x = nas_malloc(sizeof(float) * (size_t)info.frames);
    if (!x) {
      rc = nas_errf(e, NAS_ENOMEM, "%s: out of memory", path);
    } else {
      sf_count_t got = sf_readf_float(f, x, info.frames);
      if (got != info.frames) {
        free(x);
        rc = nas_errf(e, NAS_EFORMAT, "%s: truncated (read %lld of %lld samples)", path,
                      (long long)got, (long long)info.frames);
      } else {
        *out = x;
        *n = (int)info.frames;
      }
    }
  }
  sf_close(f);
  return rc;
}

/* ---- background noise ---- */

void nas_speech_noise_free(nas_speech_noise *nz) {
  if (!nz) return;
  for (int i = 0; i < nz->n; i++) free(nz->x[i]);
  free(nz->x);
  free(nz->len);
  memset(nz, 0, sizeof *nz);
}

int nas_speech_noise_read(const char *dir, const nas_speech_opts *o, nas_speech_noise *nz,
                          int *skipped, nas_err *e) {
  memset(nz, 0, sizeof *nz);
  speech_strv names = {0};
  int lrc = speech_list_dir(dir, 0, &names);
  if (lrc) {
    speech_strv_free(&names);
    if (lrc == NAS_ENOMEM) return nas_errf(e, NAS_ENOMEM, "%s: out of memory", dir);
    return NAS_OK; /* no noise folder: no noise */
  }
  nz->x = nas_calloc((size_t)names.n + 1, sizeof(float *));
  nz->len = nas_calloc((size_t)names.n + 1, sizeof(int));
  if (!nz->x || !nz->len) {
    speech_strv_free(&names);
    nas_speech_noise_free(nz);
    return nas_errf(e, NAS_ENOMEM, "%s: out of memory", dir);
  }
  char path[SPEECH_PATH_CAP];
  for (int i = 0; i < names.n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names.s[i]);
    nas_err we = {0};
    float *x;
    int n, wrc = nas_wav_read(path, &x, &n, &we);
    if (wrc == NAS_ENOMEM) {
      speech_strv_free(&names);
      nas_speech_noise_free(nz);
      return nas_errf(e, NAS_ENOMEM, "%s", we.msg);
    }
    if (wrc) {
      speech_warnf(o, "speech-commands: skipped %s", we.msg);
      if (skipped) (*skipped)++;
      continue;
    }
    if (n < NAS_SPEECH_CLIP) {
      speech_warnf(o, "speech-commands: skipped %s: noise shorter than 1 s (%d samples)", path, n);
      if (skipped) (*skipped)++;
      free(x);
      continue;
    }
    nz->x[nz->n] = x;
    nz->len[nz->n] = n;
    nz->n++;
  }
  speech_strv_free(&names);
  return NAS_OK;
}
