// The event's frame as an OpenCV BGR image, for the package's C++ plugins. Header-only;
// needs OpenCV's core and imgproc.
#pragma once

#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "occur_plugin.h"

namespace occur {

/// The frame's pixels as BGR in `image`: a header over the host's buffer (no copy; read only)
/// for BGR frames, a converted copy for BGRA and grey ones. False when there are no pixels or
/// the format is unknown; the first unknown format is logged (`warned` remembers it).
inline bool bgrImage(const occur_host_api *host, const occur_frame *frame, cv::Mat &image, bool &warned) {
    if (!frame || !OCCUR_HAS_FIELD(frame, occur_frame, pixels) || !frame->pixels) return false;
    auto *pixels = const_cast<uint8_t *>(frame->pixels);
    const int w = int(frame->width), h = int(frame->height);
    switch (frame->pixel_format) {
    case OCCUR_PIXEL_BGR8: image = cv::Mat(h, w, CV_8UC3, pixels, size_t(frame->stride)); return true;
    case OCCUR_PIXEL_BGRA8:
        cv::cvtColor(cv::Mat(h, w, CV_8UC4, pixels, size_t(frame->stride)), image, cv::COLOR_BGRA2BGR);
        return true;
    case OCCUR_PIXEL_GRAY8:
        cv::cvtColor(cv::Mat(h, w, CV_8UC1, pixels, size_t(frame->stride)), image, cv::COLOR_GRAY2BGR);
        return true;
    default:
        if (!warned) {
            const std::string message = "unsupported pixel format " + std::to_string(frame->pixel_format);
            host->log(host->context, OCCUR_LOG_WARN, message.c_str());
        }
        warned = true;
        return false;
    }
}

}  // namespace occur
