/* latency/tflm_cmsis.c: the CMSIS-NN function TFLM's cmsis_nn kernels call for each int8
 * operator, and the scratch buffer they request (latency/tflm.h). The dispatch conditions
 * are those of CMSIS-NN's arm_convolve_wrapper_s8 / arm_depthwise_conv_wrapper_s8 and of
 * TFLM's kernels/cmsis_nn/{conv,depthwise_conv,fully_connected,pooling,add,softmax}.cc. */
#include <string.h>

#include "latency/tflm.h"

static const char *const entry_names[NAS_TFLM_NPATH] = {
    "arm_convolve_1x1_s8_fast", "arm_convolve_1x1_s8", "arm_convolve_1_x_n_s8",
    "arm_convolve_s8", "arm_depthwise_conv_3x3_s8", "arm_depthwise_conv_s8_opt",
    "arm_depthwise_conv_s8", "arm_fully_connected_s8", "arm_fully_connected_per_channel_s8",
    "arm_convolve_1x1_s8_fast", "arm_avgpool_s8", "arm_max_pool_s8", "arm_elementwise_add_s8",
    "arm_softmax_s8", "", ""};
static const char *const path_names[NAS_TFLM_NPATH] = {
    "conv_1x1_fast", "conv_1x1", "conv_1xn", "conv_s8", "dw_3x3", "dw_opt", "dw_s8", "fc",
    "fc_per_channel", "fc_1x1", "avgpool", "maxpool", "add", "softmax", "reshape", "quantize"};

const char *nas_tflm_path_entry(int path) {
  return path >= 0 && path < NAS_TFLM_NPATH ? entry_names[path] : NULL;
}

const char *nas_tflm_path_name(int path) {
  return path >= 0 && path < NAS_TFLM_NPATH ? path_names[path] : NULL;
}

/* TFLite's ComputePaddingHeightWidth for one axis: the leading padding, and whether the
 * trailing side gets one more. */
static void tfl_pad(int pad_kind, int in, int k, int stride, int dil, int *pad, int *odd) {
  const int eff = (k - 1) * dil + 1;
  const int out = pad_kind == NAS_G8_PAD_SAME ? (in + stride - 1) / stride
                                              : (in + stride - eff) / stride;
  int total = (out - 1) * stride + eff - in;
  if (total < 0) total = 0;
  *pad = total / 2, *odd = total % 2;
}

/* Height, width and channels of an activation tensor read as NHWC (a 2-D [n, c] is
 * 1 x n x c; other ranks: the last dimension is the channels, the rest the width). */
static void hwc(const nas_g8_tensor *t, int *h, int *w, int *c) {
  if (t->ndim == 4) {
    *h = t->dims[1], *w = t->dims[2], *c = t->dims[3];
    return;
  }
  long rest = 1;
  for (int k = 0; k + 1 < t->ndim; k++) rest *= t->dims[k];
  *h = 1, *w = (int)rest, *c = t->ndim ? t->dims[t->ndim - 1] : 1;
}

/* arm_convolve_s8_get_buffer_size (not MVE): two int16 columns of the im2col patch, the patch
 * rounded up to a multiple of 4. */
static long im2col_bytes(int k_h, int k_w, int in_c) {
  long cols = (long)k_h * k_w * in_c;
  if (cols % 4) cols += 4 - cols % 4;
  return 2 * cols * 2;
}

static void conv_path(nas_tflm_op *o) {
  const int one_by_one = o->pad_h == 0 && o->pad_w == 0 && o->k_h == 1 && o->k_w == 1 &&
                         o->dil_h == 1 && o->dil_w == 1;
  if (one_by_one) {
    o->path = o->stride_h == 1 && o->stride_w == 1 ? NAS_TFLM_CONV_1X1_FAST : NAS_TFLM_CONV_1X1;
    o->scratch = 0; /* the 1x1 fast buffer exists only for Arm Compiler 6 builds */
  } else if (o->in_h == 1 && o->dil_w == 1 && o->k_h == 1 && (o->stride_w * o->in_c) % 4 == 0) {
    o->path = NAS_TFLM_CONV_1XN;
    o->scratch = im2col_bytes(o->k_h, o->k_w, o->in_c);
  } else {
    o->path = NAS_TFLM_CONV_S8;
    o->scratch = im2col_bytes(o->k_h, o->k_w, o->in_c);
  }
}

static void dw_path(nas_tflm_op *o, unsigned flags) {
  const int plain = o->dil_h == 1 && o->dil_w == 1;
  const int k3 = o->k_h == 3 && o->k_w == 3 && o->pad_h <= 1 && o->pad_w <= 1;
  if (o->depth_mult == 1 && plain)
    o->path = k3 ? NAS_TFLM_DW_3X3 : NAS_TFLM_DW_OPT;
  else
    o->path = NAS_TFLM_DW_S8;
  /* The buffer query tests equal channel counts (not the multiplier). */
  o->scratch = 0;
  if (o->in_c == o->out_c && plain && !k3 && (flags & NAS_TFLM_DSP))
    o->scratch = (long)o->in_c * o->k_h * o->k_w * 2;
}

int nas_tflm_op_describe(const nas_g8_graph *g, int i, unsigned flags, nas_tflm_op *o,
                         nas_err *e) {
  memset(o, 0, sizeof *o);
  if (i < 0 || i >= g->nops) return nas_errf(e, NAS_EINVAL, "operator %d: out of range (%d operators)", i, g->nops);
  const nas_g8_op *op = &g->ops[i];
  const nas_g8_tensor *x = &g->tensors[op->in[0]], *y = &g->tensors[op->out];
  const char *name = nas_g8_op_name(op->kind);
  o->kind = op->kind;
  hwc(x, &o->in_h, &o->in_w, &o->in_c);
  hwc(y, &o->out_h, &o->out_w, &o->out_c);
  o->k_h = o->k_w = 1;
  o->stride_h = op->stride_h, o->stride_w = op->stride_w;
  o->dil_h = op->dil_h, o->dil_w = op->dil_w;
  o->depth_mult = op->depth_mult;
  o->out_rank = y->ndim;
  o->elems = (long long)nas_g8_numel(y);
  o->bytes = (long long)x->bytes;
  if (x->type != NAS_G8_INT8 && op->kind != NAS_G8_RESHAPE)
    return nas_errf(e, NAS_EINVAL, "operator %d (%s): only int8 inputs are modelled", i, name ? name : "?");
  switch (op->kind) {
    case NAS_G8_CONV_2D:
    case NAS_G8_DEPTHWISE_CONV_2D: {
      const nas_g8_tensor *w = &g->tensors[op->in[1]];
      o->k_h = w->dims[1], o->k_w = w->dims[2];
      o->per_channel = w->nq > 1;
      tfl_pad(op->padding, o->in_h, o->k_h, o->stride_h, o->dil_h, &o->pad_h, &o->pad_h_odd);
      tfl_pad(op->padding, o->in_w, o->k_w, o->stride_w, o->dil_w, &o->pad_w, &o->pad_w_odd);
      if (op->kind == NAS_G8_CONV_2D)
        conv_path(o);
      else
        dw_path(o, flags);
      break;
    }
    case NAS_G8_FULLY_CONNECTED: {
      const nas_g8_tensor *w = &g->tensors[op->in[1]];
      const int depth = w->dims[1], units = w->dims[0];
      o->per_channel = w->nq > 1;
      o->in_h = o->in_w = 1, o->in_c = depth;
      o->out_h = 1, o->out_c = units, o->out_w = (int)(o->elems / units);
      if (y->ndim > 2 && depth % 4 == 0) {
        o->path = NAS_TFLM_FC_1X1;
        o->scratch = o->per_channel ? 0 : (long)units * 4 * 2; /* multipliers + shifts */
      } else {
        o->path = o->per_channel ? NAS_TFLM_FC_PER_CHANNEL : NAS_TFLM_FC;
      }
      break;
    }
    case NAS_G8_AVERAGE_POOL_2D:
    case NAS_G8_MAX_POOL_2D:
      o->k_h = op->filter_h, o->k_w = op->filter_w;
      tfl_pad(op->padding, o->in_h, o->k_h, o->stride_h, 1, &o->pad_h, &o->pad_h_odd);
      tfl_pad(op->padding, o->in_w, o->k_w, o->stride_w, 1, &o->pad_w, &o->pad_w_odd);
      if (op->kind == NAS_G8_MAX_POOL_2D) {
        o->path = NAS_TFLM_MAXPOOL;
      } else {
        o->path = NAS_TFLM_AVGPOOL;
        if (flags & NAS_TFLM_DSP) o->scratch = (long)o->out_c * 4; /* int32 sums per channel */
      }
      break;
    case NAS_G8_ADD: {
      const nas_g8_tensor *x2 = &g->tensors[op->in[1]];
      if (x2->ndim != x->ndim || memcmp(x2->dims, x->dims, sizeof(int) * (size_t)x->ndim))
        return nas_errf(e, NAS_EINVAL, "operator %d (ADD): a broadcast add runs TFLM's reference kernel, which is not modelled", i);
      o->path = NAS_TFLM_ADD;
      break;
    }
    case NAS_G8_SOFTMAX:
      o->path = NAS_TFLM_SOFTMAX;
      break;
    case NAS_G8_RESHAPE:
      o->path = NAS_TFLM_RESHAPE;
      break;
    case NAS_G8_QUANTIZE:
      o->path = NAS_TFLM_QUANTIZE;
      break;
    default:
      return nas_errf(e, NAS_EINVAL, "operator %d (%s): not in TFLM's int8 resolver here", i, name ? name : "?");
  }
  return NAS_OK;
}
