// The SSD (res10, Caffe) and BlazeFace (MediaPipe short range, ONNX) face detectors.
// No exception leaves this file.
#include "occur_vision.h"
#include "vision_internal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>


using occur_vision::setError;

namespace {


cv::Mat bgr(const cv::Mat &src) {
    if (src.channels() == 3) return src;
    cv::Mat out;
    cv::cvtColor(src, out, src.channels() == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_BGRA2BGR);
    return out;
}

/// Non-maximum suppression; writes the survivors best first, returns how many were found.
int32_t suppress(const std::vector<cv::Rect2f> &boxes, const std::vector<float> &scores, float threshold,
                 ov_face *out, int32_t capacity) {
    std::vector<cv::Rect> rects;
    for (const auto &b : boxes) rects.emplace_back(cvRound(b.x), cvRound(b.y), cvRound(b.width), cvRound(b.height));
    std::vector<int> keep;
    cv::dnn::NMSBoxes(rects, scores, threshold, 0.3f, keep);
    std::sort(keep.begin(), keep.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    int32_t written = 0;
    for (int k : keep) {
        if (written >= capacity) break;
        ov_face f{};
        f.x = boxes[k].x;
        f.y = boxes[k].y;
        f.width = boxes[k].width;
        f.height = boxes[k].height;
        f.score = scores[k];
        out[written++] = f;
    }
    return static_cast<int32_t>(keep.size());
}

struct Anchor {
    float x, y;
};

/// MediaPipe's SSD anchors for the short-range face model: strides 8, 16, 16, 16 on a
/// 128x128 input, fixed anchor size, 2 + 6 anchors per cell = 896.
std::vector<Anchor> blazeFaceAnchors() {
    std::vector<Anchor> anchors;
    const int strides[4] = {8, 16, 16, 16};
    int layer = 0;
    while (layer < 4) {
        int perCell = 0;
        int last = layer;
        while (last < 4 && strides[last] == strides[layer]) {
            perCell += 2;
            ++last;
        }
        const int size = 128 / strides[layer];
        for (int y = 0; y < size; ++y)
            for (int x = 0; x < size; ++x)
                for (int a = 0; a < perCell; ++a) anchors.push_back({(x + 0.5f) / size, (y + 0.5f) / size});
        layer = last;
    }
    return anchors;
}

}  // namespace

struct ov_ssd {
    cv::dnn::Net net;
    float scoreThreshold;
};

struct ov_blazeface {
    cv::dnn::Net net;
    float scoreThreshold;
    std::vector<Anchor> anchors;
};

extern "C" {

ov_ssd *ov_ssd_create(const char *prototxt_path, const char *caffemodel_path, float score_threshold, char *error,
                      size_t error_size) {
    try {
        auto *s = new ov_ssd();
        s->net = cv::dnn::readNetFromCaffe(prototxt_path, caffemodel_path);
        s->scoreThreshold = score_threshold;
        if (s->net.empty()) {
            delete s;
            setError(error, error_size, std::string("cannot load SSD model ") + caffemodel_path);
            return nullptr;
        }
        return s;
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("cannot load SSD model: ") + e.what());
        return nullptr;
    }
}

int32_t ov_ssd_detect(ov_ssd *s, const ov_frame *frame, ov_face *out, int32_t capacity) {
    try {
        cv::Mat image = bgr(frame->mat);
        cv::Mat blob = cv::dnn::blobFromImage(image, 1.0, cv::Size(300, 300), cv::Scalar(104, 177, 123));
        s->net.setInput(blob);
        cv::Mat detections = s->net.forward();  // 1 x 1 x N x 7
        cv::Mat rows(detections.size[2], detections.size[3], CV_32F, detections.ptr<float>());
        std::vector<cv::Rect2f> boxes;
        std::vector<float> scores;
        for (int i = 0; i < rows.rows; ++i) {
            const float *r = rows.ptr<float>(i);
            if (r[2] < s->scoreThreshold) continue;
            float x1 = std::max(0.f, r[3]) * image.cols, y1 = std::max(0.f, r[4]) * image.rows;
            float x2 = std::min(1.f, r[5]) * image.cols, y2 = std::min(1.f, r[6]) * image.rows;
            if (x2 <= x1 || y2 <= y1) continue;
            boxes.emplace_back(x1, y1, x2 - x1, y2 - y1);
            scores.push_back(r[2]);
        }
        return suppress(boxes, scores, s->scoreThreshold, out, capacity);
    } catch (...) {
        return -1;
    }
}

void ov_ssd_release(ov_ssd *s) { delete s; }

ov_blazeface *ov_blazeface_create(const char *model_path, float score_threshold, char *error, size_t error_size) {
    try {
        auto *b = new ov_blazeface();
        b->net = cv::dnn::readNetFromONNX(model_path);
        b->scoreThreshold = score_threshold;
        b->anchors = blazeFaceAnchors();
        if (b->net.empty()) {
            delete b;
            setError(error, error_size, std::string("cannot load BlazeFace model ") + model_path);
            return nullptr;
        }
        return b;
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("cannot load BlazeFace model: ") + e.what());
        return nullptr;
    }
}

int32_t ov_blazeface_detect(ov_blazeface *b, const ov_frame *frame, ov_face *out, int32_t capacity) {
    try {
        // Letterbox to a square (pad right/bottom), then 128x128 RGB in [0, 1], NHWC.
        cv::Mat image = bgr(frame->mat);
        const int side = std::max(image.cols, image.rows);
        cv::Mat square;
        cv::copyMakeBorder(image, square, 0, side - image.rows, 0, side - image.cols, cv::BORDER_CONSTANT, 0);
        cv::Mat small, rgb, input;
        cv::resize(square, small, cv::Size(128, 128), 0, 0, cv::INTER_AREA);
        cv::cvtColor(small, rgb, cv::COLOR_BGR2RGB);
        rgb.convertTo(input, CV_32F, 1.0 / 255.0);
        const int shape[4] = {1, 128, 128, 3};
        cv::Mat blob(4, shape, CV_32F, input.ptr<float>());
        b->net.setInput(blob);
        std::vector<cv::Mat> outs;
        b->net.forward(outs, b->net.getUnconnectedOutLayersNames());
        // Outputs: regressors (1 x 896 x 16) and classificators (1 x 896 x 1), in either order.
        const cv::Mat *regressors = nullptr, *scoresMat = nullptr;
        for (const auto &o : outs) {
            if (o.total() == 896 * 16) regressors = &o;
            else if (o.total() == 896) scoresMat = &o;
        }
        if (!regressors || !scoresMat) return -1;
        const float *reg = regressors->ptr<float>();
        const float *raw = scoresMat->ptr<float>();
        std::vector<cv::Rect2f> boxes;
        std::vector<float> scores;
        const float scale = float(side);
        for (int i = 0; i < 896; ++i) {
            float logit = std::min(100.f, std::max(-100.f, raw[i]));
            float score = 1.f / (1.f + std::exp(-logit));
            if (score < b->scoreThreshold) continue;
            const float *r = reg + i * 16;
            float cx = r[0] / 128.f + b->anchors[i].x, cy = r[1] / 128.f + b->anchors[i].y;
            float w = r[2] / 128.f, h = r[3] / 128.f;
            boxes.emplace_back((cx - w / 2) * scale, (cy - h / 2) * scale, w * scale, h * scale);
            scores.push_back(score);
        }
        return suppress(boxes, scores, b->scoreThreshold, out, capacity);
    } catch (...) {
        return -1;
    }
}

void ov_blazeface_release(ov_blazeface *b) { delete b; }

}  // extern "C"
