/* deploy/tflite_schema.h: the one description of TFLite's flatbuffer schema (schema v3,
 * tensorflow/lite/schema/schema.fbs) that both the reader (deploy/tflite_read.c) and the writer
 * (export/export_tflite.c) use: the field ids (vtable slots) of the tables they touch, the
 * BuiltinOptions union members, and one entry per supported builtin operator with the version
 * the writer records and its options table, field by field.
 *
 * A field id is the index of the field's u16 slot in a table's vtable (slot 4 + 2 * id bytes
 * from the vtable start). Nothing here allocates; the operator table is static and read-only. */
#ifndef NAS_DEPLOY_TFLITE_SCHEMA_H
#define NAS_DEPLOY_TFLITE_SCHEMA_H

#include <stddef.h>

/* table Model */
enum { NAS_TFS_MODEL_VERSION = 0, NAS_TFS_MODEL_OPCODES = 1, NAS_TFS_MODEL_SUBGRAPHS = 2,
       NAS_TFS_MODEL_DESCRIPTION = 3, NAS_TFS_MODEL_BUFFERS = 4 };
/* table OperatorCode (builtin_code wins over deprecated_builtin_code, which stops at 127) */
enum { NAS_TFS_OC_DEPRECATED_BUILTIN = 0, NAS_TFS_OC_CUSTOM = 1, NAS_TFS_OC_VERSION = 2,
       NAS_TFS_OC_BUILTIN = 3 };
/* table SubGraph */
enum { NAS_TFS_SG_TENSORS = 0, NAS_TFS_SG_INPUTS = 1, NAS_TFS_SG_OUTPUTS = 2,
       NAS_TFS_SG_OPERATORS = 3, NAS_TFS_SG_NAME = 4 };
/* table Tensor */
enum { NAS_TFS_T_SHAPE = 0, NAS_TFS_T_TYPE = 1, NAS_TFS_T_BUFFER = 2, NAS_TFS_T_NAME = 3,
       NAS_TFS_T_QUANT = 4, NAS_TFS_T_IS_VARIABLE = 5, NAS_TFS_T_SPARSITY = 6 };
/* table QuantizationParameters */
enum { NAS_TFS_Q_SCALE = 2, NAS_TFS_Q_ZERO_POINT = 3, NAS_TFS_Q_DETAILS_TYPE = 4,
       NAS_TFS_Q_QDIM = 6 };
/* table Operator */
enum { NAS_TFS_OP_OPCODE = 0, NAS_TFS_OP_INPUTS = 1, NAS_TFS_OP_OUTPUTS = 2,
       NAS_TFS_OP_OPT_TYPE = 3, NAS_TFS_OP_OPT = 4, NAS_TFS_OP_INTERMEDIATES = 8 };
/* table Buffer */
enum { NAS_TFS_BUF_DATA = 0 };
/* union BuiltinOptions: the member types (the value stored in Operator.builtin_options_type) */
enum nas_tfs_opt { NAS_TFS_OPT_NONE = 0, NAS_TFS_OPT_CONV2D = 1, NAS_TFS_OPT_DWCONV2D = 2,
                   NAS_TFS_OPT_POOL2D = 5, NAS_TFS_OPT_FC = 8, NAS_TFS_OPT_SOFTMAX = 9,
                   NAS_TFS_OPT_CONCAT = 10, NAS_TFS_OPT_ADD = 11, NAS_TFS_OPT_RESHAPE = 17,
                   NAS_TFS_OPT_MUL = 21, NAS_TFS_OPT_SUB = 28, NAS_TFS_OPT_STRIDED_SLICE = 32,
                   NAS_TFS_OPT_UNI_LSTM = 71 };

/* How an options field maps onto the graph's operator (deploy/graph8.h nas_g8_op). */
enum nas_tfs_ftype {
  NAS_TFS_BYTE,  /* byte enum (Padding, ActivationFunctionType) <-> an int member; read signed */
  NAS_TFS_I32,   /* int <-> an int member */
  NAS_TFS_F32,   /* float <-> a float member */
  NAS_TFS_ZERO,  /* byte written as 0 and required to be 0 when read (FC weights_format DEFAULT,
                    the LSTM's hybrid and diagonal flags, STRIDED_SLICE's offset) */
  NAS_TFS_SHAPE  /* [int] written from the output tensor's shape, ignored when read (new_shape) */
};

typedef struct nas_tfs_field {
  int id;            /* field id in the options table */
  int type;          /* enum nas_tfs_ftype */
  size_t member;     /* offsetof(nas_g8_op, member) for BYTE, I32, F32 */
  int def;           /* schema default when the field is absent (BYTE, I32, F32) */
  int bounded;       /* 1: a stride, filter size or dilation, accepted in 0..4096 */
  const char *name;  /* schema.fbs field name */
} nas_tfs_field;

#define NAS_TFS_MAXFIELDS 7

/* A builtin operator the int8 graph supports. Fields are listed by id; the writer emits the
 * 4-byte fields first and the byte fields after them, each group by id (the order flatc's
 * generated builders use), which fixes the exported bytes. */
typedef struct nas_tfs_op {
  int code;          /* BuiltinOperator (= enum nas_g8_opkind) */
  int version;       /* the operator version written for its int8 kernel */
  int options;       /* enum nas_tfs_opt; NAS_TFS_OPT_NONE when the op has no options table */
  int required;      /* 1: a model without the options table is refused */
  int nfields;
  nas_tfs_field fields[NAS_TFS_MAXFIELDS];
} nas_tfs_op;

/* The entry of a builtin operator code; NULL when the int8 graph does not support it. */
const nas_tfs_op *nas_tfs_op_find(int code);

#endif
