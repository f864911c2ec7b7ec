// Opening and showing a released cohort result on the analyst's side. The release arrives
// as an envelope (cipherpulse/envelope.h) sealed to the analyst's X25519 key and signed by
// the pinned decryptor identity; its plaintext is a "cipherpulse-release/1" document
// (docs/formats.md section 10.4).
#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cipherpulse/ed25519.h"
#include "cipherpulse/result.h"
#include "cipherpulse/x25519.h"

namespace cipherpulse::analyst {

// open_release opens `envelope` with the analyst's key, from the pinned decryptor
// `identity`, and checks that it is the release of query `query_id` whose canonical hash
// is `expected_hash` (recomputed by the caller from the query's document): the header is
// exactly {"query": query_id}, the plaintext a cipherpulse-release/1 object with that
// query and hash and a list of figures. Fails (kBadSignature, kInvalidKey) when the
// envelope was not sealed by the identity for this key, and (kInvalidEncoding) naming the
// first check that fails otherwise.
Result<nlohmann::json> open_release(std::string_view envelope, const std::string& query_id,
                                    const std::string& expected_hash,
                                    const X25519PrivateKey& analyst_key,
                                    const Ed25519PublicKey& identity);

// render_release writes a release as "table" (a heading in plain words, then one row per
// figure with its 95 % interval and noise scale), "csv" (header
// figure,statistic,value,unit,interval95_low,interval95_high,scale; empty cells for an
// absent value or interval) or "json" (the release document as released).
void render_release(const nlohmann::json& release, const std::string& format, std::ostream& out);

// number_text prints a figure for people: integers without decimals, other values with at
// most six significant digits.
std::string number_text(double value);

}  // namespace cipherpulse::analyst
