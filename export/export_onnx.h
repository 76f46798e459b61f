/* export/export_onnx.h: writes a trained network (train/net.h) as an ONNX model (IR version 8,
 * default-domain opset 13), float32 or QDQ int8. The protobuf is encoded with protobuf-c using
 * the C bindings generated at build time from the onnx.proto of Debian's python3-onnx
 * (${build}/gen/onnx.pb-c.h); nothing is hand-encoded.
 *
 * Graph (both variants): input "input" float [N,H,W,C] (NHWC as the arch; N is the symbolic
 * dimension "N", so any batch runs) -> Transpose to NCHW -> the layers -> output "logits"
 * float [N,classes]. Lowering of the tape:
 *   conv/pwconv + batch-norm -> Conv with the batch-norm folded (train/quant.h nas_fold_bn),
 *     weights [Cout,KH,KW,Cin] transposed to OIHW; dwconv -> Conv with group = C, weights
 *     [C,1,KH,KW]; pads [top,left,bottom,right] from the TF 'same' rule (the extra row or
 *     column goes after, as TensorFlow); a batch-norm after anything else ->
 *     BatchNormalization;
 *   ReLU -> Relu, ReLU6 -> Clip(0,6) (fused batch-norm activations likewise);
 *   maxpool/avgpool -> MaxPool / AveragePool (count_include_pad 0, as our op and TFLite);
 *   gap -> GlobalAveragePool + Flatten; flatten -> Transpose back to NHWC (skipped when H=W=1)
 *     + Flatten, so the flat order is the engine's NHWC order; fc -> Gemm (transB = 1), a
 *     spatial input to fc is flattened the same way; add -> Add; dropout is dropped.
 *   lstm/gru and other reshapes are refused naming the layer.
 * QDQ variant: the input and every quantisation point of train/quant.h (nas_quant_points:
 * layer outputs after their fused activation, adds, logits) get QuantizeLinear ->
 * DequantizeLinear with the calibrated int8 scale/zero point (nas_q_choose); conv weights are
 * int8 per output channel (axis 0, symmetric, nas_q_weights), fc weights int8 per tensor, and
 * biases int32 with scale input_scale * weight_scale, each through DequantizeLinear, so the
 * parameters are the ones the int8 deployment (deploy/lower.h) uses.
 * Ownership: the net (and calibration) are only read; the caller frees *buf (free()). */
#ifndef NAS_EXPORT_EXPORT_ONNX_H
#define NAS_EXPORT_EXPORT_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "train/net.h"
#include "train/quant.h"

/* Float model. The network must have been trained or built; batch-norm uses its running
 * statistics (eval mode). Errors name the layer (unsupported ops) or the file (NAS_EIO). */
int nas_onnx_export_float(const nas_net *net, const char *path, nas_err *e);
/* QDQ int8 model from a calibration of the same net (nas_calibrate). */
int nas_onnx_export_qdq(const nas_net *net, const nas_calib *c, const char *path, nas_err *e);

/* In-memory variants (c == NULL: float). */
int nas_onnx_export_mem(const nas_net *net, const nas_calib *c, uint8_t **buf, size_t *len,
                        nas_err *e);

#endif
