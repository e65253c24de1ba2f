/* noop: accepts every event and does nothing — the dispatcher benchmark's sink. */
#include "fixture_trivial.h"

TRIVIAL_PLUGIN("noop", sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
               "does nothing")
