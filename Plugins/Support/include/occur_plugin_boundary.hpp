// The C boundary of the package's C++ plugins (Mask, Pose, Clothes): every call into a
// plugin goes through here, so no exception ever crosses occur_plugin.h. Header-only.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "occur_plugin.h"

namespace occur {

/// One line in the host's log (the host copies `message`).
inline void log(const occur_host_api *host, int32_t level, const std::string &message) {
    if (host && host->log) host->log(host->context, level, message.c_str());
}

/// Runs `body` (which returns an occur_status) and turns any exception into a status and a
/// log line naming the call.
template <typename Body>
occur_status guarded(const occur_host_api *host, const char *call, Body &&body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        try { log(host, OCCUR_LOG_ERROR, std::string("out of memory in ") + call); } catch (...) {}
        return OCCUR_ERR_NO_MEMORY;
    } catch (const std::exception &e) {
        try { log(host, OCCUR_LOG_ERROR, std::string(call) + " failed: " + e.what()); } catch (...) {}
        return OCCUR_ERR_INTERNAL;
    } catch (...) {
        try { log(host, OCCUR_LOG_ERROR, std::string(call) + " failed: unknown exception"); } catch (...) {}
        return OCCUR_ERR_INTERNAL;
    }
}

/// The descriptor's on_event for an instance type with a `host` member and
/// `occur_status onEvent(const occur_event &)`.
template <typename Plugin>
occur_status onEvent(void *instance, const occur_event *event) noexcept {
    auto *plugin = static_cast<Plugin *>(instance);
    if (!plugin || !event) return OCCUR_ERR_INVALID_ARGUMENT;
    return guarded(plugin->host, "on_event", [&] { return plugin->onEvent(*event); });
}

/// The descriptor's destroy: deletes the instance create made.
template <typename Plugin>
void destroy(void *instance) noexcept {
    try {
        delete static_cast<Plugin *>(instance);
    } catch (...) {
    }
}

}  // namespace occur
