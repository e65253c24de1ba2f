/* small_struct: claims a descriptor that ends before create; the host must refuse it. */
#include "fixture_trivial.h"

TRIVIAL_PLUGIN("small_struct", offsetof(occur_plugin_descriptor, create), OCCUR_PLUGIN_ABI_MAJOR,
               OCCUR_PLUGIN_ABI_MINOR, "refused: struct_size too small")
