// dlib's face models behind occur_dlib.h: HOG and MMOD detection, 5-point alignment and
// the ResNet descriptor, as Python's face_recognition runs them. No exception leaves this file.
#include "occur_dlib.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <dlib/dnn.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>

namespace occur_dlib {

// The caller's pixels seen through dlib's generic image interface: no copy. dlib's
// bgr_pixel has the byte layout of a BGR8 row, so the shape predictor and the chip
// extraction read the frame as it is (and convert to RGB where a network needs it).
template <typename Pixel>
struct PixelView {
    const uint8_t *pixels;
    long rows, columns, stride;
};

template <typename Pixel> long num_rows(const PixelView<Pixel> &v) { return v.rows; }
template <typename Pixel> long num_columns(const PixelView<Pixel> &v) { return v.columns; }
template <typename Pixel> long width_step(const PixelView<Pixel> &v) { return v.stride; }
template <typename Pixel> const void *image_data(const PixelView<Pixel> &v) { return v.pixels; }
template <typename Pixel> void *image_data(PixelView<Pixel> &v) { return const_cast<uint8_t *>(v.pixels); }

}  // namespace occur_dlib

namespace dlib {
template <typename Pixel>
struct image_traits<occur_dlib::PixelView<Pixel>> {
    typedef Pixel pixel_type;
};
}  // namespace dlib

namespace {

using occur_dlib::PixelView;
using namespace dlib;

// ---- Networks, exactly as in dlib's examples ---------------------------------------------

// dnn_mmod_face_detection_ex.cpp
template <long num_filters, typename SUBNET> using con5d = con<num_filters, 5, 5, 2, 2, SUBNET>;
template <long num_filters, typename SUBNET> using con5 = con<num_filters, 5, 5, 1, 1, SUBNET>;
template <typename SUBNET>
using downsampler = relu<affine<con5d<32, relu<affine<con5d<32, relu<affine<con5d<16, SUBNET>>>>>>>>>;
template <typename SUBNET> using rcon5 = relu<affine<con5<45, SUBNET>>>;
using mmod_net = loss_mmod<con<1, 9, 9, 1, 1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>;

// dnn_face_recognition_ex.cpp
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = add_prev1<block<N, BN, 1, tag1<SUBNET>>>;
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<block<N, BN, 2, tag1<SUBNET>>>>>>;
template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, stride, stride, SUBNET>>>>>;
template <int N, typename SUBNET> using ares = relu<residual<block, N, affine, SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block, N, affine, SUBNET>>;
template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;
using resnet = loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
    max_pool<3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2, input_rgb_image_sized<150>>>>>>>>>>>>>;

// ---- Helpers ----------------------------------------------------------------------------

void setError(char *error, size_t size, const std::string &message) {
    if (error && size > 0) std::snprintf(error, size, "%s", message.c_str());
}

std::string checkImage(const uint8_t *pixels, int32_t width, int32_t height, int32_t stride, int32_t channels) {
    if (!pixels) return "no pixels";
    if (channels != 3 && channels != 1) return "unsupported channel count " + std::to_string(channels);
    if (width <= 0 || height <= 0) return "empty image";
    if (stride < width * channels) return "stride shorter than a row";
    return {};
}

// Calls body(view) with the pixels seen as BGR or gray.
template <typename Body>
auto withView(const uint8_t *pixels, int32_t width, int32_t height, int32_t stride, int32_t channels, Body body) {
    if (channels == 3) return body(PixelView<bgr_pixel>{pixels, height, width, stride});
    return body(PixelView<unsigned char>{pixels, height, width, stride});
}

// dlib rectangles are inclusive; boxes are x, y, width, height. Clipped to the image like
// face_recognition's _trim_css_to_bounds.
odlib_box toBox(const rectangle &r, double confidence, long width, long height) {
    const long left = std::max(0L, r.left()), top = std::max(0L, r.top());
    const long right = std::min(width - 1, r.right()), bottom = std::min(height - 1, r.bottom());
    odlib_box b{};
    b.x = float(left);
    b.y = float(top);
    b.width = float(std::max(0L, right - left + 1));
    b.height = float(std::max(0L, bottom - top + 1));
    b.score = float(std::min(1.0, std::max(0.0, confidence)));
    return b;
}

rectangle toRectangle(const odlib_box &b) {
    const long left = std::lround(b.x), top = std::lround(b.y);
    return rectangle(left, top, left + std::max(1L, std::lround(b.width)) - 1,
                     top + std::max(1L, std::lround(b.height)) - 1);
}

int32_t writeBoxes(std::vector<odlib_box> boxes, odlib_box *out, int32_t capacity) {
    std::sort(boxes.begin(), boxes.end(), [](const odlib_box &a, const odlib_box &b) {
        if (a.score != b.score) return a.score > b.score;
        return a.y != b.y ? a.y < b.y : a.x < b.x;
    });
    const int32_t n = static_cast<int32_t>(boxes.size());
    if (out) std::copy_n(boxes.begin(), std::min(n, std::max(0, capacity)), out);
    return n;
}

}  // namespace

struct odlib_hog {
    dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
};

struct odlib_mmod {
    mmod_net net;
};

struct odlib_embedder {
    dlib::shape_predictor predictor;
    resnet net;
};

extern "C" {

odlib_hog *odlib_hog_create(char *error, size_t error_size) {
    try {
        return new odlib_hog();
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("cannot create dlib's HOG face detector: ") + e.what());
        return nullptr;
    } catch (...) {
        setError(error, error_size, "cannot create dlib's HOG face detector");
        return nullptr;
    }
}

int32_t odlib_hog_detect(odlib_hog *d, const uint8_t *pixels, int32_t width, int32_t height, int32_t stride,
                         int32_t channels, int32_t upsample, odlib_box *out, int32_t capacity, char *error,
                         size_t error_size) {
    try {
        const std::string bad = checkImage(pixels, width, height, stride, channels);
        if (!bad.empty() || upsample < 0 || upsample > 3) {
            setError(error, error_size, bad.empty() ? "upsample must be 0..3" : bad);
            return -1;
        }
        // face_recognition (dlib's Python run_detector_with_upsample): double the image,
        // detect at threshold 0, map the boxes back down.
        std::vector<rect_detection> found;
        withView(pixels, width, height, stride, channels, [&](const auto &view) {
            using Pixel = typename image_traits<std::decay_t<decltype(view)>>::pixel_type;
            if (upsample == 0) {
                d->detector(view, found, 0.0);
                return 0;
            }
            pyramid_down<2> pyramid;
            array2d<Pixel> larger;
            pyramid_up(view, larger, pyramid);
            for (int i = 1; i < upsample; ++i) pyramid_up(larger, pyramid);
            d->detector(larger, found, 0.0);
            for (auto &f : found) f.rect = pyramid.rect_down(f.rect, upsample);
            return 0;
        });
        std::vector<odlib_box> boxes;
        for (const auto &f : found) boxes.push_back(toBox(f.rect, f.detection_confidence, width, height));
        return writeBoxes(std::move(boxes), out, capacity);
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("dlib HOG detection failed: ") + e.what());
        return -1;
    } catch (...) {
        setError(error, error_size, "dlib HOG detection failed");
        return -1;
    }
}

void odlib_hog_release(odlib_hog *d) { delete d; }

odlib_mmod *odlib_mmod_create(const char *model_path, char *error, size_t error_size) {
    try {
        auto *m = new odlib_mmod();
        try {
            deserialize(model_path) >> m->net;
        } catch (...) {
            delete m;
            throw;
        }
        return m;
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("cannot load dlib MMOD model ") + (model_path ? model_path : "(null)") +
                                        ": " + e.what());
        return nullptr;
    } catch (...) {
        setError(error, error_size, std::string("cannot load dlib MMOD model ") + (model_path ? model_path : "(null)"));
        return nullptr;
    }
}

int32_t odlib_mmod_detect(odlib_mmod *m, const uint8_t *pixels, int32_t width, int32_t height, int32_t stride,
                          int32_t channels, int32_t upsample, odlib_box *out, int32_t capacity, char *error,
                          size_t error_size) {
    try {
        const std::string bad = checkImage(pixels, width, height, stride, channels);
        if (!bad.empty() || upsample < 0 || upsample > 3) {
            setError(error, error_size, bad.empty() ? "upsample must be 0..3" : bad);
            return -1;
        }
        // face_recognition's cnn model (dlib's Python cnn_face_detection_model_v1): the
        // network takes an RGB matrix, doubled `upsample` times.
        matrix<rgb_pixel> image;
        withView(pixels, width, height, stride, channels, [&](const auto &view) {
            assign_image(image, view);
            return 0;
        });
        pyramid_down<2> pyramid;
        for (int i = 0; i < upsample; ++i) pyramid_up(image, pyramid);
        std::vector<mmod_rect> found = m->net(image);
        std::vector<odlib_box> boxes;
        for (const auto &f : found)
            boxes.push_back(toBox(pyramid.rect_down(f.rect, upsample), f.detection_confidence, width, height));
        return writeBoxes(std::move(boxes), out, capacity);
    } catch (const std::exception &e) {
        setError(error, error_size, std::string("dlib MMOD detection failed: ") + e.what());
        return -1;
    } catch (...) {
        setError(error, error_size, "dlib MMOD detection failed");
        return -1;
    }
}

void odlib_mmod_release(odlib_mmod *m) { delete m; }

odlib_embedder *odlib_embedder_create(const char *shape_predictor_path, const char *resnet_path, char *error,
                                      size_t error_size) {
    std::string loading = shape_predictor_path ? shape_predictor_path : "(null)";
    try {
        auto *e = new odlib_embedder();
        try {
            deserialize(loading) >> e->predictor;
            loading = resnet_path ? resnet_path : "(null)";
            deserialize(loading) >> e->net;
        } catch (...) {
            delete e;
            throw;
        }
        return e;
    } catch (const std::exception &e) {
        setError(error, error_size, "cannot load dlib model " + loading + ": " + e.what());
        return nullptr;
    } catch (...) {
        setError(error, error_size, "cannot load dlib model " + loading);
        return nullptr;
    }
}

int32_t odlib_embedder_embed(odlib_embedder *e, const uint8_t *pixels, int32_t width, int32_t height, int32_t stride,
                             int32_t channels, odlib_box face, float *out, int32_t capacity, char *error,
                             size_t error_size) {
    try {
        const std::string bad = checkImage(pixels, width, height, stride, channels);
        if (!bad.empty()) {
            setError(error, error_size, bad);
            return -1;
        }
        if (!out || capacity < 128) {
            setError(error, error_size, "the output holds fewer than 128 floats");
            return -1;
        }
        // face_recognition.face_encodings(num_jitters=1): 5 landmarks in the box, the
        // aligned 150x150 chip with 25% padding, one pass through the network.
        matrix<rgb_pixel> chip;
        withView(pixels, width, height, stride, channels, [&](const auto &view) {
            const full_object_detection shape = e->predictor(view, toRectangle(face));
            extract_image_chip(view, get_face_chip_details(shape, 150, 0.25), chip);
            return 0;
        });
        const matrix<float, 0, 1> descriptor = e->net(chip);
        if (descriptor.size() != 128) {
            setError(error, error_size, "the descriptor has " + std::to_string(descriptor.size()) + " values, not 128");
            return -1;
        }
        std::copy(descriptor.begin(), descriptor.end(), out);
        return 128;
    } catch (const std::exception &ex) {
        setError(error, error_size, std::string("dlib face descriptor failed: ") + ex.what());
        return -1;
    } catch (...) {
        setError(error, error_size, "dlib face descriptor failed");
        return -1;
    }
}

void odlib_embedder_release(odlib_embedder *e) { delete e; }

}  // extern "C"
