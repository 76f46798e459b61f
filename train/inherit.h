/* train/inherit.h: weight inheritance for network morphisms (a child architecture derived
 * from a trained parent: wider, deeper, another kernel, more pruning), so that the child is
 * fine-tuned from the parent's weights instead of trained from scratch.
 *
 * Layers are aligned in order by op (greedy: a child layer whose op differs from the next
 * parent layer's is an inserted layer; a parent layer left over is dropped). For an aligned
 * pair every tensor of the child ("l<j>.<part>.<tensor>") takes the parent's
 * ("l<i>.<part>.<tensor>") wherever the shapes overlap:
 *   - output channels the parent had: copied; new ones keep the child's initialisation;
 *   - input channels the parent's input did not have: 0, so the new channels of the layer
 *     before contribute nothing yet (function-preserving widening, trained from there);
 *   - kernel taps: centred; taps added by a larger kernel are 0 (a "same"-padded conv with an
 *     odd kernel computes the same), a smaller kernel keeps the centre;
 *   - fully connected after flatten: per spatial position, by channel (when the position count
 *     is unchanged);
 *   - pruning masks as their weights (new entries 1), batch-norm statistics as their channels.
 * An inserted conv, pwconv, dwconv or dsconv with as many output as input channels, stride 1
 * and "same" padding starts as the identity in eval mode (centre tap 1, batch-norm scale
 * sqrt(1 + eps)); other inserted layers keep their initialisation.
 * Ownership: both networks are the caller's; only the child's values change. */
#ifndef NAS_TRAIN_INHERIT_H
#define NAS_TRAIN_INHERIT_H

#include "core/error.h"
#include "train/net.h"

typedef struct nas_inherit_stats {
  long long copied;     /* child parameter values taken from the parent */
  long long total;      /* child parameter values */
  int matched, inserted, dropped; /* aligned layer pairs, child-only layers, parent-only layers */
  int identity;         /* inserted layers initialised as the identity */
} nas_inherit_stats;

/* Copies parent's weights into child as described above. s may be NULL. Errors: out of
 * memory, or canonical arch JSON that does not parse (NAS_EINVAL). */
int nas_net_inherit(nas_net *child, const nas_net *parent, nas_inherit_stats *s, nas_err *e);

#endif
