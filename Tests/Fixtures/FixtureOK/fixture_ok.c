/* fixture_ok: a well-behaved plugin whose behaviour the tests steer through config.
 *   "record": "/path"  append one line per event: kind camera track timestamp_ns
 *                      sequence face_count frame_index pixels_address result_kind
 *   "sleep_ms": N      sleep N ms in every on_event (a slow plugin)
 *   "fail_create": 1   create fails with OCCUR_ERR_INVALID_CONFIG
 *   "fail_every": N    every Nth on_event returns OCCUR_ERR_FAILED
 *   "emit": "kind"     emit a result of that kind for every event
 *   "emit_count": N    emit N such results per event instead of one (a heavy writer)
 *   "pixel_sum": 1     the emitted payload also holds the sum of the frame's pixel bytes
 */
#define _POSIX_C_SOURCE 200809L
#include "occur_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const occur_host_api *host;
    FILE *record;
    long sleep_ms;
    long fail_every;
    long calls;
    long emit_count;
    long pixel_sum;
    char emit_kind[64];
} fixture;

/* Finds "key": in a flat JSON object and returns a pointer to its value, or NULL. */
static const char *json_value(const char *json, const char *key) {
    char pattern[80];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at) return NULL;
    at += strlen(pattern);
    while (*at == ' ') at++;
    return at;
}

static void json_string(const char *json, const char *key, char *out, size_t size) {
    const char *v = json_value(json, key);
    out[0] = 0;
    if (!v || *v != '"') return;
    v++;
    size_t n = 0;
    while (v[n] && v[n] != '"' && n + 1 < size) n++;
    memcpy(out, v, n);
    out[n] = 0;
}

static long json_long(const char *json, const char *key) {
    const char *v = json_value(json, key);
    if (!v) return 0;
    if (strncmp(v, "true", 4) == 0) return 1;
    return strtol(v, NULL, 10);
}

static occur_status fixture_create(const occur_host_api *host, const char *config_json, void **out) {
    if (json_long(config_json, "fail_create")) {
        host->log(host->context, OCCUR_LOG_ERROR, "fail_create is set: refusing to start");
        return OCCUR_ERR_INVALID_CONFIG;
    }
    fixture *f = calloc(1, sizeof *f);
    if (!f) return OCCUR_ERR_NO_MEMORY;
    f->host = host;
    f->sleep_ms = json_long(config_json, "sleep_ms");
    f->fail_every = json_long(config_json, "fail_every");
    f->pixel_sum = json_long(config_json, "pixel_sum");
    json_string(config_json, "emit", f->emit_kind, sizeof f->emit_kind);
    f->emit_count = json_value(config_json, "emit_count") ? json_long(config_json, "emit_count") : 1;
    char path[1024];
    json_string(config_json, "record", path, sizeof path);
    if (path[0]) {
        f->record = fopen(path, "a");
        if (!f->record) {
            host->log(host->context, OCCUR_LOG_ERROR, "cannot open the record file");
            free(f);
            return OCCUR_ERR_INVALID_CONFIG;
        }
    }
    *out = f;
    return OCCUR_OK;
}

static occur_status fixture_on_event(void *instance, const occur_event *e) {
    fixture *f = instance;
    f->calls++;
    if (f->record) {
        long long track = -1;
        if (e->face_count > 0) track = (long long)e->faces->track_id;
        fprintf(f->record, "%u %s %lld %lld %llu %u %lld %p %s\n", e->kind, e->camera_id, track,
                (long long)e->timestamp_ns, (unsigned long long)e->sequence, e->face_count,
                e->frame ? (long long)e->frame->frame_index : -1LL,
                e->frame ? (const void *)e->frame->pixels : NULL,
                e->result_kind ? e->result_kind : "-");
        fflush(f->record);
    }
    if (f->sleep_ms > 0) {
        struct timespec ts = {f->sleep_ms / 1000, (f->sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (f->emit_kind[0]) {
        occur_result r = {0};
        r.struct_size = sizeof r;
        r.kind = f->emit_kind;
        r.payload_json = "{\"from\": \"fixture_ok\"}";
        char payload[96];
        if (f->pixel_sum && e->frame) {
            const occur_frame *fr = e->frame;
            size_t row = (size_t)fr->width * (fr->pixel_format == OCCUR_PIXEL_GRAY8 ? 1 : 3);
            unsigned long long sum = 0;
            for (uint32_t y = 0; y < fr->height; y++)
                for (size_t x = 0; x < row; x++) sum += fr->pixels[(size_t)y * fr->stride + x];
            snprintf(payload, sizeof payload, "{\"from\": \"fixture_ok\", \"pixel_sum\": %llu}", sum);
            r.payload_json = payload;
        }
        r.track_id = e->face_count > 0 ? e->faces->track_id : -1;
        r.confidence = 0.5f;
        for (long i = 0; i < f->emit_count; i++) f->host->emit(f->host->context, &r);
    }
    if (f->fail_every > 0 && f->calls % f->fail_every == 0) {
        f->host->log(f->host->context, OCCUR_LOG_WARN, "failing this event on purpose");
        return OCCUR_ERR_FAILED;
    }
    return OCCUR_OK;
}

static void fixture_destroy(void *instance) {
    fixture *f = instance;
    if (f->record) fclose(f->record);
    free(f);
}

static const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "fixture_ok", "1.0.0", "test fixture: records what it receives",
    OCCUR_EVENT_ALL, 0, fixture_create, fixture_on_event, fixture_destroy};

OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : NULL;
}
