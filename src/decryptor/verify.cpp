#include "decryptor/verify.h"

#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cipherpulse/base64url.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/http_signature.h"
#include "common/upload.h"

namespace cipherpulse::decryptor {
namespace {

using json = nlohmann::json;

// The server accepts a signature whose `created` lies up to ingest.max_clock_skew_s (default
// 300 s) ahead of its clock, so a batch received just before its window sealed may carry a
// `created` up to that much after `sealed_ms`. Anything later cannot have been folded in.
constexpr std::int64_t kCreatedSlackSeconds = 300;

// Strings from the document end up in problem messages (and so in logs): ones that are not
// plain identifiers are quoted, escaped and cut to this length.
constexpr std::size_t kMaxShownChars = 64;

bool is_identifier(std::string_view s) {
    if (s.empty() || s.size() > 128) {
        return false;
    }
    for (char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string shown(std::string_view s) {
    if (s.size() <= kMaxShownChars && is_identifier(s)) {
        return std::string(s);
    }
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < kMaxShownChars; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
            out += escaped;
        }
    }
    if (s.size() > kMaxShownChars) {
        out += "...";
    }
    return out + "\"";
}

// int_of returns a JSON integer that fits in int64, else nullopt (also for 1.0, "1", ...).
std::optional<std::int64_t> int_of(const json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return std::nullopt;
        }
        return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) {
        return v.get<std::int64_t>();
    }
    return std::nullopt;
}

const json* member(const json& object, const char* name) {
    if (!object.is_object()) {
        return nullptr;
    }
    auto it = object.find(name);
    return it == object.end() ? nullptr : &*it;
}

// Fields reads typed members of one JSON object and reports each missing or mistyped one
// under the object's name.
class Fields {
  public:
    Fields(const json& object, std::string where, std::vector<std::string>& problems)
        : object_(object), where_(std::move(where)), problems_(problems) {}

    std::optional<std::int64_t> integer(const char* name) {
        const json* v = member(object_, name);
        std::optional<std::int64_t> value = v != nullptr ? int_of(*v) : std::nullopt;
        if (!value) {
            report(name, "an integer");
        }
        return value;
    }

    std::optional<std::string> string(const char* name) {
        const json* v = member(object_, name);
        if (v == nullptr || !v->is_string()) {
            report(name, "a string");
            return std::nullopt;
        }
        return v->get<std::string>();
    }

  private:
    void report(const char* name, const char* type) {
        problems_.push_back(where_ + ": \"" + name + "\" missing or not " + type);
    }

    const json& object_;
    std::string where_;
    std::vector<std::string>& problems_;
};

// WindowInfo is what the document says about the window; absent fields were reported.
struct WindowInfo {
    std::optional<std::int64_t> start_ms;
    std::optional<std::int64_t> end_ms;  // start_ms + length_ms, when both are sane
    std::optional<std::int64_t> record_count;
    std::optional<std::int64_t> sealed_ms;
    std::optional<std::string> kid;
    std::optional<std::string> metric;
    std::optional<std::string> schema;
    std::optional<std::string> aggregate;
};

// BatchInfo is one entry of `batches`, with its body's records by seq once it parsed.
struct BatchInfo {
    std::string device;  // the entry's `device`; empty when it had none
    bool body_ok = false;
    std::string body_device;
    std::map<std::int64_t, json> records;
    std::set<std::int64_t> ambiguous_seqs;  // seqs the body holds more than once
};

class Verifier {
  public:
    Verifier(const PublicKey& pk, const KnownDeviceKey& known_key, VerifyReport& report)
        : pk_(pk), known_key_(known_key), report_(report) {}

    void run(std::string_view body, const std::optional<std::string>& expected_aggregate) {
        const json doc = json::parse(body, nullptr, false);
        if (doc.is_discarded() || !doc.is_object()) {
            problem("document: not a JSON object");
            return;
        }
        read_window(doc);
        read_devices(doc);
        check_batches(doc);
        check_records(doc);
        check_aggregate(expected_aggregate);
    }

  private:
    void problem(std::string message) { report_.problems.push_back(std::move(message)); }

    void read_window(const json& doc) {
        const json* w = member(doc, "window");
        if (w == nullptr || !w->is_object()) {
            problem("document: \"window\" missing or not an object");
            return;
        }
        if (auto id = Fields(*w, "window", report_.problems).integer("id")) {
            report_.window_id = *id;
            window_name_ = "window " + std::to_string(*id);
        }
        Fields f(*w, window_name_, report_.problems);
        window_.kid = f.string("kid");
        window_.metric = f.string("metric");
        window_.schema = f.string("schema");
        window_.aggregate = f.string("aggregate");
        window_.start_ms = f.integer("start_ms");
        const auto length_ms = f.integer("length_ms");
        window_.record_count = f.integer("record_count");
        window_.sealed_ms = f.integer("sealed_ms");
        if (length_ms && *length_ms <= 0) {
            problem(window_name_ + ": length_ms " + std::to_string(*length_ms) +
                    " is not positive");
        } else if (length_ms && window_.start_ms) {
            std::int64_t end = 0;
            if (__builtin_add_overflow(*window_.start_ms, *length_ms, &end)) {
                problem(window_name_ + ": start_ms + length_ms overflows");
            } else {
                window_.end_ms = end;
            }
        }
        if (window_.record_count && *window_.record_count < 0) {
            problem(window_name_ + ": record_count is negative");
        }
        if (window_.kid && *window_.kid != pk_.kid()) {
            problem(window_name_ + ": kid " + shown(*window_.kid) + " is not the key's kid " +
                    pk_.kid());
        }
    }

    void read_devices(const json& doc) {
        const json* devices = member(doc, "devices");
        if (devices == nullptr || !devices->is_object()) {
            problem("document: \"devices\" missing or not an object");
            return;
        }
        devices_listed_ = true;
        for (const auto& [device, pem] : devices->items()) {
            if (!pem.is_string()) {
                problem("device " + shown(device) + ": key in \"devices\" is not a string");
                continue;
            }
            server_pems_[device] = pem.get<std::string>();
        }
    }

    // device_key resolves, once per device, the key its batches must verify with: the pinned
    // key when the caller has one (after checking the server's key is the same), else the
    // server's (trust on first use).
    const std::optional<Ed25519PublicKey>& device_key(const std::string& device) {
        if (auto it = keys_.find(device); it != keys_.end()) {
            return it->second;
        }
        const std::string who = "device " + shown(device);
        std::optional<Ed25519PublicKey> server_key;
        if (auto pem = server_pems_.find(device); pem != server_pems_.end()) {
            auto parsed = Ed25519PublicKey::from_pem(pem->second);
            if (parsed) {
                server_key = parsed.value();
            } else {
                problem(who + ": the server's key is not an Ed25519 public key PEM: " +
                        parsed.error().message);
            }
        } else if (devices_listed_) {
            problem(who + ": no public key in \"devices\"");
        }
        std::optional<Ed25519PublicKey> used = server_key;
        const std::optional<std::string> pinned =
            known_key_ ? known_key_(device) : std::optional<std::string>();
        if (pinned) {
            used.reset();
            auto parsed = Ed25519PublicKey::from_pem(*pinned);
            if (!parsed) {
                problem(who + ": the pinned key is not an Ed25519 public key PEM: " +
                        parsed.error().message);
            } else {
                used = parsed.value();
                // Compared as raw key bytes: the server re-encodes PEMs.
                if (server_key && !(*server_key == *used)) {
                    problem(who + ": key differs from the pinned one (server has " +
                            server_key->fingerprint() + ", pinned " + used->fingerprint() + ")");
                }
            }
        }
        if (used) {
            report_.device_keys[device] = used->to_pem();
        }
        return keys_.emplace(device, used).first->second;
    }

    void check_batches(const json& doc) {
        const json* batches = member(doc, "batches");
        if (batches == nullptr || !batches->is_array()) {
            problem("document: \"batches\" missing or not an array");
            return;
        }
        report_.batches = batches->size();
        for (std::size_t i = 0; i < batches->size(); ++i) {
            check_batch((*batches)[i], i);
        }
    }

    void check_batch(const json& entry, std::size_t index) {
        std::string where = "batches[" + std::to_string(index) + "]";
        if (!entry.is_object()) {
            problem(where + ": not an object");
            return;
        }
        const auto id = Fields(entry, where, report_.problems).integer("id");
        if (!id) {
            return;
        }
        where = "batch " + std::to_string(*id);
        auto [slot, inserted] = batches_.try_emplace(*id);
        if (!inserted) {
            problem(where + ": listed twice");
            return;
        }
        BatchInfo& batch = slot->second;
        const auto device = Fields(entry, where, report_.problems).string("device");
        if (device) {
            batch.device = *device;
            where += " (device " + shown(*device) + ")";
        }
        Fields f(entry, where, report_.problems);
        const auto method = f.string("method");
        const auto path = f.string("path");
        const auto digest = f.string("content_digest");
        const auto signature_input = f.string("signature_input");
        const auto signature = f.string("signature");
        const auto body = f.string("body");

        if (method && *method != "POST") {
            problem(where + ": method " + shown(*method) + " is not POST");
        }
        if (path && *path != common::kReadingsPath) {
            problem(where + ": path " + shown(*path) + " is not " + common::kReadingsPath);
        }
        std::optional<std::vector<std::uint8_t>> bytes;
        if (body) {
            auto decoded = base64url_decode(*body);
            if (decoded) {
                bytes = std::move(decoded).value();
            } else {
                problem(where + ": body is not base64url: " + decoded.error().message);
            }
        }
        if (digest && bytes) {
            if (auto ok = verify_content_digest(*digest, std::span<const std::uint8_t>(*bytes));
                !ok) {
                problem(where + ": " + ok.error().message);
            }
        }
        if (signature_input && signature) {
            check_signature(where, device, method, path, digest, *signature_input, *signature);
        }
        if (bytes) {
            read_body(where, batch, *bytes);
        }
    }

    void check_signature(const std::string& where, const std::optional<std::string>& device,
                         const std::optional<std::string>& method,
                         const std::optional<std::string>& path,
                         const std::optional<std::string>& digest,
                         const std::string& signature_input, const std::string& signature) {
        auto parsed = parse_signature(signature_input, signature);
        if (!parsed) {
            problem(where + ": signature malformed: " + parsed.error().message);
            return;
        }
        const SignatureParams& params = parsed.value().params;
        if (!params.keyid) {
            problem(where + ": signature has no keyid");
        } else if (device && *params.keyid != *device) {
            problem(where + ": signature keyid " + shown(*params.keyid) +
                    " is not the batch's device");
        }
        if (params.created && window_.sealed_ms &&
            *params.created > *window_.sealed_ms / 1000 + kCreatedSlackSeconds) {
            problem(where + ": signed at created=" + std::to_string(*params.created) +
                    ", after the window sealed (sealed_ms=" + std::to_string(*window_.sealed_ms) +
                    ")");
        }
        if (!device || !method || !path || !digest) {
            return;  // missing fields were reported; nothing to verify against
        }
        const std::optional<Ed25519PublicKey>& key = device_key(*device);
        if (!key) {
            problem(where + ": signature not verified: no usable key for the device");
            return;
        }
        HttpRequestView view;
        view.method = *method;
        view.path = *path;
        view.header = [&digest](std::string_view name) -> std::optional<std::string> {
            if (name == "content-digest") {
                return *digest;
            }
            return std::nullopt;  // the server keeps no other header
        };
        // Batches are verified long after upload: judge the clock by the signature's own
        // `created` (its lateness is checked against sealed_ms above instead).
        VerifyPolicy policy;
        policy.now_seconds = params.created.value_or(0);
        policy.max_skew_seconds = 0;
        if (auto ok = verify_request(view, parsed.value(), *key, policy); !ok) {
            problem(where + ": signature rejected: " + ok.error().message);
        }
    }

    void read_body(const std::string& where, BatchInfo& batch,
                   const std::vector<std::uint8_t>& bytes) {
        const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const json doc = json::parse(text, nullptr, false);
        if (doc.is_discarded() || !doc.is_object()) {
            problem(where + ": body is not a JSON object");
            return;
        }
        const json* device = member(doc, "device");
        if (device == nullptr || !device->is_string()) {
            problem(where + ": body has no string \"device\"");
            return;
        }
        batch.body_device = device->get<std::string>();
        if (!batch.device.empty() && batch.body_device != batch.device) {
            problem(where + ": body names device " + shown(batch.body_device));
        }
        const json* records = member(doc, "records");
        if (records == nullptr || !records->is_array()) {
            problem(where + ": body has no \"records\" array");
            return;
        }
        for (std::size_t k = 0; k < records->size(); ++k) {
            const json& record = (*records)[k];
            const json* seq_member = member(record, "seq");
            const auto seq = seq_member != nullptr ? int_of(*seq_member) : std::nullopt;
            if (!seq) {
                problem(where + ": body record " + std::to_string(k) + " has no integer \"seq\"");
                continue;
            }
            if (!batch.records.emplace(*seq, record).second &&
                batch.ambiguous_seqs.insert(*seq).second) {
                problem(where + ": body holds seq " + std::to_string(*seq) + " more than once");
            }
        }
        batch.body_ok = true;
    }

    void check_records(const json& doc) {
        const json* records = member(doc, "records");
        if (records == nullptr || !records->is_array()) {
            problem("document: \"records\" missing or not an array");
            records_listed_ = false;
            return;
        }
        report_.records = records->size();
        std::set<std::pair<std::string, std::int64_t>> seen;
        for (std::size_t i = 0; i < records->size(); ++i) {
            check_record((*records)[i], i, seen);
        }
    }

    void check_record(const json& entry, std::size_t index,
                      std::set<std::pair<std::string, std::int64_t>>& seen) {
        std::string where = "records[" + std::to_string(index) + "]";
        if (!entry.is_object()) {
            problem(where + ": not an object");
            all_cts_present_ = false;
            return;
        }
        const auto device = Fields(entry, where, report_.problems).string("device");
        const auto seq = Fields(entry, where, report_.problems).integer("seq");
        if (device && seq) {
            where = "record " + shown(*device) + "/" + std::to_string(*seq);
            if (!seen.emplace(*device, *seq).second) {
                problem(where + ": listed more than once");
            }
        }
        Fields f(entry, where, report_.problems);
        const auto t = f.integer("t");
        const auto metric = f.string("metric");
        const auto schema = f.string("schema");
        const auto kid = f.string("kid");
        const auto ct = f.string("ct");
        const auto batch_id = f.integer("batch");

        if (ct) {
            cts_.push_back(*ct);
            ct_owners_.push_back(where);
        } else {
            all_cts_present_ = false;
        }
        check_in_window(where, t, metric, schema, kid);
        if (!batch_id) {
            return;
        }
        const std::string batch_name = "batch " + std::to_string(*batch_id);
        auto it = batches_.find(*batch_id);
        if (it == batches_.end()) {
            problem(where + ": " + batch_name + " is not among the batches");
            return;
        }
        const BatchInfo& batch = it->second;
        if (device && ((!batch.device.empty() && batch.device != *device) ||
                       (batch.body_ok && batch.body_device != *device))) {
            problem(where + ": " + batch_name + " was uploaded by another device");
            return;
        }
        if (!batch.body_ok || !seq) {
            return;  // an unusable body was reported with its batch
        }
        if (batch.ambiguous_seqs.count(*seq) != 0) {
            problem(where + ": seq is ambiguous in the body of " + batch_name);
            return;
        }
        auto signed_copy = batch.records.find(*seq);
        if (signed_copy == batch.records.end()) {
            problem(where + ": not in the body of " + batch_name);
            return;
        }
        const json& copy = signed_copy->second;
        std::string differ;
        auto note = [&differ](const char* name) {
            differ += differ.empty() ? name : std::string(", ") + name;
        };
        if (t) {
            const json* v = member(copy, "t");
            if (v == nullptr || int_of(*v) != t) {
                note("t");
            }
        }
        const std::pair<const char*, const std::optional<std::string>*> strings[] = {
            {"metric", &metric}, {"schema", &schema}, {"kid", &kid}, {"ct", &ct}};
        for (const auto& [name, value] : strings) {
            if (*value) {
                const json* v = member(copy, name);
                if (v == nullptr || !v->is_string() ||
                    v->get_ref<const std::string&>() != **value) {
                    note(name);
                }
            }
        }
        if (!differ.empty()) {
            problem(where + ": differs from its signed copy in " + batch_name + " (" + differ +
                    ")");
        }
    }

    void check_in_window(const std::string& where, const std::optional<std::int64_t>& t,
                         const std::optional<std::string>& metric,
                         const std::optional<std::string>& schema,
                         const std::optional<std::string>& kid) {
        if (t && window_.start_ms && window_.end_ms &&
            (*t < *window_.start_ms || *t >= *window_.end_ms)) {
            problem(where + ": t=" + std::to_string(*t) + " is outside " + window_name_ + " [" +
                    std::to_string(*window_.start_ms) + ", " + std::to_string(*window_.end_ms) +
                    ")");
        }
        const std::pair<const char*, std::pair<const std::optional<std::string>*,
                                               const std::optional<std::string>*>>
            fields[] = {{"metric", {&metric, &window_.metric}},
                        {"schema", {&schema, &window_.schema}},
                        {"kid", {&kid, &window_.kid}}};
        for (const auto& [name, values] : fields) {
            const auto& [mine, theirs] = values;
            if (*mine && *theirs && **mine != **theirs) {
                problem(where + ": " + name + " " + shown(**mine) + " is not the window's " +
                        shown(**theirs));
            }
        }
    }

    void check_aggregate(const std::optional<std::string>& expected_aggregate) {
        std::optional<Ciphertext> aggregate;
        if (window_.aggregate) {
            auto parsed = pk_.parse_ciphertext_base64url(*window_.aggregate);
            if (parsed) {
                aggregate = std::move(parsed).value();
            } else {
                problem(window_name_ + ": aggregate is not a valid ciphertext of the key: " +
                        parsed.error().message);
            }
        }
        const std::vector<std::string_view> texts(cts_.begin(), cts_.end());
        auto parsed = pk_.parse_ciphertexts_base64url(texts);
        std::vector<Ciphertext> cts;
        cts.reserve(parsed.size());
        bool all_valid = all_cts_present_ && records_listed_;
        for (std::size_t k = 0; k < parsed.size(); ++k) {
            if (parsed[k]) {
                cts.push_back(std::move(parsed[k]).value());
            } else {
                problem(ct_owners_[k] +
                        ": ct is not a valid ciphertext of the key: " + parsed[k].error().message);
                all_valid = false;
            }
        }
        if (aggregate) {
            if (!all_valid) {
                problem(window_name_ +
                        ": aggregate not compared: not every record has a valid "
                        "ciphertext");
            } else if (!(pk_.sum(cts) == *aggregate)) {
                problem(window_name_ + ": aggregate is not the product of the " +
                        std::to_string(cts.size()) + " records' ciphertexts");
            }
        }
        if (window_.record_count && records_listed_ &&
            *window_.record_count != static_cast<std::int64_t>(report_.records)) {
            problem(window_name_ + ": record_count is " + std::to_string(*window_.record_count) +
                    " but " + std::to_string(report_.records) + " records are listed");
        }
        if (expected_aggregate) {
            auto expected = pk_.parse_ciphertext_base64url(*expected_aggregate);
            if (!expected) {
                problem("expected aggregate is not a valid ciphertext of the key: " +
                        expected.error().message);
            } else if (aggregate && !(expected.value() == *aggregate)) {
                problem(window_name_ +
                        ": aggregate differs from the expected (already released) "
                        "one");
            }
        }
    }

    const PublicKey& pk_;
    const KnownDeviceKey& known_key_;
    VerifyReport& report_;
    WindowInfo window_;
    std::string window_name_ = "window";
    bool devices_listed_ = false;
    bool records_listed_ = true;
    std::map<std::string, std::string> server_pems_;
    std::map<std::string, std::optional<Ed25519PublicKey>> keys_;
    std::map<std::int64_t, BatchInfo> batches_;
    std::vector<std::string> cts_;        // every record's ct, in order
    std::vector<std::string> ct_owners_;  // the record each came from, for messages
    bool all_cts_present_ = true;
};

}  // namespace

VerifyReport verify_window_records(std::string_view body, const PublicKey& pk,
                                   const KnownDeviceKey& known_key,
                                   const std::optional<std::string>& expected_aggregate) {
    VerifyReport report;
    try {
        Verifier(pk, known_key, report).run(body, expected_aggregate);
    } catch (const std::exception& e) {
        // Nothing above throws for bad input; this keeps the promise for the unforeseen
        // (out of memory, a throwing known_key callback).
        report.problems.push_back(std::string("verification stopped: ") + e.what());
    } catch (...) {
        report.problems.push_back("verification stopped: unknown error");
    }
    report.ok = report.problems.empty();
    return report;
}

}  // namespace cipherpulse::decryptor
