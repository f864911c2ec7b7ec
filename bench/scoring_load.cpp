// End-to-end risk scoring against a running cipherpulse-server over HTTPS on loopback, as
// the hospital's client does it (encode, encrypt, send, score on the server, decrypt):
//  - one patient per request with a warm client (randomness made ahead of time), p50/p99;
//  - 1,000 patients per run, packed and one-per-row, in the same run, medians and ratio.
// Every result is checked against the plaintext fixed-point model: a wrong score fails the
// run. Run through bench/run_scoring_bench.sh, which sets the server up.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "decryptor/scoring_client.h"
#include "load_common.h"
#include "scoring/model.h"
#include "scoring/table.h"

namespace {

using namespace cipherpulse;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

double median(std::vector<double> v) {
    return percentile(std::move(v), 0.5);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"scoring_load: end-to-end encrypted risk scoring against a running server"};
    std::string url, ca, token_file, model_id = "heart-cleveland-lr", data, model_file;
    int singles = 300, patients = 1000, repeats = 5;
    std::size_t bits = 2048;
    bool json_out = false;
    app.add_option("--url", url, "server URL (https://127.0.0.1:PORT)")->required();
    app.add_option("--ca", ca, "CA certificate of the server");
    app.add_option("--token-file", token_file, "clinician token file")->required();
    app.add_option("--model", model_id, "model id")->capture_default_str();
    app.add_option("--model-file", model_file, "the owner's model file, to check every score")
        ->required();
    app.add_option("--data", data, "table of patients (the Cleveland CSV)")->required();
    app.add_option("--singles", singles, "one-patient requests timed")->capture_default_str();
    app.add_option("--patients", patients, "patients per batch run")->capture_default_str();
    app.add_option("--repeats", repeats, "batch runs of each kind")->capture_default_str();
    app.add_option("--bits", bits, "scoring key size")->capture_default_str();
    app.add_flag("--json", json_out, "print one JSON line of results on stdout");
    CLI11_PARSE(app, argc, argv);
    bench::install_interrupt_handlers();

    std::string token;
    {
        std::ifstream in(token_file);
        std::getline(in, token);
    }
    std::ifstream model_in(model_file);
    std::stringstream model_text;
    model_text << model_in.rdbuf();
    const scoring::Model model = scoring::parse_model(model_text.str()).value();
    const scoring::Table table = scoring::read_table(data).value();
    std::vector<std::vector<std::int64_t>> rows;
    for (std::size_t i = 0; i < table.rows.size(); ++i) {
        auto x = scoring::encode_row(model, table.row_values(i));
        if (x) {
            rows.push_back(x.value());
        }
    }
    std::vector<std::vector<std::int64_t>> cohort;
    for (int i = 0; i < patients; ++i) {
        cohort.push_back(rows[static_cast<std::size_t>(i) % rows.size()]);
    }
    auto check = [&](const std::vector<std::vector<std::int64_t>>& in,
                     const std::vector<std::int64_t>& z) {
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (z[i] != scoring::fixed_score(model, in[i])) {
                std::cerr << "score " << i << " differs from the plaintext model\n";
                std::exit(1);
            }
        }
    };
    std::cerr << "generating a " << bits << "-bit scoring key\n";
    PrivateKey key = PrivateKey::generate(bits);
    auto http = common::make_http_client(url, ca, 60);
    // Warm: every single request's randomness is in the pool before timing starts.
    const std::size_t d = model.inputs.size();
    decryptor::ScoringClient warm(*http, token, key,
                                  static_cast<std::size_t>(singles + 20) * d);
    auto spec_result = warm.fetch_spec(model_id);
    if (!spec_result.ok()) {
        std::cerr << spec_result.error.message << "\n";
        return 1;
    }
    const scoring::PublicSpec spec = *spec_result.value;
    std::cerr << "filling the client's randomness pool\n";
    for (int i = 0; i < 20; ++i) {  // connection, server key cache and pool warm-up
        auto z = warm.score(spec, {rows[0]}, false, 1);
        if (!z.ok()) {
            std::cerr << z.error.message << "\n";
            return 1;
        }
    }
    // The refill catches up with what the warm-up took before timing starts.
    if (!warm.wait_until_warm(std::chrono::minutes(5))) {
        std::cerr << "the randomness pool did not fill\n";
        return 1;
    }
    std::vector<double> single_ms;
    for (int i = 0; i < singles && !bench::interrupted(); ++i) {
        const auto& x = rows[static_cast<std::size_t>(i) % rows.size()];
        const auto t0 = Clock::now();
        auto z = warm.score(spec, {x}, false, 1);
        single_ms.push_back(ms_since(t0));
        if (!z.ok()) {
            std::cerr << z.error.message << "\n";
            return 1;
        }
        check({x}, *z.value);
    }
    // Batches: a client as the command line is, encrypting on both cores as it goes.
    decryptor::ScoringClient cold(*http, token, key);
    (void)cold.score(spec, {rows[0], rows[1]}, true, 1000);  // builds the DJN table once
    std::vector<double> packed_ms, unpacked_ms;
    for (int r = 0; r < repeats && !bench::interrupted(); ++r) {
        auto t0 = Clock::now();
        auto z = cold.score(spec, cohort, true, 10000);
        packed_ms.push_back(ms_since(t0));
        if (!z.ok()) {
            std::cerr << z.error.message << "\n";
            return 1;
        }
        check(cohort, *z.value);
        t0 = Clock::now();
        // 250 rows a request: 5,000 ciphertexts, 3.4 MB, within the 4 MiB body limit.
        z = cold.score(spec, cohort, false, 250);
        unpacked_ms.push_back(ms_since(t0));
        if (!z.ok()) {
            std::cerr << z.error.message << "\n";
            return 1;
        }
        check(cohort, *z.value);
    }
    const double p50 = percentile(single_ms, 0.5), p99 = percentile(single_ms, 0.99);
    const double packed = median(packed_ms), unpacked = median(unpacked_ms);
    std::cerr << "one patient, warm client, " << single_ms.size() << " requests: p50 " << p50
              << " ms, p99 " << p99 << " ms (target p50 <= 5 ms)\n"
              << patients << " patients packed: median " << packed << " ms of " << repeats
              << " (target <= 1000 ms); one per row: median " << unpacked
              << " ms; unpacked / packed = " << unpacked / packed << "\n"
              << "every score equal to the plaintext fixed-point model: yes\n";
    if (json_out) {
        std::cout << nlohmann::json{{"bits", bits},
                                    {"single_requests", single_ms.size()},
                                    {"single_p50_ms", p50},
                                    {"single_p99_ms", p99},
                                    {"patients", patients},
                                    {"packed_median_ms", packed},
                                    {"unpacked_median_ms", unpacked},
                                    {"unpacked_over_packed", unpacked / packed},
                                    {"packed_runs_ms", packed_ms},
                                    {"unpacked_runs_ms", unpacked_ms}}
                         .dump()
                  << "\n";
    }
    return 0;
}
