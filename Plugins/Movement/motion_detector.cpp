#include "motion_detector.hpp"

#include "movement_config.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace movement {

namespace {

/// Frames the model learns from before its mask is trusted.
constexpr int warmupFrames = 5;
/// Blobs closer than this (frame pixels) are one object: a head, a torso and two legs
/// often come out of the mask as separate pieces.
constexpr double joinDistance = 6;

/// Merges rectangles that overlap or lie within `gap` of each other, until none do.
std::vector<cv::Rect2d> merged(std::vector<cv::Rect2d> rects, double gap) {
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = 0; i < rects.size() && !changed; i++) {
            for (size_t j = i + 1; j < rects.size(); j++) {
                cv::Rect2d grown(rects[i].x - gap, rects[i].y - gap, rects[i].width + 2 * gap,
                                 rects[i].height + 2 * gap);
                if ((grown & rects[j]).area() > 0) {
                    rects[i] = rects[i] | rects[j];
                    rects.erase(rects.begin() + static_cast<long>(j));
                    changed = true;
                    break;
                }
            }
        }
    }
    return rects;
}

}  // namespace

MotionDetector::MotionDetector(const Config &config) : config_(config) {}

void MotionDetector::reset(cv::Size frameSize) {
    frameSize_ = frameSize;
    smallSize_ = cv::Size(std::max(1, static_cast<int>(std::lround(frameSize.width * config_.scale))),
                          std::max(1, static_cast<int>(std::lround(frameSize.height * config_.scale))));
    model_ = cv::createBackgroundSubtractorMOG2(config_.history, config_.varThreshold, true);
    frames_ = 0;
    openKernel_ = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(3, 3));
    // Taller than wide: joins a person's head, body and legs more than two people side by side.
    int w = std::max(3, static_cast<int>(std::lround(7 * config_.scale)) | 1);
    int h = std::max(5, static_cast<int>(std::lround(15 * config_.scale)) | 1);
    joinKernel_ = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(w, h));
}

MotionAnalysis MotionDetector::analyze(const cv::Mat &frame, const std::vector<cv::Rect2d> &protect) {
    if (frame.size() != frameSize_ || !model_) reset(frame.size());
    switch (frame.channels()) {
    case 1: grey_ = frame; break;
    case 4: cv::cvtColor(frame, grey_, cv::COLOR_BGRA2GRAY); break;
    default: cv::cvtColor(frame, grey_, cv::COLOR_BGR2GRAY); break;
    }
    cv::resize(grey_, small_, smallSize_, 0, 0, cv::INTER_AREA);
    cv::GaussianBlur(small_, small_, cv::Size(3, 3), 0);

    frames_++;
    // MOG2's own schedule (fast at first, then 1/history), applied by us so that the
    // judging call below (rate 0) does not count as a frame.
    const double rate = 1.0 / std::min(2 * frames_, config_.history);
    const double sx = static_cast<double>(smallSize_.width) / frameSize_.width;
    const double sy = static_cast<double>(smallSize_.height) / frameSize_.height;
    if (protect.empty() || frames_ <= warmupFrames) {
        model_->apply(small_, mask_, rate);
    } else {
        // Judge the frame without learning, then learn from a copy in which the protected
        // regions show the current background instead of the person standing there.
        model_->apply(small_, mask_, 0);
        model_->getBackgroundImage(background_);
        small_.copyTo(learnImage_);
        const cv::Rect bounds(0, 0, smallSize_.width, smallSize_.height);
        for (const auto &box : protect) {
            cv::Rect r(static_cast<int>(std::floor((box.x - 0.1 * box.width) * sx)),
                       static_cast<int>(std::floor((box.y - 0.1 * box.height) * sy)),
                       static_cast<int>(std::ceil(1.2 * box.width * sx)) + 1,
                       static_cast<int>(std::ceil(1.2 * box.height * sy)) + 1);
            r &= bounds;
            if (r.area() > 0 && background_.size() == small_.size() && background_.type() == small_.type())
                background_(r).copyTo(learnImage_(r));
        }
        model_->apply(learnImage_, scratchMask_, rate);
    }

    MotionAnalysis out;
    if (frames_ <= warmupFrames) {
        out.warmingUp = true;
        return out;
    }
    cv::threshold(mask_, mask_, 200, 255, cv::THRESH_BINARY);  // shadows are 127: not motion
    cv::morphologyEx(mask_, mask_, cv::MORPH_OPEN, openKernel_);
    out.energy = static_cast<double>(cv::countNonZero(mask_)) / static_cast<double>(mask_.total());
    if (out.energy == 0) return out;

    cv::morphologyEx(mask_, mask_, cv::MORPH_CLOSE, joinKernel_);  // joins pieces, keeps the size
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(mask_, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    std::vector<cv::Rect2d> boxes;
    for (const auto &contour : contours) {
        cv::Rect r = cv::boundingRect(contour);
        boxes.emplace_back(r.x / sx, r.y / sy, r.width / sx, r.height / sy);
    }
    for (const auto &box : merged(std::move(boxes), joinDistance)) {
        if (box.area() >= config_.minBlobArea) out.blobs.push_back(box);
    }
    return out;
}

}  // namespace movement
