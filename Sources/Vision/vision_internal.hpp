// Internals shared by the Vision target's .cpp files (not part of occur_vision.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "occur_vision.h"

/// A frame: an immutable OpenCV matrix. Its constructor counts pixel buffers (vision.cpp).
struct ov_frame {
    cv::Mat mat;
    explicit ov_frame(cv::Mat m);
    /// Over memory someone else owns (ov_frame_borrow): not a buffer of ours, not counted.
    struct Borrowed {};
    ov_frame(cv::Mat m, Borrowed) : mat(std::move(m)) {}
};

namespace occur_vision {

/// Writes `message` into the caller's error buffer, when it gave one.
inline void setError(char *error, size_t size, const std::string &message) {
    if (error && size > 0) std::snprintf(error, size, "%s", message.c_str());
}

/// True for a JPEG cut short: it starts like one but no end-of-image marker follows its scan
/// data (jpeg_integrity.cpp). Not a JPEG, or malformed otherwise: false (the decoder judges).
bool jpegIsTruncated(const uint8_t *bytes, size_t size);
/// The same for a file; false when it cannot be read.
bool jpegFileIsTruncated(const char *path);

}  // namespace occur_vision
