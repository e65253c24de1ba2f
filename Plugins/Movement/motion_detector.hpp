// Background subtraction for one camera: MOG2 on a downscaled grey frame gives the motion
// energy (fraction of moving pixels) and the moving regions (blobs) in frame pixels.
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/video/background_segm.hpp>

#include <vector>

namespace movement {

struct Config;

struct MotionAnalysis {
    double energy = 0;                // moving pixels / all pixels, 0..1
    std::vector<cv::Rect2d> blobs;    // merged moving regions, frame pixels, >= min_blob_area
    bool warmingUp = false;           // the model has not seen enough frames to judge yet
};

class MotionDetector {
public:
    explicit MotionDetector(const Config &config);

    /// Analyses one frame (BGR, BGRA or grey). Regions in `protect` (frame pixels) are kept
    /// out of the background model's learning, so a tracked person who stops walking is not
    /// absorbed into the background while they stand there.
    MotionAnalysis analyze(const cv::Mat &frame, const std::vector<cv::Rect2d> &protect);

    /// Frames analysed since the model was (re)made.
    int frames() const { return frames_; }

private:
    void reset(cv::Size frameSize);

    const Config &config_;
    cv::Ptr<cv::BackgroundSubtractorMOG2> model_;
    cv::Size frameSize_, smallSize_;
    int frames_ = 0;
    cv::Mat grey_, small_, mask_, learnImage_, background_, scratchMask_;
    cv::Mat openKernel_, joinKernel_;
};

}  // namespace movement
