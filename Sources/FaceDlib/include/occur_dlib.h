/*
 * occur_dlib.h — dlib's face models behind extern "C": the HOG and MMOD (CNN) face
 * detectors, and the 5-point shape predictor + ResNet 128-d descriptor. These are the
 * models and the pipeline of Python's face_recognition library (face_recognition_models
 * 0.3.0), so descriptor distances are on its scale: same person below 0.6.
 *
 * Images: every call takes raw pixels the caller owns — `pixels` points at `height` rows
 * of `stride` bytes, each row `width` pixels of `channels` bytes (3 = BGR8, 1 = GRAY8).
 * The pixels are only read, and only during the call; nothing keeps the pointer.
 *
 * Ownership: every odlib_* object returned by a create function belongs to the caller,
 * who releases it with the matching release function (NULL is allowed there). Functions
 * that fail return NULL or -1 and write a message into `error` when it is not NULL
 * (at most `error_size` bytes, NUL-terminated). No C++ exception leaves this library.
 *
 * Thread rule: an object is used by one thread at a time (the networks keep their
 * working tensors inside); different objects may be used from different threads.
 */
#ifndef OCCUR_DLIB_H
#define OCCUR_DLIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A face box in image pixels. */
typedef struct odlib_box {
    float x, y, width, height;
    /* The detector's margin mapped to 0..1: dlib reports a confidence that is 0 at its
     * detection threshold and grows with certainty (HOG: an SVM margin, clear faces 1..3;
     * MMOD: the network's output, clear faces about 1). The score is that value clamped
     * to 0..1. */
    float score;
} odlib_box;

/* ---- Detectors -------------------------------------------------------------------- */

/* dlib::get_frontal_face_detector(): HOG features + linear SVMs, 80x80 windows. Built
 * into dlib, no model file. */
typedef struct odlib_hog odlib_hog;
odlib_hog *odlib_hog_create(char *error, size_t error_size);

/* The MMOD CNN detector of dlib's dnn_mmod_face_detection_ex.cpp, loaded from
 * mmod_human_face_detector.dat. Finds faces from about 40x40 and at more angles than HOG,
 * at many times the cost. */
typedef struct odlib_mmod odlib_mmod;
odlib_mmod *odlib_mmod_create(const char *model_path, char *error, size_t error_size);

/* Detect faces. The image is first doubled `upsample` times (0..3), like
 * face_recognition's number_of_times_to_upsample (its default is 1): each doubling halves
 * the smallest face found and roughly quadruples the time. Boxes are in the caller's image
 * pixels, clipped to the image. Writes up to `capacity` faces into `out`, best first;
 * returns how many were found (may exceed capacity), or -1 on error. */
int32_t odlib_hog_detect(odlib_hog *detector, const uint8_t *pixels, int32_t width, int32_t height,
                         int32_t stride, int32_t channels, int32_t upsample, odlib_box *out,
                         int32_t capacity, char *error, size_t error_size);
int32_t odlib_mmod_detect(odlib_mmod *detector, const uint8_t *pixels, int32_t width, int32_t height,
                          int32_t stride, int32_t channels, int32_t upsample, odlib_box *out,
                          int32_t capacity, char *error, size_t error_size);

void odlib_hog_release(odlib_hog *detector);
void odlib_mmod_release(odlib_mmod *detector);

/* ---- Descriptor --------------------------------------------------------------------- */

/* shape_predictor_5_face_landmarks.dat + dlib_face_recognition_resnet_model_v1.dat (the
 * network of dlib's dnn_face_recognition_ex.cpp). */
typedef struct odlib_embedder odlib_embedder;
odlib_embedder *odlib_embedder_create(const char *shape_predictor_path, const char *resnet_path,
                                      char *error, size_t error_size);

/* Finds the 5 landmarks inside `face` (any detector's box), cuts the aligned 150x150 chip
 * (get_face_chip_details(shape, 150, 0.25), as face_recognition does with num_jitters=1),
 * and writes the 128-float descriptor into `out`. Compare descriptors by Euclidean
 * distance. Returns the dimension written (128), or -1 (error, or capacity < 128). */
int32_t odlib_embedder_embed(odlib_embedder *embedder, const uint8_t *pixels, int32_t width,
                             int32_t height, int32_t stride, int32_t channels, odlib_box face,
                             float *out, int32_t capacity, char *error, size_t error_size);

void odlib_embedder_release(odlib_embedder *embedder);

#ifdef __cplusplus
}
#endif

#endif /* OCCUR_DLIB_H */
