#!/usr/bin/env python3
"""Frames/s of the Python face_recognition library (ageitgey, 1.3.0) on every frame of a video.

What a face_recognition user's camera loop does, on every frame, at full resolution:
    locations = face_recognition.face_locations(rgb, model="hog")   # library default, upsample 1
    encodings = face_recognition.face_encodings(rgb, locations)     # 128-d dlib ResNet, 1 jitter, "small" landmarks
The timed part is exactly those two calls ("recognition"). Decoding (OpenCV's VideoCapture.read,
or imageio, and the BGR->RGB conversion face_recognition needs) is timed apart and reported
separately; fps = frames / (detection + encoding seconds).

Runs in the venv made by bench/setup-face-recognition-venv:
    "$(bench/setup-face-recognition-venv --path)" bench/face_recognition_bench.py --video clip.avi --frames 300
The last line is machine-readable:
    RESULT python_face_recognition fps=12.34 frames=300 faces=812 detect_ms_median=... encode_ms_per_face_median=...
"""

import argparse
import os
import platform
import statistics
import sys
import time


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def opencv_frames(path, limit):
    """Yields (rgb, decode_seconds) for up to `limit` frames, decoding with OpenCV."""
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        sys.exit(f"error: OpenCV cannot open {path}")
    try:
        for _ in range(limit):
            t0 = time.perf_counter()
            ok, bgr = cap.read()
            if not ok:
                return
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # contiguous RGB, as dlib wants
            yield rgb, time.perf_counter() - t0
    finally:
        cap.release()


def imageio_frames(path, limit):
    """Yields (rgb, decode_seconds) for up to `limit` frames, decoding with imageio (already RGB)."""
    import imageio.v3 as iio
    import numpy as np

    it = iio.imiter(path)
    for _ in range(limit):
        t0 = time.perf_counter()
        try:
            frame = next(it)
        except StopIteration:
            return
        rgb = np.ascontiguousarray(frame[:, :, :3])
        yield rgb, time.perf_counter() - t0


def pick_decoder(name):
    if name in ("auto", "opencv"):
        try:
            import cv2

            return "opencv", f"OpenCV {cv2.__version__} (opencv-python-headless, its bundled FFmpeg) VideoCapture.read + cvtColor BGR2RGB", opencv_frames
        except ImportError:
            if name == "opencv":
                sys.exit("error: --decoder opencv but cv2 is not importable in this Python")
    try:
        import imageio

        return "imageio", f"imageio {imageio.__version__} imiter", imageio_frames
    except ImportError:
        sys.exit("error: neither cv2 (opencv-python-headless) nor imageio is importable in this Python")


def ms(seconds):
    return seconds * 1000.0


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", required=True, help="video file to decode")
    ap.add_argument("--frames", type=int, default=300, help="frames to process (default 300; fewer if the video ends)")
    ap.add_argument("--decoder", choices=("auto", "opencv", "imageio"), default="auto",
                    help="auto: OpenCV if importable, else imageio")
    args = ap.parse_args()
    if args.frames <= 0:
        sys.exit("error: --frames must be positive")
    if not os.path.exists(args.video):
        sys.exit(f"error: no such video {args.video}")

    t_import = time.perf_counter()
    import dlib
    import face_recognition  # loads the dlib models (HOG detector, 5-point landmarks, ResNet)
    import numpy
    t_import = time.perf_counter() - t_import

    from importlib.metadata import version

    decoder, decoder_desc, frames_of = pick_decoder(args.decoder)
    print("python face_recognition bench")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"library: face_recognition {version('face_recognition')}, dlib {dlib.__version__} (dlib-bin wheel: "
          f"AVX={getattr(dlib, 'USE_AVX_INSTRUCTIONS', '?')} BLAS={getattr(dlib, 'DLIB_USE_BLAS', '?')} "
          f"CUDA={getattr(dlib, 'DLIB_USE_CUDA', '?')}), face_recognition_models {version('face_recognition_models')}, "
          f"numpy {numpy.__version__}; import + model load {ms(t_import):.0f} ms (not timed)")
    print(f"decoder: {decoder_desc}")
    print(f"per frame: face_locations(rgb, model=\"hog\") [upsample 1] + face_encodings(rgb, locations) [1 jitter, small landmarks]")
    print(f"video:   {args.video}, up to {args.frames} frames")

    decode_s, detect_s, encode_s, faces_per_frame, per_face_ms = [], [], [], [], []
    size = None
    for rgb, dt in frames_of(args.video, args.frames):
        size = size or f"{rgb.shape[1]}x{rgb.shape[0]}"
        decode_s.append(dt)
        t0 = time.perf_counter()
        locations = face_recognition.face_locations(rgb, model="hog")
        t1 = time.perf_counter()
        encodings = face_recognition.face_encodings(rgb, locations)
        t2 = time.perf_counter()
        assert len(encodings) == len(locations)
        detect_s.append(t1 - t0)
        encode_s.append(t2 - t1)
        faces_per_frame.append(len(locations))
        if locations:
            per_face_ms.append(ms(t2 - t1) / len(locations))
        n = len(detect_s)
        if n % 50 == 0:
            print(f"  {n} frames, {sum(faces_per_frame)} faces, {n / (sum(detect_s) + sum(encode_s)):.2f} frames/s so far",
                  flush=True)

    n = len(detect_s)
    if n == 0:
        sys.exit(f"error: no frames decoded from {args.video}")
    if n < args.frames:
        print(f"note: the video ended after {n} frames (asked for {args.frames})")
    faces = sum(faces_per_frame)
    recog = sum(detect_s) + sum(encode_s)
    fps = n / recog
    detect_med = ms(statistics.median(detect_s))
    encode_face_med = statistics.median(per_face_ms) if per_face_ms else float("nan")
    frames_with_faces = sum(1 for f in faces_per_frame if f)

    print(f"frames:  {n} of {size}; faces found {faces} in {frames_with_faces} frames "
          f"(max {max(faces_per_frame)} in one frame)")
    print(f"decode:  {ms(sum(decode_s)):.0f} ms total, median {ms(statistics.median(decode_s)):.2f} ms/frame "
          f"({n / sum(decode_s):.0f} frames/s; NOT in the fps below)")
    print(f"detect:  {ms(sum(detect_s)):.0f} ms total, median {detect_med:.1f} ms/frame, "
          f"p90 {ms(percentile(detect_s, 90)):.1f}, max {ms(max(detect_s)):.1f}")
    print(f"encode:  {ms(sum(encode_s)):.0f} ms total, median {encode_face_med:.1f} ms/face "
          f"(over the {len(per_face_ms)} frames with faces), {ms(sum(encode_s)) / max(faces, 1):.1f} ms/face on average")
    print(f"recognition (detect + encode): {recog:.2f} s for {n} frames = {fps:.2f} frames/s "
          f"({1000 / fps:.1f} ms/frame); with decode {n / (recog + sum(decode_s)):.2f} frames/s")
    print(f"RESULT python_face_recognition fps={fps:.2f} frames={n} faces={faces} "
          f"detect_ms_median={detect_med:.2f} encode_ms_per_face_median={encode_face_med:.2f}")


if __name__ == "__main__":
    main()
