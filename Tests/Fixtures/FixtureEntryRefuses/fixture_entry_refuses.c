/* entry_refuses: its entry returns NULL, as a plugin does for a host it cannot run on. */
#include "occur_plugin.h"

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
    return 0;
}
