#include "head_pose.hpp"

#include <opencv2/calib3d.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace occur::pose {

namespace {

/// The generic face, in millimetres, nose tip at the origin; x towards the person's left, y
/// down, z into the head, so that a face looking straight into the camera has the camera's
/// axes. x and y are where YuNet puts the 5 landmarks on frontal faces: the mean over the 55
/// aligned face crops of dlib's examples/johns (nose tip 0.592 eye distances below the eyes'
/// line, mouth corners 0.998 below it and 0.439 either side of the middle), scaled to a 63 mm
/// eye distance. Depths (eyes 26 mm, mouth corners 24 mm behind the nose tip) are generic
/// adult values: the yaw and pitch found depend on them, the roll hardly does.
const std::vector<cv::Point3d> kModel = {
    {-31.5, -37.3, 26.0},   // right eye
    {31.5, -37.3, 26.0},    // left eye
    {0.0, 0.0, 0.0},        // nose tip
    {-27.6, 25.6, 24.0},    // right mouth corner
    {27.6, 25.6, 24.0},     // left mouth corner
};
constexpr double kEyeDistance = 63.0;   // mm between the model's eyes

constexpr double kDegrees = 180.0 / CV_PI;

}  // namespace

std::optional<HeadPose> headPose(const occur_face &face, cv::Size frameSize) {
    if (!OCCUR_HAS_FIELD(&face, occur_face, landmarks) || face.landmark_count < 5) return std::nullopt;
    std::vector<cv::Point2d> image;
    for (int i = 0; i < 5; ++i) {
        if (!std::isfinite(face.landmarks[i].x) || !std::isfinite(face.landmarks[i].y)) return std::nullopt;
        image.emplace_back(face.landmarks[i].x, face.landmarks[i].y);
    }
    const cv::Point2d eyes = image[1] - image[0];
    const double eyeDistance = std::hypot(eyes.x, eyes.y);
    if (!(eyeDistance > 1.0) || frameSize.width <= 0 || frameSize.height <= 0) return std::nullopt;
    const double f = frameSize.width, cx = frameSize.width / 2.0, cy = frameSize.height / 2.0;
    const cv::Matx33d camera(f, 0, cx, 0, f, cy, 0, 0, 1);
    // Start from a face looking into the camera, turned in the picture as its eyes are, at the
    // distance its eye distance gives; five points are too few for solvePnP's own start.
    const double z = f * kEyeDistance / eyeDistance;
    cv::Mat rvec = (cv::Mat_<double>(3, 1) << 0, 0, std::atan2(eyes.y, eyes.x));
    cv::Mat tvec = (cv::Mat_<double>(3, 1) << (image[2].x - cx) * z / f, (image[2].y - cy) * z / f, z);
    if (!cv::solvePnP(kModel, image, camera, cv::noArray(), rvec, tvec, true, cv::SOLVEPNP_ITERATIVE))
        return std::nullopt;
    cv::Matx33d R;
    cv::Rodrigues(rvec, R);
    // R = Ry(a) Rx(b) Rz(c): turn (y), nod (x), tilt (z) in the head's own frame.
    const double b = std::asin(std::max(-1.0, std::min(1.0, -R(1, 2))));
    const double a = std::atan2(R(0, 2), R(2, 2));
    const double c = std::atan2(R(1, 0), R(1, 1));
    HeadPose head;
    head.yaw = -a * kDegrees;     // nose towards the picture's right (+x) is the person's left
    head.pitch = -b * kDegrees;   // nose towards the picture's top (-y) is looking up
    head.roll = c * kDegrees;     // left eye (model +x) going down the picture is a tilt to the left
    if (!std::isfinite(head.yaw) || !std::isfinite(head.pitch) || !std::isfinite(head.roll)) return std::nullopt;
    return head;
}

std::string headJSON(const HeadPose &head) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "{\"yaw\": %.1f, \"pitch\": %.1f, \"roll\": %.1f}", head.yaw, head.pitch, head.roll);
    return buf;
}

}  // namespace occur::pose
