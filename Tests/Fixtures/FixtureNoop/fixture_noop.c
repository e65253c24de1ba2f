/* noop: accepts every event and does nothing — the dispatcher benchmark's sink. */
#include "occur_plugin.h"

static occur_status noop_create(const occur_host_api *host, const char *config_json, void **out) {
    (void)host; (void)config_json;
    *out = 0;
    return OCCUR_OK;
}
static occur_status noop_on_event(void *instance, const occur_event *event) {
    (void)instance; (void)event;
    return OCCUR_OK;
}
static void noop_destroy(void *instance) { (void)instance; }

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "noop", "1.0.0", "does nothing", OCCUR_EVENT_ALL, 0, noop_create, noop_on_event, noop_destroy};

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)major; (void)minor;
    return &descriptor;
}
