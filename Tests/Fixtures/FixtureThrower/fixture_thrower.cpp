// thrower: a C++ plugin whose work throws. It catches every exception at the C boundary,
// as occur_plugin.h requires, and reports it as a status.
//   config "throw_in_create": true   create throws (reported as OCCUR_ERR_INTERNAL)
//   config "throw_every": N          every Nth on_event throws (default 1)
#include "occur_plugin.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace {

struct Thrower {
    const occur_host_api *host;
    long throwEvery = 1;
    long calls = 0;
};

long configNumber(const char *json, const char *key, long fallback) {
    std::string text(json), pattern = std::string("\"") + key + "\":";
    auto at = text.find(pattern);
    if (at == std::string::npos) return fallback;
    std::string rest = text.substr(at + pattern.size());
    if (rest.find("true") == rest.find_first_not_of(' ')) return 1;
    return std::stol(rest);
}

occur_status create(const occur_host_api *host, const char *config_json, void **out) {
    try {
        if (configNumber(config_json, "throw_in_create", 0)) throw std::runtime_error("thrown in create");
        auto *t = new Thrower{host};
        t->throwEvery = configNumber(config_json, "throw_every", 1);
        *out = t;
        return OCCUR_OK;
    } catch (const std::exception &e) {
        host->log(host->context, OCCUR_LOG_ERROR, e.what());
        return OCCUR_ERR_INTERNAL;
    } catch (...) {
        return OCCUR_ERR_INTERNAL;
    }
}

occur_status onEvent(void *instance, const occur_event *event) {
    auto *t = static_cast<Thrower *>(instance);
    try {
        t->calls++;
        if (t->throwEvery > 0 && t->calls % t->throwEvery == 0)
            throw std::runtime_error("thrown in on_event for event " + std::to_string(event->sequence));
        return OCCUR_OK;
    } catch (const std::exception &e) {
        t->host->log(t->host->context, OCCUR_LOG_ERROR, e.what());
        return OCCUR_ERR_INTERNAL;
    } catch (...) {
        return OCCUR_ERR_INTERNAL;
    }
}

void destroy(void *instance) { delete static_cast<Thrower *>(instance); }

const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "thrower", "1.0.0", "test fixture: throws, and catches at the boundary",
    OCCUR_EVENT_ALL, 0, create, onEvent, destroy};

}  // namespace

extern "C" OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t) {
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : nullptr;
}
