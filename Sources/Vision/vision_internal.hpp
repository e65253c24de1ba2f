// Internals shared by the Vision target's .cpp files (not part of occur_vision.h).
#pragma once

#include <cstdio>
#include <string>

#include <opencv2/core.hpp>

#include "occur_vision.h"

/// A frame: an immutable OpenCV matrix. Its constructor counts pixel buffers (vision.cpp).
struct ov_frame {
    cv::Mat mat;
    explicit ov_frame(cv::Mat m);
};

namespace occur_vision {

/// Writes `message` into the caller's error buffer, when it gave one.
inline void setError(char *error, size_t size, const std::string &message) {
    if (error && size > 0) std::snprintf(error, size, "%s", message.c_str());
}

}  // namespace occur_vision
