#include "decryptor/watch.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "cipherpulse/keyfile.h"
#include "cipherpulse/secure.h"
#include "common/config_file.h"
#include "common/http_client.h"
#include "decryptor/query_releaser.h"
#include "decryptor/verify.h"

namespace cipherpulse::decryptor {
namespace {

constexpr int kExitIntegrity = 4;
// Windows decrypted per thread between two commits: alerts leave sooner with fewer, but each
// commit is an fsync. With 16 the one-thread path ran at 89% of the bare decryption rate at
// 2048 bits; with 32 at 94%, as with one commit per page of 100 (bench/decryptor_bench).
constexpr unsigned kChunkPerThread = 32;

const char* kind_name(AlertEvent::Kind kind) {
    return kind == AlertEvent::Kind::kRaised ? "raised" : "cleared";
}

std::string short_hash(const std::string& text) {
    return text.substr(0, 12);
}

}  // namespace

std::int64_t system_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Watcher::Impl {
    DecryptorConfig config;
    KeyRing keys;
    std::string token;
    std::vector<std::unique_ptr<Notifier>> notifiers;
    Clock clock;
    RuleEngine engine;
    StateStore store;
    std::unique_ptr<httplib::Client> client;
    std::mt19937_64 sampler{std::random_device{}()};
    std::vector<std::string> channels;
    bool integrity_seen = false;
    unsigned threads = 1;
    std::unique_ptr<QueryReleaser> releaser;  // analysts' approved cohort queries

    // The delivery side's own connection (used by one thread at a time: the delivery thread
    // of run(), or the caller of run_once/deliver_due) and its wake-up.
    StateStore delivery_store;
    std::mutex mutex;
    std::condition_variable wake;
    bool pending_work = false;

    Impl(DecryptorConfig c, KeyRing k, std::string t, std::vector<std::unique_ptr<Notifier>> n,
         Clock clk)
        : config(std::move(c)),
          keys(std::move(k)),
          token(std::move(t)),
          notifiers(std::move(n)),
          clock(std::move(clk)),
          engine(config.alerting),
          store(StateStore::open(config.database)),
          client(common::make_http_client(config.server_url, config.ca_file, config.timeout_s)),
          delivery_store(StateStore::open(config.database)) {
        if (!client) {
            throw std::invalid_argument("invalid server URL '" + config.server_url + "'");
        }
        for (const auto& notifier : notifiers) {
            channels.push_back(notifier->channel());
        }
        threads = config.threads > 0 ? static_cast<unsigned>(config.threads)
                                     : std::max(1u, std::thread::hardware_concurrency());
        releaser = std::make_unique<QueryReleaser>(
            *client, token, store, keys, config.cohort,
            [this](const std::string& id, const std::string& what) {
                queue_query_integrity(id, what);
            },
            clock);
    }

    // wake_delivery tells the delivery thread that alerts are waiting.
    void wake_delivery() {
        std::lock_guard lock(mutex);
        pending_work = true;
        wake.notify_one();
    }

    httplib::Headers auth() const { return {{"Authorization", "Bearer " + token}}; }

    Result<std::string> get(const std::string& path) {
        auto res = client->Get(path, auth());
        if (!res) {
            return make_error(ErrorCode::kIo, "cannot reach " + config.server_url + ": " +
                                                  httplib::to_string(res.error()));
        }
        if (res->status != 200) {
            return make_error(ErrorCode::kIo, "GET " + path.substr(0, path.find('?')) + ": " +
                                                  common::problem_text(res->status, res->body));
        }
        return std::move(res->body);
    }

    // verify_sampled re-verifies `w` against its raw records; returns the problems found
    // (empty when it verified) and pins device keys seen for the first time.
    std::vector<std::string> verify(const ServerWindow& w, const PublicKey& pk) {
        auto body = get("/v1/windows/" + std::to_string(w.id) + "/records");
        if (!body) {
            // Not an integrity failure: the raw records could not be fetched now.
            spdlog::warn("window {}: re-verification skipped: {}", w.id, body.error().message);
            return {};
        }
        auto report = verify_window_records(
            body.value(), pk,
            [this](std::string_view d) { return store.pinned_device_key(std::string(d)); },
            w.aggregate);
        if (report.ok) {
            for (const auto& [device, pem] : report.device_keys) {
                store.pin_device_key(device, pem, clock());
            }
        }
        return report.problems;
    }

    // queue stores an alert event with its pending deliveries (once per key); `kind` is
    // "raised", "cleared" or "integrity". Returns the new alert's id.
    std::optional<std::int64_t> queue(const AlertEvent& e, const std::string& key, const char* kind,
                                      PollStats& stats) {
        StoredAlert a;
        a.key = key;
        a.kind = kind;
        a.patient = e.patient;
        a.rule = e.rule;
        a.severity = e.severity;
        a.window_id = e.window_id;
        a.window_start_ms = e.window_start_ms;
        a.window_length_ms = e.window_length_ms;
        a.summary = e.summary;
        a.figures = e.figures;
        a.created_ms = clock();
        auto id = store.add_alert(a, channels, a.created_ms);
        if (id) {
            ++stats.alerts;
            if (a.kind != std::string("integrity")) {
                spdlog::warn("alert {}: {} {} {} for patient {} (window {})", *id,
                             to_string(e.severity), e.rule, a.kind, e.patient, e.window_id);
            }
        }
        return id;
    }

    void queue_integrity(const ServerWindow& w, const std::string& key, const std::string& what,
                         PollStats& stats) {
        AlertEvent e;
        e.patient = w.patient;
        e.rule = "integrity";
        e.severity = Severity::kCritical;
        e.window_id = w.id;
        e.window_start_ms = w.start_ms;
        e.window_length_ms = w.length_ms;
        e.summary = "the server's data for this window failed verification and was not used";
        e.figures = {{"problem", what}};
        if (auto id = queue(e, key, "integrity", stats)) {
            spdlog::error("INTEGRITY: window {} of patient {}: {} (alert {})", w.id, w.patient,
                          what, *id);
        }
        integrity_seen = true;
    }

    // queue_query_integrity raises a critical alert for a cohort query whose server data
    // failed a check: nothing was decrypted for the analyst.
    void queue_query_integrity(const std::string& id, const std::string& what) {
        AlertEvent e;
        e.rule = "query-integrity";
        e.severity = Severity::kCritical;
        e.summary = "the server's data for cohort query " + id +
                    " failed verification; nothing was released";
        e.figures = {{"query", id}, {"problem", what}};
        PollStats unused;
        queue(e, "query-integrity." + id, "integrity", unused);
        integrity_seen = true;
        wake_delivery();
    }

    // open_all decrypts and checks items [begin, end) on `threads` threads (this one
    // included). open_window only reads the keys, so the windows are independent.
    void open_all(std::vector<std::pair<ServerWindow, OpenedWindow>>& items, std::size_t begin,
                  std::size_t end) {
        std::atomic<std::size_t> next{begin};
        std::exception_ptr error;
        std::mutex error_mutex;
        auto work = [&] {
            for (std::size_t i; (i = next.fetch_add(1)) < end;) {
                try {
                    items[i].second = open_window(items[i].first, keys);
                } catch (...) {
                    std::lock_guard lock(error_mutex);
                    error = std::current_exception();
                }
            }
        };
        std::vector<std::thread> helpers;
        const std::size_t wanted = std::min<std::size_t>(threads, end - begin);
        for (std::size_t t = 1; t < wanted; ++t) {
            helpers.emplace_back(work);
        }
        work();
        for (auto& h : helpers) {
            h.join();
        }
        if (error) {
            std::rethrow_exception(error);
        }
    }

    // sample re-verifies a sample of the released windows against the raw records.
    void sample(const ServerWindow& w, OpenedWindow& opened, PollStats& stats) {
        ++stats.windows;
        if (opened.verdict == OpenedWindow::Verdict::kReleased && config.verify_sample_rate > 0 &&
            std::uniform_real_distribution<double>(0, 1)(sampler) < config.verify_sample_rate) {
            ++stats.verified;
            auto problems = verify(w, keys.find(w.kid)->public_key());
            if (!problems.empty()) {
                opened.verdict = OpenedWindow::Verdict::kIntegrity;
                opened.detail =
                    "re-verification: " + problems.front() +
                    (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)"
                                         : "");
            }
        }
    }

    // record writes what window `w` changes (ledger, rule state, alerts); the caller holds
    // the chunk's transaction (the last chunk's also moves the cursor).
    void record(const ServerWindow& w, const OpenedWindow& opened, PollStats& stats) {
        if (auto seen = store.ledger_entry(w.id)) {
            if (seen->aggregate_sha256 == opened.aggregate_sha256) {
                ++stats.repeated;
            } else {
                ++stats.integrity;
                queue_integrity(
                    w,
                    "replaced." + std::to_string(w.id) + "." + short_hash(opened.aggregate_sha256),
                    "window " + std::to_string(w.id) + " arrived again with a different aggregate",
                    stats);
            }
        } else {
            LedgerEntry e;
            e.window_id = w.id;
            e.patient = w.patient;
            e.granularity = w.granularity;
            e.start_ms = w.start_ms;
            e.length_ms = w.length_ms;
            e.kid = w.kid;
            e.schema = w.schema;
            e.record_count = w.record_count;
            e.aggregate_sha256 = opened.aggregate_sha256;
            e.detail = opened.detail;
            e.seen_ms = clock();
            switch (opened.verdict) {
                case OpenedWindow::Verdict::kSkipped:
                    e.status = kSkipped;
                    ++stats.skipped;
                    spdlog::warn("window {}: skipped: {}", w.id, opened.detail);
                    break;
                case OpenedWindow::Verdict::kIntegrity:
                    e.status = kIntegrity;
                    ++stats.integrity;
                    queue_integrity(w, "integrity." + std::to_string(w.id), opened.detail, stats);
                    break;
                case OpenedWindow::Verdict::kReleased: {
                    e.status = kReleased;
                    e.stats_json = stats_to_json(opened.stats).dump();
                    ++stats.released;
                    PatientState state = store.patient_state(w.patient);
                    WindowInput in{w.id, w.patient, w.start_ms, w.length_ms, opened.stats};
                    for (const auto& ev : engine.evaluate(in, state)) {
                        queue(ev, std::to_string(w.id) + "." + ev.rule + "." + kind_name(ev.kind),
                              kind_name(ev.kind), stats);
                    }
                    store.save_patient_state(w.patient, state);
                    break;
                }
            }
            store.add_ledger_entry(e);
        }
    }

    void check_silence(PollStats& stats) {
        const std::int64_t now = clock();
        // Only this thread writes patient states, so reading outside a transaction and
        // writing inside one when something changed is safe.
        for (const auto& patient : store.patients()) {
            PatientState state = store.patient_state(patient);
            auto events = engine.check_silence(patient, now, state);
            if (events.empty()) {
                continue;
            }
            store::Transaction tx(store.db());
            for (const auto& ev : events) {
                queue(ev,
                      "silent." + patient + "." +
                          std::to_string(state.last_window_end_ms.value_or(0)) + "." +
                          kind_name(ev.kind),
                      kind_name(ev.kind), stats);
            }
            store.save_patient_state(patient, state);
            tx.commit();
            wake_delivery();
        }
    }

    // page processes one page of GET /v1/windows; returns whether the server has more.
    Result<bool> page(const std::string& body, std::string& cursor, PollStats& stats) {
        auto doc = nlohmann::json::parse(body, nullptr, false);
        if (!doc.is_object() || !doc.contains("windows") || !doc["windows"].is_array() ||
            !doc.contains("next_cursor") || !doc["next_cursor"].is_string()) {
            return make_error(ErrorCode::kInvalidEncoding, "malformed window page");
        }
        std::vector<std::pair<ServerWindow, OpenedWindow>> opened;
        for (const auto& item : doc["windows"]) {
            auto w = parse_server_window(item);
            if (!w) {
                return make_error(ErrorCode::kInvalidEncoding,
                                  "malformed window in the page after cursor " + cursor);
            }
            opened.emplace_back(*w, OpenedWindow{});
        }
        // Triage: the windows of patients whose latest window needed attention come first
        // (a stable sort, so each patient's windows keep their order). In a burst, where
        // every patient's window seals at once, their alerts leave first.
        std::map<std::string, bool> attention;
        for (const auto& [w, o] : opened) {
            if (!attention.count(w.patient)) {
                attention[w.patient] = store.patient_state(w.patient).attention;
            }
        }
        std::stable_sort(opened.begin(), opened.end(), [&](const auto& a, const auto& b) {
            return attention[a.first.patient] && !attention[b.first.patient];
        });
        // Chunk by chunk: the crypto first, outside any transaction, on every thread; then
        // one transaction records the chunk's windows; the last one also moves the cursor
        // to the page's next_cursor (past withheld windows too). A kill before the last
        // commit leaves the page to be fetched again: the ledger then knows the windows
        // already recorded, which change nothing the second time. Alerts go out as each
        // chunk commits, not after the whole page.
        const std::string next = doc["next_cursor"].get<std::string>();
        if (opened.empty() && next == cursor) {
            return doc.value("more", false);  // nothing new: no write
        }
        const std::size_t chunk = static_cast<std::size_t>(kChunkPerThread * threads);
        std::size_t begin = 0;
        do {
            const std::size_t end = std::min(opened.size(), begin + chunk);
            open_all(opened, begin, end);
            for (std::size_t i = begin; i < end; ++i) {
                sample(opened[i].first, opened[i].second, stats);
            }
            const int alerts_before = stats.alerts;
            store::Transaction tx(store.db());
            for (std::size_t i = begin; i < end; ++i) {
                record(opened[i].first, opened[i].second, stats);
            }
            if (end == opened.size()) {
                store.set_cursor(config.granularity, next, clock());
            }
            tx.commit();
            if (stats.alerts > alerts_before) {
                wake_delivery();
            }
            begin = end;
        } while (begin < opened.size());
        cursor = next;
        return doc.value("more", false);
    }

    // poll processes every window sealed after the cursor. With `wait_ms` > 0 its first
    // request is a long poll: the server answers when windows seal or the time is up.
    Result<PollStats> poll(std::int64_t wait_ms = 0) {
        PollStats stats;
        std::string cursor = store.cursor(config.granularity);
        for (;;) {
            std::string path = "/v1/windows?granularity=" + config.granularity +
                               "&after=" + cursor + "&limit=" + std::to_string(config.page_size);
            if (wait_ms > 0) {
                path += "&wait_ms=" + std::to_string(wait_ms);
                wait_ms = 0;
            }
            auto body = get(path);
            if (!body) {
                return body.error();
            }
            auto more = page(body.value(), cursor, stats);
            if (!more) {
                return more.error();
            }
            if (!more.value()) {
                break;
            }
        }
        check_silence(stats);
        const QueryRoundStats q = releaser->round();
        stats.queries_released = q.released;
        stats.queries_refused = q.refused + q.integrity;
        return stats;
    }
};

Watcher::Watcher(DecryptorConfig config, KeyRing keys, std::string token,
                 std::vector<std::unique_ptr<Notifier>> notifiers, Clock clock)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(keys), std::move(token),
                                   std::move(notifiers), std::move(clock))),
      store_(impl_->store) {}

Watcher::~Watcher() = default;

Result<PollStats> Watcher::poll_once() {
    return impl_->poll();
}

Result<PollStats> Watcher::process_page(const std::string& body) {
    PollStats stats;
    std::string cursor = store_.cursor(impl_->config.granularity);
    auto more = impl_->page(body, cursor, stats);
    if (!more) {
        return more.error();
    }
    return stats;
}

int Watcher::deliver_due() {
    Impl& m = *impl_;
    StateStore& store = m.delivery_store;
    int attempted = 0;
    for (;;) {
        const std::int64_t now = m.clock();
        auto due = store.due_deliveries(now, 50);
        if (due.empty()) {
            return attempted;
        }
        for (const auto& d : due) {
            auto alert = store.alert(d.alert_id);
            Notifier* notifier = nullptr;
            for (auto& n : m.notifiers) {
                if (n->channel() == d.channel) {
                    notifier = n.get();
                }
            }
            ++attempted;
            if (!alert || notifier == nullptr) {
                store.record_attempt(d, now, false, true, "channel not configured", now);
                spdlog::error("alert {}: channel {} is not configured; delivery abandoned",
                              d.alert_id, d.channel);
                continue;
            }
            DeliveryResult r = notifier->deliver(alert_message(*alert, m.config.alerting));
            const std::int64_t at = m.clock();
            const bool last = d.attempts + 1 >= m.config.retry.max_attempts;
            const std::int64_t retry_at = at + m.config.retry.delay_after(d.attempts + 1);
            store.record_attempt(d, at, r.ok, !r.ok && (r.permanent || last), r.detail, retry_at);
            if (r.ok) {
                spdlog::info("alert {}: delivered by {}", d.alert_id, d.channel);
            } else if (r.permanent || last) {
                spdlog::error("alert {}: delivery by {} FAILED for good after {} attempt(s): {}",
                              d.alert_id, d.channel, d.attempts + 1, r.detail);
            } else {
                spdlog::error("alert {}: delivery by {} failed (attempt {}), retrying in {} ms: {}",
                              d.alert_id, d.channel, d.attempts + 1, retry_at - at, r.detail);
            }
        }
    }
}

int Watcher::run(const std::atomic<bool>& stop) {
    Impl& m = *impl_;
    std::thread deliverer([this, &m, &stop] {
        while (!stop) {
            try {
                deliver_due();
            } catch (const std::exception& e) {
                spdlog::error("delivery: {}", e.what());
            }
            std::optional<std::int64_t> next;
            try {
                next = m.delivery_store.next_due_ms();
            } catch (const std::exception& e) {
                spdlog::error("delivery: {}", e.what());
            }
            std::int64_t wait_ms = 1000;
            if (next) {
                wait_ms = std::clamp<std::int64_t>(*next - m.clock(), 0, 1000);
            }
            std::unique_lock lock(m.mutex);
            m.wake.wait_for(lock, std::chrono::milliseconds(wait_ms),
                            [&] { return m.pending_work || stop.load(); });
            m.pending_work = false;
        }
    });
    // A long poll is cut short on stop: the stop flag is set by a signal handler, so a
    // thread of its own watches it and closes the client's connection.
    std::thread stopper([&m, &stop] {
        while (!stop) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        m.client->stop();
    });
    // The long poll waits at most the poll interval, 30 s (the server's limit) and well
    // within the read timeout.
    const std::int64_t long_poll_ms =
        m.config.long_poll
            ? std::max<std::int64_t>(
                  0, std::min<std::int64_t>({m.config.poll_interval_ms, 30000,
                                             std::int64_t{m.config.timeout_s} * 1000 - 2000}))
            : 0;
    int failures = 0;
    spdlog::info("watching {} windows of {} ({} every {} ms, {} decryption thread(s))",
                 m.config.granularity, m.config.server_url, long_poll_ms > 0 ? "long poll" : "poll",
                 m.config.poll_interval_ms, m.threads);
    while (!stop) {
        // A fixed cadence: the next poll is due poll_interval after this one began, or at
        // once after a poll that found windows (the next one long-polls for more).
        const auto began = std::chrono::steady_clock::now();
        auto polled = m.poll(long_poll_ms);
        std::int64_t wait_ms = m.config.poll_interval_ms;
        if (!polled && stop) {
            break;
        }
        if (!polled) {
            ++failures;
            wait_ms = std::min<std::int64_t>(
                m.config.poll_interval_ms * (1LL << std::min(failures, 6)), 60000);
            spdlog::error("poll failed ({}); retrying in {} ms", polled.error().message, wait_ms);
        } else {
            failures = 0;
            const PollStats& s = polled.value();
            if (s.queries_released + s.queries_refused > 0) {
                spdlog::info("cohort queries: {} released, {} refused", s.queries_released,
                             s.queries_refused);
            }
            if (s.windows > 0) {
                spdlog::info(
                    "{} window(s): {} released, {} integrity failure(s), {} skipped, {} alert(s)",
                    s.windows, s.released, s.integrity, s.skipped, s.alerts);
                wait_ms = 0;
            }
        }
        const auto due = began + std::chrono::milliseconds(wait_ms);
        while (!stop && std::chrono::steady_clock::now() < due) {
            std::this_thread::sleep_until(
                std::min(due, std::chrono::steady_clock::now() + std::chrono::milliseconds(50)));
        }
    }
    {
        std::lock_guard lock(m.mutex);
        m.wake.notify_all();
    }
    deliverer.join();
    stopper.join();
    spdlog::info("stopped; every processed window and queued alert is committed");
    return 0;
}

int Watcher::run_once() {
    auto polled = poll_once();
    if (!polled) {
        spdlog::error("poll failed: {}", polled.error().message);
        deliver_due();
        return 1;
    }
    const PollStats& s = polled.value();
    spdlog::info("{} window(s): {} released, {} integrity failure(s), {} skipped, {} alert(s)",
                 s.windows, s.released, s.integrity, s.skipped, s.alerts);
    deliver_due();
    return impl_->integrity_seen ? kExitIntegrity : 0;
}

std::vector<std::unique_ptr<Notifier>> make_notifiers(const DecryptorConfig& config) {
    std::vector<std::unique_ptr<Notifier>> out;
    if (config.email_enabled) {
        out.push_back(make_email_notifier(config.email));
    }
    if (config.sms_enabled) {
        out.push_back(make_sms_notifier(config.sms));
    }
    return out;
}

Result<KeyRing> load_key_ring(const DecryptorConfig& config) {
    std::optional<SecretBytes> pass;
    if (config.passphrase.any()) {
        auto p = common::read_passphrase(config.passphrase);
        if (!p) {
            return p.error();
        }
        pass = std::move(p).value();
    }
    KeyRing ring;
    std::vector<std::string> paths{config.private_key};
    paths.insert(paths.end(), config.previous_keys.begin(), config.previous_keys.end());
    for (const auto& path : paths) {
        auto key = load_private_key(path, pass ? &*pass : nullptr);
        if (!key) {
            return make_error(key.error().code, path + ": " + key.error().message);
        }
        ring.add(std::move(key).value());
    }
    return ring;
}

Result<std::string> read_token(const DecryptorConfig& config) {
    auto token = common::read_secret(config.token_env.empty() ? config.token_file : std::string(),
                                     config.token_env, "the decryptor token");
    if (token && token.value().empty()) {
        return make_error(ErrorCode::kInvalidEncoding,
                          "configuration: server.token_file or server.token_env is required");
    }
    return token;
}

AlertMessage alert_message(const StoredAlert& a, const AlertingConfig& alerting) {
    AlertMessage m;
    // Stable for the alert (its row is written once) and unique across databases.
    m.id = "alert-" + std::to_string(a.id) + "-" + sha256_hex(a.key).substr(0, 8);
    m.kind = a.kind == "cleared" ? AlertEvent::Kind::kCleared : AlertEvent::Kind::kRaised;
    m.patient = alerting.display_name(a.patient);
    m.rule = a.rule;
    m.severity = a.severity;
    m.window_start_ms = a.window_start_ms;
    m.window_length_ms = a.window_length_ms;
    m.summary = a.summary;
    m.figures = a.figures;
    m.created_ms = a.created_ms;
    return m;
}

}  // namespace cipherpulse::decryptor
