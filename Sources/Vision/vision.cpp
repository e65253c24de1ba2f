// OpenCV behind the small C API of occur_vision.h. No exception leaves this file.
#include "occur_vision.h"
#include "vision_internal.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/videoio.hpp>

using occur_vision::setError;

namespace {

std::atomic<uint64_t> buffersAllocated{0};


}  // namespace


ov_frame::ov_frame(cv::Mat m) : mat(std::move(m)) { buffersAllocated.fetch_add(1, std::memory_order_relaxed); }

struct ov_capture {
    cv::VideoCapture capture;
};

struct ov_writer {
    cv::VideoWriter writer;
};

struct ov_haar {
    cv::CascadeClassifier classifier;
    cv::Mat gray;  // reused scratch, not a frame buffer
};

extern "C" {

int32_t ov_frame_width(const ov_frame *f) { return f->mat.cols; }
int32_t ov_frame_height(const ov_frame *f) { return f->mat.rows; }
int32_t ov_frame_stride(const ov_frame *f) { return static_cast<int32_t>(f->mat.step[0]); }
int32_t ov_frame_channels(const ov_frame *f) { return f->mat.channels(); }
const uint8_t *ov_frame_pixels(const ov_frame *f) { return f->mat.data; }
void ov_frame_release(ov_frame *f) { delete f; }
uint64_t ov_frame_buffers_allocated(void) { return buffersAllocated.load(std::memory_order_relaxed); }

ov_frame *ov_frame_borrow(const uint8_t *pixels, int32_t width, int32_t height, int32_t stride, int32_t channels) {
    try {
        if (!pixels || width <= 0 || height <= 0 || (channels != 1 && channels != 3)) return nullptr;
        // cv::Mat over external data never frees it; plugins see it through a const pointer.
        cv::Mat borrowed(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t *>(pixels),
                         static_cast<size_t>(stride));
        return new ov_frame(std::move(borrowed), ov_frame::Borrowed{});
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_create(int32_t width, int32_t height, uint8_t b, uint8_t g, uint8_t r) {
    try {
        return new ov_frame(cv::Mat(height, width, CV_8UC3, cv::Scalar(b, g, r)));
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_resized(const ov_frame *src, int32_t width, int32_t height) {
    try {
        cv::Mat out;
        const bool shrinking = width * height < src->mat.cols * src->mat.rows;
        cv::resize(src->mat, out, cv::Size(width, height), 0, 0, shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_rotated90(const ov_frame *src) {
    try {
        cv::Mat out;
        cv::rotate(src->mat, out, cv::ROTATE_90_CLOCKWISE);
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_mirrored(const ov_frame *src) {
    try {
        cv::Mat out;
        cv::flip(src->mat, out, 1);
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_rotated(const ov_frame *src, double degrees) {
    try {
        const cv::Point2f centre((src->mat.cols - 1) / 2.f, (src->mat.rows - 1) / 2.f);
        cv::Mat out;
        cv::warpAffine(src->mat, out, cv::getRotationMatrix2D(centre, degrees, 1.0), src->mat.size(),
                       cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_paste(const ov_frame *canvas, const ov_frame *src, int32_t sx, int32_t sy,
                         int32_t w, int32_t h, int32_t dx, int32_t dy) {
    try {
        cv::Mat out = canvas->mat.clone();
        cv::Rect from = cv::Rect(sx, sy, w, h) & cv::Rect(0, 0, src->mat.cols, src->mat.rows);
        cv::Rect to(dx, dy, from.width, from.height);
        to &= cv::Rect(0, 0, out.cols, out.rows);
        from.width = to.width;
        from.height = to.height;
        if (!from.empty()) src->mat(from).copyTo(out(to));
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_image_read(const char *path, char *error, size_t error_size) {
    try {
        if (occur_vision::jpegFileIsTruncated(path)) {
            setError(error, error_size, std::string("truncated JPEG (no end-of-image marker): ") + path);
            return nullptr;
        }
        cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
        if (image.empty()) {
            setError(error, error_size, std::string("cannot decode image (corrupt, or not an image): ") + path);
            return nullptr;
        }
        return new ov_frame(image);
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return nullptr;
    }
}

ov_frame *ov_image_decode(const uint8_t *bytes, size_t size, char *error, size_t error_size) {
    try {
        if (!bytes || size == 0 || size > size_t(INT32_MAX)) {
            setError(error, error_size, "no image bytes");
            return nullptr;
        }
        if (occur_vision::jpegIsTruncated(bytes, size)) {
            setError(error, error_size, "truncated JPEG (no end-of-image marker; " + std::to_string(size) + " bytes)");
            return nullptr;
        }
        const cv::Mat raw(1, int(size), CV_8UC1, const_cast<uint8_t *>(bytes));
        cv::Mat image = cv::imdecode(raw, cv::IMREAD_COLOR);
        if (image.empty()) {
            setError(error, error_size, "cannot decode image (" + std::to_string(size) + " bytes)");
            return nullptr;
        }
        return new ov_frame(image);
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return nullptr;
    }
}

uint8_t *ov_image_encode_jpeg(const ov_frame *frame, int32_t quality, size_t *size, char *error, size_t error_size) {
    try {
        std::vector<uint8_t> encoded;
        if (!cv::imencode(".jpg", frame->mat, encoded, {cv::IMWRITE_JPEG_QUALITY, int(quality)}) || encoded.empty()) {
            setError(error, error_size, "cannot encode JPEG");
            return nullptr;
        }
        auto *out = static_cast<uint8_t *>(std::malloc(encoded.size()));
        if (!out) {
            setError(error, error_size, "out of memory encoding JPEG");
            return nullptr;
        }
        std::memcpy(out, encoded.data(), encoded.size());
        *size = encoded.size();
        return out;
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return nullptr;
    }
}

int32_t ov_image_write(const char *path, const ov_frame *frame, char *error, size_t error_size) {
    try {
        if (!cv::imwrite(path, frame->mat)) {
            setError(error, error_size, std::string("cannot write image ") + path);
            return -1;
        }
        return 0;
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return -1;
    }
}

ov_capture *ov_capture_open(const char *source, int32_t kind, int32_t timeout_ms, char *error, size_t error_size) {
    try {
        auto *c = new ov_capture();
        bool ok = false;
        std::string s(source);
        if (kind == OV_SOURCE_DEVICE) {
            bool numeric = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
            ok = numeric ? c->capture.open(std::stoi(s), cv::CAP_V4L2) : c->capture.open(s, cv::CAP_V4L2);
        } else {
            std::vector<int> params;
            if (timeout_ms > 0) params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv::CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms};
            ok = c->capture.open(s, cv::CAP_FFMPEG, params);
        }
        if (!ok || !c->capture.isOpened()) {
            delete c;
            setError(error, error_size, "OpenCV could not open " + s);
            return nullptr;
        }
        return c;
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return nullptr;
    }
}

int32_t ov_capture_read(ov_capture *c, ov_frame **out) {
    try {
        cv::Mat mat;  // a fresh buffer per frame: frames are shared, never overwritten
        if (!c->capture.read(mat) || mat.empty()) return 0;
        *out = new ov_frame(mat);
        return 1;
    } catch (...) {
        return 0;
    }
}

int32_t ov_capture_grab(ov_capture *c) {
    try {
        return c->capture.grab() ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

double ov_capture_position_ms(ov_capture *c) { return c->capture.get(cv::CAP_PROP_POS_MSEC); }
double ov_capture_fps(ov_capture *c) {
    double fps = c->capture.get(cv::CAP_PROP_FPS);
    return (fps > 0 && fps < 1000) ? fps : 0;
}
int32_t ov_capture_width(ov_capture *c) { return static_cast<int32_t>(c->capture.get(cv::CAP_PROP_FRAME_WIDTH)); }
int32_t ov_capture_height(ov_capture *c) { return static_cast<int32_t>(c->capture.get(cv::CAP_PROP_FRAME_HEIGHT)); }
int64_t ov_capture_frame_count(ov_capture *c) {
    const double count = c->capture.get(cv::CAP_PROP_FRAME_COUNT);
    return (count > 0 && count < 1e12) ? int64_t(count) : -1;
}
void ov_capture_close(ov_capture *c) { delete c; }

ov_writer *ov_writer_open(const char *path, double fps, int32_t width, int32_t height, char *error,
                          size_t error_size) {
    try {
        auto *w = new ov_writer();
        if (!w->writer.open(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, cv::Size(width, height))) {
            delete w;
            setError(error, error_size, std::string("cannot open video writer for ") + path);
            return nullptr;
        }
        return w;
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return nullptr;
    }
}

void ov_writer_write(ov_writer *w, const ov_frame *frame) {
    try {
        w->writer.write(frame->mat);
    } catch (...) {
    }
}

void ov_writer_close(ov_writer *w) { delete w; }

ov_haar *ov_haar_create(const char *cascade_path, char *error, size_t error_size) {
    try {
        auto *h = new ov_haar();
        if (!h->classifier.load(cascade_path) || h->classifier.empty()) {
            delete h;
            setError(error, error_size, std::string("cannot load Haar cascade ") + cascade_path);
            return nullptr;
        }
        return h;
    } catch (const std::exception &e) {
        setError(error, error_size, e.what());
        return nullptr;
    }
}

int32_t ov_haar_detect(ov_haar *h, const ov_frame *frame, ov_haar_params p, ov_rect *out, int32_t capacity) {
    try {
        const cv::Mat &src = frame->mat;
        if (src.channels() == 1) src.copyTo(h->gray);
        else cv::cvtColor(src, h->gray, cv::COLOR_BGR2GRAY);
        if (p.equalize) cv::equalizeHist(h->gray, h->gray);
        std::vector<cv::Rect> faces;
        h->classifier.detectMultiScale(h->gray, faces, p.scale_factor > 1.0 ? p.scale_factor : 1.1,
                                       p.min_neighbors, 0, cv::Size(p.min_size, p.min_size));
        for (int32_t i = 0; i < static_cast<int32_t>(faces.size()) && i < capacity; ++i) {
            out[i] = ov_rect{faces[i].x, faces[i].y, faces[i].width, faces[i].height};
        }
        return static_cast<int32_t>(faces.size());
    } catch (...) {
        return -1;
    }
}

void ov_haar_release(ov_haar *h) { delete h; }

ov_frame *ov_frame_crop(const ov_frame *src, int32_t x, int32_t y, int32_t w, int32_t h) {
    try {
        cv::Rect r = cv::Rect(x, y, w, h) & cv::Rect(0, 0, src->mat.cols, src->mat.rows);
        if (r.empty()) return nullptr;
        return new ov_frame(src->mat(r).clone());
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_annotated(const ov_frame *src, int32_t x, int32_t y, int32_t w, int32_t h, const char *label) {
    try {
        cv::Mat out = src->mat.channels() == 1 ? cv::Mat() : src->mat.clone();
        if (src->mat.channels() == 1) cv::cvtColor(src->mat, out, cv::COLOR_GRAY2BGR);
        const cv::Scalar green(0, 200, 0);
        const int thickness = std::max(2, out.cols / 400);
        cv::rectangle(out, cv::Rect(x, y, w, h), green, thickness);
        if (label && *label) {
            const double scale = std::max(0.5, out.cols / 1200.0);
            int baseline = 0;
            cv::Size text = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
            cv::Point origin(x, std::max(text.height + 4, y - 6));
            cv::rectangle(out, cv::Rect(origin.x, origin.y - text.height - 4, text.width + 4, text.height + 8), green,
                          cv::FILLED);
            cv::putText(out, label, cv::Point(origin.x + 2, origin.y), cv::FONT_HERSHEY_SIMPLEX, scale,
                        cv::Scalar(0, 0, 0), thickness);
        }
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_enhanced(const ov_frame *src, double clip_limit, double gamma) {
    try {
        cv::Mat out = src->mat.clone();
        if (clip_limit > 0) {
            auto clahe = cv::createCLAHE(clip_limit, cv::Size(8, 8));
            if (out.channels() == 1) {
                clahe->apply(out, out);
            } else {
                cv::Mat lab;
                cv::cvtColor(out, lab, cv::COLOR_BGR2Lab);
                std::vector<cv::Mat> planes;
                cv::split(lab, planes);
                clahe->apply(planes[0], planes[0]);
                cv::merge(planes, lab);
                cv::cvtColor(lab, out, cv::COLOR_Lab2BGR);
            }
        }
        if (gamma > 0 && gamma != 1.0) {
            cv::Mat lut(1, 256, CV_8U);
            for (int i = 0; i < 256; ++i)
                lut.at<uchar>(i) = cv::saturate_cast<uchar>(std::pow(i / 255.0, 1.0 / gamma) * 255.0);
            cv::LUT(out, lut, out);
        }
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

double ov_frame_mean_brightness(const ov_frame *src) {
    try {
        cv::Scalar m = cv::mean(src->mat);
        return src->mat.channels() == 1 ? m[0] : 0.114 * m[0] + 0.587 * m[1] + 0.299 * m[2];
    } catch (...) {
        return 0;
    }
}

ov_frame *ov_frame_gaussian_blurred(const ov_frame *src, double sigma) {
    try {
        cv::Mat out;
        cv::GaussianBlur(src->mat, out, cv::Size(0, 0), sigma);
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

ov_frame *ov_frame_scaled_brightness(const ov_frame *src, double gain) {
    try {
        cv::Mat out;
        src->mat.convertTo(out, src->mat.type(), gain);
        return new ov_frame(out);
    } catch (...) {
        return nullptr;
    }
}

double ov_frame_sharpness(const ov_frame *src, int32_t x, int32_t y, int32_t w, int32_t h, int32_t normalize_contrast) {
    try {
        cv::Rect r = cv::Rect(x, y, w, h) & cv::Rect(0, 0, src->mat.cols, src->mat.rows);
        if (r.empty()) return 0;
        // Measured on the region scaled down to 112 pixels wide, so the score does not depend on
        // how big the face is in the frame.
        cv::Mat gray, scaled, lap;
        if (src->mat.channels() == 1) gray = src->mat(r);
        else cv::cvtColor(src->mat(r), gray, cv::COLOR_BGR2GRAY);
        // Faces narrower than that are measured as they are: enlarging one would blur it, and
        // a 60 px face would score like a blurred 150 px one.
        if (r.width > 112) {
            const int height = std::max(1, r.height * 112 / r.width);
            cv::resize(gray, scaled, cv::Size(112, height), 0, 0, cv::INTER_AREA);
        } else {
            scaled = gray;
        }
        // ... and with its contrast brought to a standard deviation of 50 grey levels (at most
        // 10 times stronger), so that a dim face is not taken for a blurred one: the Laplacian's
        // variance grows with the square of contrast, and a third of the light would divide it by 9.
        cv::Scalar mean, stddev;
        cv::meanStdDev(scaled, mean, stddev);
        const double gain = normalize_contrast ? 50.0 / std::max(5.0, stddev[0]) : 1.0;
        cv::Mat normalized;
        scaled.convertTo(normalized, CV_64F, gain);
        cv::Laplacian(normalized, lap, CV_64F);
        cv::meanStdDev(lap, mean, stddev);
        return stddev[0] * stddev[0];
    } catch (...) {
        return 0;
    }
}

}  // extern "C"
