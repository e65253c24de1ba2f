// DNN face models behind occur_vision.h: YuNet detection (2023mar heads decoded here)
// and SFace embeddings. No exception leaves this file.
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
#include <opencv2/objdetect/face.hpp>

// Shared with vision.cpp: the frame wrapper.

using occur_vision::setError;


constexpr double kMaxEnlargement = 2.0;

struct ov_yunet {
    cv::dnn::Net net;
    int inputSize;
    float scoreThreshold;
    float nmsThreshold;
    std::vector<std::string> outputNames;
};

struct ov_sface {
    cv::Ptr<cv::FaceRecognizerSF> model;
};

extern "C" {

ov_yunet *ov_yunet_create(const char *model_path, int32_t input_size, float score_threshold, float nms_threshold,
                          char *error, size_t error_size) {
    try {
        auto *y = new ov_yunet();
        y->net = cv::dnn::readNet(model_path);
        if (y->net.empty()) {
            delete y;
            setError(error, error_size, std::string("cannot load YuNet model ") + model_path);
            return nullptr;
        }
        y->inputSize = input_size;
        y->scoreThreshold = score_threshold;
        y->nmsThreshold = nms_threshold;
        // The 2023mar heads, in the order they are decoded below.
        for (const char *head : {"cls", "obj", "bbox", "kps"})
            for (int stride : {8, 16, 32}) y->outputNames.push_back(std::string(head) + "_" + std::to_string(stride));
        return y;
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("cannot load YuNet model: ") + e.what());
        return nullptr;
    }
}

int32_t ov_yunet_detect(ov_yunet *y, const ov_frame *frame, ov_face *out, int32_t capacity) {
    try {
        const cv::Mat &src = frame->mat;
        double scale = 1.0;
        int longer = std::max(src.cols, src.rows);
        // Frames are scaled so their longer side is input_size, but enlarged at most twice:
        // a small image is usually a close-up, and its face enlarged further grows past the
        // largest faces YuNet finds (a 150 px crop at 640 px is missed; at 300 px it is found).
        if (y->inputSize > 0 && longer != y->inputSize) scale = std::min(double(y->inputSize) / longer, kMaxEnlargement);
        cv::Mat image;
        if (scale != 1.0) cv::resize(src, image, cv::Size(), scale, scale, cv::INTER_LINEAR);
        else image = src;
        if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
        const int padW = ((image.cols - 1) / 32 + 1) * 32;
        const int padH = ((image.rows - 1) / 32 + 1) * 32;
        cv::Mat padded;
        cv::copyMakeBorder(image, padded, 0, padH - image.rows, 0, padW - image.cols, cv::BORDER_CONSTANT, 0);
        cv::Mat blob = cv::dnn::blobFromImage(padded);  // BGR, 0..255, NCHW
        y->net.setInput(blob);
        std::vector<cv::Mat> outs;
        y->net.forward(outs, y->outputNames);

        std::vector<cv::Rect2d> boxes;
        std::vector<float> scores;
        std::vector<std::array<float, 10>> marks;
        const int strides[3] = {8, 16, 32};
        for (int i = 0; i < 3; ++i) {
            const int stride = strides[i];
            const int cols = padW / stride, rows = padH / stride;
            const float *cls = outs[i].ptr<float>();
            const float *obj = outs[3 + i].ptr<float>();
            const float *bbox = outs[6 + i].ptr<float>();
            const float *kps = outs[9 + i].ptr<float>();
            for (int r = 0; r < rows; ++r) {
                for (int c = 0; c < cols; ++c) {
                    const int idx = r * cols + c;
                    float clsScore = std::min(std::max(cls[idx], 0.f), 1.f);
                    float objScore = std::min(std::max(obj[idx], 0.f), 1.f);
                    float score = std::sqrt(clsScore * objScore);
                    if (score < y->scoreThreshold) continue;
                    float cx = (c + bbox[idx * 4 + 0]) * stride;
                    float cy = (r + bbox[idx * 4 + 1]) * stride;
                    float w = std::exp(bbox[idx * 4 + 2]) * stride;
                    float h = std::exp(bbox[idx * 4 + 3]) * stride;
                    boxes.emplace_back(cx - w / 2, cy - h / 2, w, h);
                    scores.push_back(score);
                    std::array<float, 10> m{};
                    for (int n = 0; n < 5; ++n) {
                        m[2 * n] = (kps[idx * 10 + 2 * n] + c) * stride;
                        m[2 * n + 1] = (kps[idx * 10 + 2 * n + 1] + r) * stride;
                    }
                    marks.push_back(m);
                }
            }
        }
        std::vector<cv::Rect> intBoxes;
        for (const auto &b : boxes) intBoxes.emplace_back(cvRound(b.x), cvRound(b.y), cvRound(b.width), cvRound(b.height));
        std::vector<int> keep;
        cv::dnn::NMSBoxes(intBoxes, scores, y->scoreThreshold, y->nmsThreshold, keep);
        std::sort(keep.begin(), keep.end(), [&](int a, int b) { return scores[a] > scores[b]; });
        const float inv = float(1.0 / scale);
        int32_t written = 0;
        for (int k : keep) {
            if (written >= capacity) break;
            ov_face f{};
            f.x = float(boxes[k].x) * inv;
            f.y = float(boxes[k].y) * inv;
            f.width = float(boxes[k].width) * inv;
            f.height = float(boxes[k].height) * inv;
            f.score = scores[k];
            f.landmark_count = 5;
            for (int n = 0; n < 10; ++n) f.landmarks[n] = marks[k][n] * inv;
            out[written++] = f;
        }
        return static_cast<int32_t>(keep.size());
    } catch (...) {
        return -1;
    }
}

void ov_yunet_release(ov_yunet *y) { delete y; }

ov_sface *ov_sface_create(const char *model_path, char *error, size_t error_size) {
    try {
        auto *s = new ov_sface();
        s->model = cv::FaceRecognizerSF::create(model_path, "");
        if (!s->model) {
            delete s;
            setError(error, error_size, std::string("cannot load SFace model ") + model_path);
            return nullptr;
        }
        return s;
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("cannot load SFace model: ") + e.what());
        return nullptr;
    }
}

int32_t ov_sface_embed(ov_sface *s, const ov_frame *frame, const ov_face *face, float *out, int32_t capacity) {
    try {
        if (face->landmark_count < 5) return -1;
        cv::Mat row(1, 15, CV_32F);
        float *p = row.ptr<float>();
        p[0] = face->x; p[1] = face->y; p[2] = face->width; p[3] = face->height;
        for (int n = 0; n < 10; ++n) p[4 + n] = face->landmarks[n];
        p[14] = face->score;
        cv::Mat aligned, feature;
        s->model->alignCrop(frame->mat, row, aligned);
        s->model->feature(aligned, feature);
        const int dim = static_cast<int>(feature.total());
        if (dim > capacity) return -1;
        const float *f = feature.ptr<float>();
        std::copy(f, f + dim, out);
        return dim;
    } catch (...) {
        return -1;
    }
}

void ov_sface_release(ov_sface *s) { delete s; }

}  // extern "C"
