// Builds the compact JSON objects the plugin emits as result payloads (writing only: the
// config is read with cv::FileStorage).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace movement {

class JsonObject {
public:
    JsonObject &add(const char *key, const std::string &value) {
        field(key);
        quote(value);
        return *this;
    }
    JsonObject &add(const char *key, const char *value) { return add(key, std::string(value)); }
    JsonObject &add(const char *key, int64_t value) {
        field(key);
        text_ += std::to_string(value);
        return *this;
    }
    JsonObject &add(const char *key, int value) { return add(key, static_cast<int64_t>(value)); }
    JsonObject &add(const char *key, uint64_t value) { return add(key, static_cast<int64_t>(value)); }
    /// A number rounded to `decimals` places; non-finite numbers are written as null.
    JsonObject &add(const char *key, double value, int decimals = 2) {
        field(key);
        text_ += number(value, decimals);
        return *this;
    }
    JsonObject &add(const char *key, bool value) {
        field(key);
        text_ += value ? "true" : "false";
        return *this;
    }
    /// Inserts already-formed JSON (an array or object built by the caller).
    JsonObject &addRaw(const char *key, const std::string &json) {
        field(key);
        text_ += json;
        return *this;
    }

    std::string str() const { return text_ + "}"; }

    static std::string number(double value, int decimals = 2) {
        if (!std::isfinite(value)) return "null";
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
        std::string s(buffer);
        if (s.find('.') != std::string::npos) {  // 1.50 -> 1.5, 2.00 -> 2
            while (s.back() == '0') s.pop_back();
            if (s.back() == '.') s.pop_back();
        }
        if (s == "-0") s = "0";
        return s;
    }

    static void quoteInto(std::string &out, const std::string &value) {
        out += '"';
        for (unsigned char c : value) {
            switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                    out += escaped;
                } else {
                    out += static_cast<char>(c);
                }
            }
        }
        out += '"';
    }

private:
    void field(const char *key) {
        text_ += text_.size() > 1 ? ", " : "";
        quoteInto(text_, key);
        text_ += ": ";
    }
    void quote(const std::string &value) { quoteInto(text_, value); }

    std::string text_ = "{";
};

}  // namespace movement
