/* datasets/cifar.h: the CIFAR-10 binary reader (spec `cifar10:DIR`): the standard layout of
 * data_batch_1.bin .. data_batch_5.bin (training) and test_batch.bin (test), each a sequence
 * of 3,073-byte records: one label byte (0..9), then 1,024 red, 1,024 green and 1,024 blue
 * bytes of a 32x32 image, rows top to bottom. Samples become NHWC [32,32,3].
 * Split, train_limit and normalisation follow nas_data_load (datasets/dataset.h): the last
 * floor(n * val_frac) of the shuffled training records are the validation split; one mean and
 * std of pixel/255 over every channel of the final training set.
 * Errors name the file and the record: a missing file, a size that is not a whole number of
 * records ("truncated after record N"), an empty file, a label above 9. */
#ifndef NAS_DATASETS_CIFAR_H
#define NAS_DATASETS_CIFAR_H

#include "datasets/dataset.h"

#define NAS_CIFAR_RECORD 3073  /* bytes per record: label + 3 x 32 x 32 */
#define NAS_CIFAR_TRAIN_FILES 5 /* data_batch_1.bin .. data_batch_5.bin */

/* Loads DIR (what follows "cifar10:") into d with the options of o (o->spec names the set in
 * messages). */
int nas_cifar_load(const char *dir, const nas_data_opts *o, nas_data *d, nas_err *e);

#endif
