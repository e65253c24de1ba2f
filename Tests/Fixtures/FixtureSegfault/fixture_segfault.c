/* segfault: every Nth on_event of an instance writes through a bad pointer (SIGSEGV).
 *   "crash_every": N   default 3; 1 = every event
 * Only ever run isolated (isolation: process): in process it takes the host down. */
#include "fixture_config.h"
#include "occur_plugin.h"

#include <stdint.h>

typedef struct {
    long crash_every;
    long calls;
    /* Read from the config, so the compiler cannot see that it is NULL. */
    volatile intptr_t bad_address;
} segfault;

static occur_status segfault_create(const occur_host_api *host, const char *config_json, void **out) {
    (void)host;
    segfault *s = calloc(1, sizeof *s);
    if (!s) return OCCUR_ERR_NO_MEMORY;
    s->crash_every = fixture_config_long(config_json, "crash_every", 3);
    s->bad_address = (intptr_t)fixture_config_long(config_json, "bad_address", 0);
    *out = s;
    return OCCUR_OK;
}

static occur_status segfault_on_event(void *instance, const occur_event *event) {
    (void)event;
    segfault *s = instance;
    if (s->crash_every > 0 && ++s->calls % s->crash_every == 0) *(volatile int *)s->bad_address = 42;
    return OCCUR_OK;
}

static void segfault_destroy(void *instance) { free(instance); }

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "segfault", "1.0.0", "test fixture: segfaults every Nth event",
    OCCUR_EVENT_ALL, 0, segfault_create, segfault_on_event, segfault_destroy};

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : NULL;
}
