/* leak: every on_event allocates N MB, touches every page, and never frees it.
 *   "mb_per_event": N   default 50
 * Run isolated with memory_limit_mb: the host kills the runner once it is over the limit. */
#include "fixture_config.h"
#include "occur_plugin.h"

typedef struct {
    long bytes_per_event;
    void *blocks; /* each block starts with a pointer to the one before: kept, never freed */
} leak;

static occur_status leak_create(const occur_host_api *host, const char *config_json, void **out) {
    (void)host;
    leak *l = calloc(1, sizeof *l);
    if (!l) return OCCUR_ERR_NO_MEMORY;
    l->bytes_per_event = fixture_config_long(config_json, "mb_per_event", 50) << 20;
    *out = l;
    return OCCUR_OK;
}

static occur_status leak_on_event(void *instance, const occur_event *event) {
    (void)event;
    leak *l = instance;
    char *block = malloc((size_t)l->bytes_per_event);
    if (!block) return OCCUR_ERR_NO_MEMORY;
    memset(block, 1, (size_t)l->bytes_per_event); /* resident, not just reserved */
    *(void **)block = l->blocks;                  /* reachable, so no compiler drops it */
    l->blocks = block;
    return OCCUR_OK;
}

static void leak_destroy(void *instance) { free(instance); }

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "leak", "1.0.0", "test fixture: leaks memory on every event",
    OCCUR_EVENT_ALL, 0, leak_create, leak_on_event, leak_destroy};

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : NULL;
}
