/*
 * sample — the plugin to copy when you write your own.
 *
 * It counts the people who appear in front of each camera and, for every face that
 * appears, sends a "face_seen" result back to the host, which stores it in the event
 * log (see `occur events --kind face_seen`). When a face leaves it logs how long the
 * person stayed.
 *
 * plugins.yaml:
 *   sample:
 *     enabled: true
 *     library: libSample.so
 *     cooldown: 0
 *     config: { min_face_size: 40 }   # faces narrower than this (pixels) are ignored
 *
 * Build outside the package:
 *   cc -std=c99 -O2 -shared -fPIC -fvisibility=hidden -I<dir with occur_plugin.h> \
 *      -o libSample.so sample.c
 */
#include "occur_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything one instance needs. No globals: two instances never share state. */
typedef struct {
    const occur_host_api *host; /* valid until destroy returns */
    float min_face_size;
    unsigned long long faces_seen;
} sample_state;

static void say(sample_state *s, int32_t level, const char *message) {
    s->host->log(s->host->context, level, message);
}

/* config_json is the `config:` mapping of plugins.yaml as JSON, e.g. {"min_face_size":40}.
 * It is borrowed: read what you need now. */
static occur_status sample_create(const occur_host_api *host, const char *config_json, void **out) {
    sample_state *s = calloc(1, sizeof *s);
    if (!s) return OCCUR_ERR_NO_MEMORY;
    s->host = host;
    const char *key = strstr(config_json, "\"min_face_size\":");
    if (key) {
        char *end = NULL;
        double value = strtod(key + strlen("\"min_face_size\":"), &end);
        if (end == key + strlen("\"min_face_size\":") || value < 0) {
            say(s, OCCUR_LOG_ERROR, "config.min_face_size must be a number >= 0");
            free(s);
            return OCCUR_ERR_INVALID_CONFIG;
        }
        s->min_face_size = (float)value;
    }
    *out = s;
    return OCCUR_OK;
}

/* Called on this plugin's own worker thread, one event at a time. The event and what it
 * points to (frame pixels, faces, strings) are borrowed until we return. */
static occur_status sample_on_event(void *instance, const occur_event *event) {
    sample_state *s = instance;
    if (event->face_count == 0) return OCCUR_OK;
    /* Step through arrays by the element size the host gives, never by sizeof. */
    const occur_face *face = event->faces;

    if (event->kind == OCCUR_EVENT_FACE_APPEARED) {
        if (face->box.width < s->min_face_size) return OCCUR_OK;
        s->faces_seen++;
        char payload[256];
        snprintf(payload, sizeof payload,
                 "{\"camera\": \"%s\", \"faces_seen\": %llu, \"width\": %.0f, \"height\": %.0f}",
                 event->camera_id, s->faces_seen, face->box.width, face->box.height);
        occur_result result;
        memset(&result, 0, sizeof result);
        result.struct_size = sizeof result;
        result.kind = "face_seen";
        result.payload_json = payload;   /* the host copies it before emit returns */
        result.track_id = face->track_id;
        result.has_box = 1;
        result.box = face->box;
        result.confidence = face->score;
        return s->host->emit(s->host->context, &result);
    }

    if (event->kind == OCCUR_EVENT_FACE_LEFT) {
        char line[256];
        /* payload_json is {"dwell_seconds": s} for face_left */
        snprintf(line, sizeof line, "track %lld left camera %s: %s", (long long)face->track_id,
                 event->camera_id, event->payload_json);
        say(s, OCCUR_LOG_INFO, line);
    }
    return OCCUR_OK;
}

static void sample_destroy(void *instance) { free(instance); }

static const occur_plugin_descriptor sample_descriptor = {
    sizeof(occur_plugin_descriptor),
    OCCUR_PLUGIN_ABI_MAJOR,
    OCCUR_PLUGIN_ABI_MINOR,
    "sample",                                    /* = its key in plugins.yaml */
    "1.0.0",
    "counts faces per camera and reports each one that appears",
    OCCUR_EVENT_FACE_APPEARED | OCCUR_EVENT_FACE_LEFT,
    0,
    sample_create,
    sample_on_event,
    sample_destroy,
};

/* The one exported symbol. Refuse a host whose major version we were not built for. */
OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t host_abi_major,
                                                                      uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == OCCUR_PLUGIN_ABI_MAJOR ? &sample_descriptor : NULL;
}
