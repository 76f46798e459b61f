/* train/ops_list.h: the one list of training ops. Every other per-op list is expanded from it:
 * enum nas_op (train/ops.h), the declarations of the op functions (train/ops_impl.h) and the
 * op table with the names (train/ops.c), so they cannot drift apart.
 *
 * Each line is NAS_OP(ID, fn, min_in, max_in):
 *   ID      the enum value NAS_OP_<ID>; lines are in enum order. Op ids are not written to any
 *           file (checkpoints store tensors by node name), but append new ops at the end anyway
 *           so that ids stay stable.
 *   fn      the op's name ("conv2d", nas_op_name) and the prefix of its three functions in
 *           train/ops_*.c: fn_infer (shape inference), fn_forward, fn_backward. A missing
 *           function is a link error.
 *   min_in, max_in  the input counts the op accepts (at most NAS_MAX_INPUTS).
 * Adding an op: one line here, its three functions, its documentation in ops.h and a case in
 * tests/test_gradcheck.c (that test fails while an op has none).
 *
 * Deliberately without an include guard: the includer defines NAS_OP(ID, fn, min_in, max_in)
 * first; the macro is undefined at the end of this file. */
NAS_OP(CONV2D, conv2d, 2, 3)
NAS_OP(DWCONV2D, dwconv2d, 2, 3)
NAS_OP(DENSE, dense, 2, 3)
NAS_OP(ADD, add, 2, 2)
NAS_OP(BATCHNORM, batchnorm, 5, 5)
NAS_OP(RELU, relu, 1, 1)
NAS_OP(RELU6, relu6, 1, 1)
NAS_OP(MAXPOOL, maxpool, 1, 1)
NAS_OP(AVGPOOL, avgpool, 1, 1)
NAS_OP(GAP, gap, 1, 1)
NAS_OP(RESHAPE, reshape, 1, 1)
NAS_OP(DROPOUT, dropout, 1, 1)
NAS_OP(SOFTMAX_XENT, softmax_xent, 2, 2)
NAS_OP(LSTM, lstm, 3, 6)
NAS_OP(GRU, gru, 3, 5)
NAS_OP(FAKEQUANT, fakequant, 1, 2)
NAS_OP(ALPHA_BLEND, alpha_blend, 2, 2)
NAS_OP(MASK_MUL, mask_mul, 2, 2)
NAS_OP(MIX, mix, 2, NAS_MAX_INPUTS)
NAS_OP(CHANPAD, chanpad, 1, 1)
NAS_OP(WINO_WT, wino_wt, 2, 2)
NAS_OP(WINO_IN, wino_in, 2, 2)
NAS_OP(WINO_MUL, wino_mul, 2, 2)
NAS_OP(WINO_OUT, wino_out, 2, 3)
NAS_OP(SQUARE, square, 1, 1)
NAS_OP(EXP, exp, 1, 1)
NAS_OP(LRT, lrt, 2, 2)
NAS_OP(SVDO_W, svdo_w, 2, 2)
NAS_OP(SVDO_KL, svdo_kl, 2, 3)
#undef NAS_OP
