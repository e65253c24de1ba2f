/* newer_minor: needs a newer minor ABI than the host has; the host must refuse it. */
#include "fixture_trivial.h"

TRIVIAL_PLUGIN("newer_minor", sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR,
               OCCUR_PLUGIN_ABI_MINOR + 1, "refused: newer minor version")
