/* deploy/tflite_schema.c: the supported builtin operators with their options tables (see
 * tflite_schema.h); field ids and defaults follow schema.fbs, versions are those TFLite
 * registers for the int8 kernels. */
#include "deploy/tflite_schema.h"

#include <stddef.h>

#include "deploy/graph8.h"

#define M(x) offsetof(nas_g8_op, x)
#define PADDING {0, NAS_TFS_BYTE, M(padding), 0, 0, "padding"}
#define STRIDE_W {1, NAS_TFS_I32, M(stride_w), 0, 1, "stride_w"}
#define STRIDE_H {2, NAS_TFS_I32, M(stride_h), 0, 1, "stride_h"}

static const nas_tfs_op OPS[] = {
    {NAS_G8_ADD, 2, NAS_TFS_OPT_ADD, 0, 1,
     {{0, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"}}},
    {NAS_G8_AVERAGE_POOL_2D, 2, NAS_TFS_OPT_POOL2D, 1, 6,
     {PADDING, STRIDE_W, STRIDE_H, {3, NAS_TFS_I32, M(filter_w), 0, 1, "filter_width"},
      {4, NAS_TFS_I32, M(filter_h), 0, 1, "filter_height"},
      {5, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"}}},
    {NAS_G8_CONV_2D, 3, NAS_TFS_OPT_CONV2D, 1, 6,
     {PADDING, STRIDE_W, STRIDE_H, {3, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"},
      {4, NAS_TFS_I32, M(dil_w), 1, 1, "dilation_w_factor"},
      {5, NAS_TFS_I32, M(dil_h), 1, 1, "dilation_h_factor"}}},
    {NAS_G8_DEPTHWISE_CONV_2D, 3, NAS_TFS_OPT_DWCONV2D, 1, 7,
     {PADDING, STRIDE_W, STRIDE_H, {3, NAS_TFS_I32, M(depth_mult), 0, 0, "depth_multiplier"},
      {4, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"},
      {5, NAS_TFS_I32, M(dil_w), 1, 1, "dilation_w_factor"},
      {6, NAS_TFS_I32, M(dil_h), 1, 1, "dilation_h_factor"}}},
    {NAS_G8_FULLY_CONNECTED, 4, NAS_TFS_OPT_FC, 0, 2,
     {{0, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"},
      {1, NAS_TFS_ZERO, 0, 0, 0, "weights_format"}}},
    {NAS_G8_MAX_POOL_2D, 2, NAS_TFS_OPT_POOL2D, 1, 6,
     {PADDING, STRIDE_W, STRIDE_H, {3, NAS_TFS_I32, M(filter_w), 0, 1, "filter_width"},
      {4, NAS_TFS_I32, M(filter_h), 0, 1, "filter_height"},
      {5, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"}}},
    {NAS_G8_RESHAPE, 1, NAS_TFS_OPT_RESHAPE, 0, 1, {{0, NAS_TFS_SHAPE, 0, 0, 0, "new_shape"}}},
    {NAS_G8_SOFTMAX, 2, NAS_TFS_OPT_SOFTMAX, 0, 1, {{0, NAS_TFS_F32, M(beta), 0, 0, "beta"}}},
    {NAS_G8_QUANTIZE, 2, NAS_TFS_OPT_NONE, 0, 0, {{0, 0, 0, 0, 0, NULL}}},
    /* the recurrent layers' operators (deploy/lower_rnn.c) */
    {NAS_G8_CONCATENATION, 2, NAS_TFS_OPT_CONCAT, 1, 2,
     {{0, NAS_TFS_I32, M(axis), 0, 0, "axis"},
      {1, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"}}},
    {NAS_G8_LOGISTIC, 2, NAS_TFS_OPT_NONE, 0, 0, {{0, 0, 0, 0, 0, NULL}}},
    {NAS_G8_MUL, 2, NAS_TFS_OPT_MUL, 0, 1,
     {{0, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"}}},
    {NAS_G8_TANH, 2, NAS_TFS_OPT_NONE, 0, 0, {{0, 0, 0, 0, 0, NULL}}},
    {NAS_G8_SUB, 2, NAS_TFS_OPT_SUB, 0, 1,
     {{0, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"}}},
    {NAS_G8_UNIDIRECTIONAL_SEQUENCE_LSTM, 1, NAS_TFS_OPT_UNI_LSTM, 1, 6,
     {{0, NAS_TFS_BYTE, M(act), 0, 0, "fused_activation_function"},
      {1, NAS_TFS_F32, M(cell_clip), 0, 0, "cell_clip"},
      {2, NAS_TFS_F32, M(proj_clip), 0, 0, "proj_clip"},
      {3, NAS_TFS_BYTE, M(time_major), 0, 0, "time_major"},
      {4, NAS_TFS_ZERO, 0, 0, 0, "asymmetric_quantize_inputs"},
      {5, NAS_TFS_ZERO, 0, 0, 0, "diagonal_recurrent_tensors"}}},
    {NAS_G8_STRIDED_SLICE, 2, NAS_TFS_OPT_STRIDED_SLICE, 0, 6,
     {{0, NAS_TFS_I32, M(begin_mask), 0, 0, "begin_mask"},
      {1, NAS_TFS_I32, M(end_mask), 0, 0, "end_mask"},
      {2, NAS_TFS_I32, M(ellipsis_mask), 0, 0, "ellipsis_mask"},
      {3, NAS_TFS_I32, M(new_axis_mask), 0, 0, "new_axis_mask"},
      {4, NAS_TFS_I32, M(shrink_axis_mask), 0, 0, "shrink_axis_mask"},
      {5, NAS_TFS_ZERO, 0, 0, 0, "offset"}}},
};

const nas_tfs_op *nas_tfs_op_find(int code) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
    if (OPS[i].code == code) return &OPS[i];
  return NULL;
}
