// The person's outline from BlazePose's segmentation output: the largest region the model
// marks as person, as a simplified polygon in frame pixels.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace occur::pose {

/// The outline of the largest connected region where `logits` (the model's 256 x 256
/// segmentation output, CV_32F, one logit per input pixel) is at least 0 — a probability of
/// at least 0.5 after the sigmoid — counting only input pixels that `toFrame` (input pixel ->
/// frame pixel) maps inside a frame of `frameSize`. The polygon is simplified with
/// approxPolyDP (tolerance 1% of the input side) and mapped to frame pixels. Empty when
/// no pixel is a person.
std::vector<cv::Point2f> personOutline(const cv::Mat &logits, const cv::Matx23d &toFrame, cv::Size frameSize);

/// `[[x, y], ...]`, one decimal.
std::string outlineJSON(const std::vector<cv::Point2f> &outline);

}  // namespace occur::pose
