#include "edge/heart_rate_measurement.h"

#include <string>

namespace cipherpulse::edge {
namespace {

constexpr std::uint8_t kFlagUint16Value = 0x01;
constexpr std::uint8_t kContactSupported = 0x04;  // bit 2: bit 1 then says "detected"
constexpr std::uint8_t kContactDetected = 0x02;
constexpr std::uint8_t kFlagEnergyExpended = 0x08;
constexpr std::uint8_t kFlagRrIntervals = 0x10;

std::uint16_t read_u16le(std::span<const std::uint8_t> bytes, std::size_t at) {
    return static_cast<std::uint16_t>(bytes[at] | (bytes[at + 1] << 8));
}

Error truncated(const char* field, std::size_t at, std::size_t size) {
    return make_error(ErrorCode::kInvalidLength, "heart rate measurement: " + std::string(field) +
                                                     " at byte " + std::to_string(at) +
                                                     " runs past the end of the " +
                                                     std::to_string(size) + "-byte value");
}

std::string hex_byte(std::uint8_t byte) {
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string{kHex[byte >> 4], kHex[byte & 0x0f]};
}

}  // namespace

Result<HeartRateMeasurement> decode_heart_rate_measurement(std::span<const std::uint8_t> value) {
    if (value.empty()) {
        return make_error(ErrorCode::kInvalidLength, "heart rate measurement: empty value");
    }
    const std::uint8_t flags = value[0];
    HeartRateMeasurement m;
    std::size_t at = 1;

    if ((flags & kFlagUint16Value) != 0) {
        if (value.size() < at + 2) {
            return truncated("UINT16 heart rate", at, value.size());
        }
        m.bpm = read_u16le(value, at);
        at += 2;
    } else {
        if (value.size() < at + 1) {
            return truncated("UINT8 heart rate", at, value.size());
        }
        m.bpm = value[at];
        at += 1;
    }

    if ((flags & kContactSupported) != 0) {
        m.contact = (flags & kContactDetected) != 0;
    }

    if ((flags & kFlagEnergyExpended) != 0) {
        if (value.size() < at + 2) {
            return truncated("energy expended", at, value.size());
        }
        m.energy_kj = read_u16le(value, at);
        at += 2;
    }

    if ((flags & kFlagRrIntervals) != 0) {
        const std::size_t rest = value.size() - at;
        if (rest == 0) {
            return make_error(ErrorCode::kInvalidLength,
                              "heart rate measurement: RR-interval flag set but no RR interval "
                              "follows");
        }
        if (rest % 2 != 0) {
            return truncated("RR interval", value.size() - 1, value.size());
        }
        for (; at < value.size(); at += 2) {
            const std::uint32_t units = read_u16le(value, at);
            // Integer round-half-up of units * 1000 / 1024; no overflow (65535 * 1000 < 2^32).
            m.rr_ms.push_back((units * 1000 + 512) / 1024);
        }
    }

    if (at != value.size()) {
        return make_error(ErrorCode::kInvalidLength,
                          "heart rate measurement: " + std::to_string(value.size() - at) +
                              " unexpected byte(s) after the last field that flags 0x" +
                              hex_byte(flags) + " announce");
    }
    return m;
}

Reading to_reading(const HeartRateMeasurement& measurement, std::int64_t t_ms) {
    Reading reading;
    reading.t_ms = t_ms;
    if (measurement.contact == false) {
        reading.contact = false;
        return reading;
    }
    if (measurement.bpm != 0) {
        reading.bpm = measurement.bpm;
    }
    reading.rr_ms = measurement.rr_ms;
    return reading;
}

}  // namespace cipherpulse::edge
