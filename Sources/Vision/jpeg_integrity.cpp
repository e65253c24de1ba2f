// Is a JPEG complete? libjpeg decodes a file cut short as far as it goes and fills the rest
// with grey, and OpenCV returns that as a good image. This finds the cut instead.
#include "vision_internal.hpp"

#include <fstream>
#include <iterator>

namespace occur_vision {

bool jpegIsTruncated(const uint8_t *bytes, size_t size) {
    if (!bytes || size < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) return false;  // not a JPEG
    // Walk the marker segments up to the first scan (SOS). Thumbnails in APPn segments hold
    // end-of-image markers of their own, so only what follows the scan header counts.
    size_t pos = 2, scanData = 0;
    while (scanData == 0) {
        if (pos + 4 > size) return true;  // cut inside the headers
        if (bytes[pos] != 0xFF) return false;  // malformed rather than cut: the decoder judges
        const uint8_t marker = bytes[pos + 1];
        if (marker == 0xFF) { ++pos; continue; }  // fill byte
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) { pos += 2; continue; }  // no length
        if (marker == 0xD9) return false;  // ends before any scan: the decoder judges
        const size_t length = size_t(bytes[pos + 2]) << 8 | bytes[pos + 3];
        if (length < 2) return false;
        if (marker == 0xDA) scanData = pos + 2 + length;
        pos += 2 + length;
    }
    // Scan data never holds FF D9 (an FF in it is followed by 00 or a restart marker), so the
    // image is complete when FF D9 follows; anything after it (camera trailers) is ignored.
    for (size_t i = size - 1; i > scanData; --i) {
        if (bytes[i] == 0xD9 && bytes[i - 1] == 0xFF) return false;
    }
    return true;
}

bool jpegFileIsTruncated(const char *path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) return false;  // the decoder reports unreadable files
    char head[2] = {0, 0};
    if (!file.read(head, 2) || uint8_t(head[0]) != 0xFF || uint8_t(head[1]) != 0xD8) return false;
    file.seekg(0);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    return jpegIsTruncated(bytes.data(), bytes.size());
}

}  // namespace occur_vision
