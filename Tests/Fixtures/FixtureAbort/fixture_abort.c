/* abort: every Nth on_event of an instance calls abort() (SIGABRT), as a failed assert would.
 *   "abort_every": N   default 3
 * Only ever run isolated (isolation: process). */
#include "fixture_config.h"
#include "occur_plugin.h"

typedef struct {
    long abort_every;
    long calls;
} aborter;

static occur_status abort_create(const occur_host_api *host, const char *config_json, void **out) {
    (void)host;
    aborter *a = calloc(1, sizeof *a);
    if (!a) return OCCUR_ERR_NO_MEMORY;
    a->abort_every = fixture_config_long(config_json, "abort_every", 3);
    *out = a;
    return OCCUR_OK;
}

static occur_status abort_on_event(void *instance, const occur_event *event) {
    (void)event;
    aborter *a = instance;
    if (a->abort_every > 0 && ++a->calls % a->abort_every == 0) abort();
    return OCCUR_OK;
}

static void abort_destroy(void *instance) { free(instance); }

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "abort", "1.0.0", "test fixture: aborts every Nth event",
    OCCUR_EVENT_ALL, 0, abort_create, abort_on_event, abort_destroy};

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : NULL;
}
