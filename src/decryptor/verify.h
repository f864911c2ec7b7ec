// Re-verification of a sealed window against its raw records (`verify --window`, and the
// sampling in `watch`): the server must prove that the aggregate it hands out is the
// product of records really signed by the patient's devices.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/paillier.h"

namespace cipherpulse::decryptor {

// VerifyReport says what verify_window_records found. `ok` only when `problems` is empty.
struct VerifyReport {
    bool ok = false;
    std::int64_t window_id = 0;
    std::size_t batches = 0;
    std::size_t records = 0;
    std::vector<std::string> problems;  // each names the batch/record/device concerned
    // Device keys (id -> PEM) the document used; the caller pins those it did not know.
    std::map<std::string, std::string> device_keys;
};

// KnownDeviceKey returns the public key PEM the decryptor pinned for a device earlier, or
// nullopt for a device it has never seen (then the server's key is accepted and reported
// in device_keys for pinning: trust on first use).
using KnownDeviceKey = std::function<std::optional<std::string>(std::string_view device)>;

// verify_window_records checks a `GET /v1/windows/{id}/records` response body:
//  1. every batch: Content-Digest matches the body; the RFC 9421 signature (covering
//     @method, @path, content-digest, keyid = device) verifies with the device's key, and
//     that key equals the pinned one when there is one; `created` is not after the
//     window's `sealed_ms`;
//  2. every record appears, identical (device, seq, t, metric, schema, kid, ct), in the
//     body of the batch it names, and belongs to the window (patient's device is not
//     checked here; t within [start_ms, start_ms + length_ms), metric, schema and kid
//     equal to the window's);
//  3. the product of the records' ciphertexts mod n^2 equals `window.aggregate`, and the
//     number of records equals `window.record_count`; `expected_aggregate`, when given,
//     must equal `window.aggregate` too (the aggregate the caller already released).
// A malformed document is a problem too (never an exception). `pk` must be the window's key.
VerifyReport verify_window_records(std::string_view body, const PublicKey& pk,
                                   const KnownDeviceKey& known_key,
                                   const std::optional<std::string>& expected_aggregate);

}  // namespace cipherpulse::decryptor
