#include "movement_config.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <set>
#include <sstream>

namespace movement {

namespace {

const std::set<std::string> knownKeys = {
    "history", "var_threshold", "scale", "min_blob_area", "motion_threshold", "motion_stop_threshold",
    "motion_min_seconds", "motion_stop_seconds", "max_gap_seconds", "loiter_seconds", "edge_margin",
    "zones", "lines"};

std::string joined(const std::set<std::string> &names) {
    std::string out;
    for (const auto &n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

[[noreturn]] void fail(const std::string &path, const std::string &message) {
    throw ConfigError("config." + path + ": " + message);
}

std::string describe(const cv::FileNode &node) {
    if (node.isString()) return "'" + static_cast<std::string>(node) + "'";
    if (node.isInt()) return std::to_string(static_cast<int>(node));
    if (node.isReal()) {
        std::ostringstream s;
        s << static_cast<double>(node);
        return s.str();
    }
    if (node.isSeq()) return "a list";
    if (node.isMap()) return "a mapping";
    return "nothing";
}

double number(const cv::FileNode &node, const std::string &path) {
    if (!node.isInt() && !node.isReal()) fail(path, "expected a number, got " + describe(node));
    double value = static_cast<double>(node);
    if (!std::isfinite(value)) fail(path, "expected a finite number");
    return value;
}

/// Reads an optional number into `out` and checks lo <= value <= hi (open ends when asked).
void readNumber(const cv::FileNode &root, const char *key, double &out, double lo, double hi,
                bool loOpen = false, const char *range = nullptr) {
    cv::FileNode node = root[key];
    if (node.type() == cv::FileNode::NONE) return;  // absent: keep the default
    double value = number(node, key);
    bool ok = (loOpen ? value > lo : value >= lo) && value <= hi;
    if (!ok) {
        std::ostringstream s;
        s << "must be " << (range ? range : "in range") << ", got " << value;
        fail(key, s.str());
    }
    out = value;
}

Point point(const cv::FileNode &node, const std::string &path) {
    if (!node.isSeq() || node.size() != 2) fail(path, "expected a point [x, y], got " + describe(node));
    return Point{number(node[0], path + "[0]"), number(node[1], path + "[1]")};
}

std::string name(const cv::FileNode &item, const std::string &path, std::set<std::string> &seen) {
    cv::FileNode node = item["name"];
    if (!node.isString() || static_cast<std::string>(node).empty())
        fail(path + ".name", "expected a non-empty string, got " + describe(node));
    std::string n = node;
    if (!seen.insert(n).second) fail(path + ".name", "'" + n + "' is used twice");
    return n;
}

void checkKeys(const cv::FileNode &map, const std::string &path, const std::set<std::string> &known) {
    for (const auto &key : map.keys())
        if (!known.count(key))
            fail(path.empty() ? key : path + "." + key, "unknown key (known here: " + joined(known) + ")");
}

std::vector<Zone> zones(const cv::FileNode &node) {
    std::vector<Zone> out;
    if (node.type() == cv::FileNode::NONE) return out;
    if (!node.isSeq()) fail("zones", "expected a list of {name, polygon}, got " + describe(node));
    std::set<std::string> seen;
    for (size_t i = 0; i < node.size(); i++) {
        std::string path = "zones[" + std::to_string(i) + "]";
        cv::FileNode item = node[static_cast<int>(i)];
        if (!item.isMap()) fail(path, "expected a mapping {name, polygon}, got " + describe(item));
        checkKeys(item, path, {"name", "polygon"});
        Zone zone;
        zone.name = name(item, path, seen);
        cv::FileNode polygon = item["polygon"];
        if (!polygon.isSeq() || polygon.size() < 3)
            fail(path + ".polygon", "expected a list of at least 3 points [x, y], got " + describe(polygon));
        for (size_t k = 0; k < polygon.size(); k++)
            zone.polygon.push_back(point(polygon[static_cast<int>(k)], path + ".polygon[" + std::to_string(k) + "]"));
        std::vector<cv::Point2f> contour;
        for (const auto &p : zone.polygon) contour.emplace_back(static_cast<float>(p.x), static_cast<float>(p.y));
        if (std::abs(cv::contourArea(contour)) < 1) fail(path + ".polygon", "has no area");
        out.push_back(std::move(zone));
    }
    return out;
}

std::vector<Line> lines(const cv::FileNode &node) {
    std::vector<Line> out;
    if (node.type() == cv::FileNode::NONE) return out;
    if (!node.isSeq()) fail("lines", "expected a list of {name, from, to}, got " + describe(node));
    std::set<std::string> seen;
    for (size_t i = 0; i < node.size(); i++) {
        std::string path = "lines[" + std::to_string(i) + "]";
        cv::FileNode item = node[static_cast<int>(i)];
        if (!item.isMap()) fail(path, "expected a mapping {name, from, to}, got " + describe(item));
        checkKeys(item, path, {"name", "from", "to"});
        Line line;
        line.name = name(item, path, seen);
        line.from = point(item["from"], path + ".from");
        line.to = point(item["to"], path + ".to");
        if (std::hypot(line.to.x - line.from.x, line.to.y - line.from.y) < 1)
            fail(path, "from and to are the same point");
        out.push_back(std::move(line));
    }
    return out;
}

}  // namespace

Config parseConfig(const std::string &json) {
    cv::FileStorage storage;
    try {
        storage.open(json, cv::FileStorage::READ | cv::FileStorage::MEMORY | cv::FileStorage::FORMAT_JSON);
    } catch (const cv::Exception &e) {
        throw ConfigError("config is not a JSON object OpenCV can read: " + e.msg);
    }
    cv::FileNode root = storage.root();
    if (!storage.isOpened() || !root.isMap()) throw ConfigError("config is not a JSON object");
    checkKeys(root, "", knownKeys);

    Config c;
    double history = c.history;
    readNumber(root, "history", history, 1, 1e6, false, "a whole number of frames >= 1");
    if (history != std::floor(history)) fail("history", "must be a whole number of frames");
    c.history = static_cast<int>(history);
    readNumber(root, "var_threshold", c.varThreshold, 0, 1e6, true, "> 0");
    readNumber(root, "scale", c.scale, 0, 1, true, "> 0 and <= 1");
    readNumber(root, "min_blob_area", c.minBlobArea, 0, 1e9, false, ">= 0 (frame pixels squared)");
    readNumber(root, "motion_threshold", c.motionThreshold, 0, 1, true, "a fraction of the frame, > 0 and <= 1");
    readNumber(root, "motion_stop_threshold", c.motionStopThreshold, 0, c.motionThreshold, false,
               "a fraction >= 0 and <= motion_threshold");
    if (c.motionStopThreshold < 0) c.motionStopThreshold = c.motionThreshold / 2;
    readNumber(root, "motion_min_seconds", c.motionMinSeconds, 0, 3600, false, "between 0 and 3600 seconds");
    readNumber(root, "motion_stop_seconds", c.motionStopSeconds, 0, 3600, false, "between 0 and 3600 seconds");
    readNumber(root, "max_gap_seconds", c.maxGapSeconds, 0, 3600, true, "> 0 and <= 3600 seconds");
    readNumber(root, "loiter_seconds", c.loiterSeconds, 0, 86400, true, "> 0 seconds");
    readNumber(root, "edge_margin", c.edgeMargin, 0, 1000, false, ">= 0 pixels");
    c.zones = zones(root["zones"]);
    c.lines = lines(root["lines"]);
    return c;
}

}  // namespace movement
