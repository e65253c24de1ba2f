// Head pose (yaw, pitch, roll) from a face's 5 landmarks with cv::solvePnP against a
// generic 3D face.
#pragma once

#include "occur_plugin.h"

#include <opencv2/core.hpp>

#include <optional>
#include <string>

namespace occur::pose {

/// Degrees. yaw > 0: the person turns their head to their own left (the picture's right for a
/// person facing the camera); pitch > 0: they look up; roll > 0: the head tilts towards
/// their left shoulder (the face turns clockwise in the picture). Relative to the camera's
/// axes: all 0 for an upright face looking along the camera's axis; a face off to the side
/// that looks at the camera is turned by about its angle off that axis.
struct HeadPose {
    double yaw = 0, pitch = 0, roll = 0;
};

/// The head pose of `face` in a frame of `frameSize`, or nothing when the face has no 5
/// landmarks (right eye, left eye, nose tip, right and left mouth corner) or solvePnP fails.
/// The camera is assumed to have a focal length of the frame's width in pixels, its centre at
/// the frame's centre and no distortion.
std::optional<HeadPose> headPose(const occur_face &face, cv::Size frameSize);

/// `{"yaw": y, "pitch": p, "roll": r}`, one decimal.
std::string headJSON(const HeadPose &head);

}  // namespace occur::pose
