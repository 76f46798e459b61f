/* train/ops.h: the op table. Each op is one entry {name, inputs, shape inference, forward,
 * backward}; forward and backward are written side by side in train/ops_*.c. The enum, the
 * table and the names are all expanded from the one list in train/ops_list.h, so they cannot
 * drift; tests/test_ops_table.c checks every slot and tests/test_gradcheck.c has a gradient
 * case (or names the test that checks it) for every op.
 *
 * Inputs and parameters per op (x: [N,H,W,C] unless stated):
 *   CONV2D     x, w:[Cout,KH,KW,Cin], b:[Cout] (b optional); kh,kw,sh,sw,padding.
 *              im2row into the shared scratch + one sgemm over the whole batch.
 *   DWCONV2D   x, w:[KH,KW,C], b:[C] (optional); kh,kw,sh,sw,padding. Own kernel,
 *              vectorised over channels.
 *   DENSE      x:[N,K] (any per-sample shape is read as flat), w:[M,K], b:[M] (optional).
 *   ADD        a, b of equal shape.
 *   BATCHNORM  x:[N,...,C], gamma:[C], beta:[C], running_mean:[C], running_var:[C] (state);
 *              eps, momentum. Training: batch statistics (biased variance for the
 *              normalisation, unbiased for the running update, as PyTorch); eval: running.
 *   RELU, RELU6 x.
 *   MAXPOOL, AVGPOOL x; kh,kw,sh,sw,padding (avg excludes padding from the count, as TFLite).
 *   GAP        x:[N,H,W,C] -> [N,C].
 *   RESHAPE    x; p.nd/p.d: per-sample target shape (flatten: nd = 1).
 *   DROPOUT    x; rate (inverted dropout; identity in eval mode).
 *   SOFTMAX_XENT logits:[N,K], labels:[N] (class index stored as float) -> [1] mean loss.
 *   LSTM       x:[N,T,F] (batch first), w_ih:[4H,F], w_hh:[4H,H], b_ih:[4H], b_hh:[4H] (both
 *              biases or neither); PyTorch's gate order i,f,g,o and layout; zero initial
 *              state. p.kh = 1: output every step [N,T,H]; p.kh = 0: last step only [N,H].
 *              Fused, backprop through time (train/ops_rnn.c): one sgemm for the input
 *              projection of all steps, one per step for the recurrent part.
 *              QAT: p.kw = 1 and a last input ranges:[6] (STATE {h lo, hi, set, c lo, hi,
 *              set}, EMA decay p.momentum): fake quantisation inside the cell at the points
 *              of deploy/'s integer LSTM (gate pre-activations, int16 cell state, int8 hidden
 *              state), straight-through gradients (train/ops_rnn.c).
 *   GRU        as LSTM with 3 gates r,z,n (w_ih:[3H,F], w_hh:[3H,H], b_ih, b_hh:[3H]) and
 *              PyTorch's formulation n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
 *              h' = (1 - z) * n + z * h.
 *   FAKEQUANT  int8 fake quantisation with a straight-through estimator (train/ops_quant.c).
 *              Weights: w (unbatched); p.kh = channel axis of the per-channel symmetric scales
 *              (-1: per tensor). Activations: x, range:[3] (STATE lo, hi, initialised);
 *              asymmetric, range tracked by EMA of batch min/max in training (decay
 *              p.momentum, 0.99 when 0); p.kw = 1: use the range without updating it.
 *              With p.bits (2..16, 0 = 8): weights keep their max-abs scale at 2^(bits-1)-1
 *              levels; p.qmode (enum nas_fq_mode) NAS_FQ_POW2: one power-of-two scale for the
 *              tensor (magnitude limit p.qlim; a flex layer's At and Bt tables), NAS_FQ_WIDE:
 *              the max-abs scale widened by 1025/1024 (Winograd U, train/wino.h); activations
 *              with p.bits > 0 are
 *              symmetric, scale max(|lo|,|hi|)/(2^(bits-1)-1), zero point 0 (the Winograd-
 *              domain tensors V and M).
 *   ALPHA_BLEND w, alpha:[1] (STATE); (1-alpha)*w + alpha*q(w), q as FAKEQUANT weights (axis
 *              p.kh); gradient (1-alpha)*dy only (alpha-blending, no STE).
 *   MASK_MUL, MIX, CHANPAD  DNAS supernet gates (channel/kernel masks, weighted mixtures,
 *              channel zero-padding); see train/ops_dnas.c. MASK_MUL with a STATE mask of the
 *              weight's shape (or [C] on batch-norm gamma/beta and on a consumer's input
 *              channels) is also the pruning mask of train/prune.h.
 *   WINO_WT, WINO_IN, WINO_MUL, WINO_OUT  a Winograd convolution (3x3, stride 1) in four
 *              steps (train/ops_wino.c; transforms in train/wino.h): U [P,Co,Ci] = G w G^T from
 *              w [Co,3,3,Ci] and G [alpha,3]; V [N,P,T,Ci] = Bt d Bt^T of every input tile d
 *              (x [N,H,W,Ci], Bt [alpha,alpha]; p.padding; the pad and the output size, p.d[0..1],
 *              derived); M [N,P,T,Co] = sum over Ci of V U; y [N,OH,OW,Co] = At M At^T per tile
 *              (At [m,alpha]; p.d = {OH, OW}), cropped, plus the optional bias [Co]. P = alpha^2,
 *              T = ceil(OH/m)*ceil(OW/m) tiles, m = alpha - 2. p.bits of WINO_IN / WINO_MUL:
 *              the bit width that QAT and the lowering give V and M.
 *   SQUARE, EXP, LRT, SVDO_W, SVDO_KL  Sparse Variational Dropout with the local
 *              reparameterisation trick (train/ops_svdo.c, train/prune.h).
 */
#ifndef NAS_TRAIN_OPS_H
#define NAS_TRAIN_OPS_H

#include "train/graph.h"

/* Scale of a weight FAKEQUANT (p.qmode). */
enum nas_fq_mode {
  NAS_FQ_MAXABS = 0, /* per channel (or tensor): max|w| / (2^(bits-1)-1) */
  NAS_FQ_POW2 = 1,   /* per tensor: a power of two, |q| <= p.qlim (train/wino.h nas_wino_pow2) */
  NAS_FQ_WIDE = 2    /* per channel: max|w| / (2^(bits-1)-1) * NAS_WINO_UWIDE */
};

enum nas_op {
#define NAS_OP(ID, fn, min_in, max_in) NAS_OP_##ID,
#include "train/ops_list.h"
  NAS_OP_COUNT
};

typedef struct nas_op_def {
  const char *name;  /* e.g. "conv2d" */
  int min_in, max_in;/* accepted input counts */
  /* Sets nd->shape, nd->batched, nd->saved_bytes, nd->scratch_bytes; checks input shapes.
   * Returns NAS_OK or NAS_EINVAL with e naming the problem. */
  int (*infer)(nas_graph *g, nas_node *nd, nas_err *e);
  void (*forward)(nas_graph *g, nas_node *nd);
  /* Adds the gradient of nd into the grad of every input that has one. */
  void (*backward)(nas_graph *g, nas_node *nd);
} nas_op_def;

/* NAS_OP_COUNT entries, indexed by enum nas_op. Declared without a size so that the static
 * assert beside the definition (train/ops.c) compares the initialiser's own length. */
extern const nas_op_def nas_op_table[];

/* Returns the op's name, or "?" for an out-of-range value. */
const char *nas_op_name(int op);

/* Output size along one spatial axis for a window k, stride s; sets *pad_before. Returns
 * the output size, or <= 0 when the window does not fit. */
int nas_conv_out_size(int in, int k, int s, int padding, int *pad_before);

#endif
