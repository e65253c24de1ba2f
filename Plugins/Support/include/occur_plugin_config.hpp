// Reading a plugin's `config:` (JSON from plugins.yaml) with OpenCV's own JSON reader, and
// finding model files, for the package's C++ plugins. Header-only; needs OpenCV's core.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <sys/stat.h>

#include <opencv2/core.hpp>

#include "occur_plugin_boundary.hpp"

namespace occur {

/// A config value that cannot be used; what() is the log line (create returns
/// OCCUR_ERR_INVALID_CONFIG).
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Runs `parse` (the plugin's config reader) in create: a ConfigError is logged and false
/// returned, and create then returns OCCUR_ERR_INVALID_CONFIG.
template <class Parse>
bool parsed(const occur_host_api *host, Parse &&parse) {
    try {
        parse();
        return true;
    } catch (const ConfigError &e) {
        host->log(host->context, OCCUR_LOG_ERROR, e.what());
        return false;
    }
}

/// Opens `json` (NULL or "" = {}) into `storage` and returns its root, a JSON object.
inline cv::FileNode openConfig(cv::FileStorage &storage, const char *json) {
    const std::string text = json && *json ? json : "{}";
    try {
        storage.open(text, cv::FileStorage::READ | cv::FileStorage::MEMORY | cv::FileStorage::FORMAT_JSON);
    } catch (const cv::Exception &e) {
        throw ConfigError("config is not JSON this plugin can read (" + e.msg + ")");
    }
    cv::FileNode root = storage.root();
    if (!storage.isOpened() || !root.isMap()) throw ConfigError("config must be a JSON object");
    return root;
}

/// A number (whole or not) at config.`key`.
inline double number(const cv::FileNode &node, const std::string &key) {
    if (node.isInt()) return double(int(node));
    if (node.isReal()) return double(node);
    throw ConfigError("config." + key + ": expected a number");
}

/// A number as people write it, for messages.
inline std::string show(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
}

/// `~/x` -> `$HOME/x`.
inline std::string expandHome(const std::string &path) {
    if (path.rfind("~/", 0) != 0) return path;
    const char *home = std::getenv("HOME");
    return std::string(home ? home : "") + path.substr(1);
}

/// Where scripts/models puts model files: $OCCUR_MODELS, else $OCCUR_CACHE/models, else
/// ~/.cache/occur/models.
inline std::string defaultModelsDir() {
    if (const char *env = std::getenv("OCCUR_MODELS"); env && *env) return env;
    if (const char *cache = std::getenv("OCCUR_CACHE"); cache && *cache) return std::string(cache) + "/models";
    const char *home = std::getenv("HOME");
    return std::string(home && *home ? home : ".") + "/.cache/occur/models";
}

inline bool fileExists(const std::string &path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// True when the model file exists; otherwise logs which file is missing and the command that
/// prepares it (create then fails with OCCUR_ERR_FAILED).
inline bool requireModel(const occur_host_api *host, const std::string &path) {
    if (fileExists(path)) return true;
    log(host, OCCUR_LOG_ERROR, "model file " + path +
                                   " is missing: run scripts/models (or scripts/setup) to prepare it, "
                                   "or set config.models_dir");
    return false;
}

}  // namespace occur
