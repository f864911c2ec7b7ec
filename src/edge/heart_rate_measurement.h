// Decoding of the Bluetooth Heart Rate Measurement characteristic (GATT UUID 0x2A37, Heart
// Rate Service 0x180D), as a BLE chest strap or watch notifies it.
//
// Layout (Bluetooth GATT Specification Supplement, "Heart Rate Measurement"), little-endian:
//   flags (1 byte)
//     bit 0     heart rate value format: 0 = UINT8, 1 = UINT16
//     bits 1-2  sensor contact status: 0 or 1 = not supported, 2 = supported but not
//               detected, 3 = supported and detected
//     bit 3     energy expended present (UINT16, kilojoules)
//     bit 4     RR intervals present (one or more UINT16, units of 1/1024 s)
//     bits 5-7  reserved for future use (ignored, as the specification asks of receivers)
//   heart rate (UINT8 or UINT16, beats per minute)
//   energy expended (UINT16), if flagged
//   RR intervals (UINT16 each, oldest first), if flagged
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "cipherpulse/result.h"
#include "edge/reading.h"

namespace cipherpulse::edge {

// kHeartRateMeasurementUuid is the 128-bit form of the characteristic's UUID, as BlueZ
// spells it.
inline constexpr const char* kHeartRateMeasurementUuid = "00002a37-0000-1000-8000-00805f9b34fb";

// HeartRateMeasurement is one decoded notification.
struct HeartRateMeasurement {
    std::uint16_t bpm = 0;
    // contact is nullopt when the sensor does not support contact detection, else whether
    // it detects skin contact.
    std::optional<bool> contact;
    // energy_kj is the accumulated energy expended in kilojoules, if the sensor sent it.
    std::optional<std::uint16_t> energy_kj;
    // rr_ms holds the RR intervals in milliseconds, oldest first, each rounded to the
    // nearest millisecond from units of 1/1024 s (round(v * 1000 / 1024), halves up).
    std::vector<std::uint32_t> rr_ms;

    bool operator==(const HeartRateMeasurement&) const = default;
};

// decode_heart_rate_measurement decodes a characteristic value. It refuses, with
// kInvalidLength and a message naming the field, an empty value, a value that ends inside
// the heart rate, the energy expended or an RR interval, an RR flag with no RR interval
// after it, and bytes left over after the last field the flags announce. Never throws.
[[nodiscard]] Result<HeartRateMeasurement> decode_heart_rate_measurement(
    std::span<const std::uint8_t> value);

// to_reading turns a measurement received at `t_ms` (Unix ms) into a Reading. When the
// sensor reports that it detects no skin contact the reading has contact = false and
// neither bpm nor RR intervals (they are not trustworthy); when contact detection is not
// supported the reading counts as in contact. A heart rate of 0 (what sensors send while
// they have no value yet) gives a reading without bpm. Energy expended is not carried.
Reading to_reading(const HeartRateMeasurement& measurement, std::int64_t t_ms);

}  // namespace cipherpulse::edge
