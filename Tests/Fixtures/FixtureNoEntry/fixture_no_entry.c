/* no_entry: a shared library without occur_plugin_entry; the host must refuse it. */
#include "occur_plugin.h"

OCCUR_PLUGIN_EXPORT int occur_plugin_entry_misspelt(void) { return 0; }
