// Opening a sealed window: the checks every decrypted aggregate passes before any figure
// from it is used (by `watch`, `stats` and `windows`).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cipherpulse/codec.h"
#include "cipherpulse/paillier.h"

namespace cipherpulse::decryptor {

// ServerWindow is a sealed window as the server lists it (WindowCore in openapi.yaml).
struct ServerWindow {
    std::int64_t id = 0;
    std::string kid;
    std::string patient;
    std::string metric;
    std::string schema;
    std::string granularity;
    std::int64_t start_ms = 0;
    std::int64_t length_ms = 0;
    std::int64_t record_count = 0;
    std::string aggregate;
    std::string cursor;  // `cursor` or `seal_seq`
    std::int64_t sealed_ms = 0;
};

// parse_server_window reads one window object; nullopt when a field is missing or has the
// wrong type.
std::optional<ServerWindow> parse_server_window(const nlohmann::json& w);

// KeyRing holds the private keys the decryptor may use (the active one and older ones).
class KeyRing {
  public:
    void add(PrivateKey key) {
        keys_.push_back(std::make_shared<const PrivateKey>(std::move(key)));
    }
    // add_shared adds a key owned elsewhere (it must outlive the ring's use).
    void add_shared(std::shared_ptr<const PrivateKey> key) { keys_.push_back(std::move(key)); }
    const PrivateKey* find(const std::string& kid) const;
    bool empty() const noexcept { return keys_.empty(); }

  private:
    std::vector<std::shared_ptr<const PrivateKey>> keys_;
};

// OpenedWindow is the verdict on one window.
struct OpenedWindow {
    enum class Verdict { kReleased, kIntegrity, kSkipped };
    Verdict verdict = Verdict::kSkipped;
    std::string detail;            // why integrity/skipped
    HeartRateStats stats;          // kReleased only
    std::string aggregate_sha256;  // hex SHA-256 of the aggregate text (any verdict)
};

// open_window decrypts a window and checks it: a key for its kid (else skipped), metric hr
// (else skipped), a known schema and a valid ciphertext, statistics within the codec's
// bounds, the decrypted record count equal to the server's claim, the histogram total equal
// to the sample count, and plausibility (per-record maxima times records, RR differences
// no more than RR intervals, a non-negative variance). Any failure is kIntegrity: the
// figures must not be used.
OpenedWindow open_window(const ServerWindow& w, const KeyRing& keys);

// utc_text formats Unix ms as an ISO 8601 UTC time to the second, e.g. 2026-11-21T10:00:00Z.
std::string utc_text(std::int64_t ms);

// stats_json renders decrypted statistics for the ledger and `stats --format json`.
nlohmann::json stats_to_json(const HeartRateStats& s);

}  // namespace cipherpulse::decryptor
