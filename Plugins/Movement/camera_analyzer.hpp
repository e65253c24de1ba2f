// Everything the Movement plugin knows about one camera: the background model, the motion
// state, the tracked objects (host face tracks and its own motion-blob tracks) with their
// trajectories, zone stays and line sides, and the running line counts.
#pragma once

#include "json_object.hpp"
#include "motion_detector.hpp"
#include "movement_config.hpp"

#include <opencv2/core.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace movement {

/// One result for host->emit.
struct Result {
    std::string kind;
    std::string payload;      // a JSON object
    int64_t trackId = -1;     // the host's face track id, or -1
    bool hasBox = false;
    cv::Rect2d box;
};

/// A face as an event carries it.
struct FaceSighting {
    int64_t trackId = -1;
    cv::Rect2d box;
    std::string identity;     // empty when not (yet) recognised
};

class CameraAnalyzer {
public:
    explicit CameraAnalyzer(const Config &config);

    /// A frame event: background subtraction and blob tracking on `frame` (when not empty),
    /// then the faces it carries.
    void onFrame(int64_t timestampNs, const cv::Mat &frame, const std::vector<FaceSighting> &faces,
                 std::vector<Result> &out);
    /// A face event other than face_left: its face extends that track's trajectory.
    void onFaces(int64_t timestampNs, const std::vector<FaceSighting> &faces, std::vector<Result> &out);
    /// face_left: the face track ended.
    void onFaceLeft(int64_t timestampNs, int64_t trackId, std::vector<Result> &out);

    int64_t lastTimestampNs() const { return lastNs_; }

private:
    struct Sample {
        int64_t t;
        cv::Point2d p;
    };
    struct ZoneState {
        bool inside = false;
        bool announced = false;
        bool loitered = false;
        int64_t enteredNs = 0;
    };
    struct LineState {
        int side = 0;  // -1 left, +1 right (as seen walking from `from` to `to`), 0 not yet known
        cv::Point2d lastPoint;
    };
    enum class Source { Face, Motion };
    /// Where an object was at one time.
    struct Position {
        int64_t t;
        cv::Point2d p;
        cv::Rect2d box;
    };
    struct TrackedObject {
        Source source = Source::Motion;
        int64_t id = 0;
        int64_t faceTrackId = -1;  // the host's track: the face itself, or a face seen on this blob
        std::string identity;
        cv::Rect2d box;
        cv::Point2d point;         // motion: bottom centre (where the person stands); face: centre
        cv::Point2d firstPoint;
        cv::Point2d velocity;      // px/s, for prediction
        int64_t firstNs = 0, lastNs = 0;
        int hits = 0;
        bool confirmed = false;
        bool covered = false;      // a face inside a moving blob: the blob reports it
        bool merged = false;       // a second track of something an older track follows: ends
        double travelled = 0;      // farthest the point has been from where it started, px
        std::vector<Sample> recent;   // the last two seconds, for speeds
        std::vector<Sample> path;     // samples at least 0.2 s apart, for the trajectory
        std::vector<Position> backlog;  // steps before confirmation, evaluated when confirmed
        double pathLength = 0;
        double maxSpeed = 0;
        std::vector<ZoneState> zones;
        std::vector<LineState> lines;
    };

    static cv::Point2d anchor(Source source, const cv::Rect2d &box);
    TrackedObject makeObject(Source source, int64_t id, int64_t timestampNs, const cv::Rect2d &box) const;
    void trackBlobs(int64_t timestampNs, const std::vector<cv::Rect2d> &blobs, std::vector<Result> &out);
    void updateFace(int64_t timestampNs, const FaceSighting &face, std::vector<Result> &out);
    void updateMotionState(int64_t timestampNs, const MotionAnalysis &analysis, std::vector<Result> &out);
    /// Moves the object to `box` at `t` and evaluates zones and lines.
    void step(TrackedObject &object, int64_t t, const cv::Rect2d &box, std::vector<Result> &out);
    /// Zones and lines for one position of a confirmed object.
    void evaluate(TrackedObject &object, const Position &at, std::vector<Result> &out);
    /// The track is over: zone_leave for the zones it is in, then its trajectory.
    void end(TrackedObject &object, const char *reason, std::vector<Result> &out);
    cv::Point2d velocityAt(const TrackedObject &object, int64_t t) const;
    JsonObject describe(const TrackedObject &object) const;
    Result result(const char *kind, const TrackedObject &object, const JsonObject &payload,
                  const cv::Rect2d &box) const;
    std::vector<cv::Rect2d> protectedBoxes() const;

    const Config &config_;
    std::vector<std::vector<cv::Point2f>> zoneContours_;
    MotionDetector detector_;
    std::vector<cv::Rect2d> lastBlobs_;
    std::map<int64_t, TrackedObject> motions_;
    std::map<int64_t, TrackedObject> faces_;
    int64_t nextMotionID_ = 1;
    int64_t lastNs_ = INT64_MIN;
    std::vector<std::pair<uint64_t, uint64_t>> lineCounts_;  // left_to_right, right_to_left

    // Motion events: hysteresis state.
    bool motionActive_ = false;
    int64_t aboveSinceNs_ = -1, belowSinceNs_ = -1, motionStartNs_ = 0;
    double peakEnergy_ = 0;
};

}  // namespace movement
