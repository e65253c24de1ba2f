// The Movement plugin's configuration: the `config:` mapping of plugins.yaml, read from
// JSON with OpenCV's cv::FileStorage and validated once, in create.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace movement {

struct Point {
    double x = 0, y = 0;
};

/// A named polygon in frame pixels.
struct Zone {
    std::string name;
    std::vector<Point> polygon;
};

/// A named counting line in frame pixels. Sides are named as seen walking from `from` to `to`.
struct Line {
    std::string name;
    Point from, to;
};

/// Every setting, with its default. Immutable once create has validated it.
struct Config {
    // Background subtraction (cv::BackgroundSubtractorMOG2) on a downscaled grey frame.
    int history = 500;               // frames the background model remembers
    double varThreshold = 16;        // MOG2 squared Mahalanobis distance for "moving"
    double scale = 0.5;              // analysis size relative to the frame, (0, 1]
    double minBlobArea = 600;        // frame px^2: smaller moving regions are ignored
    // Motion events: hysteresis on motion energy (fraction of moving pixels).
    double motionThreshold = 0.002;  // motion starts above this ...
    double motionStopThreshold = -1; // ... and stops below this (default: half of it)
    double motionMinSeconds = 0.5;   // energy must stay above the threshold this long to start
    double motionStopSeconds = 2.0;  // and below the stop threshold this long to stop
    // Tracks, zones and lines.
    double maxGapSeconds = 1.0;      // a track ends after this long unseen
    double loiterSeconds = 30;       // in a zone longer than this: loitering (once per stay)
    double edgeMargin = 4;           // px: hysteresis at zone edges and lines
    std::vector<Zone> zones;
    std::vector<Line> lines;
};

/// A configuration the plugin cannot run with. what() names the key path and the problem.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Parses and validates `json` (a JSON object). Throws ConfigError.
Config parseConfig(const std::string &json);

}  // namespace movement
