// movement — motion, trajectories, zones, loitering and line counts (libMovement.so).
//
// The C boundary: occur_plugin_entry, and create / on_event / destroy, which turn borrowed
// occur_event data into OpenCV and C++ values, run the camera's CameraAnalyzer, and send its
// results through host->emit. Nothing unwinds across this file's functions: every exception
// is caught here and reported as a status and a log line.
//
// Results (kinds, payloads) and config keys are documented in README.md, "Plugins / Movement".
#include "camera_analyzer.hpp"
#include "movement_config.hpp"
#include "occur_plugin.h"
#include "occur_plugin_boundary.hpp"

#include <opencv2/core.hpp>

#include <map>
#include <memory>
#include <new>
#include <string>

namespace {

using movement::CameraAnalyzer;

/// One plugin instance: its settings and one analyzer per camera. No global state.
struct Instance {
    const occur_host_api *host;  // valid until destroy returns
    movement::Config config;     // analyzers keep a reference: the instance never moves
    std::map<std::string, std::unique_ptr<CameraAnalyzer>> cameras;
    bool warnedPixelFormat = false;
    bool warnedStride = false;

    void log(int32_t level, const std::string &message) const {
        host->log(host->context, level, message.c_str());
    }

    /// The camera's analyzer, made on first use and made again when the camera's clock goes
    /// back by more than a second (a file that starts over).
    CameraAnalyzer &camera(const std::string &id, int64_t timestampNs) {
        auto &slot = cameras[id];
        if (slot && timestampNs < slot->lastTimestampNs() - 1'000'000'000) {
            log(OCCUR_LOG_INFO, "camera '" + id + "': time went back from " +
                                    std::to_string(slot->lastTimestampNs() / 1'000'000) + " ms to " +
                                    std::to_string(timestampNs / 1'000'000) + " ms; movement state starts afresh");
            slot.reset();
        }
        if (!slot) slot = std::make_unique<CameraAnalyzer>(config);
        return *slot;
    }

    /// Handles one event (on the plugin's worker thread; see occur::onEvent).
    occur_status onEvent(const occur_event &event);
};

std::vector<movement::FaceSighting> facesOf(const occur_event *event) {
    std::vector<movement::FaceSighting> faces;
    if (!OCCUR_HAS_FIELD(event, occur_event, faces) || !event->faces || event->face_count == 0) return faces;
    const size_t step = event->face_size;
    if (step < offsetof(occur_face, box) + sizeof(occur_box)) return faces;
    const auto *base = reinterpret_cast<const uint8_t *>(event->faces);
    for (uint32_t i = 0; i < event->face_count; i++) {
        const auto *face = reinterpret_cast<const occur_face *>(base + i * step);  // step by face_size
        if (!OCCUR_HAS_FIELD(face, occur_face, box)) continue;
        movement::FaceSighting sighting;
        sighting.trackId = face->track_id;
        sighting.box = cv::Rect2d(face->box.x, face->box.y, face->box.width, face->box.height);
        if (OCCUR_HAS_FIELD(face, occur_face, identity) && face->identity) sighting.identity = face->identity;
        faces.push_back(std::move(sighting));
    }
    return faces;
}

/// The frame's pixels as a read-only cv::Mat header (no copy); empty when unusable.
cv::Mat pixelsOf(Instance &instance, const occur_event *event) {
    const occur_frame *frame = OCCUR_HAS_FIELD(event, occur_event, frame) ? event->frame : nullptr;
    if (!frame || !OCCUR_HAS_FIELD(frame, occur_frame, pixels) || !frame->pixels || frame->width == 0 ||
        frame->height == 0)
        return {};
    int type;
    switch (frame->pixel_format) {
    case OCCUR_PIXEL_BGR8: type = CV_8UC3; break;
    case OCCUR_PIXEL_GRAY8: type = CV_8UC1; break;
    case OCCUR_PIXEL_BGRA8: type = CV_8UC4; break;
    default:
        if (!instance.warnedPixelFormat) {
            instance.warnedPixelFormat = true;
            instance.log(OCCUR_LOG_WARN, "pixel format " + std::to_string(frame->pixel_format) +
                                             " is not supported: frames are skipped");
        }
        return {};
    }
    const size_t rowBytes = static_cast<size_t>(frame->width) * static_cast<size_t>(CV_ELEM_SIZE(type));
    if (frame->stride < rowBytes) {
        if (!instance.warnedStride) {
            instance.warnedStride = true;
            instance.log(OCCUR_LOG_WARN, "frame stride " + std::to_string(frame->stride) + " is less than " +
                                             std::to_string(rowBytes) + " bytes a row: frames are skipped");
        }
        return {};
    }
    // Borrowed for this call; OpenCV only reads it.
    return cv::Mat(static_cast<int>(frame->height), static_cast<int>(frame->width), type,
                   const_cast<uint8_t *>(frame->pixels), frame->stride);
}

occur_status emit(const Instance &instance, const movement::Result &r) {
    occur_result result{};
    result.struct_size = sizeof result;
    result.kind = r.kind.c_str();
    result.payload_json = r.payload.c_str();  // copied by the host before emit returns
    result.track_id = r.trackId;
    result.has_box = r.hasBox ? 1 : 0;
    result.box = occur_box{static_cast<float>(r.box.x), static_cast<float>(r.box.y),
                           static_cast<float>(r.box.width), static_cast<float>(r.box.height)};
    result.confidence = -1;
    return instance.host->emit(instance.host->context, &result);
}

occur_status create(const occur_host_api *host, const char *configJSON, void **out) {
    if (!host || !out) return OCCUR_ERR_INVALID_ARGUMENT;
    return occur::guarded(host, "create", [&]() -> occur_status {
        auto instance = std::make_unique<Instance>();
        instance->host = host;
        try {
            instance->config = movement::parseConfig(configJSON ? configJSON : "{}");
        } catch (const movement::ConfigError &e) {
            occur::log(host, OCCUR_LOG_ERROR, std::string("invalid config: ") + e.what());
            return OCCUR_ERR_INVALID_CONFIG;
        }
        const auto &c = instance->config;
        instance->log(OCCUR_LOG_INFO, std::to_string(c.zones.size()) + " zones, " + std::to_string(c.lines.size()) +
                                          " lines, background model at " + movement::JsonObject::number(c.scale) +
                                          " of the frame size, history " + std::to_string(c.history) + " frames");
        *out = instance.release();
        return OCCUR_OK;
    });
}

occur_status Instance::onEvent(const occur_event &event) {
    const std::string cameraID = event.camera_id ? event.camera_id : "";
    const int64_t t = event.timestamp_ns;
    std::vector<movement::Result> results;
    switch (event.kind) {
    case OCCUR_EVENT_FRAME:
        camera(cameraID, t).onFrame(t, pixelsOf(*this, &event), facesOf(&event), results);
        break;
    case OCCUR_EVENT_FACE_APPEARED:
    case OCCUR_EVENT_FACE_RECOGNIZED:
    case OCCUR_EVENT_FACE_UNKNOWN:
        camera(cameraID, t).onFaces(t, facesOf(&event), results);
        break;
    case OCCUR_EVENT_FACE_LEFT:
        for (const auto &face : facesOf(&event)) camera(cameraID, t).onFaceLeft(t, face.trackId, results);
        break;
    default:
        return OCCUR_OK;
    }
    occur_status status = OCCUR_OK;
    for (const auto &r : results) {
        occur_status s = emit(*this, r);
        if (s != OCCUR_OK && status == OCCUR_OK) status = s;
    }
    return status;
}

const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor),
    OCCUR_PLUGIN_ABI_MAJOR,
    OCCUR_PLUGIN_ABI_MINOR,
    "movement",
    "1.0.0",
    "motion, trajectories, zones, loitering and line counts from frames and face tracks",
    OCCUR_EVENT_FRAME | OCCUR_EVENT_FACE_APPEARED | OCCUR_EVENT_FACE_RECOGNIZED | OCCUR_EVENT_FACE_UNKNOWN |
        OCCUR_EVENT_FACE_LEFT,
    0,
    create,
    occur::onEvent<Instance>,
    occur::destroy<Instance>,
};

}  // namespace

extern "C" OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t hostMajor, uint32_t) {
    return hostMajor == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : nullptr;
}
