/* wrong_major: a plugin the host must refuse (descriptor: struct_size sizeof(occur_plugin_descriptor), ABI OCCUR_PLUGIN_ABI_MAJOR + 1.0). */
#include "occur_plugin.h"

static occur_status create(const occur_host_api *host, const char *config_json, void **out) {
    (void)host; (void)config_json;
    *out = 0;
    return OCCUR_OK;
}
static occur_status on_event(void *instance, const occur_event *event) {
    (void)instance; (void)event;
    return OCCUR_OK;
}
static void destroy(void *instance) { (void)instance; }

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR + 1, 0,
    "wrong_major", "1.0.0", "refused by the host", OCCUR_EVENT_ALL, 0, create, on_event, destroy};

/* Returns the descriptor whatever the host says: the host itself must refuse it. */
OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
    return &descriptor;
}
