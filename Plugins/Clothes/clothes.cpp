// clothes — dominant clothing colours and a pattern cue per person, from the pose plugin.
//
// It wants plugin results and handles those of kind "pose" (README "Pose"): the event
// carries the frame the pose plugin saw and its payload, {"keypoints": [[x, y, visibility],
// ... 33], "track_id": t, "outline": [[x, y], ...], ...} in frame pixels, MediaPipe order
// (11/12 shoulders, 23/24 hips, 25/26 knees). From the keypoints it draws two regions:
//
//   upper  the quadrilateral shoulders (11, 12) -> hips (24, 23), each corner pulled 12%
//          of the way towards the centre so that arms at the sides and background stay out;
//   lower  one band per leg from the hip to 90% of the way to the knee, 0.6 hip-widths wide
//          (a leg whose hip or knee is not visible is left out).
//
// Person mask: when the payload has an "outline" of 3 or more points (the person's outline
// from BlazePose's segmentation), each region keeps only its pixels inside that polygon
// (filled), so background next to the body drops out. Without one (another pose model), the
// regions are the keypoint polygons as they are: background inside them (between the legs of
// a wide stance) counts. Either way an arm crossed in front of the torso counts: it is inside
// the outline too. An outline that is not [[x, y], ...] fails the call (invalid argument).
// A region is skipped when one of its keypoints has visibility < min_visibility, or when it
// has fewer than min_region_pixels pixels inside the frame (and the outline).
//
// Per region: k-means (k = clusters) in CIE Lab over the region's pixels (at most 4000,
// sampled on a fixed grid; seeded, so the same pixels give the same answer), each cluster
// named from a fixed palette, clusters with the same name merged, coverage fractions sorted
// largest first. Naming: a cluster whose chroma C = sqrt(a^2 + b^2) is below 12 (below 18 when
// L >= 85, or below 20 when L < 15) is achromatic and named by lightness L: black < 30 <= grey
// < 85 <= white. Otherwise it is named by its nearest reference colour in (0.5 L, a, b): every
// name has 2-5 sRGB references (pure, dark and light shades), so saturated red/green/blue
// and navy name as themselves. Pattern: mean Sobel gradient magnitude of the grey image
// inside the region (eroded 2 px); at or above pattern_threshold (default 80) "patterned",
// else "solid". The value itself is reported as *_texture.
//
//   clothes  {"upper": [["red", 0.71], ["blue", 0.2]], "lower": [["blue", 0.64], ...],
//             "upper_pattern": "solid", "lower_pattern": "patterned",
//             "upper_texture": 12.3, "lower_texture": 80.1, "person_mask": true, "track_id": t}
//
// person_mask says whether the pose's outline was applied.
//
// A skipped region is null (colours, pattern, texture) and named in "skipped":
// {"lower": "not_visible"|"too_small"}. When both are skipped nothing is emitted.
// The result's box is the bounds of the regions; its track_id is the pose's.
//
// plugins.yaml (needs pose enabled):
//   clothes:
//     enabled: true
//     library: libClothes.so
//     cooldown: 0
//     events: [plugin_result]
//     config: { min_visibility: 0.5, clusters: 3, min_region_pixels: 200, pattern_threshold: 80 }
//
// Every call catches every exception at the C boundary; instances share nothing.
#include "occur_plugin.h"
#include "occur_plugin_boundary.hpp"
#include "occur_plugin_config.hpp"
#include "occur_plugin_frame.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using occur::ConfigError;
using occur::number;
using occur::show;

constexpr int kKeypoints = 33;
constexpr int kMaxSamples = 4000;       // pixels given to k-means at most
constexpr float kUpperShrink = 0.12f;   // torso corners pulled towards the centre by this fraction
constexpr float kLegWidth = 0.6f;       // leg band width, in hip-to-hip distances
constexpr float kLegReach = 0.9f;       // leg band runs from the hip to this fraction of the way to the knee

struct Config {
    double minVisibility = 0.5;
    int clusters = 3;
    int minRegionPixels = 200;
    double patternThreshold = 80;
};

Config parseConfig(const char *json) {
    Config c;
    cv::FileStorage storage;
    const cv::FileNode root = occur::openConfig(storage, json);
    for (auto it = root.begin(); it != root.end(); ++it) {
        const cv::FileNode node = *it;
        const std::string key = node.name();
        if (key == "min_visibility") {
            c.minVisibility = number(node, key);
            if (!(c.minVisibility >= 0 && c.minVisibility <= 1))
                throw ConfigError("config.min_visibility: " + show(c.minVisibility) +
                                  " is out of range: a visibility from 0 to 1 (default 0.5)");
        } else if (key == "clusters") {
            if (!node.isInt()) throw ConfigError("config.clusters: expected a whole number from 1 to 8 (default 3)");
            c.clusters = int(node);
            if (c.clusters < 1 || c.clusters > 8)
                throw ConfigError("config.clusters: " + std::to_string(c.clusters) +
                                  " is out of range: a whole number from 1 to 8 (default 3)");
        } else if (key == "min_region_pixels") {
            if (!node.isInt())
                throw ConfigError("config.min_region_pixels: expected a whole number of pixels (default 200)");
            c.minRegionPixels = int(node);
            if (c.minRegionPixels < 1 || c.minRegionPixels > 10000000)
                throw ConfigError("config.min_region_pixels: " + std::to_string(c.minRegionPixels) +
                                  " is out of range: pixels from 1 to 10000000 (default 200)");
        } else if (key == "pattern_threshold") {
            c.patternThreshold = number(node, key);
            if (!(c.patternThreshold > 0 && c.patternThreshold <= 2000))
                throw ConfigError("config.pattern_threshold: " + show(c.patternThreshold) +
                                  " is out of range: a mean Sobel magnitude above 0, up to 2000 (default 80)");
        } else {
            throw ConfigError("config." + key +
                              ": unknown key (known: min_visibility, clusters, min_region_pixels, pattern_threshold)");
        }
    }
    return c;
}

/// One palette entry: a name and a reference colour in Lab (L 0..100).
struct Reference {
    const char *name;
    cv::Vec3f lab;
};

/// The palette's chromatic references, from sRGB (0..255), converted once.
std::vector<Reference> makePalette() {
    struct RGB { const char *name; int r, g, b; };
    static const RGB rgb[] = {
        {"red", 255, 0, 0}, {"red", 200, 20, 30}, {"red", 140, 10, 20},
        {"orange", 255, 140, 0}, {"orange", 230, 110, 30},
        {"yellow", 255, 230, 0}, {"yellow", 230, 200, 60},
        {"green", 0, 160, 0}, {"green", 0, 255, 0}, {"green", 40, 150, 60}, {"green", 30, 80, 40},
        {"green", 140, 200, 100},
        {"blue", 0, 0, 255}, {"blue", 30, 70, 190}, {"blue", 20, 30, 90}, {"blue", 100, 150, 220},
        {"blue", 0, 120, 200},
        {"purple", 128, 0, 128}, {"purple", 110, 50, 160}, {"purple", 70, 30, 90}, {"purple", 170, 120, 210},
        {"pink", 255, 105, 180}, {"pink", 255, 180, 200}, {"pink", 220, 60, 140},
        {"brown", 120, 70, 35}, {"brown", 90, 55, 30}, {"brown", 160, 110, 60},
        {"beige", 215, 195, 160}, {"beige", 235, 220, 190}, {"beige", 190, 170, 130},
    };
    std::vector<Reference> out;
    for (const auto &c : rgb) {
        cv::Mat bgr(1, 1, CV_32FC3, cv::Scalar(c.b / 255.0, c.g / 255.0, c.r / 255.0)), lab;
        cv::cvtColor(bgr, lab, cv::COLOR_BGR2Lab);
        out.push_back({c.name, lab.at<cv::Vec3f>(0, 0)});
    }
    return out;
}

/// The palette name of a Lab colour (L 0..100, a and b signed).
const char *colourName(const cv::Vec3f &lab, const std::vector<Reference> &palette) {
    const float L = lab[0], chroma = std::hypot(lab[1], lab[2]);
    const float achromatic = L >= 85 ? 18.f : L < 15 ? 20.f : 12.f;
    if (chroma < achromatic) return L < 30 ? "black" : L < 85 ? "grey" : "white";
    const char *best = "grey";
    float bestDistance = 1e30f;
    for (const auto &ref : palette) {
        const float dL = 0.5f * (L - ref.lab[0]), da = lab[1] - ref.lab[1], db = lab[2] - ref.lab[2];
        const float d = dL * dL + da * da + db * db;
        if (d < bestDistance) bestDistance = d, best = ref.name;
    }
    return best;
}

struct RegionResult {
    bool present = false;
    std::string skipped;                                // "not_visible" / "too_small" when not present
    std::vector<std::pair<std::string, double>> colours;
    double texture = 0;
    cv::Rect bounds;
};

struct ClothesPlugin {
    const occur_host_api *host;
    Config config;
    std::vector<Reference> palette = makePalette();
    bool warnedFormat = false;

    void log(int32_t level, const std::string &message) const { host->log(host->context, level, message.c_str()); }

    bool frameImage(const occur_frame *frame, cv::Mat &image) { return occur::bgrImage(host, frame, image, warnedFormat); }

    /// Dominant colours and texture of the pixels of `bgr` under `mask`.
    RegionResult analyse(const cv::Mat &bgr, const cv::Mat &mask) {
        RegionResult r;
        const int count = cv::countNonZero(mask);
        if (count < config.minRegionPixels) {
            r.skipped = "too_small";
            return r;
        }
        r.present = true;
        r.bounds = cv::boundingRect(mask);
        // Samples on a fixed stride over the region's pixels.
        const int stride = std::max(1, (count + kMaxSamples - 1) / kMaxSamples);
        std::vector<cv::Vec3f> picked;
        picked.reserve(size_t(count / stride + 1));
        int seen = 0;
        for (int y = r.bounds.y; y < r.bounds.y + r.bounds.height; ++y) {
            const uint8_t *m = mask.ptr<uint8_t>(y);
            const cv::Vec3b *p = bgr.ptr<cv::Vec3b>(y);
            for (int x = r.bounds.x; x < r.bounds.x + r.bounds.width; ++x)
                if (m[x] && seen++ % stride == 0)
                    picked.emplace_back(p[x][0] / 255.f, p[x][1] / 255.f, p[x][2] / 255.f);
        }
        cv::Mat pickedBGR(int(picked.size()), 1, CV_32FC3, picked.data()), lab;
        cv::cvtColor(pickedBGR, lab, cv::COLOR_BGR2Lab);
        cv::Mat data = lab.reshape(1, int(picked.size()));   // N x 3 floats
        const int k = std::min(config.clusters, data.rows);
        cv::Mat labels, centres;
        cv::theRNG().state = 0x0cc0c0105ULL;   // the same pixels give the same clusters
        cv::kmeans(data, k, labels, cv::TermCriteria(cv::TermCriteria::EPS + cv::TermCriteria::COUNT, 20, 0.5), 3,
                   cv::KMEANS_PP_CENTERS, centres);
        std::vector<int> sizes(size_t(k), 0);
        for (int i = 0; i < labels.rows; ++i) ++sizes[size_t(labels.at<int>(i))];
        std::map<std::string, double> byName;
        for (int c = 0; c < k; ++c) {
            if (!sizes[size_t(c)]) continue;
            const cv::Vec3f centre(centres.at<float>(c, 0), centres.at<float>(c, 1), centres.at<float>(c, 2));
            byName[colourName(centre, palette)] += double(sizes[size_t(c)]) / double(labels.rows);
        }
        r.colours.assign(byName.begin(), byName.end());
        std::sort(r.colours.begin(), r.colours.end(), [](const auto &a, const auto &b) {
            return a.second != b.second ? a.second > b.second : a.first < b.first;
        });
        // Texture: mean Sobel magnitude of the chroma channels (a, b of 8-bit Lab) inside the
        // region, eroded 2 px. Chroma, not lightness: folds and shadows on plain cloth change
        // lightness much more than chroma; stripes and prints change both.
        const cv::Rect roi = r.bounds;
        cv::Mat lab8, channels[3], gx, gy, magnitude, sum, inner;
        cv::cvtColor(bgr(roi), lab8, cv::COLOR_BGR2Lab);
        cv::split(lab8, channels);
        sum = cv::Mat::zeros(roi.size(), CV_32F);
        for (int c = 1; c < 3; ++c) {
            cv::Sobel(channels[c], gx, CV_32F, 1, 0, 3, 1, 0, cv::BORDER_REPLICATE);
            cv::Sobel(channels[c], gy, CV_32F, 0, 1, 3, 1, 0, cv::BORDER_REPLICATE);
            cv::magnitude(gx, gy, magnitude);
            sum += magnitude;
        }
        magnitude = sum;
        cv::erode(mask(roi), inner, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(5, 5)));
        if (cv::countNonZero(inner) == 0) inner = mask(roi);
        r.texture = cv::mean(magnitude, inner)[0];
        return r;
    }

    static bool point(const cv::FileNode &node, cv::Point2f &p, float &visibility) {
        if (!node.isSeq() || node.size() < 3) return false;
        float v[3];
        for (int i = 0; i < 3; ++i) {
            const cv::FileNode n = node[i];
            if (n.isInt()) v[i] = float(int(n));
            else if (n.isReal()) v[i] = float(double(n));
            else return false;
        }
        p = {v[0], v[1]};
        visibility = v[2];
        return std::isfinite(v[0]) && std::isfinite(v[1]);
    }

    /// The pose payload's "outline", [[x, y], ...]: false when it is there but not a list of
    /// number pairs within +-1e6. Absent leaves `outline` empty.
    static bool outlinePoints(const cv::FileNode &node, std::vector<cv::Point> &outline) {
        if (node.empty()) return true;
        if (!node.isSeq()) return false;
        for (auto it = node.begin(); it != node.end(); ++it) {
            const cv::FileNode pair = *it;
            if (!pair.isSeq() || pair.size() != 2) return false;
            double xy[2];
            for (int i = 0; i < 2; ++i) {
                const cv::FileNode n = pair[i];
                if (n.isInt()) xy[i] = int(n);
                else if (n.isReal()) xy[i] = double(n);
                else return false;
                if (!(std::fabs(xy[i]) <= 1e6)) return false;   // also NaN
            }
            outline.emplace_back(cvRound(xy[0]), cvRound(xy[1]));
        }
        return true;
    }

    static std::string colours(const RegionResult &r) {
        if (!r.present) return "null";
        std::string out = "[";
        char buf[64];
        for (size_t i = 0; i < r.colours.size(); ++i) {
            std::snprintf(buf, sizeof buf, "%s[\"%s\", %.3f]", i ? ", " : "", r.colours[i].first.c_str(), r.colours[i].second);
            out += buf;
        }
        return out + "]";
    }

    occur_status onEvent(const occur_event &event) {
        if (event.kind != OCCUR_EVENT_PLUGIN_RESULT) return OCCUR_OK;
        if (!OCCUR_HAS_FIELD(&event, occur_event, result_kind) || !event.result_kind ||
            std::strcmp(event.result_kind, "pose") != 0)
            return OCCUR_OK;
        cv::Mat bgr;
        if (!frameImage(event.frame, bgr)) {
            log(OCCUR_LOG_DEBUG, "pose result without a frame: skipped");
            return OCCUR_OK;
        }
        cv::FileStorage storage(event.payload_json ? event.payload_json : "{}",
                                cv::FileStorage::READ | cv::FileStorage::MEMORY | cv::FileStorage::FORMAT_JSON);
        const cv::FileNode root = storage.root();
        if (!root.isMap()) return OCCUR_ERR_INVALID_ARGUMENT;
        const cv::FileNode list = root["keypoints"];
        if (!list.isSeq() || int(list.size()) < kKeypoints) {
            log(OCCUR_LOG_WARN, "pose result without 33 keypoints: skipped");
            return OCCUR_ERR_INVALID_ARGUMENT;
        }
        int64_t track = -1;
        if (root["track_id"].isInt()) track = int64_t(int(root["track_id"]));
        else if (root["track_id"].isReal()) track = int64_t(double(root["track_id"]));

        cv::Point2f pts[kKeypoints];
        float vis[kKeypoints];
        for (int i = 0; i < kKeypoints; ++i)
            if (!point(list[i], pts[i], vis[i])) {
                log(OCCUR_LOG_WARN, "pose keypoint " + std::to_string(i) + " is not [x, y, visibility]: skipped");
                return OCCUR_ERR_INVALID_ARGUMENT;
            }
        auto visible = [&](int i) { return vis[i] >= config.minVisibility; };
        std::vector<cv::Point> outline;
        if (!outlinePoints(root["outline"], outline)) {
            log(OCCUR_LOG_WARN, "pose outline is not [[x, y], ...]: skipped");
            return OCCUR_ERR_INVALID_ARGUMENT;
        }
        // The person mask: the outline filled; none (empty) without a usable outline.
        cv::Mat person;
        if (outline.size() >= 3) {
            person = cv::Mat::zeros(bgr.size(), CV_8U);
            cv::fillPoly(person, std::vector<std::vector<cv::Point>>{outline}, cv::Scalar(255));
        }
        auto onPerson = [&](cv::Mat &mask) {
            if (!person.empty()) mask &= person;
        };

        // Upper: the torso quadrilateral, shrunk towards its centre.
        RegionResult upper, lower;
        if (visible(11) && visible(12) && visible(23) && visible(24)) {
            const cv::Point2f corners[4] = {pts[11], pts[12], pts[24], pts[23]};
            const cv::Point2f centre = (corners[0] + corners[1] + corners[2] + corners[3]) * 0.25f;
            std::vector<cv::Point> quad;
            for (const auto &c : corners) quad.emplace_back(cv::Point(cvRound(c.x + (centre.x - c.x) * kUpperShrink),
                                                                      cvRound(c.y + (centre.y - c.y) * kUpperShrink)));
            cv::Mat mask = cv::Mat::zeros(bgr.size(), CV_8U);
            cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{quad}, cv::Scalar(255));
            onPerson(mask);
            upper = analyse(bgr, mask);
        } else {
            upper.skipped = "not_visible";
        }
        // Lower: a band per visible leg, hip -> knee.
        const float hipWidth = float(cv::norm(pts[23] - pts[24]));
        std::vector<std::vector<cv::Point>> bands;
        if (visible(23) && visible(24)) {
            for (const auto &leg : {std::pair<int, int>{23, 25}, std::pair<int, int>{24, 26}}) {
                if (!visible(leg.second)) continue;
                const cv::Point2f hip = pts[leg.first], knee = hip + (pts[leg.second] - hip) * kLegReach;
                const cv::Point2f along = knee - hip;
                const float length = float(cv::norm(along));
                if (length < 1) continue;
                const float half = std::max(2.f, kLegWidth * hipWidth / 2);
                const cv::Point2f across(-along.y / length * half, along.x / length * half);
                bands.push_back({cv::Point(cvRound((hip + across).x), cvRound((hip + across).y)),
                                 cv::Point(cvRound((knee + across).x), cvRound((knee + across).y)),
                                 cv::Point(cvRound((knee - across).x), cvRound((knee - across).y)),
                                 cv::Point(cvRound((hip - across).x), cvRound((hip - across).y))});
            }
        }
        if (bands.empty()) {
            lower.skipped = "not_visible";
        } else {
            cv::Mat mask = cv::Mat::zeros(bgr.size(), CV_8U);
            for (const auto &band : bands) cv::fillConvexPoly(mask, band, cv::Scalar(255));
            onPerson(mask);
            lower = analyse(bgr, mask);
        }
        if (!upper.present && !lower.present) {
            log(OCCUR_LOG_DEBUG, "no clothes region to analyse (upper " + upper.skipped + ", lower " + lower.skipped + ")");
            return OCCUR_OK;
        }

        char buf[96];
        auto pattern = [&](const RegionResult &r) -> std::string {
            if (!r.present) return "null";
            return r.texture >= config.patternThreshold ? "\"patterned\"" : "\"solid\"";
        };
        auto texture = [&](const RegionResult &r) -> std::string {
            if (!r.present) return "null";
            std::snprintf(buf, sizeof buf, "%.1f", r.texture);
            return buf;
        };
        std::string payload = "{\"upper\": " + colours(upper) + ", \"lower\": " + colours(lower) +
                              ", \"upper_pattern\": " + pattern(upper) + ", \"lower_pattern\": " + pattern(lower) +
                              ", \"upper_texture\": " + texture(upper) + ", \"lower_texture\": " + texture(lower);
        std::string skipped;
        if (!upper.present) skipped += "\"upper\": \"" + upper.skipped + "\"";
        if (!lower.present) skipped += std::string(skipped.empty() ? "" : ", ") + "\"lower\": \"" + lower.skipped + "\"";
        if (!skipped.empty()) payload += ", \"skipped\": {" + skipped + "}";
        std::snprintf(buf, sizeof buf, ", \"person_mask\": %s, \"track_id\": %lld}", person.empty() ? "false" : "true",
                      (long long)track);
        payload += buf;

        cv::Rect bounds = upper.present ? upper.bounds : lower.bounds;
        if (upper.present && lower.present) bounds |= lower.bounds;
        occur_result result;
        std::memset(&result, 0, sizeof result);
        result.struct_size = sizeof result;
        result.kind = "clothes";
        result.payload_json = payload.c_str();
        result.track_id = track;
        result.has_box = 1;
        result.box = occur_box{float(bounds.x), float(bounds.y), float(bounds.width), float(bounds.height)};
        result.confidence = -1.f;
        return host->emit(host->context, &result);
    }
};

occur_status create(const occur_host_api *host, const char *config_json, void **out) {
    if (!host || !out) return OCCUR_ERR_INVALID_ARGUMENT;
    auto say = [host](int32_t level, const std::string &message) { host->log(host->context, level, message.c_str()); };
    return occur::guarded(host, "create", [&]() -> occur_status {
        auto plugin = std::make_unique<ClothesPlugin>();
        plugin->host = host;
        if (!occur::parsed(host, [&] { plugin->config = parseConfig(config_json); })) return OCCUR_ERR_INVALID_CONFIG;
        char line[256];
        std::snprintf(line, sizeof line,
                      "clothes ready (min_visibility %.2f, clusters %d, min_region_pixels %d, pattern_threshold %.0f)",
                      plugin->config.minVisibility, plugin->config.clusters, plugin->config.minRegionPixels,
                      plugin->config.patternThreshold);
        say(OCCUR_LOG_INFO, line);
        *out = plugin.release();
        return OCCUR_OK;
    });
}

const occur_plugin_descriptor descriptor = {
    sizeof(occur_plugin_descriptor), OCCUR_PLUGIN_ABI_MAJOR, OCCUR_PLUGIN_ABI_MINOR,
    "clothes", "1.1.0", "dominant clothing colours (upper/lower body) and a solid/patterned cue from pose keypoints and outline",
    OCCUR_EVENT_PLUGIN_RESULT, 0, create, occur::onEvent<ClothesPlugin>, occur::destroy<ClothesPlugin>};

}  // namespace

extern "C" OCCUR_PLUGIN_EXPORT const occur_plugin_descriptor *occur_plugin_entry(uint32_t major, uint32_t) {
    return major == OCCUR_PLUGIN_ABI_MAJOR ? &descriptor : nullptr;
}
