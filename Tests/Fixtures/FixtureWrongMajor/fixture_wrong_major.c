/* wrong_major: built for a newer major ABI; the host must refuse it. */
#include "fixture_trivial.h"

TRIVIAL_PLUGIN("wrong_major", sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR + 1, 0,
               "refused: other major version")
