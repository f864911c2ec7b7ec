// e2e_load: N simulated patients' edges in one process, in real time, against a running
// cipherpulse-server (the end-to-end benchmark; bench/e2e_bench.py starts the server, the
// decryptor and an SMTP server around it, see bench/run_e2e_bench.sh).
//
// For every patient it does what `cipherpulse-edge run` does, minus the durable spool: a
// simulated heart (edge::Simulator, watch-like: one reading per second, the "healthy" profile
// at rest: no activity bursts, resting rate 62-80 bpm, no circadian swing) -> edge::MicroWindows
// (default 5 s, epoch-aligned, one record per micro-window) -> HeartRateCodec pack -> Paillier
// fast-mode encryption (one shared PublicKey and RandomnessPool) -> common::batch_json +
// sign_upload with the device's own Ed25519 key (registered on the server with POST /v1/devices) ->
// POST /v1/readings over a few keep-alive connections. Like an edge, a device uploads
// whatever it has as soon as a record is ready (so one record per upload in steady state),
// and resends the same records (same seq, same ciphertext) after a failure until they are
// acknowledged.
//
// A share of the patients (--abnormal-share) gets tachycardia episodes: at a known
// wall-clock second the readings step to --bpm (about 150, RR intervals to match) for
// --episode-s seconds, then return to the simulated rhythm; one episode every --period-s
// per abnormal patient, with random phases (whole seconds, so uniform against the 5 s and
// 10 s grids). The onset is the time of the first abnormal reading.
//
// Everything runs on the wall clock: data times are "now", because the server seals
// windows on its own clock. It writes a JSON report (--out): settings, the onsets, records
// emitted and acknowledged per device, upload latency from a micro-window's end to the
// server's acknowledgement, how far the simulation fell behind real time, CPU and refusals.
//
// Exit status: 0 when every record was acknowledged and the simulation kept up with real
// time, 1 otherwise, 2 on a setup error.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <httplib.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cipherpulse/codec.h"
#include "cipherpulse/ed25519.h"
#include "cipherpulse/paillier.h"
#include "cipherpulse/randomness_pool.h"
#include "common/http_client.h"
#include "common/upload.h"
#include "edge/micro_window.h"
#include "edge/simulator.h"
#include "load_common.h"

namespace {

using namespace cipherpulse;
using json = nlohmann::json;
using WallClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

using bench::interrupted;
using bench::unix_ms;

void sleep_until_ms(std::int64_t t_ms) {
    WallClock::time_point tp{std::chrono::milliseconds(t_ms)};
    while (!interrupted() && WallClock::now() < tp) {
        std::this_thread::sleep_until(
            std::min(tp, WallClock::now() + std::chrono::milliseconds(200)));
    }
}

std::int64_t vm_hwm_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::strtoll(line.c_str() + 6, nullptr, 10);
        }
    }
    return 0;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    rank = std::clamp<std::size_t>(rank, 1, v.size());
    return v[rank - 1];
}

std::string read_first_line(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
        line.pop_back();
    }
    return line;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ------------------------------------------------------------------------------ options

struct Options {
    std::string server = "http://127.0.0.1:8443";
    std::string ca_file;
    std::string admin_token_file;
    std::string public_key;
    int patients = 1000;
    double seconds = 300;
    double abnormal_share = 0.05;
    int warmup_s = 20;
    int episode_s = 30;
    int period_s = 90;
    double bpm = 150;
    int micro_window_ms = 5000;
    int connections = 4;
    int batch_max = 100;
    std::uint64_t seed = 20261121;
    std::string out;
    std::string id_prefix;  // device "d-<prefix>0001", patient "p-<prefix>0001"
    double progress_s = 15;
};

// ------------------------------------------------------------------------------- patients

struct EpisodeSpan {
    std::int64_t onset_ms = 0;  // first abnormal reading
    std::int64_t end_ms = 0;    // first normal reading again
};

struct Patient {
    std::string device;
    std::string patient;
    std::unique_ptr<Ed25519PrivateKey> key;
    std::unique_ptr<edge::Simulator> sim;
    std::optional<edge::Reading> pending;  // the next reading, not yet due
    std::unique_ptr<edge::MicroWindows> windows;
    std::vector<EpisodeSpan> episodes;
    std::optional<double> beat_clock;  // synthetic beats during an episode (ms)
    std::mt19937_64 rng;
    std::int64_t next_seq = 1;
    std::int64_t emitted = 0;
};

// One record waiting for its acknowledgement.
struct PendingRecord {
    common::UploadRecord record;
    std::int64_t ready_ms = 0;  // wall clock when the record was encrypted and queued
    std::int64_t window_end_ms = 0;
};

// Upload state of one device, guarded by Uploads::mutex.
struct DeviceUploads {
    std::deque<PendingRecord> pending;
    bool scheduled = false;  // in the ready queue, the delayed heap, or in flight
    int failures = 0;
    std::int64_t acknowledged = 0;  // records acknowledged (accepted or duplicate)
    std::int64_t max_acked_seq = 0;
    std::int64_t dropped = 0;  // refused for good
};

struct Uploads {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<DeviceUploads> devices;
    std::deque<int> ready;
    // (due ms, device): devices backing off after a failure.
    std::priority_queue<std::pair<std::int64_t, int>, std::vector<std::pair<std::int64_t, int>>,
                        std::greater<>>
        delayed;
    bool stop = false;
    std::int64_t outstanding = 0;  // records queued and not yet acknowledged or dropped

    // Statistics (under the mutex).
    std::vector<double> ack_after_window_end_ms;  // micro-window end -> acknowledgement
    std::vector<double> ack_after_ready_ms;       // queued -> acknowledgement
    std::vector<double> request_ms;               // HTTP round trip of 200 answers
    std::int64_t accepted = 0, duplicate = 0, late = 0, requests_ok = 0;
    std::map<int, std::int64_t> refused;  // status -> count (429/503 retried, others dropped)
    std::int64_t transport_errors = 0;
    std::vector<std::int64_t> accepted_per_second;  // by second since the data start
    std::int64_t data_start_ms = 0;
};

void schedule_locked(Uploads& u, int device) {
    auto& d = u.devices[static_cast<std::size_t>(device)];
    if (!d.scheduled && !d.pending.empty()) {
        d.scheduled = true;
        u.ready.push_back(device);
        u.cv.notify_one();
    }
}

std::mutex g_log_mutex;
int g_logged = 0;
void log_problem(const std::string& text) {
    std::lock_guard lock(g_log_mutex);
    if (g_logged++ < 20) {
        std::cerr << "e2e_load: " << text << "\n";
    }
}

void upload_worker(const Options& o, Uploads& u, const std::vector<Patient>& patients) {
    auto client = common::make_http_client(o.server, o.ca_file, 30);
    if (!client) {
        throw std::runtime_error("unusable server URL " + o.server);
    }
    client->set_keep_alive(true);
    // One connection carries many devices' uploads here, so the 40 ms that Nagle's algorithm
    // and the server's delayed ACK add to every small request whose headers and body
    // cpp-httplib writes separately would add up across devices (a real edge has its own
    // connection and pays them once per upload; common::make_http_client does not set it).
    client->set_tcp_nodelay(true);
    for (;;) {
        int device = -1;
        std::vector<PendingRecord> batch;
        {
            std::unique_lock lock(u.mutex);
            for (;;) {
                const std::int64_t now = unix_ms();
                while (!u.delayed.empty() && u.delayed.top().first <= now) {
                    u.ready.push_back(u.delayed.top().second);
                    u.delayed.pop();
                }
                if (!u.ready.empty()) {
                    device = u.ready.front();
                    u.ready.pop_front();
                    break;
                }
                if (u.stop) {
                    return;
                }
                if (!u.delayed.empty()) {
                    u.cv.wait_for(lock, std::chrono::milliseconds(std::clamp<std::int64_t>(
                                            u.delayed.top().first - now, 1, 200)));
                } else {
                    u.cv.wait_for(lock, std::chrono::milliseconds(200));
                }
            }
            auto& d = u.devices[static_cast<std::size_t>(device)];
            const std::size_t n =
                std::min<std::size_t>(d.pending.size(), static_cast<std::size_t>(o.batch_max));
            batch.assign(d.pending.begin(), d.pending.begin() + static_cast<std::ptrdiff_t>(n));
        }
        const Patient& p = patients[static_cast<std::size_t>(device)];
        std::vector<common::UploadRecord> records;
        records.reserve(batch.size());
        for (const auto& b : batch) {
            records.push_back(b.record);
        }
        auto upload =
            common::sign_upload(common::batch_json(p.device, records), common::kReadingsPath,
                                p.device, *p.key, unix_ms() / 1000);
        httplib::Headers headers = {{"Content-Digest", upload.content_digest},
                                    {"Signature-Input", upload.signature_input},
                                    {"Signature", upload.signature}};
        const auto sent = SteadyClock::now();
        auto res = client->Post(common::kReadingsPath, headers, upload.body, "application/json");
        if (!res && (res.error() == httplib::Error::Write || res.error() == httplib::Error::Read)) {
            res = client->Post(common::kReadingsPath, headers, upload.body, "application/json");
        }
        const double rtt =
            std::chrono::duration<double, std::milli>(SteadyClock::now() - sent).count();
        const std::int64_t now = unix_ms();

        std::lock_guard lock(u.mutex);
        auto& d = u.devices[static_cast<std::size_t>(device)];
        d.scheduled = false;
        auto backoff = [&](int retry_after_s) {
            ++d.failures;
            std::int64_t wait = std::min<std::int64_t>(200LL << std::min(d.failures - 1, 5), 5000);
            wait = std::max<std::int64_t>(wait, retry_after_s * 1000LL);
            d.scheduled = true;
            u.delayed.emplace(now + wait, device);
            u.cv.notify_one();
        };
        if (!res) {
            ++u.transport_errors;
            log_problem("upload of " + p.device +
                        " got no answer: " + httplib::to_string(res.error()));
            backoff(0);
            continue;
        }
        if (res->status == 200) {
            auto doc = json::parse(res->body, nullptr, false);
            std::vector<std::int64_t> acked;
            if (doc.is_object() && doc.contains("records") && doc["records"].is_array()) {
                for (const auto& r : doc["records"]) {
                    const std::string status = r.value("status", std::string());
                    if (status == "accepted" || status == "duplicate") {
                        acked.push_back(r.value("seq", std::int64_t{0}));
                    }
                }
                u.accepted += doc.value("accepted", std::int64_t{0});
                u.duplicate += doc.value("duplicate", std::int64_t{0});
                u.late += doc.value("late", std::int64_t{0});
            }
            ++u.requests_ok;
            u.request_ms.push_back(rtt);
            d.failures = 0;
            std::sort(acked.begin(), acked.end());
            std::int64_t removed = 0;
            while (!d.pending.empty() &&
                   std::binary_search(acked.begin(), acked.end(), d.pending.front().record.seq)) {
                const auto& f = d.pending.front();
                u.ack_after_window_end_ms.push_back(static_cast<double>(now - f.window_end_ms));
                u.ack_after_ready_ms.push_back(static_cast<double>(now - f.ready_ms));
                d.max_acked_seq = std::max(d.max_acked_seq, f.record.seq);
                ++d.acknowledged;
                ++removed;
                d.pending.pop_front();
            }
            u.outstanding -= removed;
            const std::int64_t second = (now - u.data_start_ms) / 1000;
            if (second >= 0) {
                if (static_cast<std::size_t>(second) >= u.accepted_per_second.size()) {
                    u.accepted_per_second.resize(static_cast<std::size_t>(second) + 1, 0);
                }
                u.accepted_per_second[static_cast<std::size_t>(second)] += removed;
            }
            if (removed != static_cast<std::int64_t>(batch.size())) {
                log_problem("upload of " + p.device + ": " + std::to_string(batch.size()) +
                            " records sent, " + std::to_string(removed) + " acknowledged");
                backoff(0);
                continue;
            }
            schedule_locked(u, device);
            continue;
        }
        ++u.refused[res->status];
        if (res->status == 429 || res->status == 503 || res->status >= 500) {
            int retry = 0;
            if (res->has_header("Retry-After")) {
                retry = std::atoi(res->get_header_value("Retry-After").c_str());
            }
            backoff(std::clamp(retry, 0, 10));
            continue;
        }
        // Refused for good: drop the batch (counted; the run then fails).
        log_problem("upload of " + p.device + " refused: HTTP " + std::to_string(res->status) +
                    " " + res->body.substr(0, 300));
        for (std::size_t i = 0; i < batch.size() && !d.pending.empty(); ++i) {
            d.pending.pop_front();
            ++d.dropped;
            --u.outstanding;
        }
        schedule_locked(u, device);
    }
}

// -------------------------------------------------------------------------------- the run

std::string padded(int i, int width) {
    std::ostringstream s;
    s << std::setw(width) << std::setfill('0') << i;
    return s.str();
}

int run(const Options& o) {
    const std::string admin_token = read_first_line(o.admin_token_file);
    auto pk_parsed = PublicKey::from_json(read_file(o.public_key));
    if (!pk_parsed) {
        throw std::runtime_error("public key: " + pk_parsed.error().message);
    }
    const PublicKey pk = pk_parsed.value();
    HeartRateCodec codec;
    const std::string schema = codec.schema_id();

    auto admin = common::make_http_client(o.server, o.ca_file, 30);
    if (!admin) {
        throw std::runtime_error("unusable server URL " + o.server);
    }
    admin->set_keep_alive(true);
    admin->set_tcp_nodelay(true);  // else 40 ms per registration (see upload_worker)
    const httplib::Headers bearer = {{"Authorization", "Bearer " + admin_token}};

    // Devices: keys and registration.
    const auto setup_started = SteadyClock::now();
    const int width = std::max(4, static_cast<int>(std::to_string(o.patients).size()));
    std::vector<Patient> patients(static_cast<std::size_t>(o.patients));
    std::mt19937_64 master(o.seed);
    for (int i = 0; i < o.patients && !interrupted(); ++i) {
        Patient& p = patients[static_cast<std::size_t>(i)];
        p.device = "d-" + o.id_prefix + padded(i + 1, width);
        p.patient = "p-" + o.id_prefix + padded(i + 1, width);
        p.key = std::make_unique<Ed25519PrivateKey>(Ed25519PrivateKey::generate());
        p.rng.seed(master());
        json body = {{"id", p.device},
                     {"patient", p.patient},
                     {"public_key_pem", p.key->public_key().to_pem()}};
        auto res = admin->Post("/v1/devices", bearer, body.dump(), "application/json");
        if (!res || res->status != 201) {
            throw std::runtime_error("registering " + p.device + " failed: " +
                                     (res ? std::to_string(res->status) + " " + res->body
                                          : httplib::to_string(res.error())));
        }
    }
    if (interrupted()) {
        return 130;
    }
    const double register_s =
        std::chrono::duration<double>(SteadyClock::now() - setup_started).count();

    // Encryption: one shared key and a randomness pool deep enough for a whole burst (every
    // patient's micro-window closes at the same instant).
    RandomnessPool::Options pool_options;
    pool_options.capacity = static_cast<std::size_t>(std::max(256, o.patients + o.patients / 2));
    pool_options.mode = EncryptionMode::kFast;
    RandomnessPool pool(pk, pool_options);
    const auto fill_started = SteadyClock::now();
    pool.wait_until_full(std::chrono::minutes(5));
    const double pool_fill_s =
        std::chrono::duration<double>(SteadyClock::now() - fill_started).count();

    // The data start: a whole second, a little ahead. Abnormal patients and their episodes.
    const std::int64_t data_start = (unix_ms() / 1000 + 2) * 1000;
    const std::int64_t mw = o.micro_window_ms;
    const std::int64_t data_end = [&] {
        std::int64_t e = data_start + static_cast<std::int64_t>(o.seconds * 1000);
        return (e + mw - 1) / mw * mw;  // a micro-window boundary
    }();
    const int abnormal_count =
        static_cast<int>(std::lround(o.abnormal_share * static_cast<double>(o.patients)));
    std::vector<int> abnormal;
    for (int k = 0; k < abnormal_count; ++k) {
        abnormal.push_back(static_cast<int>(static_cast<std::int64_t>(k) * o.patients /
                                            std::max(1, abnormal_count)) +
                           (o.patients / std::max(1, abnormal_count)) / 2);
    }
    int episodes_total = 0;
    for (int idx : abnormal) {
        Patient& p = patients[static_cast<std::size_t>(idx)];
        std::uniform_int_distribution<int> phase(0, o.period_s - 1);
        std::int64_t onset = data_start + (o.warmup_s + phase(p.rng)) * 1000LL;
        // Leave room after each episode for a normal window (clearing) before the data ends.
        const std::int64_t tail = o.episode_s * 1000LL + 30000;
        while (onset + tail <= data_end) {
            p.episodes.push_back({onset, onset + o.episode_s * 1000LL});
            ++episodes_total;
            onset += o.period_s * 1000LL;
        }
    }

    // Simulators (resting profile: no activity bursts, so healthy patients stay well below
    // the tachycardia threshold) and micro-windows.
    const auto sim_started = SteadyClock::now();
    for (auto& p : patients) {
        edge::PatientProfile profile = edge::patient_profile("healthy").value();
        profile.activity_bursts_per_hour = 0;
        // Resting rates of 62-80 bpm and no circadian swing: a patient resting in the 50s
        // trips the bradycardia rule (half the samples below 50 for two windows) now and
        // then, and so did one resting at 62 when a run fell near the simulated 04:00 trough
        // (6 bpm lower): the run's hour must not decide whether healthy patients alert.
        profile.resting_bpm = std::uniform_real_distribution<double>(62, 80)(p.rng);
        profile.circadian_amplitude_bpm = 0;
        p.sim = std::make_unique<edge::Simulator>(profile, std::vector<edge::Episode>{}, p.rng(),
                                                  data_start, edge::Simulator::kNoEnd,
                                                  edge::SampleMode::kWatch);
        p.windows = std::make_unique<edge::MicroWindows>(mw, edge::FilterRules{});
        p.pending = p.sim->next();
    }
    const double sim_setup_s =
        std::chrono::duration<double>(SteadyClock::now() - sim_started).count();

    Uploads u;
    u.devices.resize(patients.size());
    u.data_start_ms = data_start;
    std::vector<std::thread> workers;
    std::atomic<bool> worker_failed{false};
    std::string worker_error;
    std::mutex worker_error_mutex;
    for (int c = 0; c < o.connections; ++c) {
        workers.emplace_back([&] {
            try {
                upload_worker(o, u, patients);
            } catch (const std::exception& e) {
                std::lock_guard lock(worker_error_mutex);
                worker_error = e.what();
                worker_failed = true;
            }
        });
    }
    auto stop_workers = [&] {
        {
            std::lock_guard lock(u.mutex);
            u.stop = true;
        }
        u.cv.notify_all();
        for (auto& t : workers) {
            if (t.joinable()) {
                t.join();
            }
        }
    };

    std::cerr << "e2e_load: " << o.patients << " patients (" << abnormal.size() << " with "
              << episodes_total << " tachycardia episodes), " << pk.modulus_bits() << "-bit key, "
              << mw / 1000.0 << " s micro-windows, " << o.connections
              << " connections; registered in " << std::fixed << std::setprecision(1) << register_s
              << " s, randomness pool of " << pool_options.capacity << " filled in " << pool_fill_s
              << " s, simulators built in " << sim_setup_s << " s; data from " << data_start
              << " to " << data_end << "\n";

    // The clock loop: one tick per second, just after the readings of that second are due.
    const double cpu_start = bench::self_cpu_seconds();
    std::vector<double> tick_work_ms;  // CPU-side work of a tick (simulate, window, encrypt)
    std::vector<double> tick_lag_ms;   // tick start - due time
    std::int64_t emitted = 0, samples = 0, episode_readings = 0;
    const std::int64_t tick_offset_ms = 20;
    auto next_progress = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                  std::chrono::duration<double>(o.progress_s));
    std::vector<std::pair<int, PendingRecord>> fresh;
    for (std::int64_t tick = data_start + tick_offset_ms; tick <= data_end + tick_offset_ms;
         tick += 1000) {
        sleep_until_ms(tick);
        if (interrupted() || worker_failed) {
            break;
        }
        const auto work_started = SteadyClock::now();
        const std::int64_t now = std::min(unix_ms(), data_end);
        tick_lag_ms.push_back(static_cast<double>(unix_ms() - tick));
        fresh.clear();
        for (std::size_t i = 0; i < patients.size(); ++i) {
            Patient& p = patients[i];
            std::vector<edge::WindowRecord> closed;
            while (p.pending && p.pending->t_ms <= now) {
                edge::Reading r = std::move(*p.pending);
                p.pending = p.sim->next();
                const bool in_episode =
                    std::any_of(p.episodes.begin(), p.episodes.end(), [&](const EpisodeSpan& e) {
                        return r.t_ms >= e.onset_ms && r.t_ms < e.end_ms;
                    });
                if (in_episode) {
                    // A step to the target rate: bpm about o.bpm, RR intervals to match.
                    ++episode_readings;
                    std::normal_distribution<double> noise(0.0, 1.5);
                    const double bpm = o.bpm + noise(p.rng);
                    r.bpm = bpm;
                    r.contact = true;
                    r.rr_ms.clear();
                    if (!p.beat_clock || *p.beat_clock < static_cast<double>(r.t_ms) - 2000) {
                        p.beat_clock = static_cast<double>(r.t_ms) - 1000;
                    }
                    for (;;) {
                        const double rr = 60000.0 / (o.bpm + noise(p.rng));
                        if (*p.beat_clock + rr > static_cast<double>(r.t_ms)) {
                            break;
                        }
                        *p.beat_clock += rr;
                        r.rr_ms.push_back(static_cast<std::uint32_t>(std::lround(rr)));
                    }
                } else {
                    p.beat_clock.reset();
                }
                ++samples;
                auto out = p.windows->add(r);
                closed.insert(closed.end(), out.begin(), out.end());
            }
            auto out = p.windows->flush_until(now);
            closed.insert(closed.end(), out.begin(), out.end());
            for (const auto& w : closed) {
                if (w.start_ms + mw > data_end) {
                    continue;
                }
                PendingRecord pr;
                pr.record.seq = p.next_seq++;
                pr.record.t_ms = w.start_ms;
                pr.record.metric = "hr";
                pr.record.schema = schema;
                pr.record.kid = pk.kid();
                pr.record.ct = pk.serialize_base64url(pool.encrypt(codec.pack(w.stats)));
                pr.window_end_ms = w.start_ms + mw;
                ++p.emitted;
                ++emitted;
                fresh.emplace_back(static_cast<int>(i), std::move(pr));
            }
        }
        {
            const std::int64_t ready = unix_ms();
            std::lock_guard lock(u.mutex);
            for (auto& [device, pr] : fresh) {
                pr.ready_ms = ready;
                u.devices[static_cast<std::size_t>(device)].pending.push_back(std::move(pr));
                ++u.outstanding;
                schedule_locked(u, device);
            }
        }
        tick_work_ms.push_back(
            std::chrono::duration<double, std::milli>(SteadyClock::now() - work_started).count());
        if (SteadyClock::now() >= next_progress) {
            next_progress += std::chrono::duration_cast<SteadyClock::duration>(
                std::chrono::duration<double>(o.progress_s));
            std::lock_guard lock(u.mutex);
            std::cerr << "e2e_load: " << std::setprecision(0) << (now - data_start) / 1000.0
                      << " s: " << emitted << " records emitted, " << u.accepted
                      << " accepted, outstanding " << u.outstanding << ", last tick "
                      << std::setprecision(1) << tick_work_ms.back() << " ms of work, lag "
                      << tick_lag_ms.back() << " ms\n";
        }
    }
    const double cpu_load = bench::self_cpu_seconds() - cpu_start;
    const std::int64_t load_end_ms = unix_ms();

    // Drain: wait until every record is acknowledged (or 60 s).
    const auto drain_deadline = SteadyClock::now() + std::chrono::seconds(60);
    while (!interrupted() && !worker_failed && SteadyClock::now() < drain_deadline) {
        {
            std::lock_guard lock(u.mutex);
            if (u.outstanding == 0) {
                break;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::int64_t drained_ms = unix_ms();
    stop_workers();
    const double cpu_total = bench::self_cpu_seconds() - cpu_start;

    // Report.
    std::lock_guard lock(u.mutex);
    std::int64_t acked = 0, dropped = 0;
    json devices = json::array();
    for (std::size_t i = 0; i < patients.size(); ++i) {
        const auto& d = u.devices[i];
        acked += d.acknowledged;
        dropped += d.dropped;
        devices.push_back({{"device", patients[i].device},
                           {"patient", patients[i].patient},
                           {"emitted", patients[i].emitted},
                           {"acknowledged", d.acknowledged},
                           {"max_acked_seq", d.max_acked_seq},
                           {"dropped", d.dropped},
                           {"unacknowledged", static_cast<std::int64_t>(d.pending.size())}});
    }
    json onsets = json::array();
    for (int idx : abnormal) {
        const auto& p = patients[static_cast<std::size_t>(idx)];
        for (const auto& e : p.episodes) {
            onsets.push_back({{"patient", p.patient},
                              {"device", p.device},
                              {"onset_ms", e.onset_ms},
                              {"end_ms", e.end_ms}});
        }
    }
    const double data_s = static_cast<double>(data_end - data_start) / 1000.0;
    const double max_lag =
        tick_lag_ms.empty() ? 0.0 : *std::max_element(tick_lag_ms.begin(), tick_lag_ms.end());
    const double max_work =
        tick_work_ms.empty() ? 0.0 : *std::max_element(tick_work_ms.begin(), tick_work_ms.end());
    const bool kept_up = max_lag < 1000.0 && max_work < 1000.0;
    const bool all_acked = acked == emitted && dropped == 0;
    std::map<std::string, std::int64_t> refused;
    for (auto [k, v] : u.refused) {
        refused[std::to_string(k)] = v;
    }
    json report = {
        {"tool", "e2e_load"},
        {"patients", o.patients},
        {"bits", pk.modulus_bits()},
        {"micro_window_ms", mw},
        {"connections", o.connections},
        {"abnormal_patients", abnormal.size()},
        {"episode_s", o.episode_s},
        {"period_s", o.period_s},
        {"bpm", o.bpm},
        {"data_start_ms", data_start},
        {"data_end_ms", data_end},
        {"load_end_ms", load_end_ms},
        {"drained_ms", drained_ms},
        {"data_seconds", data_s},
        {"samples", samples},
        {"episode_samples", episode_readings},
        {"records_emitted", emitted},
        {"records_acknowledged", acked},
        {"records_dropped", dropped},
        {"accepted", u.accepted},
        {"duplicate", u.duplicate},
        {"late", u.late},
        {"requests_ok", u.requests_ok},
        {"refused_by_status", refused},
        {"transport_errors", u.transport_errors},
        {"records_per_s", static_cast<double>(acked) / data_s},
        {"accepted_per_second", u.accepted_per_second},
        {"ack_after_window_end_ms",
         {{"p50", percentile(u.ack_after_window_end_ms, 0.5)},
          {"p99", percentile(u.ack_after_window_end_ms, 0.99)},
          {"max", percentile(u.ack_after_window_end_ms, 1.0)}}},
        {"ack_after_queued_ms",
         {{"p50", percentile(u.ack_after_ready_ms, 0.5)},
          {"p99", percentile(u.ack_after_ready_ms, 0.99)},
          {"max", percentile(u.ack_after_ready_ms, 1.0)}}},
        {"request_ms",
         {{"p50", percentile(u.request_ms, 0.5)},
          {"p99", percentile(u.request_ms, 0.99)},
          {"max", percentile(u.request_ms, 1.0)}}},
        {"tick_work_ms",
         {{"p50", percentile(tick_work_ms, 0.5)},
          {"p99", percentile(tick_work_ms, 0.99)},
          {"max", max_work}}},
        {"tick_lag_ms",
         {{"p50", percentile(tick_lag_ms, 0.5)},
          {"p99", percentile(tick_lag_ms, 0.99)},
          {"max", max_lag}}},
        {"pool_misses", pool.misses()},
        {"cpu_s_during_data", cpu_load},
        {"cpu_s_total", cpu_total},
        {"cpu_cores_during_data", cpu_load / data_s},
        {"vm_hwm_kib", vm_hwm_kib()},
        {"setup",
         {{"register_s", register_s}, {"pool_fill_s", pool_fill_s}, {"sim_setup_s", sim_setup_s}}},
        {"kept_up", kept_up},
        {"all_acknowledged", all_acked},
        {"interrupted", interrupted()},
        {"worker_error", worker_error},
        {"onsets", onsets},
        {"devices", devices},
    };
    if (!o.out.empty()) {
        std::ofstream out(o.out);
        out << report.dump() << "\n";
        if (!out) {
            throw std::runtime_error("cannot write " + o.out);
        }
    }
    std::cerr << std::setprecision(1) << "e2e_load: done: " << emitted << " records emitted, "
              << acked << " acknowledged (" << u.accepted << " accepted, " << u.duplicate
              << " duplicate, " << u.late << " late), " << dropped << " dropped; " << acked / data_s
              << " records/s; micro-window end -> ack p50 "
              << percentile(u.ack_after_window_end_ms, 0.5) << " ms, p99 "
              << percentile(u.ack_after_window_end_ms, 0.99) << " ms; tick work max " << max_work
              << " ms, lag max " << max_lag << " ms; CPU " << std::setprecision(2)
              << cpu_load / data_s << " cores\n";
    if (interrupted()) {
        return 130;
    }
    if (worker_failed) {
        std::cerr << "e2e_load: an upload thread failed: " << worker_error << "\n";
        return 1;
    }
    return kept_up && all_acked ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"e2e_load: N simulated patients' edges in one process, in real time", "e2e_load"};
    app.add_option("--server", o.server, "server URL")->capture_default_str();
    app.add_option("--ca-file", o.ca_file, "CA file for an https:// server");
    app.add_option("--admin-token-file", o.admin_token_file, "file holding an admin token")
        ->required();
    app.add_option("--public-key", o.public_key, "paillier.pub.json (the active key)")->required();
    app.add_option("--patients", o.patients, "simulated patients, one device each")
        ->check(CLI::Range(1, 200000))
        ->capture_default_str();
    app.add_option("--seconds", o.seconds, "seconds of data (real time)")
        ->check(CLI::Range(10.0, 86400.0))
        ->capture_default_str();
    app.add_option("--abnormal-share", o.abnormal_share, "share of patients with episodes")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    app.add_option("--warmup-s", o.warmup_s, "seconds of normal data before any onset")
        ->check(CLI::Range(0, 3600))
        ->capture_default_str();
    app.add_option("--episode-s", o.episode_s, "length of each tachycardia episode")
        ->check(CLI::Range(5, 3600))
        ->capture_default_str();
    app.add_option("--period-s", o.period_s, "seconds from one episode's onset to the next")
        ->check(CLI::Range(10, 86400))
        ->capture_default_str();
    app.add_option("--bpm", o.bpm, "heart rate during an episode")
        ->check(CLI::Range(100.0, 220.0))
        ->capture_default_str();
    app.add_option("--micro-window-ms", o.micro_window_ms, "edge micro-window")
        ->check(CLI::Range(1000, 15000))
        ->capture_default_str();
    app.add_option("--connections", o.connections, "upload threads, one keep-alive connection each")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--batch-max", o.batch_max, "most records per upload")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--seed", o.seed, "random seed")->capture_default_str();
    app.add_option("--id-prefix", o.id_prefix, "inserted into device and patient ids");
    app.add_option("--progress-s", o.progress_s, "seconds between progress lines")
        ->capture_default_str();
    app.add_option("--out", o.out, "write the JSON report here");
    CLI11_PARSE(app, argc, argv);
    if (o.episode_s >= o.period_s) {
        std::cerr << "e2e_load: --episode-s must be shorter than --period-s\n";
        return 2;
    }

    bench::install_interrupt_handlers();
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::cerr << "e2e_load: error: " << e.what() << "\n";
        return 2;
    }
}
