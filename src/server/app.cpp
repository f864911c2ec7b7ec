#include "server/app.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "cipherpulse/base64url.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/http_signature.h"
#include "cipherpulse/jws.h"
#include "server/audit.h"
#include "server/auth.h"
#include "server/ingest.h"
#include "server/http_util.h"
#include "server/metrics.h"
#include "server/schema.h"
#include "server/cohort_api.h"
#include "server/scoring_api.h"
#include "server/writer.h"

namespace cipherpulse::server {

using json = nlohmann::json;

std::int64_t now_unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {

constexpr std::size_t kMaxPageLimit = 1000;
constexpr std::int64_t kMaxLongPollMs = 30000;

// ReadPool hands out read-only connections, one per concurrent request.
class ReadPool {
  public:
    ReadPool(std::string path, std::string synchronous) : path_(std::move(path)) {
        options_.read_only = true;
        options_.create = false;
        options_.synchronous = std::move(synchronous);
    }
    class Lease {
      public:
        Lease(ReadPool& pool, store::Database db) : pool_(pool), db_(std::move(db)) {}
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { pool_.give_back(std::move(*db_)); }
        store::Database& db() { return *db_; }

      private:
        ReadPool& pool_;
        std::optional<store::Database> db_;
    };
    Lease acquire() {
        {
            std::lock_guard lock(mutex_);
            if (!free_.empty()) {
                store::Database db = std::move(free_.back());
                free_.pop_back();
                return Lease(*this, std::move(db));
            }
        }
        return Lease(*this, store::Database::open(path_, options_));
    }

  private:
    void give_back(store::Database db) {
        std::lock_guard lock(mutex_);
        if (free_.size() < 32) {
            free_.push_back(std::move(db));
        }
    }
    std::string path_;
    store::OpenOptions options_;
    std::mutex mutex_;
    std::vector<store::Database> free_;
};

// RateLimiter is a token bucket per device.
class RateLimiter {
  public:
    explicit RateLimiter(double per_second)
        : rate_(per_second), burst_(std::max(5.0, 2 * per_second)) {}
    bool allow(const std::string& device, std::int64_t now_ms) {
        std::lock_guard lock(mutex_);
        auto [it, fresh] = buckets_.try_emplace(device, Bucket{burst_, now_ms});
        Bucket& b = it->second;
        if (!fresh) {
            b.tokens = std::min(
                burst_, b.tokens + rate_ * static_cast<double>(now_ms - b.last_ms) / 1000.0);
            b.last_ms = now_ms;
        }
        if (b.tokens < 1.0) {
            return false;
        }
        b.tokens -= 1.0;
        return true;
    }

  private:
    struct Bucket {
        double tokens;
        std::int64_t last_ms;
    };
    double rate_;
    double burst_;
    std::mutex mutex_;
    std::map<std::string, Bucket> buckets_;
};

// DeviceKeyCache keeps parsed device public keys by their PEM text, so an upload does not
// decode the PEM each time; keyed by the text read from the database, it never serves a key
// the database no longer has for the device.
class DeviceKeyCache {
  public:
    std::optional<Ed25519PublicKey> get(const std::string& pem) {
        {
            std::lock_guard lock(mutex_);
            auto it = keys_.find(pem);
            if (it != keys_.end()) {
                return it->second;
            }
        }
        auto key = Ed25519PublicKey::from_pem(pem);
        if (!key) {
            return std::nullopt;
        }
        std::lock_guard lock(mutex_);
        if (keys_.size() > 100000) {
            keys_.clear();
        }
        keys_.emplace(pem, key.value());
        return key.value();
    }

  private:
    std::mutex mutex_;
    std::unordered_map<std::string, Ed25519PublicKey> keys_;
};

bool is_loopback(const std::string& host) {
    return host == "127.0.0.1" || host == "::1" || host == "localhost" ||
           host.rfind("127.", 0) == 0;
}

std::string b64u(const std::vector<std::uint8_t>& bytes) {
    return base64url_encode(bytes);
}

}  // namespace

// ---------------------------------------------------------------------------- ServerState

class ServerState {
  public:
    ServerState(ServerConfig config, std::function<std::int64_t()> clock);
    ~ServerState();

    void routes();
    int bind();
    void serve() { http_->listen_after_bind(); }
    void stop();

    ServerConfig config_;
    std::function<std::int64_t()> clock_ = now_unix_ms;
    std::unique_ptr<ReadPool> reads_;
    std::unique_ptr<Writer> writer_;
    KeyRing keys_;
    IngestCounters counters_;
    std::unique_ptr<Windows> windows_;
    Metrics metrics_;
    RateLimiter limiter_;
    std::optional<Ed25519PublicKey> identity_;
    DeviceKeyCache device_keys_;
    std::unique_ptr<httplib::Server> http_;
    std::unique_ptr<ScoringApi> scoring_;
    std::unique_ptr<CohortApi> cohorts_;
    std::atomic<std::uint64_t> request_ids_{0};
    std::thread sealer_;
    std::mutex sealer_mutex_;
    std::condition_variable sealer_cv_;
    bool stopping_ = false;
    // Long polls of GET /v1/windows wait for the sealer's next commit.
    std::mutex sealed_mutex_;
    std::condition_variable sealed_cv_;
    std::uint64_t seal_generation_ = 0;
    bool closing_ = false;
    std::atomic<int> long_polls_{0};

  private:
    // Handlers.
    void get_health(const httplib::Request&, httplib::Response& res);
    void get_ready(const httplib::Request&, httplib::Response& res);
    void get_metrics(const httplib::Request&, httplib::Response& res);
    void post_keys(const httplib::Request& req, httplib::Response& res);
    void get_active_key(const httplib::Request& req, httplib::Response& res);
    void post_devices(const httplib::Request& req, httplib::Response& res);
    void get_device(const httplib::Request& req, httplib::Response& res);
    void revoke_device(const httplib::Request& req, httplib::Response& res);
    void post_readings(const httplib::Request& req, httplib::Response& res);
    void get_windows(const httplib::Request& req, httplib::Response& res);
    void get_patient_windows(const httplib::Request& req, httplib::Response& res);
    void get_window_records(const httplib::Request& req, httplib::Response& res);
    void get_audit(const httplib::Request& req, httplib::Response& res);

    std::optional<TokenInfo> require(const httplib::Request& req, httplib::Response& res,
                                     std::initializer_list<Role> roles);
    void audit(const std::string& actor, const std::string& action, const std::string& subject,
               const json& detail);
    void seal_loop();
    const Granularity* granularity(const std::string& name) const;
};

namespace {

json window_json(store::Statement& st, const std::string& cursor_field) {
    json w;
    w["id"] = st.column_int64(0);
    w["kid"] = st.column_text(1);
    w["patient"] = st.column_text(2);
    w["metric"] = st.column_text(3);
    w["schema"] = st.column_text(4);
    w["granularity"] = st.column_text(5);
    w["start_ms"] = st.column_int64(6);
    w["length_ms"] = st.column_int64(7);
    w["record_count"] = st.column_int64(8);
    w["aggregate"] = b64u(st.column_blob(9));
    w[cursor_field] = std::to_string(st.column_int64(10));
    w["sealed_ms"] = st.column_int64(11);
    return w;
}

constexpr const char* kWindowColumns =
    "id, kid, patient, metric, schema, granularity, start_ms, length_ms, record_count, "
    "aggregate, seal_seq, sealed_ms";

}  // namespace

ServerState::ServerState(ServerConfig config, std::function<std::int64_t()> clock)
    : config_(std::move(config)),
      clock_(std::move(clock)),
      limiter_(config_.device_rate_per_second) {
    if (config_.tls_cert.empty() && !config_.insecure && !is_loopback(config_.listen_host)) {
        throw std::runtime_error("refusing to serve plain HTTP on " + config_.listen_host +
                                 ": configure server.tls_cert and server.tls_key, or set "
                                 "server.insecure = true");
    }
    if (!config_.identity_public_key.empty()) {
        auto id = Ed25519PublicKey::load(config_.identity_public_key);
        if (!id) {
            throw std::runtime_error("keys.identity_public_key: " + id.error().message);
        }
        identity_ = id.value();
    }
    store::OpenOptions options;
    options.synchronous = config_.synchronous;
    options.create = false;
    store::Database db = store::Database::open(config_.database, options);
    store::migrate(db, server_migrations());
    keys_.load(db);
    windows_ = std::make_unique<Windows>(config_.granularities, counters_);
    windows_->load(db);
    // The sealer thread copies the WAL back into the database (PASSIVE checkpoints from its
    // own connection) while the writer works; the writer's own checkpoint, which it must
    // run for the WAL to be reused, comes rarely and finds the work done. Statement
    // journals of the writer's savepoints stay in memory.
    db.exec("PRAGMA wal_autocheckpoint = 2000; PRAGMA temp_store = MEMORY");
    reads_ = std::make_unique<ReadPool>(config_.database, config_.synchronous);
    writer_ = std::make_unique<Writer>(std::move(db), config_.request_queue);
    if (!config_.tls_cert.empty()) {
        http_ =
            std::make_unique<httplib::SSLServer>(config_.tls_cert.c_str(), config_.tls_key.c_str());
    } else {
        http_ = std::make_unique<httplib::Server>();
    }
    if (!http_->is_valid()) {
        throw std::runtime_error(
            "cannot start the HTTP server (TLS certificate or key unreadable?)");
    }
    routes();
    sealer_ = std::thread([this] { seal_loop(); });
}

ServerState::~ServerState() {
    stop();
}

void ServerState::stop() {
    {
        std::lock_guard lock(sealer_mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    sealer_cv_.notify_all();
    {
        std::lock_guard lock(sealed_mutex_);
        closing_ = true;
    }
    sealed_cv_.notify_all();
    if (http_) {
        http_->stop();
    }
    if (sealer_.joinable()) {
        sealer_.join();
    }
    if (writer_) {
        writer_->stop();  // commits everything queued
    }
}

int ServerState::bind() {
    if (config_.listen_port == 0) {
        int port = http_->bind_to_any_port(config_.listen_host);
        if (port < 0) {
            throw std::runtime_error("cannot listen on " + config_.listen_host);
        }
        return port;
    }
    if (!http_->bind_to_port(config_.listen_host, config_.listen_port)) {
        throw std::runtime_error("cannot listen on " + config_.listen_host + ":" +
                                 std::to_string(config_.listen_port));
    }
    return config_.listen_port;
}

void ServerState::seal_loop() {
    store::OpenOptions options;
    options.create = false;
    options.synchronous = config_.synchronous;
    store::Database checkpointer = store::Database::open(config_.database, options);
    std::unique_lock lock(sealer_mutex_);
    auto next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (!stopping_) {
        // Wake when the next windows reach their seal time, and at least every 0.5 s (for
        // windows loaded at start-up, checkpoints and a clock that jumps).
        const std::int64_t now = clock_();
        const std::int64_t until_seal = next_seal_ms(config_.granularities, now) - now;
        sealer_cv_.wait_for(
            lock, std::chrono::milliseconds(std::clamp<std::int64_t>(until_seal, 1, 500)));
        if (stopping_) {
            break;
        }
        lock.unlock();
        std::promise<int> done;
        auto sealed = done.get_future();
        if (writer_->submit_always(windows_->make_seal_job(clock_(), std::move(done)))) {
            try {
                int n = sealed.get();
                if (n > 0) {
                    spdlog::debug("sealed {} windows", n);
                    std::lock_guard seal_lock(sealed_mutex_);
                    ++seal_generation_;
                    sealed_cv_.notify_all();  // wakes GET /v1/windows?wait_ms=
                }
            } catch (const std::exception& e) {
                spdlog::error("sealing failed: {}", e.what());
            }
        }
        // Move the WAL into the database file without holding up the writer; PASSIVE never
        // waits for readers or the writer.
        try {
            checkpointer.exec("PRAGMA wal_checkpoint(PASSIVE)");
        } catch (const std::exception& e) {
            spdlog::warn("checkpoint failed: {}", e.what());
        }
        if (std::chrono::steady_clock::now() >= next_prune) {
            next_prune = std::chrono::steady_clock::now() + std::chrono::minutes(1);
            const std::int64_t cutoff = clock_() - std::int64_t{config_.retention_days} * 86400000;
            try {
                int removed = run_write<int>(
                    *writer_, [cutoff](store::Database& db) { return prune_expired(db, cutoff); });
                if (removed > 0) {
                    spdlog::info("retention: removed {} raw records", removed);
                }
            } catch (const std::exception& e) {
                spdlog::error("retention pruning failed: {}", e.what());
            }
        }
        lock.lock();
    }
}

const Granularity* ServerState::granularity(const std::string& name) const {
    for (const auto& g : config_.granularities) {
        if (g.name == name) {
            return &g;
        }
    }
    return nullptr;
}

std::optional<TokenInfo> ServerState::require(const httplib::Request& req, httplib::Response& res,
                                              std::initializer_list<Role> roles) {
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "bearer ";
    auto scheme_is_bearer = [&] {
        for (std::size_t i = 0; i < kBearer.size(); ++i) {
            if (std::tolower(static_cast<unsigned char>(header[i])) != kBearer[i]) {
                return false;
            }
        }
        return true;
    };
    if (header.size() <= kBearer.size() || !scheme_is_bearer()) {
        res.set_header("WWW-Authenticate", "Bearer");
        problem(res, 401, "unauthenticated", "Authentication required",
                "send a bearer token in the Authorization header");
        return std::nullopt;
    }
    std::optional<TokenInfo> token;
    {
        auto lease = reads_->acquire();
        token = authenticate(lease.db(), std::string_view(header).substr(kBearer.size()), clock_());
    }
    if (!token) {
        res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
        problem(res, 401, "invalid-token", "Invalid token",
                "the token is unknown, revoked or expired");
        return std::nullopt;
    }
    for (Role r : roles) {
        if (token->role == r) {
            return token;
        }
    }
    problem(
        res, 403, "forbidden", "Role not allowed",
        std::string("the token's role '") + role_name(token->role) + "' may not use this endpoint");
    return std::nullopt;
}

void ServerState::audit(const std::string& actor, const std::string& action,
                        const std::string& subject, const json& detail) {
    std::int64_t now = clock_();
    std::string text = detail.dump();
    run_write<std::int64_t>(*writer_, [&](store::Database& db) {
        return append_audit(db, now, actor, action, subject, text);
    });
}

void ServerState::routes() {
    auto& s = *http_;
    s.set_read_timeout(config_.read_timeout_s, 0);
    s.set_write_timeout(config_.write_timeout_s, 0);
    s.set_payload_max_length(config_.max_body_bytes);
    s.set_keep_alive_max_count(1000);
    s.set_tcp_nodelay(true);  // answers are small: do not wait for delayed ACKs
    // Longer than the edges' 5 s upload cadence, so a kept-alive connection is normally
    // still open for the next upload (the edge retries once on a closed one anyway).
    s.set_keep_alive_timeout(10);
    const int threads = config_.threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };

    // Before any body is read: refuse what cpp-httplib would read without bound.
    s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        // Every response carries its request id, the key to the server's log line.
        res.set_header("X-Request-Id", std::to_string(++request_ids_));
        if (req.has_header("Transfer-Encoding")) {
            res.set_header("Connection", "close");
            problem(res, 411, "length-required", "Chunked bodies are not accepted",
                    "send the body with a Content-Length");
            return httplib::Server::HandlerResponse::Handled;
        }
        std::string encoding = req.get_header_value("Content-Encoding");
        if (!encoding.empty() && encoding != "identity") {
            res.set_header("Connection", "close");
            problem(res, 415, "unsupported-encoding", "Compressed bodies are not accepted",
                    "send the body uncompressed");
            return httplib::Server::HandlerResponse::Handled;
        }
        const bool has_body_method =
            req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
        if (has_body_method && !req.has_header("Content-Length")) {
            // Without a length cpp-httplib would read until the connection closes.
            res.set_header("Connection", "close");
            problem(res, 411, "length-required", "Content-Length required",
                    "send the body with a Content-Length");
            return httplib::Server::HandlerResponse::Handled;
        }
        if (req.has_header("Content-Length")) {
            const std::string length = req.get_header_value("Content-Length");
            std::size_t value = 0;
            bool numeric = !length.empty() && length.size() <= 12 &&
                           length.find_first_not_of("0123456789") == std::string::npos;
            if (numeric) {
                value = std::stoull(length);
            }
            if (!numeric || value > config_.max_body_bytes) {
                res.set_header("Connection", "close");
                problem(res, 413, "body-too-large", "Request body too large",
                        "the limit is " + std::to_string(config_.max_body_bytes) + " bytes");
                return httplib::Server::HandlerResponse::Handled;
            }
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });
    s.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                spdlog::error("request failed: {}", e.what());
            } catch (...) {
                spdlog::error("request failed");
            }
            problem(res, 500, "internal", "Internal server error", "");
        });
    s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (res.body.empty()) {
            int status = res.status;
            problem(res, status, status == 404 ? "not-found" : "http-error",
                    status == 404 ? "Not found" : "Request failed", "");
        }
    });
    s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        const std::string id = res.get_header_value("X-Request-Id");
        metrics_.count_request(req.method, route_label(req.path), res.status);
        spdlog::info("request id={} method={} path={} status={} bytes_in={} bytes_out={}", id,
                     req.method, req.path, res.status, req.body.size(), res.body.size());
    });

    s.Get("/v1/health", [this](const auto& req, auto& res) { get_health(req, res); });
    s.Get("/v1/ready", [this](const auto& req, auto& res) { get_ready(req, res); });
    s.Get("/metrics", [this](const auto& req, auto& res) { get_metrics(req, res); });
    s.Post("/v1/keys", [this](const auto& req, auto& res) { post_keys(req, res); });
    s.Get("/v1/keys/active", [this](const auto& req, auto& res) { get_active_key(req, res); });
    s.Post("/v1/devices", [this](const auto& req, auto& res) { post_devices(req, res); });
    s.Get(R"(/v1/devices/([A-Za-z0-9._:-]{1,128}))",
          [this](const auto& req, auto& res) { get_device(req, res); });
    s.Post(R"(/v1/devices/([A-Za-z0-9._:-]{1,128})/revoke)",
           [this](const auto& req, auto& res) { revoke_device(req, res); });
    s.Post("/v1/readings", [this](const auto& req, auto& res) { post_readings(req, res); });
    s.Get("/v1/windows", [this](const auto& req, auto& res) { get_windows(req, res); });
    s.Get(R"(/v1/windows/(\d{1,18})/records)",
          [this](const auto& req, auto& res) { get_window_records(req, res); });
    s.Get(R"(/v1/patients/([A-Za-z0-9._:-]{1,128})/windows)",
          [this](const auto& req, auto& res) { get_patient_windows(req, res); });
    s.Get("/v1/audit", [this](const auto& req, auto& res) { get_audit(req, res); });
    // The party APIs read on a pooled read-only connection and authenticate as the rest.
    auto read = [this](const std::function<void(store::Database&)>& fn) {
        auto lease = reads_->acquire();
        fn(lease.db());
    };
    auto require_role = [this](const httplib::Request& req, httplib::Response& res,
                               std::initializer_list<Role> roles) {
        return require(req, res, roles);
    };
    scoring_ = std::make_unique<ScoringApi>(config_, *writer_, read, clock_, require_role);
    scoring_->register_routes(s);
    cohorts_ = std::make_unique<CohortApi>(config_, *writer_, read, clock_, require_role,
                                           [this] { return keys_.active(); });
    cohorts_->register_routes(s);
}

// ------------------------------------------------------------------------------ handlers

void ServerState::get_health(const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
}

void ServerState::get_ready(const httplib::Request&, httplib::Response& res) {
    auto active = keys_.active();
    if (!active) {
        send_json(res, 503, {{"status", "not-ready"}, {"reason", "no active encryption key"}});
        return;
    }
    send_json(res, 200, {{"status", "ready"}, {"active_kid", active->first}});
}

void ServerState::get_metrics(const httplib::Request&, httplib::Response& res) {
    std::int64_t db_bytes = 0;
    {
        auto lease = reads_->acquire();
        db_bytes = lease.db().size_bytes();
    }
    res.set_content(metrics_.render(counters_, writer_->queue_depth(), db_bytes),
                    "text/plain; version=0.0.4");
}

namespace {

// header_value joins a header sent on several lines with ", " (RFC 9110 section 5.3).
std::optional<std::string> header_value(const httplib::Request& req, const std::string& name) {
    std::size_t count = req.get_header_value_count(name);
    if (count == 0) {
        return std::nullopt;
    }
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            out += ", ";
        }
        out += req.get_header_value(name, i);
    }
    return out;
}

json device_json(store::Statement& st) {
    json d;
    d["id"] = st.column_text(0);
    d["patient"] = st.column_text(1);
    d["public_key_pem"] = st.column_text(2);
    d["status"] = st.column_text(3);
    d["created_ms"] = st.column_int64(4);
    d["revoked_ms"] = st.column_is_null(5) ? json(nullptr) : json(st.column_int64(5));
    return d;
}

}  // namespace

void ServerState::post_keys(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kDecryptor});
    if (!token) {
        return;
    }
    if (!identity_) {
        problem(res, 501, "identity-not-configured", "Key publication disabled",
                "the server has no keys.identity_public_key to check key documents against");
        return;
    }
    auto body = json_body(req, res);
    if (!body) {
        return;
    }
    auto jws_field = body->find("jws");
    if (jws_field == body->end() || !jws_field->is_string()) {
        problem(res, 400, "malformed-key-document", "Malformed request",
                "expected {\"jws\": \"<compact JWS>\"}");
        return;
    }
    const std::string jws = jws_field->get<std::string>();
    auto verified = jws_verify(jws, *identity_);
    if (!verified) {
        problem(res, 422, "bad-key-signature", "Key document not signed by the decryptor identity",
                verified.error().message);
        return;
    }
    auto key = PublicKey::from_json(verified.value().payload);
    if (!key) {
        problem(res, 422, "invalid-key", "Invalid public key document", key.error().message);
        return;
    }
    const std::string kid = key.value().kid();
    const std::string document = verified.value().payload;
    const std::int64_t now = clock_();
    const std::string actor = "token:" + std::to_string(token->id);
    enum class Outcome { kCreated, kSame, kConflict, kRetired };
    Outcome outcome = run_write<Outcome>(*writer_, [&](store::Database& db) {
        auto& find = db.prepare_cached("SELECT jws, active FROM keys WHERE kid = ?");
        find.bind(1, kid);
        if (find.step()) {
            bool same = find.column_text(0) == jws;
            bool active = find.column_int64(1) == 1;
            find.reset();
            if (!same) {
                return Outcome::kConflict;
            }
            // A retired key never comes back: replaying an old document must not roll the
            // edges back to a key that was replaced, perhaps because it leaked.
            return active ? Outcome::kSame : Outcome::kRetired;
        }
        auto& retire =
            db.prepare_cached("UPDATE keys SET active = 0, retired_ms = ? WHERE active = 1");
        retire.bind(1, now);
        retire.execute();
        auto& ins = db.prepare_cached(
            "INSERT INTO keys (kid, jws, document, active, created_ms) VALUES (?, ?, ?, 1, ?)");
        ins.bind_all(kid, jws, document, now);
        ins.execute();
        append_audit(db, now, actor, "key.publish", kid, "{}");
        return Outcome::kCreated;
    });
    if (outcome == Outcome::kConflict) {
        problem(res, 409, "key-conflict", "Another document exists for this kid", "");
        return;
    }
    if (outcome == Outcome::kRetired) {
        problem(res, 409, "key-retired", "Key retired",
                "this key was replaced by a newer one and cannot be activated again");
        return;
    }
    {
        auto lease = reads_->acquire();
        keys_.load(lease.db());
    }
    send_json(res, outcome == Outcome::kCreated ? 201 : 200, {{"kid", kid}, {"active", true}});
}

void ServerState::get_active_key(const httplib::Request&, httplib::Response& res) {
    auto lease = reads_->acquire();
    auto& st = lease.db().prepare_cached("SELECT kid, jws FROM keys WHERE active = 1");
    if (!st.step()) {
        problem(res, 404, "no-active-key", "No active encryption key",
                "the decryptor has not published a key yet");
        return;
    }
    json doc = {{"kid", st.column_text(0)}, {"jws", st.column_text(1)}};
    st.reset();
    send_json(res, 200, doc);
}

void ServerState::post_devices(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    auto body = json_body(req, res);
    if (!body) {
        return;
    }
    auto text = [&](const char* name) -> std::string {
        auto it = body->find(name);
        return it != body->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string id = text("id"), patient = text("patient"), pem = text("public_key_pem");
    if (!valid_identifier(id) || !valid_identifier(patient)) {
        problem(res, 400, "invalid-device", "Invalid device",
                "\"id\" and \"patient\" must be 1-128 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    auto key = Ed25519PublicKey::from_pem(pem);
    if (!key) {
        problem(res, 400, "invalid-device-key", "Invalid device key", key.error().message);
        return;
    }
    const std::int64_t now = clock_();
    const std::string actor = "token:" + std::to_string(token->id);
    const std::string normalized_pem = key.value().to_pem();
    bool created = run_write<bool>(*writer_, [&](store::Database& db) {
        auto& find = db.prepare_cached("SELECT 1 FROM devices WHERE id = ?");
        find.bind(1, id);
        if (find.step()) {
            find.reset();
            return false;
        }
        auto& ins = db.prepare_cached(
            "INSERT INTO devices (id, patient, public_key_pem, status, created_ms) "
            "VALUES (?, ?, ?, 'active', ?)");
        ins.bind_all(id, patient, normalized_pem, now);
        ins.execute();
        append_audit(db, now, actor, "device.add", id, json{{"patient", patient}}.dump());
        return true;
    });
    if (!created) {
        problem(res, 409, "device-exists", "Device already registered", "");
        return;
    }
    send_json(res, 201,
              {{"id", id}, {"patient", patient}, {"status", "active"}, {"created_ms", now}});
}

void ServerState::get_device(const httplib::Request& req, httplib::Response& res) {
    if (!require(req, res, {Role::kAdmin})) {
        return;
    }
    auto lease = reads_->acquire();
    auto& st = lease.db().prepare_cached(
        "SELECT id, patient, public_key_pem, status, created_ms, revoked_ms FROM devices "
        "WHERE id = ?");
    st.bind(1, req.matches[1].str());
    if (!st.step()) {
        problem(res, 404, "unknown-device", "No such device", "");
        return;
    }
    json d = device_json(st);
    st.reset();
    send_json(res, 200, d);
}

void ServerState::revoke_device(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kAdmin});
    if (!token) {
        return;
    }
    const std::string id = req.matches[1].str();
    const std::int64_t now = clock_();
    const std::string actor = "token:" + std::to_string(token->id);
    int changed = run_write<int>(*writer_, [&](store::Database& db) {
        auto& st = db.prepare_cached(
            "UPDATE devices SET status = 'revoked', revoked_ms = ? WHERE id = ? AND "
            "status = 'active'");
        st.bind_all(now, id);
        int n = st.execute();
        if (n == 1) {
            append_audit(db, now, actor, "device.revoke", id, "{}");
        }
        return n;
    });
    auto lease = reads_->acquire();
    auto& st = lease.db().prepare_cached(
        "SELECT id, patient, public_key_pem, status, created_ms, revoked_ms FROM devices "
        "WHERE id = ?");
    st.bind(1, id);
    if (!st.step()) {
        problem(res, 404, "unknown-device", "No such device", "");
        return;
    }
    json d = device_json(st);
    st.reset();
    (void)changed;
    send_json(res, 200, d);
}

void ServerState::post_readings(const httplib::Request& req, httplib::Response& res) {
    const auto started = std::chrono::steady_clock::now();
    const std::int64_t now = clock_();
    if (!is_json_content_type(req)) {
        problem(res, 415, "unsupported-media-type", "JSON expected",
                "send Content-Type: application/json");
        return;
    }
    const std::string digest = header_value(req, "Content-Digest").value_or("");
    const std::string sig_input = header_value(req, "Signature-Input").value_or("");
    const std::string sig = header_value(req, "Signature").value_or("");
    auto unauthorized = [&res](const std::string& type, const std::string& title,
                               const std::string& detail) {
        res.set_header("WWW-Authenticate", "Signature realm=\"cipherpulse\"");
        problem(res, 401, type, title, detail);
    };
    if (digest.empty() || sig_input.empty() || sig.empty()) {
        unauthorized("signature-required", "Signed request required",
                     "uploads need Content-Digest, Signature-Input and Signature headers (RFC "
                     "9421, RFC 9530)");
        return;
    }
    auto parsed = parse_signature(sig_input, sig);
    if (!parsed) {
        unauthorized("bad-signature", "Malformed signature", parsed.error().message);
        return;
    }
    const std::string device_id = parsed.value().params.keyid.value_or("");
    std::string patient;
    std::string device_status;
    std::optional<Ed25519PublicKey> device_key;
    {
        auto lease = reads_->acquire();
        auto& st = lease.db().prepare_cached(
            "SELECT patient, public_key_pem, status FROM devices WHERE id = ?");
        st.bind(1, device_id);
        if (st.step()) {
            patient = st.column_text(0);
            device_key = device_keys_.get(st.column_text(1));
            device_status = st.column_text(2);
        }
        st.reset();
    }
    // An unknown device and a bad signature look the same, so the endpoint does not tell
    // which device ids exist; revocation is reported only to the device's own key holder.
    if (!device_key) {
        unauthorized("bad-signature", "Signature does not verify",
                     "no registered device key verifies this signature");
        return;
    }
    HttpRequestView view;
    view.method = req.method;
    view.path = req.path;
    const std::string host = req.get_header_value("Host");
    view.authority = host;  // for signers that cover @authority
    view.header = [&req](std::string_view name) { return header_value(req, std::string(name)); };
    VerifyPolicy policy;
    policy.now_seconds = now / 1000;
    policy.max_skew_seconds = config_.max_clock_skew_s;
    if (auto ok = verify_request(view, parsed.value(), *device_key, policy); !ok) {
        unauthorized("bad-signature", "Signature does not verify", ok.error().message);
        return;
    }
    if (auto ok = verify_content_digest(
            digest, std::span<const std::uint8_t>(
                        reinterpret_cast<const std::uint8_t*>(req.body.data()), req.body.size()));
        !ok) {
        problem(res, 400, "digest-mismatch", "Content-Digest does not match the body",
                ok.error().message);
        return;
    }
    if (device_status != "active") {
        problem(res, 403, "device-revoked", "Device revoked", "this device may no longer upload");
        return;
    }
    if (!limiter_.allow(device_id, now)) {
        res.set_header("Retry-After", "1");
        problem(res, 429, "rate-limited", "Too many uploads from this device", "");
        return;
    }
    ValidationLimits limits;
    limits.max_records = config_.max_records_per_batch;
    limits.now_ms = now;
    limits.max_future_ms = config_.max_clock_skew_s * 1000;
    limits.max_age_ms = config_.max_record_age_s * 1000;
    limits.key_rotation_grace_ms = config_.key_rotation_grace_s * 1000;
    auto batch = parse_batch(req.body, keys_, limits);
    if (!batch) {
        bool too_many = batch.error().code == ErrorCode::kLimitExceeded;
        problem(res, too_many ? 413 : 400, too_many ? "batch-too-large" : "malformed-batch",
                too_many ? "Too many records in one batch" : "Malformed batch",
                batch.error().message);
        return;
    }
    if (batch.value().device != device_id) {
        problem(res, 403, "device-mismatch", "Batch names another device",
                "\"device\" must equal the signature's keyid");
        return;
    }
    if (!batch.value().ok()) {
        json records = json::array();
        std::uint64_t rejected = 0;
        for (std::size_t i = 0; i < batch.value().seqs.size(); ++i) {
            const auto& p = batch.value().problems[i];
            json r = {{"seq", batch.value().seqs[i]}};
            if (p) {
                ++rejected;
                r["status"] = "rejected";
                r["type"] = "urn:cipherpulse:problem:" + p->type;
                r["detail"] = p->detail;
            } else {
                r["status"] = "not-stored";
            }
            records.push_back(std::move(r));
        }
        metrics_.count_rejected(rejected);
        problem(res, 422, "invalid-records", "Records refused",
                "the batch was not stored; fix or drop the rejected records and resend",
                {{"records", records}});
        return;
    }
    SignedRequest signed_request{req.method, req.path, digest, sig_input, sig, req.body};
    std::promise<BatchOutcome> done;
    auto outcome_future = done.get_future();
    // The window products are computed here, on the request's thread, so the single writer
    // only multiplies one partial per window into its aggregate.
    auto partials = windows_->compute_partials(batch.value().records, patient, now);
    auto job = windows_->make_ingest_job(device_id, patient, std::move(signed_request),
                                         std::move(batch.value().records), std::move(partials), now,
                                         std::move(done));
    if (!writer_->submit(job)) {
        res.set_header("Retry-After", "1");
        problem(res, 503, "overloaded", "Server busy", "the write queue is full; retry later");
        return;
    }
    BatchOutcome outcome;
    try {
        outcome = outcome_future.get();
    } catch (const SeqConflict& e) {
        problem(res, 409, "seq-conflict", "Sequence number reused", e.what(), {{"seq", e.seq()}});
        return;
    } catch (const WindowFull& e) {
        problem(res, 422, "window-full", "Window full", e.what());
        return;
    }
    json records = json::array();
    int accepted = 0, duplicate = 0, late = 0;
    for (const auto& o : outcome.records) {
        bool dup = o.status == RecordOutcome::Status::kDuplicate;
        accepted += !dup;
        duplicate += dup;
        late += o.late_granularities > 0;
        records.push_back({{"seq", o.seq},
                           {"status", dup ? "duplicate" : "accepted"},
                           {"late", o.late_granularities > 0}});
    }
    if (late > 0) {
        spdlog::warn("device={} late_records={}", device_id, late);
    }
    metrics_.observe_ingest_seconds(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    send_json(res, 200,
              {{"batch", outcome.batch_id},
               {"accepted", accepted},
               {"duplicate", duplicate},
               {"late", late},
               {"records", records}});
}

void ServerState::get_windows(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kDecryptor});
    if (!token) {
        return;
    }
    const Granularity* g = granularity(req.get_param_value("granularity"));
    if (g == nullptr) {
        problem(res, 400, "invalid-query", "Unknown granularity",
                "granularity must be one of the configured granularities");
        return;
    }
    bool bad = false;
    auto after = query_int(req, "after", 0, bad);
    auto limit = query_int(req, "limit", 100, bad);
    auto wait_ms = query_int(req, "wait_ms", 0, bad);
    if (bad || *after < 0 || *limit < 1 || *limit > static_cast<std::int64_t>(kMaxPageLimit) ||
        *wait_ms < 0 || *wait_ms > kMaxLongPollMs) {
        problem(res, 400, "invalid-query", "Invalid cursor, limit or wait",
                "after is a cursor from a previous page; limit is 1-1000; wait_ms is 0-30000");
        return;
    }
    json windows = json::array();
    std::int64_t cursor = *after;
    std::int64_t scanned = 0;
    std::vector<std::int64_t> ids;
    auto read_page = [&] {
        auto lease = reads_->acquire();
        auto& st = lease.db().prepare_cached(
            std::string("SELECT ") + kWindowColumns +
            " FROM windows WHERE sealed = 1 AND granularity = ? AND seal_seq > ? "
            "ORDER BY seal_seq LIMIT ?");
        st.bind_all(g->name, *after, *limit);
        while (st.step()) {
            ++scanned;
            cursor = st.column_int64(10);
            if (st.column_int64(8) < g->min_records) {
                continue;  // withheld: too few records to release at this granularity
            }
            ids.push_back(st.column_int64(0));
            windows.push_back(window_json(st, "cursor"));
        }
        st.reset();
    };
    std::uint64_t generation = 0;
    {
        std::lock_guard lock(sealed_mutex_);
        generation = seal_generation_;
    }
    read_page();
    // A long poll: nothing new yet, so wait for the sealer's next commit (or the deadline)
    // and look again. Each waiter holds an HTTP worker thread, so only a quarter of them
    // may wait; the others answer at once and the client polls again on its own cadence.
    if (scanned == 0 && *wait_ms > 0) {
        const int allowed = std::max(1, config_.threads / 4);
        if (long_polls_.fetch_add(1) < allowed) {
            const auto deadline =
                std::chrono::steady_clock::now() + std::chrono::milliseconds(*wait_ms);
            std::unique_lock lock(sealed_mutex_);
            while (scanned == 0 && sealed_cv_.wait_until(lock, deadline, [&] {
                return closing_ || seal_generation_ != generation;
            }) && !closing_) {
                generation = seal_generation_;
                lock.unlock();
                read_page();  // another granularity's windows may have sealed
                lock.lock();
            }
        }
        long_polls_.fetch_sub(1);
    }
    if (!ids.empty()) {
        audit("token:" + std::to_string(token->id), "windows.read", g->name, {{"windows", ids}});
    }
    send_json(res, 200,
              {{"windows", windows},
               {"next_cursor", std::to_string(cursor)},
               {"more", scanned == *limit}});
}

void ServerState::get_patient_windows(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kClinician, Role::kAnalyst, Role::kDecryptor});
    if (!token) {
        return;
    }
    const std::string patient = req.matches[1].str();
    const std::string metric = req.get_param_value("metric");
    const Granularity* g = granularity(req.get_param_value("granularity"));
    bool bad = false;
    auto from = query_int(req, "from", 0, bad);
    auto to = query_int(req, "to", std::numeric_limits<std::int64_t>::max(), bad);
    if (g == nullptr || metric.empty() || bad || *from > *to) {
        problem(res, 400, "invalid-query", "Invalid query",
                "metric and a configured granularity are required; from <= to (Unix ms)");
        return;
    }
    json windows = json::array();
    std::vector<std::int64_t> ids;
    {
        auto lease = reads_->acquire();
        auto& st = lease.db().prepare_cached(
            std::string("SELECT ") + kWindowColumns +
            " FROM windows WHERE patient = ? AND metric = ? AND granularity = ? AND sealed = 1 "
            "AND start_ms >= ? AND start_ms < ? AND record_count >= ? ORDER BY start_ms, id LIMIT "
            "?");
        st.bind_all(patient, metric, g->name, *from, *to, g->min_records,
                    static_cast<std::int64_t>(kMaxPageLimit));
        while (st.step()) {
            ids.push_back(st.column_int64(0));
            windows.push_back(window_json(st, "seal_seq"));
        }
    }
    if (token->role == Role::kDecryptor && !ids.empty()) {
        audit("token:" + std::to_string(token->id), "windows.read", patient, {{"windows", ids}});
    }
    send_json(res, 200, {{"windows", windows}, {"truncated", ids.size() == kMaxPageLimit}});
}

void ServerState::get_window_records(const httplib::Request& req, httplib::Response& res) {
    auto token = require(req, res, {Role::kDecryptor});
    if (!token) {
        return;
    }
    const std::int64_t id = std::stoll(req.matches[1].str());
    json window;
    json records = json::array();
    json batches = json::array();
    {
        auto lease = reads_->acquire();
        auto& db = lease.db();
        auto& w = db.prepare_cached(std::string("SELECT ") + kWindowColumns +
                                    ", sealed FROM windows WHERE id = ?");
        w.bind(1, id);
        if (!w.step()) {
            problem(res, 404, "unknown-window", "No such window", "");
            return;
        }
        bool sealed = w.column_int64(12) == 1;
        window = window_json(w, "cursor");
        const Granularity* g = granularity(w.column_text(5));
        const bool withheld = g == nullptr || w.column_int64(8) < g->min_records;
        w.reset();
        if (!sealed) {
            problem(res, 409, "window-open", "Window not sealed",
                    "records of a window are released only after it sealed");
            return;
        }
        if (withheld) {
            problem(res, 404, "unknown-window", "No such window", "");
            return;
        }
        auto& r = db.prepare_cached(
            "SELECT r.device_id, r.seq, r.t_ms, r.metric, r.schema, r.kid, r.ct, r.batch_id "
            "FROM window_members m JOIN records r ON r.device_id = m.device_id AND "
            "r.seq = m.seq WHERE m.window_id = ? ORDER BY r.device_id, r.seq");
        r.bind(1, id);
        std::set<std::int64_t> batch_ids;
        while (r.step()) {
            records.push_back({{"device", r.column_text(0)},
                               {"seq", r.column_int64(1)},
                               {"t", r.column_int64(2)},
                               {"metric", r.column_text(3)},
                               {"schema", r.column_text(4)},
                               {"kid", r.column_text(5)},
                               {"ct", b64u(r.column_blob(6))},
                               {"batch", r.column_int64(7)}});
            batch_ids.insert(r.column_int64(7));
        }
        auto& b = db.prepare_cached(
            "SELECT id, device_id, method, path, content_digest, signature_input, signature, "
            "body FROM batches WHERE id = ?");
        for (auto bid : batch_ids) {
            b.bind(1, bid);
            if (b.step()) {
                auto body = b.column_blob(7);
                batches.push_back({{"id", b.column_int64(0)},
                                   {"device", b.column_text(1)},
                                   {"method", b.column_text(2)},
                                   {"path", b.column_text(3)},
                                   {"content_digest", b.column_text(4)},
                                   {"signature_input", b.column_text(5)},
                                   {"signature", b.column_text(6)},
                                   {"body", b64u(body)}});
            }
            b.reset();
        }
    }
    json devices = json::object();
    {
        auto lease = reads_->acquire();
        auto& d = lease.db().prepare_cached("SELECT public_key_pem FROM devices WHERE id = ?");
        for (const auto& b : batches) {
            const std::string device = b["device"].get<std::string>();
            if (devices.contains(device)) {
                continue;
            }
            d.bind(1, device);
            if (d.step()) {
                devices[device] = d.column_text(0);
            }
            d.reset();
        }
    }
    audit("token:" + std::to_string(token->id), "window.records.read", std::to_string(id),
          {{"records", records.size()}, {"batches", batches.size()}});
    send_json(
        res, 200,
        {{"window", window}, {"records", records}, {"batches", batches}, {"devices", devices}});
}

void ServerState::get_audit(const httplib::Request& req, httplib::Response& res) {
    if (!require(req, res, {Role::kAdmin})) {
        return;
    }
    bool bad = false;
    auto after = query_int(req, "after", 0, bad);
    auto limit = query_int(req, "limit", 100, bad);
    if (bad || *after < 0 || *limit < 1 || *limit > static_cast<std::int64_t>(kMaxPageLimit)) {
        problem(res, 400, "invalid-query", "Invalid cursor or limit", "");
        return;
    }
    json entries = json::array();
    std::int64_t last = *after;
    {
        auto lease = reads_->acquire();
        for (const auto& e : list_audit(lease.db(), *after, *limit)) {
            entries.push_back({{"id", e.id},
                               {"ts_ms", e.ts_ms},
                               {"actor", e.actor},
                               {"action", e.action},
                               {"subject", e.subject},
                               {"detail", e.detail},
                               {"prev_hash", b64u(e.prev_hash)},
                               {"hash", b64u(e.hash)}});
            last = e.id;
        }
    }
    send_json(res, 200,
              {{"entries", entries},
               {"next_cursor", std::to_string(last)},
               {"more", static_cast<std::int64_t>(entries.size()) == *limit}});
}

// ----------------------------------------------------------------------------- ServerApp

ServerApp::ServerApp(ServerConfig config, std::function<std::int64_t()> clock)
    : state_(std::make_unique<ServerState>(std::move(config), std::move(clock))) {}

ServerApp::~ServerApp() {
    state_->stop();
}

int ServerApp::bind() {
    return state_->bind();
}

void ServerApp::serve() {
    state_->serve();
}

void ServerApp::stop() {
    state_->stop();
}

}  // namespace cipherpulse::server
