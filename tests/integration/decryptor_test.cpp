// The decryptor's watch service against a real server on loopback (real database files,
// windows produced by the edge from simulated patients), a real SMTP server with STARTTLS
// and AUTH required, and the real `cipherpulse-decryptor` binary killed with SIGKILL.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <regex>
#include <set>

#include "cipherpulse/base64url.h"
#include "cipherpulse/keyfile.h"
#include "decryptor/commands.h"
#include "decryptor/config.h"
#include "decryptor/state.h"
#include "decryptor/watch.h"
#include "edge/runner.h"
#include "integration/loopback_server.h"

namespace cipherpulse::decryptor {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_private(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text << "\n";
    ::chmod(p.c_str(), 0600);
}

// header_value returns the value of the first header `name` of an RFC 5322 message.
std::string header_value(const std::string& message, const std::string& name) {
    std::regex re("(^|\r\n)" + name + ": ([^\r\n]*)", std::regex::icase);
    std::smatch m;
    return std::regex_search(message, m, re) ? m[2].str() : std::string();
}

// subject returns the Subject header with RFC 2047 encoded words (UTF-8, B) decoded.
std::string subject(const std::string& message) {
    std::string raw = header_value(message, "Subject");
    // Continuation lines of a folded header.
    std::regex folded("Subject: ([^\r\n]*(\r\n[ \t][^\r\n]*)*)", std::regex::icase);
    std::smatch m;
    if (std::regex_search(message, m, folded)) {
        raw = m[1].str();
    }
    std::regex word("=\\?UTF-8\\?B\\?([^?]*)\\?=", std::regex::icase);
    std::string out;
    auto begin = std::sregex_iterator(raw.begin(), raw.end(), word);
    if (begin == std::sregex_iterator()) {
        return raw;
    }
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
        auto bytes = base64_decode((*it)[1].str());
        if (bytes) {
            out.append(bytes.value().begin(), bytes.value().end());
        }
    }
    return out;
}

class DecryptorTest : public edge::LoopbackServerTest {
  protected:
    void SetUp() override {
        LoopbackServerTest::SetUp();
        ASSERT_TRUE(save_private_key(dir_ / "paillier.key", edge::paillier_key(), false).ok());
        write_private(dir_ / "decryptor.token", decryptor_);
        write_private(dir_ / "smtp.password", "s3cret-for-tests");
        auto tls = testing::make_self_signed(dir_.path(), "smtp");
        ASSERT_TRUE(tls) << "openssl failed";
        smtp_tls_ = *tls;
        fs::create_directories(dir_ / "mail");
        smtp_ = std::make_unique<testing::ChildProcess>(std::vector<std::string>{
            "/usr/bin/python3", (testing::repo_root() / "tests/fixtures/smtp_server.py").string(),
            "--port", "0", "--mode", "starttls", "--cert", smtp_tls_.cert, "--key", smtp_tls_.key,
            "--require-auth", "--user", "alerts", "--password-file",
            (dir_ / "smtp.password").string(), "--out", (dir_ / "mail").string()});
        smtp_port_ = smtp_->ready_port(20000);
        ASSERT_GT(smtp_port_, 0) << "the SMTP server did not start";
    }

    // produce runs a simulated patient (device `device`, patient "patient-<device>")
    // through the edge into the server and returns its expected 1-minute statistics.
    std::map<std::int64_t, HeartRateStats> produce(const std::string& device,
                                                   const std::string& episodes, std::int64_t start,
                                                   int minutes) {
        edge::EdgeConfig c = enrol(device, identity_.public_key());
        auto profile = edge::patient_profile("healthy").value();
        auto script = edge::parse_episodes(episodes).value();
        const std::int64_t end = start + minutes * 60000LL;
        edge::Simulator sim(profile, script, 7, start, end);
        std::atomic<bool> stop{false};
        EXPECT_EQ(edge::run_edge(c, sim, stop, nullptr, 20000), 0);
        edge::Simulator again(profile, script, 7, start, end);
        return expected_minutes(again, c);
    }

    // write_config writes decryptor.toml (e-mail to the local SMTP server) plus `extra`.
    fs::path write_config(const std::string& extra, const std::string& database = "state.db") {
        const fs::path path = dir_ / "decryptor.toml";
        std::ofstream out(path);
        out << "[key]\nprivate_key = \"paillier.key\"\n"
            << "[server]\nurl = \"http://127.0.0.1:" << port_ << "\"\n"
            << "token_file = \"decryptor.token\"\n"
            << "[watch]\ndatabase = \"" << database << "\"\npoll_interval_s = 0.2\n"
            << "verify_sample_rate = 0.0\n"
            << "[notify]\nretry_initial_backoff_s = 0.05\nretry_max_backoff_s = 0.2\n"
            << "[notify.email]\nenabled = true\nurl = \"smtp://127.0.0.1:" << smtp_port_
            << "\"\ntls = \"starttls\"\nusername = \"alerts\"\npassword_file = \"smtp.password\"\n"
            << "ca_file = \"" << smtp_tls_.cert << "\"\n"
            << "from = \"cipherpulse <alerts@hospital.test>\"\nto = [\"oncall@hospital.test\"]\n"
            << "[rules.baseline_deviation]\nenabled = false\n"
            << "[rules.tachycardia]\nsustained = 2\nclear_after = 2\n"
            << "[patients.patient-dev-a]\nalias = \"Bed 12\"\n"
            << extra;
        return path;
    }

    DecryptorConfig load(const fs::path& path) {
        auto c = load_decryptor_config(path);
        EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
        return c.value();
    }

    std::unique_ptr<Watcher> watcher(const DecryptorConfig& c, Clock clock = system_clock_ms) {
        return std::make_unique<Watcher>(c, load_key_ring(c).value(), read_token(c).value(),
                                         make_notifiers(c), std::move(clock));
    }

    // mails returns the messages the SMTP server accepted, in arrival order.
    std::vector<std::string> mails() {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir_.path() / "mail")) {
            if (e.path().extension() == ".eml") {
                files.push_back(e.path());
            }
        }
        std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
            return std::stoi(a.stem().string()) < std::stoi(b.stem().string());
        });
        std::vector<std::string> out;
        for (const auto& f : files) {
            out.push_back(read_text(f));
        }
        return out;
    }

    std::int64_t server_window_id(const std::string& patient, std::int64_t start_ms) {
        auto db = store::Database::open(config_.database, {});
        auto st = db.prepare(
            "SELECT id FROM windows WHERE patient = ?1 AND start_ms = ?2 AND granularity = '1m'");
        st.bind_all(patient, start_ms);
        return st.step() ? st.column_int64(0) : 0;
    }

    testing::TlsFiles smtp_tls_;
    std::unique_ptr<testing::ChildProcess> smtp_;
    int smtp_port_ = 0;
};

// A tachycardia episode becomes one raised and one cleared alert, e-mailed over STARTTLS
// with AUTH; the healthy patient stays quiet; every released window's statistics equal those
// computed directly from the simulated readings.
TEST_F(DecryptorTest, EpisodeIsDecryptedEvaluatedAndEmailedOnce) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 30) * 60000;
    auto alice = produce("dev-a", "tachycardia@180s+300s:150", start, 12);
    auto bob = produce("dev-b", "", start, 12);
    ASSERT_EQ(sealed_minutes(24).size(), 24u);

    DecryptorConfig c = load(write_config(""));
    auto w = watcher(c);
    ASSERT_EQ(w->run_once(), 0);

    StateStore& store = w->store();
    for (const auto& [patient, expected] :
         {std::pair{std::string("patient-dev-a"), alice}, {std::string("patient-dev-b"), bob}}) {
        ASSERT_EQ(expected.size(), 12u);
        for (const auto& [minute, stats] : expected) {
            auto entry = store.ledger_entry(server_window_id(patient, minute));
            ASSERT_TRUE(entry) << patient << " " << minute;
            EXPECT_EQ(entry->status, kReleased) << entry->detail;
            json got = json::parse(entry->stats_json);
            EXPECT_EQ(got["records"].get<std::uint64_t>(), stats.records);
            EXPECT_EQ(got["samples"].get<std::uint64_t>(), stats.samples);
            EXPECT_NEAR(got["mean_bpm"].get<double>(), stats.mean_bpm().value(), 0.006);
        }
    }
    auto alerts = store.alerts("", false, 100);
    ASSERT_EQ(alerts.size(), 2u);
    // Newest first: cleared, then raised.
    EXPECT_EQ(alerts[1].rule, "tachycardia");
    EXPECT_EQ(alerts[1].kind, "raised");
    EXPECT_EQ(alerts[1].patient, "patient-dev-a");
    EXPECT_GE(alerts[1].window_start_ms, start + 3 * 60000);
    EXPECT_LE(alerts[1].window_start_ms, start + 5 * 60000);
    EXPECT_EQ(alerts[0].kind, "cleared");
    EXPECT_GE(alerts[0].window_start_ms, start + 8 * 60000);
    EXPECT_TRUE(store.alerts("patient-dev-b", false, 100).empty());
    for (const auto& a : alerts) {
        auto d = store.deliveries(a.id);
        ASSERT_EQ(d.size(), 1u);
        EXPECT_EQ(d[0].status, "sent") << d[0].last_detail;
        EXPECT_EQ(d[0].attempts, 1);
    }

    auto received = mails();
    ASSERT_EQ(received.size(), 2u);
    const std::string& raised = received[0];
    EXPECT_NE(subject(raised).find("tachycardia"), std::string::npos) << subject(raised);
    EXPECT_NE(subject(raised).find("Bed 12"), std::string::npos) << subject(raised);
    EXPECT_NE(subject(raised).find("CRITICAL"), std::string::npos) << "150 bpm is critical";
    EXPECT_EQ(raised.find("patient-dev-a"), std::string::npos) << "the alias is shown, not the id";
    EXPECT_FALSE(header_value(raised, "Message-ID").empty());
    EXPECT_NE(header_value(raised, "Message-ID"), header_value(received[1], "Message-ID"));
    json envelope = json::parse(read_text(dir_ / "mail" / "1.json"));
    EXPECT_TRUE(envelope.value("tls", false));
    EXPECT_TRUE(envelope.value("auth", false));

    // Polling again finds nothing new and sends nothing.
    ASSERT_EQ(w->run_once(), 0);
    EXPECT_EQ(store.alerts("", false, 100).size(), 2u);
    EXPECT_EQ(mails().size(), 2u);

    // stats prints the same figures for people and scripts.
    StatsOptions so;
    so.patient = "patient-dev-a";
    so.from_ms = start;
    so.to_ms = start + 12 * 60000;
    so.format = "json";
    std::ostringstream out, err;
    ASSERT_EQ(run_stats(c, load_key_ring(c).value(), decryptor_, so, out, err), 0) << err.str();
    json doc = json::parse(out.str());
    ASSERT_EQ(doc["windows"].size(), 12u);
    std::uint64_t samples = 0;
    for (const auto& row : doc["windows"]) {
        std::int64_t minute = parse_time_arg(row["start"].get<std::string>(), 0).value();
        EXPECT_NEAR(row["mean_bpm"].get<double>(), alice[minute].mean_bpm().value(), 0.051);
        samples += alice[minute].samples;
    }
    EXPECT_EQ(doc["total"]["samples"].get<std::uint64_t>(), samples);

    // Clinicians acknowledge alerts; an acknowledged alert is no longer open.
    std::ostringstream ack_out, ack_err;
    ASSERT_EQ(run_alerts_ack(c, alerts[1].id, "dr-who", "seen", ack_out, ack_err), 0);
    EXPECT_EQ(run_alerts_ack(c, alerts[1].id, "dr-who", "", ack_out, ack_err), 2);
    EXPECT_TRUE(store.alerts("", true, 100).empty());
    std::ostringstream list, list_err;
    ASSERT_EQ(run_alerts_list(c, "", false, 10, "json", list, list_err), 0);
    json listed = json::parse(list.str());
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[1]["acked_by"], "dr-who");
    EXPECT_EQ(listed[1]["display_name"], "Bed 12");
}

// A server that hands out another window's aggregate (same counts, plausible figures) is
// caught by re-verification against the signed records; a released window served again
// with a different aggregate is caught by the ledger. Neither is used.
TEST_F(DecryptorTest, TamperedAndReplacedAggregatesRaiseIntegrityAlerts) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 30) * 60000;
    produce("dev-b", "", start, 4);
    ASSERT_EQ(sealed_minutes(4).size(), 4u);
    const std::int64_t w0 = server_window_id("patient-dev-b", start);
    const std::int64_t w1 = server_window_id("patient-dev-b", start + 60000);
    const std::int64_t w2 = server_window_id("patient-dev-b", start + 120000);
    {
        auto db = store::Database::open(config_.database, {});
        db.prepare(
              "UPDATE windows SET aggregate = (SELECT aggregate FROM windows WHERE id = ?1) "
              "WHERE id = ?2")
            .bind_all(w1, w0)
            .execute();
    }
    DecryptorConfig c = load(write_config("", "tamper.db"));
    c.verify_sample_rate = 1.0;
    auto w = watcher(c);
    EXPECT_EQ(w->run_once(), 4);
    StateStore& store = w->store();
    EXPECT_EQ(store.ledger_entry(w0)->status, kIntegrity);
    EXPECT_NE(store.ledger_entry(w0)->detail.find("re-verification"), std::string::npos)
        << store.ledger_entry(w0)->detail;
    EXPECT_EQ(store.ledger_entry(w1)->status, kReleased);
    auto alerts = store.alerts("", false, 100);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].kind, "integrity");
    EXPECT_EQ(alerts[0].window_id, w0);
    EXPECT_EQ(alerts[0].severity, Severity::kCritical);
    ASSERT_EQ(mails().size(), 1u);

    // `verify` agrees: the honest window verifies, the tampered one does not.
    std::ostringstream out, err;
    EXPECT_EQ(run_verify(c, load_key_ring(c).value(), decryptor_, w2, out, err), 0)
        << out.str() << err.str();
    EXPECT_NE(out.str().find("VERIFIED"), std::string::npos);
    std::ostringstream out2;
    EXPECT_EQ(run_verify(c, load_key_ring(c).value(), decryptor_, w0, out2, err), 4);
    EXPECT_NE(out2.str().find("FAILED"), std::string::npos);

    // The server re-serves window w1 (already released) under a new cursor with another
    // aggregate.
    const std::string state_before = store.patient_state("patient-dev-b").to_json();
    {
        auto db = store::Database::open(config_.database, {});
        db.prepare(
              "UPDATE windows SET aggregate = (SELECT aggregate FROM windows WHERE id = ?1), "
              "seal_seq = (SELECT MAX(seal_seq) + 1 FROM windows) WHERE id = ?2")
            .bind_all(w2, w1)
            .execute();
    }
    c.verify_sample_rate = 0;
    auto w_again = watcher(c);
    EXPECT_EQ(w_again->run_once(), 4);
    auto after = w_again->store().alerts("", false, 100);
    ASSERT_EQ(after.size(), 3u);  // + the verify failure above + the replacement
    EXPECT_EQ(after[0].kind, "integrity");
    EXPECT_EQ(after[0].window_id, w1);
    EXPECT_NE(figures_json(after[0].figures).find("different aggregate"), std::string::npos);
    EXPECT_EQ(w_again->store().ledger_entry(w1)->status, kReleased);
    EXPECT_EQ(w_again->store().patient_state("patient-dev-b").to_json(), state_before);
}

// One channel failing (SMS gateway down) does not hold back the other; attempts are
// recorded and retried with backoff until the limit.
TEST_F(DecryptorTest, FailingChannelIsRetriedAndDoesNotBlockEmail) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 30) * 60000;
    produce("dev-a", "tachycardia@0s+240s:150", start, 4);
    ASSERT_EQ(sealed_minutes(4).size(), 4u);
    write_private(dir_ / "sms.token", "gateway-token");
    DecryptorConfig c =
        load(write_config("[notify.sms]\nenabled = true\nurl = \"http://127.0.0.1:9/send\"\n"
                          "token_file = \"sms.token\"\nconnect_timeout_s = 1\ntimeout_s = 2\n",
                          "retry.db"));
    c.retry.max_attempts = 2;
    auto w = watcher(c);
    ASSERT_EQ(w->run_once(), 0);
    auto alerts = w->store().alerts("", false, 100);
    ASSERT_EQ(alerts.size(), 1u);
    auto d = w->store().deliveries(alerts[0].id);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].channel, "email");
    EXPECT_EQ(d[0].status, "sent");
    EXPECT_EQ(d[1].channel, "sms");
    EXPECT_EQ(d[1].status, "pending");
    EXPECT_EQ(d[1].attempts, 1);
    EXPECT_EQ(mails().size(), 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    EXPECT_EQ(w->deliver_due(), 1);
    d = w->store().deliveries(alerts[0].id);
    EXPECT_EQ(d[1].status, "failed");
    EXPECT_EQ(d[1].attempts, 2);
    EXPECT_FALSE(d[1].last_detail.empty());
    EXPECT_EQ(d[1].last_detail.find("gateway-token"), std::string::npos);
}

// A device that stops sending raises device_silent once the configured time has passed.
TEST_F(DecryptorTest, SilentDeviceRaisesAnAlert) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 30) * 60000;
    produce("dev-b", "", start, 3);
    ASSERT_EQ(sealed_minutes(3).size(), 3u);
    DecryptorConfig c =
        load(write_config("[rules.device_silent]\nenabled = true\nsustained = 1\n", "silent.db"));
    const std::int64_t silent_after = c.alerting.defaults.device_silent.silent_after_ms;
    ASSERT_GT(silent_after, 0);
    std::int64_t now = start + 3 * 60000 + silent_after / 2;
    auto w = watcher(c, [&now] { return now; });
    ASSERT_EQ(w->run_once(), 0);
    EXPECT_TRUE(w->store().alerts("", false, 100).empty());
    now = start + 3 * 60000 + silent_after + 60000;
    ASSERT_EQ(w->run_once(), 0);
    auto alerts = w->store().alerts("", false, 100);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].rule, "device_silent");
    EXPECT_EQ(alerts[0].patient, "patient-dev-b");
    ASSERT_EQ(w->run_once(), 0);
    EXPECT_EQ(w->store().alerts("", false, 100).size(), 1u) << "raised once, not every poll";
}

// Triage: in a burst, the window of a patient whose previous window showed signs is opened
// and committed first, so its alert leaves first, although the server lists it last.
TEST_F(DecryptorTest, PatientsShowingSignsAreOpenedFirstInABurst) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 30) * 60000;
    // dev-a: tachycardia from minute 1 on, nothing before. dev-b (windows listed after
    // dev-a's): its episode starts 45 s into minute 0, too late to raise there.
    produce("dev-a", "tachycardia@60s+240s:150", start, 3);
    produce("dev-b", "tachycardia@45s+255s:150", start, 3);
    fs::path path = write_config("", "triage.db");
    std::string text = read_text(path);
    text.replace(text.find("sustained = 2"), 13, "sustained = 1");
    text.replace(text.find("clear_after = 2"), 15, "clear_after = 1");
    std::ofstream(path) << text;
    DecryptorConfig c = load(path);
    c.threads = 1;  // chunks of 32 windows: one chunk per page here
    // Only minute 0 sealed: the server's clock between its seal time and minute 1's.
    offset_ms_ = start + 90'000 + 3 * 3600 * 1000 - server::now_unix_ms();
    auto w = watcher(c);
    for (int i = 0; i < 100 && w->store().patients().size() < 2; ++i) {
        ASSERT_EQ(w->run_once(), 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(w->store().alerts("", false, 10).empty()) << "minute 0 raises nothing";
    EXPECT_FALSE(w->store().patient_state("patient-dev-a").attention);
    ASSERT_TRUE(w->store().patient_state("patient-dev-b").attention);
    ASSERT_EQ(sealed_minutes(6).size(), 6u);
    ASSERT_EQ(w->run_once(), 0);
    auto alerts = w->store().alerts("", false, 10);  // newest first
    ASSERT_EQ(alerts.size(), 2u);
    EXPECT_EQ(alerts[0].patient, "patient-dev-a");
    EXPECT_EQ(alerts[1].patient, "patient-dev-b") << "dev-b's alert was queued first";
    EXPECT_LT(server_window_id("patient-dev-a", start + 60000),
              server_window_id("patient-dev-b", start + 60000))
        << "the server lists dev-a's window first";
}

// watch long-polls: a window that seals while it waits is processed at once, not at the
// next poll (20 s away here), and a stop cuts the wait short.
TEST_F(DecryptorTest, WatchHearsOfASealDuringItsLongPollAndStopsPromptly) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 30) * 60000;
    auto expected = produce("dev-b", "", start, 3);
    DecryptorConfig c = load(write_config("", "long.db"));
    c.poll_interval_ms = 20000;
    auto w = watcher(c);
    std::atomic<bool> stop{false};
    std::thread runner([&] { EXPECT_EQ(w->run(stop), 0); });
    struct StopGuard {  // an ASSERT returning early must not leave the thread joinable
        std::atomic<bool>& stop;
        std::thread& runner;
        ~StopGuard() {
            stop = true;
            if (runner.joinable()) {
                runner.join();
            }
        }
    } guard{stop, runner};
    auto ledger_size = [&] {
        auto st = StateStore::open(c.database);
        auto q = st.db().prepare("SELECT COUNT(*) FROM ledger");
        return q.step() ? q.column_int64(0) : -1;
    };
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the first poll is waiting
    EXPECT_EQ(ledger_size(), 0);
    ASSERT_EQ(sealed_minutes(3).size(), 3u);
    const auto sealed_at = std::chrono::steady_clock::now();
    while (ledger_size() < 3 &&
           std::chrono::steady_clock::now() - sealed_at < std::chrono::seconds(10)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(ledger_size(), 3) << "the seal was not seen before the next poll";
    auto reader = StateStore::open(c.database);  // the watcher's own is its thread's
    for (const auto& [minute, stats] : expected) {
        auto entry = reader.ledger_entry(server_window_id("patient-dev-b", minute));
        ASSERT_TRUE(entry);
        EXPECT_EQ(json::parse(entry->stats_json)["samples"].get<std::uint64_t>(), stats.samples);
    }
    const auto stopping = std::chrono::steady_clock::now();
    stop = true;
    runner.join();
    EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(10))
        << "stop waited for the long poll to time out";
}

// The real binary killed with SIGKILL at random moments while it watches: after a final
// run, the alert history equals that of an uninterrupted run, and every alert reached the
// SMTP server under its own Message-ID (again only after a kill between acceptance and the
// commit of "sent", as documented: deliveries are at least once).
TEST_F(DecryptorTest, KillNineNeitherLosesNorRepeatsAlerts) {
    const std::int64_t start = (server::now_unix_ms() / 60000 - 60) * 60000;
    produce("dev-a", "tachycardia@120s+300s:150, tachycardia@900s+300s:160", start, 24);
    produce("dev-c", "bradycardia@60s+420s:40", start, 24);
    ASSERT_EQ(sealed_minutes(48).size(), 48u);
    const fs::path config = write_config("[logging]\nlevel = \"warn\"\n", "killed.db");
    {
        // Re-verify every window against its signed records: slower, so kills land mid-work.
        std::string text = read_text(config);
        text.replace(text.find("verify_sample_rate = 0.0"), 24, "verify_sample_rate = 1.0");
        std::ofstream(config) << text;
    }
    std::mt19937 rng(5);
    int interrupted = 0;  // kills that left windows or deliveries unfinished
    for (int round = 0; round < 6; ++round) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::execl(CIPHERPULSE_DECRYPTOR_BIN, "cipherpulse-decryptor", "watch", "--config",
                    config.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 300));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the decryptor exited on its own: " << status;
        if (fs::exists(dir_ / "killed.db")) {
            auto db = StateStore::open((dir_ / "killed.db").string());
            auto st = db.db().prepare(
                "SELECT (SELECT COUNT(*) FROM ledger), "
                "(SELECT COUNT(*) FROM deliveries WHERE status = 'pending')");
            ASSERT_TRUE(st.step());
            if (st.column_int64(0) < 48 || st.column_int64(1) > 0) {
                ++interrupted;
            }
        }
    }
    EXPECT_GE(interrupted, 1) << "a kill should land while work is in progress";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execl(CIPHERPULSE_DECRYPTOR_BIN, "cipherpulse-decryptor", "watch", "--once", "--config",
                config.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

    // The same windows processed without interruption into a fresh database.
    DecryptorConfig reference = load(config);
    reference.database = (dir_ / "reference.db").string();
    reference.email_enabled = false;
    // One thread and pages of 7 (chunks of 32 windows): the same result as the killed
    // runs' pages of 1000 (the default) in chunks of 32 per core.
    reference.threads = 1;
    reference.page_size = 7;
    auto clean = watcher(reference);
    ASSERT_EQ(clean->run_once(), 0);
    auto keys_of = [](const std::vector<StoredAlert>& alerts) {
        std::multiset<std::string> keys;
        for (const auto& a : alerts) {
            keys.insert(a.key);
        }
        return keys;
    };
    auto expected = keys_of(clean->store().alerts("", false, 1000));
    ASSERT_GE(expected.size(), 4u);  // two tachycardia episodes and a bradycardia, raised+cleared
    auto killed = StateStore::open((dir_ / "killed.db").string());
    EXPECT_EQ(keys_of(killed.alerts("", false, 1000)), expected);
    auto ledger = killed.db().prepare("SELECT COUNT(*), COUNT(DISTINCT window_id) FROM ledger");
    ASSERT_TRUE(ledger.step());
    EXPECT_EQ(ledger.column_int64(0), 48);
    auto released = [](StateStore& db) {
        std::map<std::int64_t, std::string> out;
        auto st = db.db().prepare("SELECT window_id, status, COALESCE(stats, '') FROM ledger");
        while (st.step()) {
            out[st.column_int64(0)] = st.column_text(1) + " " + st.column_text(2);
        }
        return out;
    };
    EXPECT_EQ(released(killed), released(clean->store()));
    std::multiset<std::string> message_ids;
    for (const auto& m : mails()) {
        message_ids.insert(header_value(m, "Message-ID"));
    }
    // Every alert reached the SMTP server under its own Message-ID. Delivery is at least
    // once: a kill between the server's acceptance and the commit of "sent" resends the
    // same message (same Message-ID, so the receiver can drop it) - at most once per kill.
    EXPECT_EQ(std::set<std::string>(message_ids.begin(), message_ids.end()).size(), expected.size())
        << "an alert was lost or e-mailed under two Message-IDs";
    EXPECT_LE(message_ids.size(), expected.size() + 6) << "more resends than kills";
}

}  // namespace
}  // namespace cipherpulse::decryptor
