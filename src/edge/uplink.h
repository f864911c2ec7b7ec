// The edge's connection to the server: fetching and verifying the active encryption key,
// and signed uploads of spooled records.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/paillier.h"
#include "cipherpulse/result.h"
#include "edge/spool.h"

namespace cipherpulse::edge {

struct ServerEndpoint {
    std::string url;      // http://host:port or https://host:port
    std::string ca_file;  // PEM bundle to verify the server's certificate (https)
    int timeout_s = 10;
};

// UploadOutcome says what became of one upload.
struct UploadOutcome {
    enum class Kind {
        kAcknowledged,  // every record accepted or duplicate: remove them from the spool
        kRefused,       // the server refused some records for good: see `refused`
        kRetry,         // network error, 429, 503, 5xx: keep everything, try again later
    } kind = Kind::kRetry;
    std::vector<std::int64_t> acknowledged;
    std::vector<std::pair<std::int64_t, std::string>> refused;  // seq, reason
    int status = 0;                                             // HTTP status (0: no answer)
    int retry_after_s = 0;                                      // from Retry-After, if any
    std::string error;                                          // for logs and status
    int late = 0;  // acknowledged records the server counted as late
};

class Uplink {
  public:
    // Throws std::invalid_argument for a URL that is not http(s)://host[:port].
    Uplink(ServerEndpoint endpoint, std::string device_id, const Ed25519PrivateKey& device_key,
           Ed25519PublicKey identity);
    ~Uplink();

    // fetch_active_key gets GET /v1/keys/active and verifies its JWS against the pinned
    // decryptor identity. A document that does not verify (a server substituting its own
    // key) is kBadSignature; nothing must be encrypted under it. Network problems are kIo.
    Result<PublicKey> fetch_active_key();
    // verify_key_document checks a key document (compact JWS) against the pinned identity,
    // as fetch_active_key does; used for the copy cached in the spool.
    Result<PublicKey> verify_key_document(const std::string& jws) const;
    // last_key_document is the JWS of the last key fetch_active_key accepted.
    const std::string& last_key_document() const;

    // upload sends the records as one signed batch.
    UploadOutcome upload(const std::vector<SpoolRecord>& records, std::int64_t now_s);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cipherpulse::edge
