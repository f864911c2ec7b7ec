#include "edge/runner.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "cipherpulse/codec.h"
#include "cipherpulse/randomness_pool.h"
#include "common/cli.h"
#include "edge/ble_source.h"
#include "edge/replay.h"
#include "edge/simulator.h"
#include "edge/spool.h"
#include "edge/uplink.h"

namespace cipherpulse::edge {
namespace {

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Trusted holds the verified encryption key and its randomness pool; swapped when a new
// signed key appears.
struct Trusted {
    PublicKey key;
    std::unique_ptr<RandomnessPool> pool;
};

class Service {
  public:
    Service(const EdgeConfig& config, std::atomic<bool>& stop, RunStats& stats)
        : config_(config), stop_(stop), stats_(stats) {}

    int run(Source& source, std::int64_t drain_ms) {
        auto device_key = Ed25519PrivateKey::load(config_.device_key);
        if (!device_key) {
            spdlog::error("device key: {}", device_key.error().message);
            return common::kExitBadInput;
        }
        auto identity = Ed25519PublicKey::load(config_.identity);
        if (!identity) {
            spdlog::error("pinned decryptor identity: {}", identity.error().message);
            return common::kExitBadInput;
        }
        device_key_.emplace(std::move(device_key).value());
        uplink_ = std::make_unique<Uplink>(config_.server, config_.device_id, *device_key_,
                                           identity.value());
        Spool spool = Spool::open(config_.spool);
        if (int rc = establish_key(spool); rc != common::kExitOk) {
            return rc;
        }
        std::thread uploader([this] { upload_loop(); });
        std::thread checker([this] { key_check_loop(); });
        produce(source, spool);
        // Let the uploader drain what is left, for a while.
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(drain_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(mutex_);
                if (spool_depth_ == 0) {
                    break;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        {
            std::lock_guard lock(mutex_);
            finished_ = true;
        }
        cv_.notify_all();
        uploader.join();
        checker.join();
        auto s = spool.stats();
        spdlog::info("stopped: {} records spooled, {} acknowledged, spool depth {}",
                     stats_.records_spooled, stats_.records_acknowledged, s.depth);
        return common::kExitOk;
    }

  private:
    int establish_key(Spool& spool) {
        for (int attempt = 0; !stop_; ++attempt) {
            auto key = uplink_->fetch_active_key();
            if (key) {
                adopt(key.value(), spool);
                spool.set_state("key_document", uplink_->last_key_document());
                return common::kExitOk;
            }
            spool.set_state("last_error", key.error().message);
            if (key.error().code == ErrorCode::kBadSignature ||
                key.error().code == ErrorCode::kInvalidKey) {
                spdlog::critical("{}", key.error().message);
                return kExitKeyRefused;
            }
            // The server is unreachable: a key verified earlier (kept in the spool, checked
            // again against the pinned identity) lets the device keep measuring offline.
            if (auto cached = spool.state("key_document")) {
                auto verified = uplink_->verify_key_document(*cached);
                if (verified) {
                    spdlog::warn("server unreachable ({}); encrypting under the cached key",
                                 key.error().message);
                    adopt(verified.value(), spool);
                    return common::kExitOk;
                }
            }
            int wait_ms = std::min(config_.backoff_max_ms,
                                   config_.backoff_initial_ms << std::min(attempt, 10));
            spdlog::warn("no encryption key yet ({}); retrying in {} ms", key.error().message,
                         wait_ms);
            sleep_unless_stopped(wait_ms);
        }
        return common::kExitInterrupted;
    }

    void adopt(const PublicKey& verified, Spool& spool) {
        // The device's own table size: memory matters more here than on a server.
        PublicKey key = verified.with_fast_table_window(config_.table_window_bits);
        auto trusted = std::make_shared<Trusted>(
            Trusted{key, std::make_unique<RandomnessPool>(
                             key, RandomnessPool::Options{16, EncryptionMode::kFast})});
        {
            std::lock_guard lock(mutex_);
            trusted_ = trusted;
        }
        spool.set_state("active_kid", key.kid());
        spdlog::info("encrypting under key {} (verified against the pinned identity)", key.kid());
    }

    void produce(Source& source, Spool& spool) {
        MicroWindows windows(config_.micro_window_ms, config_.filter);
        HeartRateCodec codec;
        const auto wall_start = std::chrono::steady_clock::now();
        std::optional<std::int64_t> data_start;
        auto emit = [&](const std::vector<WindowRecord>& records) {
            std::shared_ptr<Trusted> trusted;
            {
                std::lock_guard lock(mutex_);
                trusted = trusted_;
            }
            for (const auto& w : records) {
                Ciphertext c = trusted->pool->encrypt(codec.pack(w.stats));
                auto seq = spool.append(w.start_ms, "hr", codec.schema_id(), trusted->key.kid(),
                                        trusted->key.serialize_base64url(c));
                if (seq) {
                    ++stats_.records_spooled;
                }
            }
            if (!records.empty()) {
                std::lock_guard lock(mutex_);
                spool_depth_ = spool.depth();
                cv_.notify_all();
            }
        };
        std::int64_t last_t = 0;
        while (!stop_) {
            auto reading = source.next();
            if (!reading) {
                // The recording ended: its last micro-window is complete as far as it goes.
                if (data_start) {
                    emit(windows.flush_until(last_t - (last_t % config_.micro_window_ms) +
                                             config_.micro_window_ms));
                }
                break;
            }
            ++stats_.readings;
            last_t = reading->t_ms;
            if (!data_start) {
                data_start = reading->t_ms;
            }
            if (config_.speed > 0) {
                // Wait for the reading's due time, closing windows on the way so a silent
                // sensor still yields one record per micro-window.
                const double offset =
                    static_cast<double>(reading->t_ms - *data_start) / config_.speed;
                const auto due =
                    wall_start + std::chrono::milliseconds(static_cast<std::int64_t>(offset));
                while (!stop_ && std::chrono::steady_clock::now() < due) {
                    const auto elapsed = std::chrono::duration<double, std::milli>(
                                             std::chrono::steady_clock::now() - wall_start)
                                             .count();
                    emit(windows.flush_until(*data_start +
                                             static_cast<std::int64_t>(elapsed * config_.speed)));
                    std::this_thread::sleep_until(std::min(
                        due, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)));
                }
            }
            emit(windows.add(*reading));
        }
        stats_.filtered = windows.counters();
    }

    void upload_loop() {
        Spool spool = Spool::open(config_.spool);
        std::mt19937_64 jitter(std::random_device{}());
        int failures = 0;
        std::uint64_t batches = 0;
        for (;;) {
            auto records = spool.oldest(config_.batch_size);
            {
                std::unique_lock lock(mutex_);
                spool_depth_ = spool.depth();
                if (records.empty()) {
                    if (finished_) {
                        return;
                    }
                    cv_.wait_for(lock, std::chrono::milliseconds(500));
                    continue;
                }
                if (finished_ && failures > 0) {
                    return;  // stopping and the server is not answering: the spool keeps them
                }
            }
            auto outcome = uplink_->upload(records, wall_ms() / 1000);
            if (outcome.kind == UploadOutcome::Kind::kAcknowledged) {
                spool.acknowledge(outcome.acknowledged);
                spool.set_state("last_upload_ms", std::to_string(wall_ms()));
                stats_.records_acknowledged += outcome.acknowledged.size();
                stats_.late_records += static_cast<std::uint64_t>(outcome.late);
                if (failures > 0) {
                    spdlog::info("server reachable again; draining the spool ({} records left)",
                                 spool.depth());
                }
                failures = 0;
                if (++batches % 20 == 0) {
                    spdlog::info("uploaded {} records; spool depth {}", stats_.records_acknowledged,
                                 spool.depth());
                }
                continue;
            }
            spool.set_state("last_error", outcome.error);
            if (outcome.kind == UploadOutcome::Kind::kRefused && !outcome.refused.empty()) {
                std::vector<std::int64_t> seqs;
                for (const auto& [seq, reason] : outcome.refused) {
                    seqs.push_back(seq);
                    spdlog::error("record {} refused by the server for good: {}", seq, reason);
                }
                spool.dead_letter(seqs, outcome.refused.front().second);
                stats_.records_dead_lettered += seqs.size();
                continue;  // the rest of the batch goes again at once
            }
            ++failures;
            ++stats_.upload_failures;
            int backoff = std::min(config_.backoff_max_ms,
                                   config_.backoff_initial_ms << std::min(failures - 1, 16));
            backoff = std::max(backoff, outcome.retry_after_s * 1000);
            backoff = static_cast<int>(static_cast<double>(backoff) *
                                       (0.5 + std::uniform_real_distribution<>(0, 1)(jitter)));
            spdlog::warn("upload failed ({}); retry {} in {} ms, spool depth {}", outcome.error,
                         failures, backoff, spool.depth());
            std::unique_lock lock(mutex_);
            cv_.wait_for(lock, std::chrono::milliseconds(backoff), [this] { return finished_; });
        }
    }

    void key_check_loop() {
        Spool spool = Spool::open(config_.spool);
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                if (cv_.wait_for(lock, std::chrono::seconds(config_.key_check_interval_s),
                                 [this] { return finished_; })) {
                    return;
                }
            }
            auto key = uplink_->fetch_active_key();
            if (!key) {
                if (key.error().code == ErrorCode::kBadSignature) {
                    spdlog::critical("{}; keeping key {}", key.error().message, current_kid());
                }
                spool.set_state("last_error", key.error().message);
                continue;
            }
            if (key.value().kid() != current_kid()) {
                spdlog::info("the decryptor published a new signed key {}", key.value().kid());
                adopt(key.value(), spool);
                spool.set_state("key_document", uplink_->last_key_document());
            }
        }
    }

    std::string current_kid() {
        std::lock_guard lock(mutex_);
        return trusted_ ? trusted_->key.kid() : std::string();
    }

    void sleep_unless_stopped(int ms) {
        for (int waited = 0; waited < ms && !stop_; waited += 50) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    const EdgeConfig& config_;
    std::atomic<bool>& stop_;
    RunStats& stats_;
    std::optional<Ed25519PrivateKey> device_key_;
    std::unique_ptr<Uplink> uplink_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::shared_ptr<Trusted> trusted_;
    std::int64_t spool_depth_ = 0;
    bool finished_ = false;
};

}  // namespace

int run_edge(const EdgeConfig& config, Source& source, std::atomic<bool>& stop, RunStats* stats,
             std::int64_t drain_ms) {
    RunStats local;
    Service service(config, stop, stats ? *stats : local);
    return service.run(source, drain_ms);
}

std::int64_t data_start_ms(std::int64_t now_ms, std::int64_t length_ms, double speed) {
    if (speed == 1.0) {
        return now_ms;
    }
    if (speed <= 0) {
        return now_ms - length_ms;
    }
    return now_ms - static_cast<std::int64_t>(static_cast<double>(length_ms) * (1.0 - 1.0 / speed));
}

Result<std::unique_ptr<Source>> make_source(const EdgeConfig& config, std::int64_t now_ms) {
    const bool accelerated = config.speed != 1.0;
    if (config.source == "replay") {
        if (config.replay_path.empty()) {
            return make_error(ErrorCode::kInvalidEncoding, "source.path names no recording");
        }
        std::int64_t start = now_ms;
        if (config.start_ms) {
            start = *config.start_ms;
        } else if (accelerated) {
            // Measure the recording's length with a first pass.
            auto probe = open_replay_source(config.replay_path, 0);
            if (!probe) {
                return probe.error();
            }
            std::int64_t last = 0;
            while (auto r = probe.value()->next()) {
                last = r->t_ms;
            }
            start = data_start_ms(now_ms, last, config.speed);
        }
        return open_replay_source(config.replay_path, start);
    }
    if (config.source == "sim") {
        auto profile = patient_profile(config.profile);
        if (!profile) {
            return profile.error();
        }
        auto episodes = parse_episodes(config.episodes);
        if (!episodes) {
            return episodes.error();
        }
        if (accelerated && config.duration_s <= 0) {
            return make_error(ErrorCode::kInvalidEncoding,
                              "an accelerated simulation needs a duration (--duration), so its "
                              "data can be placed in the past");
        }
        const std::int64_t length = static_cast<std::int64_t>(config.duration_s * 1000);
        const std::int64_t start =
            config.start_ms ? *config.start_ms : data_start_ms(now_ms, length, config.speed);
        std::int64_t end = config.duration_s > 0 ? start + length : Simulator::kNoEnd;
        return std::unique_ptr<Source>(std::make_unique<Simulator>(
            profile.value(), std::move(episodes).value(), config.seed, start, end));
    }
    if (config.source == "ble") {
        if (accelerated) {
            return make_error(ErrorCode::kInvalidEncoding, "a BLE strap runs in real time only");
        }
        BleSourceOptions options;
        options.address = config.ble_address;
        options.name = config.ble_name;
        try {
            return std::unique_ptr<Source>(std::make_unique<BleSource>(options));
        } catch (const std::exception& e) {
            return make_error(ErrorCode::kIo, std::string("BLE: ") + e.what());
        }
    }
    return make_error(ErrorCode::kUnsupported, "unknown source '" + config.source + "'");
}

}  // namespace cipherpulse::edge
