#include "person_outline.hpp"

#include <opencv2/imgproc.hpp>

#include <cstdio>

namespace occur::pose {

std::vector<cv::Point2f> personOutline(const cv::Mat &logits, const cv::Matx23d &toFrame, cv::Size frameSize) {
    CV_Assert(logits.type() == CV_32F && logits.rows == logits.cols);
    const int side = logits.rows;
    auto map = [&](double u, double v) {
        return cv::Point2f(float(toFrame(0, 0) * u + toFrame(0, 1) * v + toFrame(0, 2)),
                           float(toFrame(1, 0) * u + toFrame(1, 1) * v + toFrame(1, 2)));
    };
    // Person pixels (logit >= 0) whose frame position is inside the frame: the crop's black
    // letterbox is not part of anybody.
    cv::Mat person(side, side, CV_8U);
    for (int v = 0; v < side; ++v) {
        const float *l = logits.ptr<float>(v);
        uint8_t *m = person.ptr<uint8_t>(v);
        for (int u = 0; u < side; ++u) {
            const cv::Point2f p = map(u, v);
            const bool inside = p.x >= 0 && p.y >= 0 && p.x <= frameSize.width - 1 && p.y <= frameSize.height - 1;
            m[u] = l[u] >= 0.f && inside ? 255 : 0;
        }
    }
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(person, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    const std::vector<cv::Point> *largest = nullptr;
    double largestArea = -1;
    for (const auto &c : contours) {
        const double area = cv::contourArea(c);
        if (area > largestArea) largestArea = area, largest = &c;
    }
    std::vector<cv::Point2f> outline;
    if (!largest) return outline;
    std::vector<cv::Point> simple;
    cv::approxPolyDP(*largest, simple, 0.01 * side, true);
    outline.reserve(simple.size());
    for (const cv::Point &q : simple) outline.push_back(map(q.x, q.y));
    return outline;
}

std::string outlineJSON(const std::vector<cv::Point2f> &outline) {
    std::string out = "[";
    char buf[48];
    for (size_t i = 0; i < outline.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s[%.1f, %.1f]", i ? ", " : "", outline[i].x, outline[i].y);
        out += buf;
    }
    return out + "]";
}

}  // namespace occur::pose
