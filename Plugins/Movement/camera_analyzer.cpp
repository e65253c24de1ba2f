#include "camera_analyzer.hpp"

#include "json_object.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace movement {

namespace {

constexpr int confirmHits = 3;               // blob tracks report after this many sightings
constexpr int64_t nanos = 1'000'000'000;
constexpr int64_t recentWindowNs = 2 * nanos;
constexpr int64_t speedWindowNs = nanos / 2;  // speeds over the last half second
constexpr int64_t pathSpacingNs = nanos / 5;  // trajectory samples at least 0.2 s apart
constexpr size_t maxPathSamples = 512;        // then every other one is dropped
constexpr size_t summaryPoints = 16;          // points in a trajectory result's path
constexpr double stillPixels = 10;            // a net displacement below this is "still"

double seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

cv::Point2d centre(const cv::Rect2d &r) { return {r.x + r.width / 2, r.y + r.height / 2}; }

double overlap(const cv::Rect2d &a, const cv::Rect2d &b) {
    double inter = (a & b).area();
    double uni = a.area() + b.area() - inter;
    return uni > 0 ? inter / uni : 0;
}

double headingDegrees(cv::Point2d v) {
    double degrees = std::atan2(v.y, v.x) * 180 / CV_PI;
    return degrees < 0 ? degrees + 360 : degrees;
}

const char *compass(cv::Point2d v) {
    if (cv::norm(v) < stillPixels) return "still";
    if (std::abs(v.x) >= std::abs(v.y)) return v.x > 0 ? "right" : "left";
    return v.y > 0 ? "down" : "up";
}

std::string pointJSON(cv::Point2d p) {
    return "[" + JsonObject::number(p.x, 1) + ", " + JsonObject::number(p.y, 1) + "]";
}

std::string boxJSON(const cv::Rect2d &r) {
    return "[" + JsonObject::number(r.x, 0) + ", " + JsonObject::number(r.y, 0) + ", " +
           JsonObject::number(r.width, 0) + ", " + JsonObject::number(r.height, 0) + "]";
}

}  // namespace

CameraAnalyzer::CameraAnalyzer(const Config &config)
    : config_(config), detector_(config), lineCounts_(config.lines.size()) {
    for (const auto &zone : config_.zones) {
        std::vector<cv::Point2f> contour;
        for (const auto &p : zone.polygon) contour.emplace_back(static_cast<float>(p.x), static_cast<float>(p.y));
        zoneContours_.push_back(std::move(contour));
    }
}

// ---- Objects -------------------------------------------------------------------

cv::Point2d CameraAnalyzer::anchor(Source source, const cv::Rect2d &box) {
    // Where a moving person stands (the bottom of the blob) says more about zones and lines
    // on the ground than the middle of their body; a face has only its centre.
    return source == Source::Motion ? cv::Point2d(box.x + box.width / 2, box.y + box.height) : centre(box);
}

CameraAnalyzer::TrackedObject CameraAnalyzer::makeObject(Source source, int64_t id, int64_t t,
                                                         const cv::Rect2d &box) const {
    TrackedObject o;
    o.source = source;
    o.id = id;
    o.faceTrackId = source == Source::Face ? id : -1;
    o.box = box;
    o.point = o.firstPoint = anchor(source, box);
    o.firstNs = o.lastNs = t;
    o.zones.resize(config_.zones.size());
    o.lines.resize(config_.lines.size());
    return o;
}

cv::Point2d CameraAnalyzer::velocityAt(const TrackedObject &o, int64_t t) const {
    const Sample *last = nullptr, *base = nullptr;
    for (const auto &s : o.recent) {
        if (s.t > t) break;
        last = &s;
        if (!base || s.t <= t - speedWindowNs) base = &s;
    }
    if (!last || !base || last->t <= base->t) return {0, 0};
    return (last->p - base->p) / seconds(last->t - base->t);
}

void CameraAnalyzer::step(TrackedObject &o, int64_t t, const cv::Rect2d &box, std::vector<Result> &out) {
    const cv::Point2d p = anchor(o.source, box);
    if (o.hits > 0 && t > o.lastNs) {
        cv::Point2d v = (p - o.point) / seconds(t - o.lastNs);
        o.velocity = o.hits == 1 ? v : 0.5 * o.velocity + 0.5 * v;
    }
    o.box = box;
    o.point = p;
    o.lastNs = std::max(o.lastNs, t);
    o.hits++;
    o.travelled = std::max(o.travelled, cv::norm(p - o.firstPoint));

    o.recent.push_back({t, p});
    while (!o.recent.empty() && o.recent.front().t < t - recentWindowNs) o.recent.erase(o.recent.begin());
    if (o.path.empty() || t - o.path.back().t >= pathSpacingNs) {
        if (!o.path.empty()) o.pathLength += cv::norm(p - o.path.back().p);
        o.path.push_back({t, p});
        if (o.path.size() > maxPathSamples) {
            std::vector<Sample> thinned;
            for (size_t i = 0; i < o.path.size(); i += 2) thinned.push_back(o.path[i]);
            if (thinned.back().t != o.path.back().t) thinned.push_back(o.path.back());
            o.path = std::move(thinned);
        }
    }
    o.maxSpeed = std::max(o.maxSpeed, cv::norm(velocityAt(o, t)));

    if (o.confirmed) {
        evaluate(o, {t, p, box}, out);
        return;
    }
    o.backlog.push_back({t, p, box});
    if (o.hits >= confirmHits) {
        // Confirmed: what happened since the first sighting counts now, in order.
        o.confirmed = true;
        for (const auto &position : o.backlog) evaluate(o, position, out);
        o.backlog.clear();
    }
}

// ---- Zones and lines -------------------------------------------------------------

JsonObject CameraAnalyzer::describe(const TrackedObject &o) const {
    JsonObject j;
    j.add("object", std::string(o.source == Source::Face ? "face-" : "motion-") + std::to_string(o.id));
    j.add("source", o.source == Source::Face ? "face" : "motion");
    if (o.faceTrackId >= 0) j.add("face_track_id", o.faceTrackId);
    if (!o.identity.empty()) j.add("identity", o.identity);
    return j;
}

Result CameraAnalyzer::result(const char *kind, const TrackedObject &o, const JsonObject &payload,
                              const cv::Rect2d &box) const {
    Result r;
    r.kind = kind;
    r.payload = payload.str();
    r.trackId = o.faceTrackId;
    r.hasBox = true;
    r.box = box;
    return r;
}

void CameraAnalyzer::evaluate(TrackedObject &o, const Position &at, std::vector<Result> &out) {
    const bool reporting = !o.covered;  // a face riding on a moving blob is reported by the blob
    const double margin = config_.edgeMargin;
    const cv::Point2d v = velocityAt(o, at.t);

    for (size_t i = 0; i < config_.zones.size(); i++) {
        ZoneState &z = o.zones[i];
        const std::string &name = config_.zones[i].name;
        double distance = cv::pointPolygonTest(zoneContours_[i], cv::Point2f(static_cast<float>(at.p.x),
                                                                              static_cast<float>(at.p.y)), true);
        if (!z.inside && distance >= 0) {
            z = ZoneState{};
            z.inside = true;
            z.enteredNs = at.t;
        } else if (z.inside && distance < -margin) {
            if (z.announced) {
                out.push_back(result("zone_leave", o,
                                     describe(o).add("zone", name).add("dwell_seconds", seconds(at.t - z.enteredNs))
                                         .add("reason", "left").addRaw("point", pointJSON(at.p)),
                                     at.box));
            }
            z = ZoneState{};
        }
        if (z.inside && !z.announced && reporting) {
            z.announced = true;
            z.enteredNs = at.t;
            out.push_back(result("zone_enter", o,
                                 describe(o).add("zone", name).addRaw("point", pointJSON(at.p))
                                     .add("speed_px_s", cv::norm(v), 1),
                                 at.box));
        }
        if (z.inside && z.announced && !z.loitered &&
            at.t - z.enteredNs >= static_cast<int64_t>(config_.loiterSeconds * 1e9)) {
            z.loitered = true;
            out.push_back(result("loitering", o,
                                 describe(o).add("zone", name).add("dwell_seconds", seconds(at.t - z.enteredNs))
                                     .add("loiter_seconds", config_.loiterSeconds).addRaw("point", pointJSON(at.p)),
                                 at.box));
        }
    }

    for (size_t i = 0; i < config_.lines.size(); i++) {
        const Line &line = config_.lines[i];
        const cv::Point2d a(line.from.x, line.from.y), d(line.to.x - line.from.x, line.to.y - line.from.y);
        const double length = cv::norm(d);
        // Signed distance from the line: positive on the right as seen walking from `from` to `to`
        // (image y grows downwards).
        auto signedDistance = [&](cv::Point2d p) { return (d.x * (p.y - a.y) - d.y * (p.x - a.x)) / length; };
        const double sd = signedDistance(at.p);
        const int side = sd > margin ? 1 : sd < -margin ? -1 : 0;
        if (side == 0) continue;  // on the line, within the margin: wait until it is clearly across
        LineState &s = o.lines[i];
        if (s.side != 0 && side != s.side) {
            const double sd0 = signedDistance(s.lastPoint);
            const cv::Point2d q = s.lastPoint + (sd0 / (sd0 - sd)) * (at.p - s.lastPoint);
            const double along = (q - a).dot(d) / (length * length);
            const double tolerance = margin / length;
            if (along >= -tolerance && along <= 1 + tolerance && reporting) {
                const bool leftToRight = s.side < 0;
                auto &counts = lineCounts_[i];
                (leftToRight ? counts.first : counts.second)++;
                JsonObject countsJSON;
                countsJSON.add("left_to_right", counts.first).add("right_to_left", counts.second);
                out.push_back(result("line_cross", o,
                                     describe(o).add("line", line.name)
                                         .add("direction", leftToRight ? "left_to_right" : "right_to_left")
                                         .addRaw("counts", countsJSON.str()).addRaw("point", pointJSON(q))
                                         .add("speed_px_s", cv::norm(v), 1).add("heading_deg", headingDegrees(v), 0),
                                     at.box));
            }
        }
        s.side = side;
        s.lastPoint = at.p;
    }
}

void CameraAnalyzer::end(TrackedObject &o, const char *reason, std::vector<Result> &out) {
    if (!o.confirmed) return;
    for (size_t i = 0; i < config_.zones.size(); i++) {
        const ZoneState &z = o.zones[i];
        if (!z.inside || !z.announced) continue;
        out.push_back(result("zone_leave", o,
                             describe(o).add("zone", config_.zones[i].name)
                                 .add("dwell_seconds", seconds(o.lastNs - z.enteredNs)).add("reason", reason)
                                 .addRaw("point", pointJSON(o.point)),
                             o.box));
    }
    const double dwell = seconds(o.lastNs - o.firstNs);
    const cv::Point2d displacement = o.point - o.firstPoint;
    std::string path = "[";
    const size_t n = o.path.size();
    const size_t shown = std::min(n, summaryPoints);
    for (size_t k = 0; k < shown; k++) {
        const Sample &s = o.path[shown == 1 ? 0 : k * (n - 1) / (shown - 1)];
        path += (k ? ", [" : "[") + JsonObject::number(seconds(s.t - o.firstNs), 2) + ", " +
                JsonObject::number(s.p.x, 1) + ", " + JsonObject::number(s.p.y, 1) + "]";
    }
    path += "]";
    double length = o.pathLength + (n ? cv::norm(o.point - o.path.back().p) : 0);
    out.push_back(result("trajectory", o,
                         describe(o).add("reason", reason).add("dwell_seconds", dwell)
                             .add("distance_px", length, 1).add("displacement_px", cv::norm(displacement), 1)
                             .add("mean_speed_px_s", dwell > 0 ? length / dwell : 0.0, 1)
                             .add("max_speed_px_s", o.maxSpeed, 1)
                             .add("heading_deg", headingDegrees(displacement), 0).add("direction", compass(displacement))
                             .addRaw("start", pointJSON(o.firstPoint)).addRaw("end", pointJSON(o.point))
                             .addRaw("path", path),
                         o.box));
}

// ---- Motion blobs ------------------------------------------------------------------

std::vector<cv::Rect2d> CameraAnalyzer::protectedBoxes() const {
    // A blob track that has walked at least half its height is a person (or a vehicle) who
    // came in: keep them out of the background while they stand still. Blobs that never
    // moved (a person already there when the model started, their ghost when they leave)
    // fade into the background as usual.
    std::vector<cv::Rect2d> boxes;
    for (const auto &[id, o] : motions_)
        if (o.confirmed && o.travelled >= std::max(10.0, 0.5 * o.box.height)) boxes.push_back(o.box);
    return boxes;
}

void CameraAnalyzer::trackBlobs(int64_t t, const std::vector<cv::Rect2d> &blobs, std::vector<Result> &out) {
    struct Candidate {
        double score;
        int64_t object;
        size_t blob;
    };
    std::map<int64_t, cv::Rect2d> predictions;
    for (const auto &[id, o] : motions_) {
        cv::Rect2d predicted = o.box;
        if (o.hits >= 2) {
            const double dt = seconds(t - o.lastNs);
            predicted.x += o.velocity.x * dt;
            predicted.y += o.velocity.y * dt;
        }
        predictions[id] = predicted;
    }
    std::vector<bool> blobTaken(blobs.size(), false);
    std::map<int64_t, bool> objectTaken;

    // People who meet become one blob. Confirmed tracks whose predictions fall inside the same
    // blob walk on by their own velocity, kept within the blob, until they part again: that
    // way two people passing each other on a line are both counted. Two tracks on the same
    // spot moving alike are one thing seen twice (a person whose blob had come apart): the
    // younger one ends.
    for (size_t b = 0; b < blobs.size(); b++) {
        std::vector<int64_t> inside;
        for (const auto &entry : motions_) {  // oldest first
            const int64_t id = entry.first;
            const TrackedObject &o = entry.second;
            if (!o.confirmed || o.merged || !blobs[b].contains(centre(predictions[id]))) continue;
            const bool duplicate = std::any_of(inside.begin(), inside.end(), [&](int64_t other) {
                return overlap(predictions[id], predictions[other]) > 0.5 &&
                       cv::norm(o.velocity - motions_[other].velocity) < 20;
            });
            if (duplicate) {
                TrackedObject &twin = motions_[id];
                end(twin, "merged", out);
                twin.merged = true;  // removed below, with the tracks that were lost
                objectTaken[id] = true;
                continue;
            }
            inside.push_back(id);
        }
        if (inside.size() < 2) continue;
        blobTaken[b] = true;
        for (int64_t id : inside) {
            cv::Rect2d p = predictions[id];
            p.x = std::clamp(p.x, blobs[b].x, std::max(blobs[b].x, blobs[b].x + blobs[b].width - p.width));
            p.y = std::clamp(p.y, blobs[b].y, std::max(blobs[b].y, blobs[b].y + blobs[b].height - p.height));
            objectTaken[id] = true;
            step(motions_[id], t, p, out);
        }
    }

    std::vector<Candidate> candidates;
    for (const auto &[id, o] : motions_) {
        if (objectTaken[id]) continue;
        const cv::Rect2d &predicted = predictions[id];
        for (size_t b = 0; b < blobs.size(); b++) {
            if (blobTaken[b]) continue;
            const double iou = overlap(predicted, blobs[b]);
            const double distance = cv::norm(centre(predicted) - centre(blobs[b]));
            const double gate = std::max(25.0, 0.6 * std::max({predicted.width, predicted.height,
                                                                blobs[b].width, blobs[b].height}));
            if (iou > 0.05 || distance < gate)
                candidates.push_back({iou + 0.5 * (1 - std::min(1.0, distance / gate)), id, b});
        }
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate &x, const Candidate &y) {
        return x.score != y.score ? x.score > y.score : (x.object != y.object ? x.object < y.object : x.blob < y.blob);
    });
    for (const auto &c : candidates) {
        if (blobTaken[c.blob] || objectTaken[c.object]) continue;
        blobTaken[c.blob] = objectTaken[c.object] = true;
        step(motions_[c.object], t, blobs[c.blob], out);
    }
    for (auto it = motions_.begin(); it != motions_.end();) {
        TrackedObject &o = it->second;
        const bool seen = o.lastNs == t;
        if (o.merged) {
            it = motions_.erase(it);  // ended above
        } else if (!seen && (!o.confirmed || t - o.lastNs > static_cast<int64_t>(config_.maxGapSeconds * 1e9))) {
            end(o, "lost", out);  // nothing for a track that was never confirmed
            it = motions_.erase(it);
        } else {
            ++it;
        }
    }
    for (size_t b = 0; b < blobs.size(); b++) {
        if (blobTaken[b]) continue;
        const int64_t id = nextMotionID_++;
        TrackedObject o = makeObject(Source::Motion, id, t, blobs[b]);
        step(o, t, blobs[b], out);
        motions_.emplace(id, std::move(o));
    }
}

void CameraAnalyzer::updateMotionState(int64_t t, const MotionAnalysis &analysis, std::vector<Result> &out) {
    const double e = analysis.energy;
    if (!motionActive_) {
        if (e < config_.motionThreshold) {
            aboveSinceNs_ = -1;
            return;
        }
        if (aboveSinceNs_ < 0) aboveSinceNs_ = t;
        peakEnergy_ = std::max(peakEnergy_, e);
        if (t - aboveSinceNs_ < static_cast<int64_t>(config_.motionMinSeconds * 1e9)) return;
        motionActive_ = true;
        motionStartNs_ = aboveSinceNs_;
        belowSinceNs_ = -1;
        cv::Rect2d all;
        std::string regions = "[";
        for (size_t i = 0; i < analysis.blobs.size(); i++) {
            all = i == 0 ? analysis.blobs[i] : (all | analysis.blobs[i]);
            if (i < 16) regions += (i ? ", " : "") + boxJSON(analysis.blobs[i]);
        }
        regions += "]";
        JsonObject payload;
        payload.add("energy", e, 5).add("regions", static_cast<int64_t>(analysis.blobs.size()))
            .addRaw("boxes", regions).add("above_seconds", seconds(t - aboveSinceNs_));
        Result r;
        r.kind = "motion_started";
        r.payload = payload.str();
        r.hasBox = !analysis.blobs.empty();
        r.box = all;
        out.push_back(std::move(r));
        return;
    }
    peakEnergy_ = std::max(peakEnergy_, e);
    if (e >= config_.motionStopThreshold) {
        belowSinceNs_ = -1;
        return;
    }
    if (belowSinceNs_ < 0) belowSinceNs_ = t;
    if (t - belowSinceNs_ < static_cast<int64_t>(config_.motionStopSeconds * 1e9)) return;
    motionActive_ = false;
    JsonObject payload;
    payload.add("energy", e, 5).add("peak_energy", peakEnergy_, 5)
        .add("duration_seconds", seconds(belowSinceNs_ - motionStartNs_));
    Result r;
    r.kind = "motion_stopped";
    r.payload = payload.str();
    out.push_back(std::move(r));
    aboveSinceNs_ = -1;
    peakEnergy_ = 0;
}

// ---- Faces -------------------------------------------------------------------------

void CameraAnalyzer::updateFace(int64_t t, const FaceSighting &face, std::vector<Result> &out) {
    if (face.trackId < 0) return;  // the host does not track it: nothing to follow
    auto it = faces_.find(face.trackId);
    if (it == faces_.end()) {
        TrackedObject o = makeObject(Source::Face, face.trackId, t, face.box);
        o.confirmed = true;  // the host's tracker already confirmed it
        it = faces_.emplace(face.trackId, std::move(o)).first;
    } else if (t <= it->second.lastNs) {
        return;  // the same frame again (a face event and the frame event share a timestamp)
    }
    TrackedObject &o = it->second;
    if (!face.identity.empty()) o.identity = face.identity;
    // The smallest moving blob, seen within the gap, that holds the face's centre carries it.
    const cv::Point2d c = centre(face.box);
    TrackedObject *carrier = nullptr;
    for (auto &[id, m] : motions_) {
        if (!m.confirmed || t - m.lastNs > static_cast<int64_t>(config_.maxGapSeconds * 1e9)) continue;
        if (!m.box.contains(c)) continue;
        if (!carrier || m.box.area() < carrier->box.area()) carrier = &m;
    }
    o.covered = carrier != nullptr;
    if (carrier) {
        carrier->faceTrackId = face.trackId;
        if (!o.identity.empty()) carrier->identity = o.identity;
    }
    step(o, t, face.box, out);
}

// ---- Events ------------------------------------------------------------------------

void CameraAnalyzer::onFrame(int64_t t, const cv::Mat &frame, const std::vector<FaceSighting> &faces,
                             std::vector<Result> &out) {
    lastNs_ = std::max(lastNs_, t);
    if (!frame.empty()) {
        MotionAnalysis analysis = detector_.analyze(frame, protectedBoxes());
        if (!analysis.warmingUp) {
            trackBlobs(t, analysis.blobs, out);
            updateMotionState(t, analysis, out);
        }
    }
    for (const auto &face : faces) updateFace(t, face, out);
    // Face tracks the frames stopped showing end (face_left may have been filtered out).
    for (auto it = faces_.begin(); it != faces_.end();) {
        if (t - it->second.lastNs > static_cast<int64_t>(config_.maxGapSeconds * 1e9)) {
            end(it->second, "lost", out);
            it = faces_.erase(it);
        } else {
            ++it;
        }
    }
}

void CameraAnalyzer::onFaces(int64_t t, const std::vector<FaceSighting> &faces, std::vector<Result> &out) {
    lastNs_ = std::max(lastNs_, t);
    for (const auto &face : faces) updateFace(t, face, out);
}

void CameraAnalyzer::onFaceLeft(int64_t t, int64_t trackId, std::vector<Result> &out) {
    lastNs_ = std::max(lastNs_, t);
    auto it = faces_.find(trackId);
    if (it == faces_.end()) return;
    end(it->second, "face_left", out);
    faces_.erase(it);
}

}  // namespace movement
