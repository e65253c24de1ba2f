/* A plugin that accepts everything and does nothing, with the descriptor header fields
 * given: the no-op benchmark sink and the fixtures the host must refuse share it. */
#ifndef FIXTURE_TRIVIAL_H
#define FIXTURE_TRIVIAL_H

#include "occur_plugin.h"

#define TRIVIAL_PLUGIN(ID, STRUCT_SIZE, MAJOR, MINOR, DESCRIPTION)                                   \
    static occur_status trivial_create(const occur_host_api *host, const char *config_json,         \
                                       void **out) {                                                \
        (void)host; (void)config_json;                                                              \
        *out = 0;                                                                                   \
        return OCCUR_OK;                                                                            \
    }                                                                                               \
    static occur_status trivial_on_event(void *instance, const occur_event *event) {                \
        (void)instance; (void)event;                                                                \
        return OCCUR_OK;                                                                            \
    }                                                                                               \
    static void trivial_destroy(void *instance) { (void)instance; }                                 \
    static const occur_plugin_descriptor trivial_descriptor = {                                     \
        STRUCT_SIZE, MAJOR, MINOR, ID, "1.0.0", DESCRIPTION, OCCUR_EVENT_ALL, 0,                    \
        trivial_create, trivial_on_event, trivial_destroy};                                         \
    /* Returns the descriptor whatever the host says: refusing is the host's job here. */           \
    OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major,           \
                                                                          uint32_t minor) {         \
        (void)major; (void)minor;                                                                   \
        return &trivial_descriptor;                                                                 \
    }

#endif
