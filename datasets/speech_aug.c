/* datasets/speech_aug.c: waveform augmentation of Speech Commands clips (time shift and
 * background-noise mixing) and the augmented feature variants of the training clips that
 * nas_speech_load_dir caches and the trainer samples from (rules in speech.h). */
#include "core/hash.h"
#include "datasets/speech_impl.h"

#include <math.h>
#include <string.h>

#define AUG_MAX_VARIANTS 64    /* largest aug_n accepted */
#define AUG_MAX_SHIFT_MS 1000  /* largest shift_ms accepted (the clip length) */

void nas_speech_augment(const float *clip, float *out, const nas_speech_aug *a,
                        const nas_speech_noise *nz, nas_rng *r) {
  int max = a->shift_ms > 0 ? a->shift_ms * NAS_SPEECH_RATE / 1000 : 0;
  if (max >= NAS_SPEECH_CLIP) max = NAS_SPEECH_CLIP - 1;
  int shift = max ? (int)nas_rng_below(r, (uint32_t)(2 * max + 1)) - max : 0;
  for (int i = 0; i < NAS_SPEECH_CLIP; i++) {
    int s = i - shift;
    out[i] = s >= 0 && s < NAS_SPEECH_CLIP ? clip[s] : 0.0f;
  }
  if (!nz || nz->n == 0) return;
  if (!(nas_rng_uniform(r) < a->noise_prob)) return;
  int k = (int)nas_rng_below(r, (uint32_t)nz->n);
  int off = (int)nas_rng_below(r, (uint32_t)(nz->len[k] - NAS_SPEECH_CLIP + 1));
  float g = nas_rng_uniform(r) * a->noise_volume;
  const float *x = nz->x[k] + off;
  for (int i = 0; i < NAS_SPEECH_CLIP; i++) {
    float v = out[i] + g * x[i];
    out[i] = v > 1.0f ? 1.0f : (v < -1.0f ? -1.0f : v);
  }
}

int speech_aug_check(const char *dir, const nas_speech_opts *o, nas_err *e) {
  if (o->aug_n < 0 || o->aug_n > AUG_MAX_VARIANTS)
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: aug %d out of range 0..%d", dir,
                    o->aug_n, AUG_MAX_VARIANTS);
  if (o->aug_n == 0) return NAS_OK;
  if (!(o->aug.noise_prob >= 0.0f && o->aug.noise_prob <= 1.0f))
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: aug_noise %g out of range 0..1", dir,
                    (double)o->aug.noise_prob);
  if (!(o->aug.noise_volume >= 0.0f && o->aug.noise_volume <= 1.0f))
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: aug_volume %g out of range 0..1", dir,
                    (double)o->aug.noise_volume);
  if (o->aug.shift_ms < 0 || o->aug.shift_ms > AUG_MAX_SHIFT_MS)
    return nas_errf(e, NAS_EINVAL, "speech-commands %s: aug_shift_ms %d out of range 0..%d", dir,
                    o->aug.shift_ms, AUG_MAX_SHIFT_MS);
  return NAS_OK;
}

uint64_t speech_aug_key(const nas_speech_opts *o, uint64_t key) {
  int32_t iv[2] = {o->aug_n, o->aug.shift_ms};
  float fv[2] = {o->aug.noise_prob, o->aug.noise_volume};
  key = nas_fnv1a(key, "aug", 3);
  key = nas_fnv1a(key, iv, sizeof iv);
  key = nas_fnv1a(key, fv, sizeof fv);
  return nas_fnv1a(key, &o->aug_seed, sizeof o->aug_seed);
}

void speech_aug_variants(const nas_speech_opts *o, const nas_speech_noise *nz, nas_feat *fx,
                         int clip, const float *wave, float *scratch, float *out) {
  int frames, width;
  nas_feat_shape(fx, &frames, &width);
  size_t fs = (size_t)frames * width;
  /* one stream per clip: the variants of a clip do not depend on which others exist */
  uint64_t seed = nas_fnv1a(NAS_FNV_OFFSET, &o->aug_seed, sizeof o->aug_seed);
  int32_t c = clip;
  seed = nas_fnv1a(seed, &c, sizeof c);
  nas_rng r;
  nas_rng_seed(&r, seed);
  for (int v = 0; v < o->aug_n; v++) {
    nas_speech_augment(wave, scratch, &o->aug, nz, &r);
    nas_feat_compute(fx, scratch, out + fs * (size_t)v);
  }
}
