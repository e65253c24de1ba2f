/* hang: on_event never returns for the event with a given sequence number.
 *   "hang_on_sequence": S   default 2
 * Only ever run isolated (isolation: process): the host's watchdog kills the runner. */
#define _POSIX_C_SOURCE 200809L
#include "fixture_config.h"
#include "occur_plugin.h"

#include <unistd.h>

typedef struct {
    long hang_on;
} hang;

static occur_status hang_create(const occur_host_api *host, const char *config_json, void **out) {
    (void)host;
    hang *h = calloc(1, sizeof *h);
    if (!h) return OCCUR_ERR_NO_MEMORY;
    h->hang_on = fixture_config_long(config_json, "hang_on_sequence", 2);
    *out = h;
    return OCCUR_OK;
}

static occur_status hang_on_event(void *instance, const occur_event *event) {
    hang *h = instance;
    if ((long)event->sequence == h->hang_on) {
        for (;;) sleep(60);
    }
    return OCCUR_OK;
}

static void hang_destroy(void *instance) { free(instance); }

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "hang", "1.0.0", "test fixture: hangs for ever on one event",
    OCCUR_EVENT_ALL, 0, hang_create, hang_on_event, hang_destroy};

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : NULL;
}
