/*
 * occur_plugin.h — the Occur plugin contract (C ABI).
 *
 * This header is the whole contract between the Occur host and an analysis plugin.
 * A plugin is a shared library (lib<Name>.so) that exports exactly one symbol,
 * occur_plugin_entry, and is written in any language that can produce C functions.
 *
 * Rules (MUST = a plugin that breaks it is a broken plugin):
 *
 *  - Versioning. OCCUR_PLUGIN_ABI_MAJOR changes on any incompatible change;
 *    OCCUR_PLUGIN_ABI_MINOR on compatible additions. The host loads a plugin only when
 *    the majors are equal and the plugin's minor is <= the host's minor.
 *    What each minor added:
 *      1.0  the first contract.
 *      1.1  OCCUR_EVENT_FACE_UNASSESSED. A plugin built against 1.0 never receives it,
 *           whatever bits its descriptor's `events` has set.
 *  - Every struct that crosses the boundary starts with `uint32_t struct_size`, set by
 *    whoever fills the struct to sizeof() as that side compiled it. Fields are only ever
 *    appended. A reader MUST NOT read a field that lies beyond struct_size; use
 *    OCCUR_HAS_FIELD(ptr, type, field). Arrays carry their element size.
 *  - Ownership. Whoever allocates frees. Everything the host passes in (events, frames,
 *    pixels, faces, strings) is BORROWED and valid only until the call that received it
 *    returns. A plugin that keeps anything copies it. Everything a plugin passes to the
 *    host (results, log messages) is copied by the host before the call returns.
 *  - Errors. Every call returns an occur_status; details go through host->log.
 *    Nothing may unwind across the boundary: C++ plugins catch every exception,
 *    Swift plugins (@_cdecl) catch every error, and only C types cross.
 *  - Threads. create, every on_event and destroy of an instance are called serially from
 *    that plugin's own worker thread (never the capture thread, never Swift's
 *    cooperative pool), so they never overlap. Different plugins, and
 *    different instances, run in parallel: a plugin MUST NOT keep global mutable
 *    state shared between instances without its own locking.
 *  - Libraries are loaded with RTLD_NOW | RTLD_LOCAL and never unloaded.
 *  - Isolation. With `isolation: process` in plugins.yaml the same library runs in a child
 *    process of the host (`occur plugin-runner`), one per plugin. Every rule here holds
 *    there unchanged: create, on_event and destroy are called on one thread of the runner;
 *    host->log, host->emit and host->monotonic_ns behave the same (the same system-wide
 *    clock). What differs: frame pixels are a READ-ONLY mapping of memory the host shares
 *    (writing to them kills the runner); results emitted from the plugin's own threads reach
 *    the host a little later; a runner that dies (signal, exit) or is killed (a call past the
 *    plugin's `timeout`, memory past `memory_limit_mb`) is replaced by a new one that calls
 *    create again, and the old instance never gets destroy; nothing is shared with the host
 *    or other plugins. The host still loads the library once itself to read the descriptor:
 *    code that runs at load time (constructors, occur_plugin_entry) runs in both processes.
 *  - Build with hidden visibility; export only occur_plugin_entry
 *    (OCCUR_PLUGIN_EXPORT marks it).
 *
 * A minimal plugin:
 *
 *     #include "occur_plugin.h"
 *     static occur_status my_create(const occur_host_api *host, const char *config_json,
 *                                   void **out_instance) { *out_instance = NULL; return OCCUR_OK; }
 *     static occur_status my_on_event(void *instance, const occur_event *event) { return OCCUR_OK; }
 *     static void my_destroy(void *instance) {}
 *     static const occur_plugin_descriptor my_plugin = {
 *         sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
 *         "my_plugin", "1.0.0", "does nothing yet",
 *         OCCUR_EVENT_FACE_APPEARED | OCCUR_EVENT_FACE_LEFT, 0,
 *         my_create, my_on_event, my_destroy };
 *     OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *
 *     occur_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
 *         return host_abi_major == OCCUR_PLUGIN_ABI_MAJOR ? &my_plugin : NULL;
 *     }
 *
 * Build it:  cc -std=c99 -shared -fPIC -fvisibility=hidden -I<dir of this header>
 *            -o libmy_plugin.so my_plugin.c
 */
#ifndef OCCUR_PLUGIN_H
#define OCCUR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCCUR_PLUGIN_ABI_MAJOR 1
#define OCCUR_PLUGIN_ABI_MINOR 1

/* The name of the one symbol a plugin library exports. */
#define OCCUR_PLUGIN_ENTRY_SYMBOL "occur_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define OCCUR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define OCCUR_PLUGIN_EXPORT
#endif

/* True when the struct at `ptr` (which starts with struct_size) contains `field`. */
#define OCCUR_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- Status codes ------------------------------------------------------------ */

typedef int32_t occur_status;
#define OCCUR_OK                   0
#define OCCUR_ERR_FAILED          -1 /* generic failure; say why through host->log */
#define OCCUR_ERR_INVALID_CONFIG  -2 /* create: config_json is not acceptable */
#define OCCUR_ERR_INVALID_ARGUMENT -3 /* a NULL or malformed argument */
#define OCCUR_ERR_UNSUPPORTED     -4 /* the call or a value is not supported */
#define OCCUR_ERR_NO_MEMORY       -5
#define OCCUR_ERR_INTERNAL        -6 /* a caught exception or broken invariant */

/* ---- Log levels (host->log) --------------------------------------------------- */

#define OCCUR_LOG_DEBUG 0
#define OCCUR_LOG_INFO  1
#define OCCUR_LOG_WARN  2
#define OCCUR_LOG_ERROR 3

/* ---- Event kinds: bit flags, so a plugin can want several ------------------- */

#define OCCUR_EVENT_FRAME           (1u << 0) /* every processed frame, with all faces in it */
#define OCCUR_EVENT_FACE_APPEARED   (1u << 1) /* a new track started; faces[0] is it */
#define OCCUR_EVENT_FACE_RECOGNIZED (1u << 2) /* a track was matched to an identity */
#define OCCUR_EVENT_FACE_UNKNOWN    (1u << 3) /* a track matched nobody enrolled */
#define OCCUR_EVENT_FACE_LEFT       (1u << 4) /* a track ended; payload has dwell_seconds */
#define OCCUR_EVENT_PLUGIN_RESULT   (1u << 5) /* another plugin emitted a result */
/* Since 1.1: a track that has no answer yet could not be recognised, and why. Sent on the
 * frame the track is first held (by the quality gate, or because the face could not be
 * embedded) and again when the reason changes (at most once per uncertain_recheck_seconds),
 * never per frame; a later frame that passes still brings FACE_RECOGNIZED or FACE_UNKNOWN.
 * faces[0] is the face as held.
 * payload: {"reason": "too_small" | "too_blurry" | "no_landmarks" | "embedder_failed",
 *           "value": measured, "threshold": required}  ("value"/"threshold" are absent
 * for reasons that have no measure). */
#define OCCUR_EVENT_FACE_UNASSESSED (1u << 6)
/* Every kind this header's minor version defines (it grows with the minor). */
#define OCCUR_EVENT_ALL             0x7Fu

/* ---- Pixel formats ----------------------------------------------------------- */

#define OCCUR_PIXEL_BGR8  1 /* 3 bytes per pixel, B G R (OpenCV's default) */
#define OCCUR_PIXEL_GRAY8 2 /* 1 byte per pixel */
#define OCCUR_PIXEL_BGRA8 3 /* 4 bytes per pixel, B G R A */

/* ---- Geometry: pixel coordinates, origin top-left ----------------------------- */

typedef struct occur_box {
    float x, y, width, height;
} occur_box;

typedef struct occur_point {
    float x, y;
} occur_point;

/* A decoded frame. Read-only: the same pixels are shared by every plugin. */
typedef struct occur_frame {
    uint32_t struct_size;
    uint32_t width;
    uint32_t height;
    uint32_t stride;         /* bytes from one row to the next (>= width * bytes per pixel) */
    uint32_t pixel_format;   /* OCCUR_PIXEL_* */
    const uint8_t *pixels;   /* height * stride bytes; BORROWED, valid during on_event */
    uint64_t frame_index;    /* 0-based index of the frame in its source */
} occur_frame;

/* One face as the host sees it. */
typedef struct occur_face {
    uint32_t struct_size;
    int64_t track_id;          /* stable while the person stays in view; -1 when not tracked */
    occur_box box;             /* in frame pixels */
    float score;               /* detector confidence, 0..1 (1 when the detector has none) */
    uint32_t landmark_count;   /* 0, or 5: right eye, left eye, nose, right and left mouth corner */
    occur_point landmarks[5];
    const char *identity;      /* enrolled name; NULL when unknown or not recognised (yet) */
    float distance;            /* match distance for identity; negative when none */
    const float *embedding;    /* NULL when none; else embedding_dim floats, BORROWED */
    uint32_t embedding_dim;
} occur_face;

/* One detection event. Everything it points to is BORROWED for the on_event call. */
typedef struct occur_event {
    uint32_t struct_size;
    uint32_t kind;              /* exactly one OCCUR_EVENT_* bit */
    uint64_t sequence;          /* host-wide, increasing in publication order */
    const char *camera_id;      /* never NULL; "" for results not tied to a camera */
    int64_t timestamp_ns;       /* capture time on the camera's clock: monotonic for live
                                   sources, media time for files; cooldowns use it */
    int64_t wall_time_ms;       /* Unix time in milliseconds when the event was made */
    const occur_frame *frame;   /* the frame the event came from; NULL for face_left and
                                   for results emitted outside on_event */
    uint32_t face_count;        /* number of faces in `faces` */
    uint32_t face_size;         /* size of one element of `faces`: step by it, not sizeof */
    const occur_face *faces;    /* face events: the one face; frame events: every face;
                                   plugin results: the faces of the event the emitter handled */
    const char *payload_json;   /* event-specific JSON object, never NULL ("{}" when empty);
                                   face_left: {"dwell_seconds": s}; results: the payload */
    const char *source_plugin;  /* plugin results: the emitting plugin's id; else NULL */
    const char *result_kind;    /* plugin results: the result's kind; else NULL */
} occur_event;

/* A result a plugin sends back with host->emit. Filled by the plugin; copied by the host. */
typedef struct occur_result {
    uint32_t struct_size;
    const char *kind;           /* required: [a-z0-9_.]+, e.g. "mask", "line_cross" */
    const char *payload_json;   /* a JSON object, or NULL for "{}" */
    int64_t track_id;           /* -1 when not about one track */
    int32_t has_box;            /* non-zero when box is set */
    occur_box box;
    float confidence;           /* 0..1; negative when none */
} occur_result;

/* Opaque: one per plugin instance, owned by the host. */
typedef struct occur_host_context occur_host_context;

/* The host's services, handed to create. The table and its context stay valid until
 * destroy returns; a plugin may keep the pointer. */
typedef struct occur_host_api {
    uint32_t struct_size;
    uint32_t abi_major;         /* the host's OCCUR_PLUGIN_ABI_MAJOR */
    uint32_t abi_minor;         /* the host's OCCUR_PLUGIN_ABI_MINOR */
    occur_host_context *context;

    /* Writes one line to the host's log, tagged with the plugin id. `message` is copied.
     * Any thread, any time between create's start and destroy's return. */
    void (*log)(occur_host_context *context, int32_t level, const char *message);

    /* Sends a result to the host, which stores it as an event in the event log and
     * passes it to other plugins that want OCCUR_EVENT_PLUGIN_RESULT. Everything in
     * `result` is copied before emit returns. Called inside on_event, the result is
     * attributed to that event's camera and time; called from another thread of the
     * plugin's (any thread, until destroy returns), it has no camera.
     * Returns OCCUR_ERR_INVALID_ARGUMENT for a missing kind or a payload that is not a
     * JSON object. */
    occur_status (*emit)(occur_host_context *context, const occur_result *result);

    /* The host's monotonic clock in nanoseconds (CLOCK_MONOTONIC). Any thread. */
    int64_t (*monotonic_ns)(occur_host_context *context);
} occur_host_api;

/* What a plugin is. Static: it lives as long as the library (which is never unloaded). */
typedef struct occur_plugin_descriptor {
    uint32_t struct_size;       /* sizeof(occur_plugin_descriptor) as the plugin compiled it */
    uint32_t abi_major;         /* OCCUR_PLUGIN_ABI_MAJOR the plugin was built against */
    uint32_t abi_minor;         /* OCCUR_PLUGIN_ABI_MINOR the plugin was built against */
    const char *id;             /* MUST equal the plugin's key in plugins.yaml: [a-z0-9_]+ */
    const char *version;        /* the plugin's own version, free text */
    const char *description;    /* one line */
    uint32_t events;            /* OCCUR_EVENT_* bits the plugin wants; plugins.yaml narrows */
    uint32_t flags;             /* reserved: 0 */

    /* Makes one instance. `host` is valid until destroy returns. `config_json` is the
     * plugin's `config:` from plugins.yaml as a JSON object ("{}" when absent), BORROWED
     * for this call. On OCCUR_OK, *out_instance is the plugin's state (may be NULL).
     * On failure the host logs it, never calls on_event/destroy, and runs on without
     * the plugin. Called once, on the plugin's own worker thread (the one that will call
     * on_event and destroy), before any on_event. */
    occur_status (*create)(const occur_host_api *host, const char *config_json,
                           void **out_instance);

    /* Handles one event. Called serially from the plugin's worker thread. `event` and
     * all it points to are BORROWED until return. A non-OK status is counted as an
     * error and logged; the plugin keeps receiving events. Slow calls only delay this
     * plugin: its queue fills and drops by its overflow policy. */
    occur_status (*on_event)(void *instance, const occur_event *event);

    /* Frees the instance. Called once, on the worker thread, after the last on_event has
     * returned, at shutdown. MUST NOT call host functions after returning. */
    void (*destroy)(void *instance);
} occur_plugin_descriptor;

/* The one exported symbol. The host passes its ABI version; return the descriptor, or
 * NULL to refuse to load (for example on a major version you do not support).
 * Called once per load, before anything else, from a host thread. */
typedef const occur_plugin_descriptor *(*occur_plugin_entry_fn)(uint32_t host_abi_major,
                                                                uint32_t host_abi_minor);
OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t host_abi_major,
                                                                      uint32_t host_abi_minor);

#ifdef __cplusplus
}
#endif

#endif /* OCCUR_PLUGIN_H */
