/*
 * occur_vision.h — the host's window onto OpenCV (C++ behind extern "C").
 *
 * Ownership: every ov_* object returned by a create/open/read function belongs to the
 * caller, who releases it with the matching release/close function. Functions that
 * fail return NULL (or a negative count) and write a message into `error` when given.
 * Thread rule: an object is used by one thread at a time; different objects may be
 * used from different threads.
 */
#ifndef OCCUR_VISION_H
#define OCCUR_VISION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Frames: immutable BGR8/GRAY8 pixel buffers -------------------------------- */

typedef struct ov_frame ov_frame;

int32_t ov_frame_width(const ov_frame *frame);
int32_t ov_frame_height(const ov_frame *frame);
int32_t ov_frame_stride(const ov_frame *frame);   /* bytes per row */
int32_t ov_frame_channels(const ov_frame *frame); /* 3 = BGR, 1 = gray */
const uint8_t *ov_frame_pixels(const ov_frame *frame);
void ov_frame_release(ov_frame *frame);

/* A new frame of the given size, filled with one BGR colour. */
ov_frame *ov_frame_create(int32_t width, int32_t height, uint8_t b, uint8_t g, uint8_t r);
/* A new frame: `src` resized to width x height. */
ov_frame *ov_frame_resized(const ov_frame *src, int32_t width, int32_t height);
/* A new frame: a copy of `canvas` with the region (sx, sy, w, h) of `src` pasted at (dx, dy). */
ov_frame *ov_frame_paste(const ov_frame *canvas, const ov_frame *src,
                         int32_t sx, int32_t sy, int32_t w, int32_t h, int32_t dx, int32_t dy);
/* A new frame: `src` turned 90 degrees clockwise (height x width). */
ov_frame *ov_frame_rotated90(const ov_frame *src);
/* A new frame: `src` mirrored left to right (a pixel at (x, y) goes to (width - 1 - x, y)). */
ov_frame *ov_frame_mirrored(const ov_frame *src);
/* A new frame of the same size: `src` turned `degrees` counter-clockwise (as seen) about its
 * centre, bilinear, black where nothing maps. */
ov_frame *ov_frame_rotated(const ov_frame *src, double degrees);

/* A frame over pixels the caller owns (a plugin runner's shared-memory slot): no copy, and
 * not counted below. The caller keeps `pixels` (height rows of `stride` bytes) valid and
 * unchanged until the frame is released. channels: 3 (BGR) or 1 (gray). */
ov_frame *ov_frame_borrow(const uint8_t *pixels, int32_t width, int32_t height, int32_t stride, int32_t channels);

/* Pixel buffers allocated by this library since start (process-wide). One per decoded
 * frame: nothing downstream copies pixels, and this counter proves it. */
uint64_t ov_frame_buffers_allocated(void);

/* ---- Images ----------------------------------------------------------------- */

/* Reads any image OpenCV decodes (JPEG, PNG incl. 32-bit, BMP, ...) as BGR. A JPEG cut short
 * (no end-of-image marker after its scan data), which OpenCV would return half grey, is
 * refused like any undecodable file: NULL with a message. */
ov_frame *ov_image_read(const char *path, char *error, size_t error_size);
/* Writes a frame; the format follows the extension. Returns 0 on success. */
int32_t ov_image_write(const char *path, const ov_frame *frame, char *error, size_t error_size);
/* Decodes image bytes (any format ov_image_read reads, truncated JPEGs refused alike) as BGR;
 * NULL with a message on failure. */
ov_frame *ov_image_decode(const uint8_t *bytes, size_t size, char *error, size_t error_size);
/* Encodes a frame as JPEG (quality 0-100) into a new malloc'd buffer the caller frees with
 * free(); *size receives its length. NULL with a message on failure. */
uint8_t *ov_image_encode_jpeg(const ov_frame *frame, int32_t quality, size_t *size, char *error, size_t error_size);

/* ---- Video capture ------------------------------------------------------------ */

typedef struct ov_capture ov_capture;

#define OV_SOURCE_FILE   0 /* a video file path */
#define OV_SOURCE_DEVICE 1 /* a V4L2 device: "/dev/videoN" or an index "N" */
#define OV_SOURCE_STREAM 2 /* rtsp://, http://, https:// through FFmpeg */

/* `timeout_ms` > 0 bounds, for FFmpeg sources (files and streams), how long opening and each
 * read may block: a stream that stops sending makes the read return 0 after that long
 * instead of hanging. 0 keeps OpenCV's default (30 s each). Devices (V4L2) ignore it. */
ov_capture *ov_capture_open(const char *source, int32_t kind, int32_t timeout_ms, char *error, size_t error_size);
/* 1: *out is a new frame (caller releases); 0: no frame (end of file, stream lost, or the
 * read timeout passed). */
int32_t ov_capture_read(ov_capture *capture, ov_frame **out);
/* Skips one frame without decoding it into a new buffer. 1 on success, 0 at the end. */
int32_t ov_capture_grab(ov_capture *capture);
double ov_capture_position_ms(ov_capture *capture); /* media time of the last frame read */
double ov_capture_fps(ov_capture *capture);         /* 0 when the source does not say */
int32_t ov_capture_width(ov_capture *capture);
int32_t ov_capture_height(ov_capture *capture);
/* Frames the file's header announces; -1 when the source does not say (streams, devices). */
int64_t ov_capture_frame_count(ov_capture *capture);
void ov_capture_close(ov_capture *capture);

/* ---- Video writing (tests and tools) ------------------------------------------------ */

typedef struct ov_writer ov_writer;
/* MJPG in AVI; frames must all be width x height BGR. */
ov_writer *ov_writer_open(const char *path, double fps, int32_t width, int32_t height,
                          char *error, size_t error_size);
void ov_writer_write(ov_writer *writer, const ov_frame *frame);
void ov_writer_close(ov_writer *writer);

/* ---- Haar cascade face detection ----------------------------------------------------- */

typedef struct ov_rect {
    int32_t x, y, width, height;
} ov_rect;

typedef struct ov_haar_params {
    double scale_factor;       /* e.g. 1.1 */
    int32_t min_neighbors;     /* e.g. 5 */
    int32_t min_size;          /* smallest face side in pixels */
    int32_t equalize;          /* non-zero: equalise the histogram first */
} ov_haar_params;

typedef struct ov_haar ov_haar;
ov_haar *ov_haar_create(const char *cascade_path, char *error, size_t error_size);
/* Writes up to `capacity` faces into `out`; returns how many were found (may exceed
 * capacity), or -1 on error. */
int32_t ov_haar_detect(ov_haar *haar, const ov_frame *frame, ov_haar_params params,
                       ov_rect *out, int32_t capacity);
void ov_haar_release(ov_haar *haar);

/* ---- Faces with landmarks (DNN detectors) and embeddings ------------------------- */

typedef struct ov_face {
    float x, y, width, height;  /* box in frame pixels */
    float score;                /* 0..1 */
    int32_t landmark_count;     /* 0 or 5: right eye, left eye, nose, right/left mouth corner */
    float landmarks[10];        /* x0, y0, x1, y1, ... in frame pixels */
} ov_face;

/* YuNet (2023mar heads, decoded here; OpenCV 4.6's FaceDetectorYN expects the older
 * layout). The frame is scaled so its longer side is `input_size` (0 = as is) and padded
 * to a multiple of 32. */
typedef struct ov_yunet ov_yunet;
ov_yunet *ov_yunet_create(const char *model_path, int32_t input_size, float score_threshold,
                          float nms_threshold, char *error, size_t error_size);
/* Writes up to `capacity` faces, best first; returns how many were found, or -1. */
int32_t ov_yunet_detect(ov_yunet *yunet, const ov_frame *frame, ov_face *out, int32_t capacity);
void ov_yunet_release(ov_yunet *yunet);

/* OpenCV's res10 SSD face detector (Caffe): 300x300 input, mean (104, 177, 123). No landmarks. */
typedef struct ov_ssd ov_ssd;
ov_ssd *ov_ssd_create(const char *prototxt_path, const char *caffemodel_path, float score_threshold,
                      char *error, size_t error_size);
int32_t ov_ssd_detect(ov_ssd *ssd, const ov_frame *frame, ov_face *out, int32_t capacity);
void ov_ssd_release(ov_ssd *ssd);

/* MediaPipe BlazeFace short range (converted to ONNX): 128x128 RGB in [0, 1], NHWC; 896
 * anchors decoded here. Its 6 keypoints (eyes, nose tip, mouth centre, ears) are not the
 * 5-point layout, so faces come without landmarks. Best for faces within about 2 m. */
typedef struct ov_blazeface ov_blazeface;
ov_blazeface *ov_blazeface_create(const char *model_path, float score_threshold, char *error,
                                  size_t error_size);
int32_t ov_blazeface_detect(ov_blazeface *blazeface, const ov_frame *frame, ov_face *out,
                            int32_t capacity);
void ov_blazeface_release(ov_blazeface *blazeface);

/* SFace recogniser: aligns the face by its 5 landmarks (alignCrop) and writes a
 * 128-float feature. Returns the dimension written, or -1 (no landmarks, error). */
typedef struct ov_sface ov_sface;
ov_sface *ov_sface_create(const char *model_path, char *error, size_t error_size);
int32_t ov_sface_embed(ov_sface *sface, const ov_frame *frame, const ov_face *face, float *out,
                       int32_t capacity);
void ov_sface_release(ov_sface *sface);

/* LBPH (OpenCV contrib's LBPHFaceRecognizer, radius 1, 8 neighbours, 8x8 grid): the face is
 * aligned to 112x112 by its 5 landmarks (or its box scaled when it has none), turned grey and
 * equalised, and its spatial histogram (8 * 8 * 256 floats) written to `out`. Returns the
 * count written, or -1. */
int32_t ov_lbph_histogram(const ov_frame *frame, const ov_face *face, float *out, int32_t capacity);

/* A new frame: the region (x, y, w, h) of `src`, clipped to the frame (NULL when empty). */
ov_frame *ov_frame_crop(const ov_frame *src, int32_t x, int32_t y, int32_t w, int32_t h);
/* A new frame: a copy of `src` with a box drawn at (x, y, w, h) and `label` above it. */
ov_frame *ov_frame_annotated(const ov_frame *src, int32_t x, int32_t y, int32_t w, int32_t h,
                             const char *label);
/* Lighting correction for dark scenes. A new frame: CLAHE on the lightness channel
 * (clip_limit, 8x8 tiles) when clip_limit > 0, then gamma (out = in^(1/gamma)) when
 * gamma != 1. */
ov_frame *ov_frame_enhanced(const ov_frame *src, double clip_limit, double gamma);
/* Mean grey level, 0..255. */
double ov_frame_mean_brightness(const ov_frame *src);

/* Variance of the Laplacian of the region scaled to 112 pixels wide: a sharpness score
 * (higher = sharper) that does not depend on the region's size. */
double ov_frame_sharpness(const ov_frame *src, int32_t x, int32_t y, int32_t w, int32_t h);

#ifdef __cplusplus
}
#endif

#endif /* OCCUR_VISION_H */
