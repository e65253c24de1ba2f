// LBPH features through OpenCV contrib's face module. No exception leaves this file.
#include "occur_vision.h"
#include "vision_internal.hpp"

#include <algorithm>

#include <opencv2/core.hpp>
#include <opencv2/face.hpp>
#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>


namespace {

/// Where the 5 landmarks sit in a 112x112 aligned face (the template SFace/ArcFace use).
const cv::Point2f kTemplate[5] = {{38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f},
                                  {41.5493f, 92.3655f}, {70.7299f, 92.2041f}};

/// The face as a grey 112x112 image: aligned by its 5 landmarks when it has them, else the
/// box scaled.
cv::Mat grayFace(const cv::Mat &src, const ov_face *face) {
    cv::Mat gray;
    if (src.channels() == 1) gray = src;
    else cv::cvtColor(src, gray, cv::COLOR_BGR2GRAY);
    cv::Mat out;
    if (face->landmark_count >= 5) {
        std::vector<cv::Point2f> from, to(kTemplate, kTemplate + 5);
        for (int i = 0; i < 5; ++i) from.emplace_back(face->landmarks[2 * i], face->landmarks[2 * i + 1]);
        cv::Mat transform = cv::estimateAffinePartial2D(from, to, cv::noArray(), cv::LMEDS);
        if (!transform.empty()) {
            cv::warpAffine(gray, out, transform, cv::Size(112, 112));
            return out;
        }
    }
    cv::Rect box = cv::Rect(cvRound(face->x), cvRound(face->y), cvRound(face->width), cvRound(face->height)) &
                   cv::Rect(0, 0, src.cols, src.rows);
    if (box.width < 8 || box.height < 8) return out;
    cv::resize(gray(box), out, cv::Size(112, 112), 0, 0, cv::INTER_AREA);
    return out;
}

}  // namespace

extern "C" int32_t ov_lbph_histogram(const ov_frame *frame, const ov_face *face, float *out, int32_t capacity) {
    try {
        cv::Mat sized = grayFace(frame->mat, face);
        if (sized.empty()) return -1;
        cv::equalizeHist(sized, sized);
        // Training on the one image computes exactly the histogram predict() compares.
        auto model = cv::face::LBPHFaceRecognizer::create(1, 8, 8, 8);
        model->train(std::vector<cv::Mat>{sized}, std::vector<int>{0});
        const cv::Mat histogram = model->getHistograms().at(0);
        const int n = static_cast<int>(histogram.total());
        if (n > capacity) return -1;
        cv::Mat floats;
        histogram.convertTo(floats, CV_32F);
        std::copy(floats.ptr<float>(), floats.ptr<float>() + n, out);
        return n;
    } catch (...) {
        return -1;
    }
}
