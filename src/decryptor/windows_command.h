// `cipherpulse-decryptor windows`: page through the server's sealed windows, decrypt each
// aggregate, check it against what the server claims, and print the statistics.
#pragma once

#include <iosfwd>
#include <string>

#include "decryptor/release.h"

namespace cipherpulse::decryptor {

struct WindowsOptions {
    std::string server_url;
    std::string ca_file;
    std::string token;  // decryptor role
    std::string granularity = "1m";
    std::string after = "0";       // cursor
    std::string format = "table";  // table | csv
};

// run_windows prints one line per released window: patient, start, records, samples, mean
// and sd of the heart rate, mean RR, RMSSD, share >= 100 bpm and < 50 bpm (the default rule
// thresholds) (from the histogram), contact-lost samples. A window whose decrypted record count
// differs from the server's claim, or whose statistics fail the codec's bounds, is reported as an
// integrity failure instead (exit code 4), never printed as data.
int run_windows(const KeyRing& keys, const WindowsOptions& options, std::ostream& out,
                std::ostream& err);

}  // namespace cipherpulse::decryptor
