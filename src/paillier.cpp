#include "cipherpulse/paillier.h"

#include <openssl/bn.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

#include "cipherpulse/base64url.h"

namespace cipherpulse {
namespace detail {

// FixedBaseTable holds hs^(d * 2^(w*i)) mod n^2 for every window i and digit d in
// 1..2^w-1, so hs^a for an exponent of ceil(|n|/2) bits costs one multiplication per w
// exponent bits and no squarings. w is 8 below 3072-bit moduli (17 MB at 2048 bits) and 9
// from 3072 bits on (67 MB), where the ninth bit buys the 12% that keeps fast mode above 12x
// the textbook encryption.
struct FixedBaseTable {
    unsigned window_bits = 8;
    unsigned digits = 255;  // 2^w - 1 entries per window
    std::size_t windows = 0;
    std::vector<BigInt> entries;  // entry (i, d) at i * digits + d - 1
    const BigInt& at(std::size_t window, unsigned digit) const {
        return entries[window * digits + digit - 1];
    }
};

struct PublicKeyState {
    BigInt n;
    BigInt n_squared;
    BigInt hs;
    BigInt half_n;  // (n - 1) / 2, the largest magnitude encode_signed accepts
    std::size_t bits = 0;
    std::size_t exponent_bits = 0;   // ceil(bits / 2), the DJN exponent length
    unsigned table_window_bits = 0;  // 0: the default for the size
    std::size_t ciphertext_bytes = 0;
    std::string kid;
    std::uint64_t fingerprint = 0;
    mutable std::once_flag table_once;
    mutable std::unique_ptr<FixedBaseTable> table;

    const FixedBaseTable& fixed_base_table() const {
        std::call_once(table_once, [this] { table = build_table(); });
        return *table;
    }

    std::unique_ptr<FixedBaseTable> build_table() const {
        auto t = std::make_unique<FixedBaseTable>();
        t->window_bits = table_window_bits != 0 ? table_window_bits : (bits >= 3072 ? 9 : 8);
        t->digits = (1u << t->window_bits) - 1;
        t->windows = (exponent_bits + t->window_bits - 1) / t->window_bits;
        t->entries.resize(t->windows * t->digits);
        BigInt base = hs;  // hs^(2^(8i)) for the current window
        BigInt tmp;
        for (std::size_t i = 0; i < t->windows; ++i) {
            BigInt* row = &t->entries[i * t->digits];
            row[0] = base;
            for (unsigned d = 2; d <= t->digits; ++d) {
                mpz_mul(tmp.get(), row[d - 2].get(), base.get());
                mpz_tdiv_r(row[d - 1].get(), tmp.get(), n_squared.get());
            }
            // base^(2^w) = row[2^w - 2] * base.
            mpz_mul(tmp.get(), row[t->digits - 1].get(), base.get());
            mpz_tdiv_r(base.get(), tmp.get(), n_squared.get());
        }
        return t;
    }
};

// OpenSSL handles for the constant-time exponentiations of decryption.
struct BignumFree {
    void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
struct MontFree {
    void operator()(BN_MONT_CTX* m) const { BN_MONT_CTX_free(m); }
};
using Bignum = std::unique_ptr<BIGNUM, BignumFree>;
using MontCtx = std::unique_ptr<BN_MONT_CTX, MontFree>;

// CrtHalf is one prime's share of decryption: c^(r-1) mod r^2 for r = p or q, through
// BN_mod_exp_mont_consttime (fixed window, cache-timing-safe table access), which is faster
// than mpz_powm_sec on these sizes.
struct CrtHalf {
    Bignum modulus;   // r^2
    Bignum exponent;  // r - 1, flagged BN_FLG_CONSTTIME
    MontCtx mont;
};

struct PrivateKeyState {
    BigInt p, q, p_squared, q_squared, p_minus_1, q_minus_1;
    CrtHalf crt_p, crt_q;
    BigInt hp, hq;      // L_p((n+1)^(p-1) mod p^2)^-1 mod p, likewise for q
    BigInt p_inv_q;     // p^-1 mod q for CRT recombination
    BigInt lambda, mu;  // for decrypt_textbook
};

}  // namespace detail

namespace {

using detail::PrivateKeyState;
using detail::PublicKeyState;

// Scratch space for the hot paths, so a homomorphic addition allocates nothing.
BigInt& scratch() {
    thread_local BigInt tmp;
    return tmp;
}

BigInt random_below(const BigInt& bound) {
    std::size_t bits = bound.bit_length();
    std::vector<std::uint8_t> buf((bits + 7) / 8);
    unsigned excess = static_cast<unsigned>(buf.size() * 8 - bits);
    BigInt out;
    for (;;) {
        random_bytes(buf);
        buf[0] &= static_cast<std::uint8_t>(0xff >> excess);
        mpz_import(out.get(), buf.size(), 1, 1, 0, 0, buf.data());
        if (mpz_sgn(out.get()) > 0 && mpz_cmp(out.get(), bound.get()) < 0) {
            secure_wipe(buf.data(), buf.size());
            return out;
        }
    }
}

BigInt random_unit(const BigInt& n) {
    BigInt r;
    BigInt g;
    for (;;) {
        r = random_below(n);
        mpz_gcd(g.get(), r.get(), n.get());
        if (mpz_cmp_ui(g.get(), 1) == 0) {
            return r;
        }
    }
}

BigInt random_bits(std::size_t bits) {
    std::vector<std::uint8_t> buf((bits + 7) / 8);
    random_bytes(buf);
    unsigned excess = static_cast<unsigned>(buf.size() * 8 - bits);
    buf[0] &= static_cast<std::uint8_t>(0xff >> excess);
    BigInt out = BigInt::from_bytes(buf);
    secure_wipe(buf.data(), buf.size());
    return out;
}

std::string compute_kid(const BigInt& n) {
    auto digest = sha256(n.to_bytes());
    return base64url_encode(digest);
}

std::uint64_t compute_fingerprint(const BigInt& n) {
    auto digest = sha256(n.to_bytes());
    std::uint64_t fp = 0;
    for (int i = 0; i < 8; ++i) {
        fp = (fp << 8) | digest[static_cast<std::size_t>(i)];
    }
    return fp;
}

std::size_t min_bits(KeyPolicy policy) {
    return policy == KeyPolicy::kProduction ? kMinimumModulusBits : kMinimumTestModulusBits;
}

// derive_hs picks x uniform in Z_n^* and returns (-x^2 mod n)^n mod n^2 (DJN's h_s).
BigInt derive_hs(const BigInt& n, const BigInt& n_squared) {
    BigInt x = random_unit(n);
    BigInt h;
    mpz_mul(h.get(), x.get(), x.get());
    mpz_neg(h.get(), h.get());
    mpz_mod(h.get(), h.get(), n.get());
    BigInt hs;
    mpz_powm(hs.get(), h.get(), n.get(), n_squared.get());
    return hs;
}

Status check_modulus(const BigInt& n, KeyPolicy policy) {
    if (n.sign() <= 0 || mpz_even_p(n.get())) {
        return make_error(ErrorCode::kInvalidKey, "Paillier modulus n must be odd and positive");
    }
    std::size_t bits = n.bit_length();
    if (bits < min_bits(policy)) {
        return make_error(ErrorCode::kInvalidKey, "Paillier modulus of " + std::to_string(bits) +
                                                      " bits is too small (minimum " +
                                                      std::to_string(min_bits(policy)) + ")");
    }
    if (bits > 16384) {
        return make_error(ErrorCode::kInvalidKey, "Paillier modulus larger than 16384 bits");
    }
    if (mpz_perfect_square_p(n.get())) {
        return make_error(ErrorCode::kInvalidKey, "Paillier modulus is a perfect square");
    }
    // A product of two large primes has no small factor.
    static constexpr unsigned long kSmallPrimesProduct =
        3ul * 5 * 7 * 11 * 13 * 17 * 19 * 23 * 29 * 31 * 37 * 41 * 43 * 47;
    if (mpz_gcd_ui(nullptr, n.get(), kSmallPrimesProduct) != 1) {
        return make_error(ErrorCode::kInvalidKey, "Paillier modulus has a small factor");
    }
    return Ok{};
}

// Decodes a base64url big integer field of a JSON object.
Result<BigInt> json_bigint(const nlohmann::json& doc, const char* field, bool required,
                           bool& present) {
    present = false;
    auto it = doc.find(field);
    if (it == doc.end()) {
        if (required) {
            return make_error(ErrorCode::kInvalidKey,
                              std::string("key document lacks \"") + field + "\"");
        }
        return BigInt();
    }
    if (!it->is_string()) {
        return make_error(ErrorCode::kInvalidKey,
                          std::string("key field \"") + field + "\" must be a string");
    }
    auto value = BigInt::from_base64url(it->get_ref<const std::string&>());
    if (!value) {
        return make_error(ErrorCode::kInvalidKey,
                          std::string("key field \"") + field + "\": " + value.error().message);
    }
    present = true;
    return value;
}

Result<nlohmann::json> parse_key_object(std::string_view text) {
    nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return make_error(ErrorCode::kInvalidEncoding, "key document is not a JSON object");
    }
    auto kty = doc.find("kty");
    if (kty == doc.end() || !kty->is_string() || kty->get_ref<const std::string&>() != "Paillier") {
        return make_error(ErrorCode::kUnsupported, "key document is not {\"kty\":\"Paillier\"}");
    }
    return doc;
}

}  // namespace

// ---------------------------------------------------------------------------- PublicKey

PublicKey::PublicKey(std::shared_ptr<const detail::PublicKeyState> state)
    : state_(std::move(state)) {}

Result<PublicKey> PublicKey::from_modulus(const BigInt& n, const std::optional<BigInt>& hs,
                                          KeyPolicy policy) {
    install_secure_gmp_allocator();
    if (auto status = check_modulus(n, policy); !status) {
        return status.error();
    }
    auto state = std::make_shared<PublicKeyState>();
    state->n = n;
    mpz_mul(state->n_squared.get(), n.get(), n.get());
    state->bits = n.bit_length();
    state->exponent_bits = (state->bits + 1) / 2;
    state->ciphertext_bytes = (state->n_squared.bit_length() + 7) / 8;
    mpz_sub_ui(state->half_n.get(), n.get(), 1);
    mpz_fdiv_q_2exp(state->half_n.get(), state->half_n.get(), 1);
    state->kid = compute_kid(n);
    state->fingerprint = compute_fingerprint(n);
    if (hs) {
        BigInt g;
        mpz_gcd(g.get(), hs->get(), n.get());
        if (hs->sign() <= 0 || *hs >= state->n_squared || mpz_cmp_ui(g.get(), 1) != 0) {
            return make_error(ErrorCode::kInvalidKey,
                              "DJN base hs must be in (0, n^2) and coprime to n");
        }
        // hs = 1, -1 or any other square root of 1 would make fast-mode randomness
        // trivial (c = +-(1 + m n)).
        mpz_powm_ui(g.get(), hs->get(), 2, state->n_squared.get());
        if (mpz_cmp_ui(g.get(), 1) == 0) {
            return make_error(ErrorCode::kInvalidKey, "DJN base hs has order at most 2");
        }
        state->hs = *hs;
    } else {
        state->hs = derive_hs(n, state->n_squared);
    }
    return PublicKey(std::move(state));
}

Result<PublicKey> PublicKey::from_json(std::string_view json, KeyPolicy policy) {
    auto doc = parse_key_object(json);
    if (!doc) {
        return doc.error();
    }
    bool has_n = false;
    bool has_hs = false;
    auto n = json_bigint(doc.value(), "n", true, has_n);
    if (!n) {
        return n.error();
    }
    auto hs = json_bigint(doc.value(), "hs", false, has_hs);
    if (!hs) {
        return hs.error();
    }
    auto key =
        from_modulus(n.value(), has_hs ? std::optional<BigInt>(hs.value()) : std::nullopt, policy);
    if (!key) {
        return key.error();
    }
    auto kid = doc.value().find("kid");
    if (kid != doc.value().end() &&
        (!kid->is_string() || kid->get_ref<const std::string&>() != key.value().kid())) {
        return make_error(ErrorCode::kInvalidKey, "key document \"kid\" does not match n");
    }
    return key;
}

std::string PublicKey::to_json() const {
    nlohmann::ordered_json doc;
    doc["kty"] = "Paillier";
    doc["kid"] = state_->kid;
    doc["n"] = state_->n.to_base64url();
    doc["hs"] = state_->hs.to_base64url();
    return doc.dump();
}

const BigInt& PublicKey::n() const {
    return state_->n;
}
const BigInt& PublicKey::n_squared() const {
    return state_->n_squared;
}
const BigInt& PublicKey::hs() const {
    return state_->hs;
}
std::size_t PublicKey::modulus_bits() const {
    return state_->bits;
}
std::size_t PublicKey::ciphertext_bytes() const {
    return state_->ciphertext_bytes;
}
const std::string& PublicKey::kid() const {
    return state_->kid;
}
std::uint64_t PublicKey::fingerprint() const {
    return state_->fingerprint;
}

PublicKey PublicKey::with_fast_table_window(unsigned window_bits) const {
    if (window_bits < 4 || window_bits > 10) {
        throw std::invalid_argument("fast-mode table window must be 4 to 10 bits");
    }
    auto state = std::make_shared<PublicKeyState>();
    state->n = state_->n;
    state->n_squared = state_->n_squared;
    state->hs = state_->hs;
    state->half_n = state_->half_n;
    state->bits = state_->bits;
    state->exponent_bits = state_->exponent_bits;
    state->ciphertext_bytes = state_->ciphertext_bytes;
    state->kid = state_->kid;
    state->fingerprint = state_->fingerprint;
    state->table_window_bits = window_bits;
    return PublicKey(std::move(state));
}

bool operator==(const PublicKey& a, const PublicKey& b) {
    return a.state_ == b.state_ || (a.state_->n == b.state_->n && a.state_->hs == b.state_->hs);
}

void PublicKey::check_same_key(const Ciphertext& c) const {
    if (c.fingerprint_ != state_->fingerprint) {
        throw std::invalid_argument("ciphertext belongs to another Paillier key");
    }
}

Result<BigInt> PublicKey::check_plaintext(const BigInt& m) const {
    if (m.sign() < 0 || m >= state_->n) {
        return make_error(ErrorCode::kOutOfRange, "plaintext must satisfy 0 <= m < n");
    }
    return m;
}

Result<BigInt> PublicKey::encode_signed(const BigInt& v) const {
    BigInt magnitude;
    mpz_abs(magnitude.get(), v.get());
    if (magnitude > state_->half_n) {
        return make_error(ErrorCode::kOutOfRange, "signed plaintext magnitude exceeds (n-1)/2");
    }
    if (v.sign() >= 0) {
        return v;
    }
    BigInt out;
    mpz_add(out.get(), state_->n.get(), v.get());
    return out;
}

BigInt PublicKey::decode_signed(const BigInt& m) const {
    if (m > state_->half_n) {
        BigInt out;
        mpz_sub(out.get(), m.get(), state_->n.get());
        return out;
    }
    return m;
}

BigInt PublicKey::make_randomizer(EncryptionMode mode) const {
    if (mode == EncryptionMode::kTextbook) {
        BigInt r = random_unit(state_->n);
        BigInt rn;
        mpz_powm(rn.get(), r.get(), state_->n.get(), state_->n_squared.get());
        return rn;
    }
    BigInt a = random_bits(state_->exponent_bits);
    BigInt out = unsafe_djn_randomizer(a);
    mpz_set_ui(a.get(), 0);
    return out;
}

BigInt PublicKey::unsafe_djn_randomizer(const BigInt& a) const {
    if (a.sign() < 0 || a.bit_length() > state_->exponent_bits) {
        throw std::out_of_range("DJN exponent must have at most ceil(|n|/2) bits");
    }
    const auto& table = state_->fixed_base_table();
    // Little-endian 64-bit words of a, with a spare word so a window may straddle the end.
    std::vector<std::uint64_t> words((state_->exponent_bits + 63) / 64 + 1, 0);
    std::size_t count = 0;
    mpz_export(words.data(), &count, -1, sizeof(std::uint64_t), 0, 0, a.get());
    const std::uint64_t mask = (std::uint64_t{1} << table.window_bits) - 1;
    BigInt acc;
    bool started = false;
    BigInt tmp;
    for (std::size_t i = 0; i < table.windows; ++i) {
        std::size_t bit = i * table.window_bits;
        std::size_t word = bit / 64;
        unsigned shift = static_cast<unsigned>(bit % 64);
        std::uint64_t v = words[word] >> shift;
        if (shift + table.window_bits > 64) {
            v |= words[word + 1] << (64 - shift);
        }
        auto digit = static_cast<unsigned>(v & mask);
        if (digit == 0) {
            continue;
        }
        if (!started) {
            acc = table.at(i, digit);
            started = true;
            continue;
        }
        mpz_mul(tmp.get(), acc.get(), table.at(i, digit).get());
        mpz_tdiv_r(acc.get(), tmp.get(), state_->n_squared.get());
    }
    secure_wipe(words.data(), words.size() * sizeof(std::uint64_t));
    if (!started) {
        acc = BigInt(1);  // a = 0
    }
    return acc;
}

Ciphertext PublicKey::encrypt_with_randomizer(const BigInt& m, const BigInt& randomizer) const {
    if (m.sign() < 0 || m >= state_->n) {
        throw std::out_of_range("plaintext must satisfy 0 <= m < n");
    }
    // (1 + m n) rn = rn + n * (m rn mod n)  (mod n^2): one multiplication of |n| by |n^2| bits
    // and one by |n| bits instead of a full product modulo n^2.
    BigInt c;
    BigInt& t = scratch();
    mpz_mul(t.get(), m.get(), randomizer.get());
    mpz_tdiv_r(t.get(), t.get(), state_->n.get());
    mpz_mul(t.get(), t.get(), state_->n.get());
    mpz_add(c.get(), t.get(), randomizer.get());
    if (mpz_cmp(c.get(), state_->n_squared.get()) >= 0) {
        mpz_sub(c.get(), c.get(), state_->n_squared.get());
    }
    return Ciphertext(std::move(c), state_->fingerprint);
}

Ciphertext PublicKey::encrypt(const BigInt& m, EncryptionMode mode) const {
    if (m.sign() < 0 || m >= state_->n) {
        throw std::out_of_range("plaintext must satisfy 0 <= m < n");
    }
    BigInt rn = make_randomizer(mode);
    Ciphertext c = encrypt_with_randomizer(m, rn);
    mpz_set_ui(rn.get(), 0);
    return c;
}

Ciphertext PublicKey::unsafe_encrypt_with_r(const BigInt& m, const BigInt& r) const {
    BigInt rn;
    mpz_powm(rn.get(), r.get(), state_->n.get(), state_->n_squared.get());
    return encrypt_with_randomizer(m, rn);
}

Ciphertext PublicKey::unsafe_ciphertext(BigInt c) const {
    return Ciphertext(std::move(c), state_->fingerprint);
}

Result<Ciphertext> PublicKey::validate_ciphertext(const BigInt& c) const {
    if (c.sign() <= 0) {
        return make_error(ErrorCode::kOutOfRange, "ciphertext must be positive");
    }
    if (c >= state_->n_squared) {
        return make_error(ErrorCode::kOutOfRange, "ciphertext must be below n^2");
    }
    BigInt& g = scratch();
    mpz_gcd(g.get(), c.get(), state_->n.get());
    if (mpz_cmp_ui(g.get(), 1) != 0) {
        return make_error(ErrorCode::kOutOfRange, "ciphertext shares a factor with n");
    }
    return Ciphertext(c, state_->fingerprint);
}

Result<Ciphertext> PublicKey::parse_ciphertext(std::span<const std::uint8_t> bytes) const {
    if (bytes.size() != state_->ciphertext_bytes) {
        return make_error(ErrorCode::kInvalidLength,
                          "ciphertext has " + std::to_string(bytes.size()) + " bytes, expected " +
                              std::to_string(state_->ciphertext_bytes));
    }
    return validate_ciphertext(BigInt::from_bytes(bytes));
}

Result<Ciphertext> PublicKey::parse_ciphertext_base64url(std::string_view text) const {
    // Reject oversized text before decoding it.
    if (text.size() > (state_->ciphertext_bytes * 4 + 2) / 3 + 4) {
        return make_error(ErrorCode::kInvalidLength, "ciphertext text too long");
    }
    auto bytes = base64url_decode(text);
    if (!bytes) {
        return make_error(ErrorCode::kInvalidEncoding, "ciphertext: " + bytes.error().message);
    }
    return parse_ciphertext(bytes.value());
}

std::vector<Result<Ciphertext>> PublicKey::parse_ciphertexts_base64url(
    std::span<const std::string_view> texts, std::vector<std::vector<std::uint8_t>>* bytes) const {
    const std::size_t count = texts.size();
    std::vector<std::optional<Result<Ciphertext>>> slots(count);
    std::vector<std::vector<std::uint8_t>> raw(bytes != nullptr ? count : 0);
    // parse_range checks texts[begin, end) into their slots and returns the product of the
    // values that passed, modulo n: gcd(prod c_i mod n, n) = 1 iff every c_i is a unit.
    auto parse_range = [&](std::size_t begin, std::size_t end) {
        BigInt product(1);
        BigInt& t = scratch();
        for (std::size_t i = begin; i < end; ++i) {
            const std::string_view text = texts[i];
            if (text.size() > (state_->ciphertext_bytes * 4 + 2) / 3 + 4) {
                slots[i] = make_error(ErrorCode::kInvalidLength, "ciphertext text too long");
                continue;
            }
            auto decoded = base64url_decode(text);
            if (!decoded) {
                slots[i] = make_error(ErrorCode::kInvalidEncoding,
                                      "ciphertext: " + decoded.error().message);
                continue;
            }
            if (decoded.value().size() != state_->ciphertext_bytes) {
                slots[i] =
                    make_error(ErrorCode::kInvalidLength,
                               "ciphertext has " + std::to_string(decoded.value().size()) +
                                   " bytes, expected " + std::to_string(state_->ciphertext_bytes));
                continue;
            }
            BigInt c = BigInt::from_bytes(decoded.value());
            if (c.sign() <= 0) {
                slots[i] = make_error(ErrorCode::kOutOfRange, "ciphertext must be positive");
                continue;
            }
            if (c >= state_->n_squared) {
                slots[i] = make_error(ErrorCode::kOutOfRange, "ciphertext must be below n^2");
                continue;
            }
            mpz_mul(t.get(), product.get(), c.get());
            mpz_tdiv_r(product.get(), t.get(), state_->n.get());
            if (bytes != nullptr) {
                raw[i] = std::move(decoded).value();
            }
            slots[i] = Ciphertext(std::move(c), state_->fingerprint);
        }
        return product;
    };
    // Large batches (a cohort query's 30,000 windows) are split over the cores, as sum is.
    constexpr std::size_t kParallelThreshold = 2048;
    const std::size_t threads =
        count < kParallelThreshold
            ? 1
            : std::min<std::size_t>(8, std::max(1u, std::thread::hardware_concurrency()));
    const std::size_t chunk = (count + threads - 1) / std::max<std::size_t>(threads, 1);
    std::vector<BigInt> partials(threads);
    std::vector<std::thread> workers;
    for (std::size_t w = 1; w < threads; ++w) {
        const std::size_t begin = std::min(count, w * chunk);
        const std::size_t end = std::min(count, begin + chunk);
        workers.emplace_back([&, w, begin, end] { partials[w] = parse_range(begin, end); });
    }
    partials[0] = parse_range(0, std::min(count, chunk));
    for (auto& w : workers) {
        w.join();
    }
    BigInt product = std::move(partials[0]);
    BigInt& t = scratch();
    for (std::size_t w = 1; w < threads; ++w) {
        mpz_mul(t.get(), product.get(), partials[w].get());
        mpz_tdiv_r(product.get(), t.get(), state_->n.get());
    }
    std::vector<Result<Ciphertext>> out;
    out.reserve(count);
    for (auto& slot : slots) {
        out.push_back(std::move(*slot));
    }
    BigInt g;
    mpz_gcd(g.get(), product.get(), state_->n.get());
    if (mpz_cmp_ui(g.get(), 1) != 0) {
        for (std::size_t i = 0; i < count; ++i) {
            if (!out[i]) {
                continue;
            }
            mpz_gcd(g.get(), out[i].value().value().get(), state_->n.get());
            if (mpz_cmp_ui(g.get(), 1) != 0) {
                out[i] = make_error(ErrorCode::kOutOfRange, "ciphertext shares a factor with n");
                if (bytes != nullptr) {
                    raw[i].clear();
                }
            }
        }
    }
    if (bytes != nullptr) {
        *bytes = std::move(raw);
    }
    return out;
}

std::vector<std::uint8_t> PublicKey::serialize(const Ciphertext& c) const {
    check_same_key(c);
    return c.c_.to_fixed_bytes(state_->ciphertext_bytes);
}

std::string PublicKey::serialize_base64url(const Ciphertext& c) const {
    return base64url_encode(serialize(c));
}

void PublicKey::add_in_place(Ciphertext& acc, const Ciphertext& b) const {
    check_same_key(acc);
    check_same_key(b);
    BigInt& t = scratch();
    mpz_mul(t.get(), acc.c_.get(), b.c_.get());
    mpz_tdiv_r(acc.c_.get(), t.get(), state_->n_squared.get());
}

Ciphertext PublicKey::add(const Ciphertext& a, const Ciphertext& b) const {
    check_same_key(a);
    check_same_key(b);
    BigInt c;
    BigInt& t = scratch();
    mpz_mul(t.get(), a.c_.get(), b.c_.get());
    mpz_tdiv_r(c.get(), t.get(), state_->n_squared.get());
    return Ciphertext(std::move(c), state_->fingerprint);
}

Ciphertext PublicKey::add_plain(const Ciphertext& a, const BigInt& m) const {
    check_same_key(a);
    if (m.sign() < 0 || m >= state_->n) {
        throw std::out_of_range("plaintext must satisfy 0 <= m < n");
    }
    // c (1 + m n) = c + n (m c mod n)  (mod n^2)
    BigInt c;
    BigInt& t = scratch();
    mpz_mul(t.get(), m.get(), a.c_.get());
    mpz_tdiv_r(t.get(), t.get(), state_->n.get());
    mpz_mul(t.get(), t.get(), state_->n.get());
    mpz_add(c.get(), t.get(), a.c_.get());
    if (mpz_cmp(c.get(), state_->n_squared.get()) >= 0) {
        mpz_sub(c.get(), c.get(), state_->n_squared.get());
    }
    return Ciphertext(std::move(c), state_->fingerprint);
}

Ciphertext PublicKey::multiply(const Ciphertext& a, const BigInt& k) const {
    check_same_key(a);
    BigInt c;
    if (k.sign() >= 0) {
        mpz_powm(c.get(), a.c_.get(), k.get(), state_->n_squared.get());
    } else {
        BigInt inverse;
        if (mpz_invert(inverse.get(), a.c_.get(), state_->n_squared.get()) == 0) {
            throw std::logic_error("validated ciphertext has no inverse modulo n^2");
        }
        BigInt magnitude;
        mpz_neg(magnitude.get(), k.get());
        mpz_powm(c.get(), inverse.get(), magnitude.get(), state_->n_squared.get());
    }
    return Ciphertext(std::move(c), state_->fingerprint);
}

Ciphertext PublicKey::sum(std::span<const Ciphertext> ciphertexts) const {
    for (const auto& c : ciphertexts) {
        check_same_key(c);
    }
    auto product = [this](std::span<const Ciphertext> part) {
        BigInt acc(1);
        BigInt t;
        for (const auto& c : part) {
            mpz_mul(t.get(), acc.get(), c.c_.get());
            mpz_tdiv_r(acc.get(), t.get(), state_->n_squared.get());
        }
        return acc;
    };
    constexpr std::size_t kParallelThreshold = 2048;
    std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
    if (ciphertexts.size() < kParallelThreshold || threads == 1) {
        return Ciphertext(product(ciphertexts), state_->fingerprint);
    }
    threads = std::min<std::size_t>(threads, 8);
    std::vector<BigInt> partials(threads);
    std::vector<std::thread> workers;
    std::size_t chunk = (ciphertexts.size() + threads - 1) / threads;
    for (std::size_t i = 1; i < threads; ++i) {
        std::size_t begin = std::min(ciphertexts.size(), i * chunk);
        std::size_t end = std::min(ciphertexts.size(), begin + chunk);
        workers.emplace_back(
            [&, i, begin, end] { partials[i] = product(ciphertexts.subspan(begin, end - begin)); });
    }
    partials[0] = product(ciphertexts.subspan(0, std::min(chunk, ciphertexts.size())));
    for (auto& w : workers) {
        w.join();
    }
    BigInt acc = std::move(partials[0]);
    BigInt t;
    for (std::size_t i = 1; i < threads; ++i) {
        mpz_mul(t.get(), acc.get(), partials[i].get());
        mpz_tdiv_r(acc.get(), t.get(), state_->n_squared.get());
    }
    return Ciphertext(std::move(acc), state_->fingerprint);
}

Ciphertext PublicKey::linear_combination(std::span<const Ciphertext> ciphertexts,
                                         std::span<const BigInt> weights) const {
    if (ciphertexts.size() != weights.size()) {
        throw std::invalid_argument("linear_combination: one weight per ciphertext");
    }
    for (const auto& c : ciphertexts) {
        check_same_key(c);
    }
    const mpz_srcptr modulus = state_->n_squared.get();
    // One left-to-right square-and-multiply over the bits of all |w_i| at once, for the
    // positive and the negative weights separately; the negative product is inverted once.
    auto interleaved = [&](bool negative) {
        std::vector<std::size_t> terms;
        std::vector<BigInt> magnitudes;
        std::size_t top = 0;
        for (std::size_t i = 0; i < weights.size(); ++i) {
            if ((weights[i].sign() < 0) == negative && !weights[i].is_zero()) {
                terms.push_back(i);
                BigInt magnitude;
                mpz_abs(magnitude.get(), weights[i].get());
                top = std::max<std::size_t>(top, mpz_sizeinbase(magnitude.get(), 2));
                magnitudes.push_back(std::move(magnitude));
            }
        }
        BigInt acc(1);
        BigInt t;
        for (std::size_t bit = top; bit-- > 0;) {
            if (bit + 1 != top) {
                mpz_mul(t.get(), acc.get(), acc.get());
                mpz_tdiv_r(acc.get(), t.get(), modulus);
            }
            for (std::size_t k = 0; k < terms.size(); ++k) {
                if (mpz_tstbit(magnitudes[k].get(), bit) != 0) {
                    mpz_mul(t.get(), acc.get(), ciphertexts[terms[k]].c_.get());
                    mpz_tdiv_r(acc.get(), t.get(), modulus);
                }
            }
        }
        return acc;
    };
    BigInt result = interleaved(false);
    BigInt negative = interleaved(true);
    if (mpz_cmp_ui(negative.get(), 1) != 0) {
        BigInt inverse;
        if (mpz_invert(inverse.get(), negative.get(), modulus) == 0) {
            throw std::logic_error("validated ciphertexts have no inverse modulo n^2");
        }
        BigInt t;
        mpz_mul(t.get(), result.get(), inverse.get());
        mpz_tdiv_r(result.get(), t.get(), modulus);
    }
    return Ciphertext(std::move(result), state_->fingerprint);
}

Ciphertext PublicKey::rerandomize(const Ciphertext& c, EncryptionMode mode) const {
    check_same_key(c);
    BigInt rn = make_randomizer(mode);
    BigInt out;
    BigInt& t = scratch();
    mpz_mul(t.get(), c.c_.get(), rn.get());
    mpz_tdiv_r(out.get(), t.get(), state_->n_squared.get());
    return Ciphertext(std::move(out), state_->fingerprint);
}

// --------------------------------------------------------------------------- PrivateKey

namespace {

// L_p(u) = (u - 1) / p for u = 1 mod p.
void l_function(BigInt& out, const BigInt& u, const BigInt& p) {
    mpz_sub_ui(out.get(), u.get(), 1);
    mpz_divexact(out.get(), out.get(), p.get());
}

detail::Bignum to_bignum(const BigInt& v) {
    std::vector<std::uint8_t> buf = v.to_bytes();
    detail::Bignum out(BN_secure_new());
    if (!out || BN_bin2bn(buf.data(), static_cast<int>(buf.size()), out.get()) == nullptr) {
        throw std::bad_alloc();
    }
    secure_wipe(buf.data(), buf.size());
    return out;
}

detail::CrtHalf make_crt_half(const BigInt& modulus, const BigInt& exponent) {
    detail::CrtHalf half{to_bignum(modulus), to_bignum(exponent),
                         detail::MontCtx(BN_MONT_CTX_new())};
    std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_secure_new(), BN_CTX_free);
    if (!half.mont || !ctx ||
        BN_MONT_CTX_set(half.mont.get(), half.modulus.get(), ctx.get()) != 1) {
        throw std::runtime_error("OpenSSL Montgomery setup failed");
    }
    BN_set_flags(half.exponent.get(), BN_FLG_CONSTTIME);
    BN_set_flags(half.modulus.get(), BN_FLG_CONSTTIME);
    return half;
}

// crt_power returns (c mod m)^e mod m for one CRT half. The reduction by the secret
// modulus and the exponentiation by the secret exponent both take OpenSSL's constant-time
// paths (BN_FLG_CONSTTIME), as its RSA CRT does.
void crt_power(BigInt& out, const BigInt& c, const detail::CrtHalf& half) {
    detail::Bignum base = to_bignum(c);
    detail::Bignum result(BN_secure_new());
    std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_secure_new(), BN_CTX_free);
    if (!result || !ctx || BN_nnmod(base.get(), base.get(), half.modulus.get(), ctx.get()) != 1 ||
        BN_mod_exp_mont_consttime(result.get(), base.get(), half.exponent.get(), half.modulus.get(),
                                  ctx.get(), half.mont.get()) != 1) {
        throw std::runtime_error("OpenSSL constant-time exponentiation failed");
    }
    std::vector<std::uint8_t> buf(static_cast<std::size_t>(BN_num_bytes(result.get())));
    BN_bn2bin(result.get(), buf.data());
    mpz_import(out.get(), buf.size(), 1, 1, 0, 0, buf.data());
    secure_wipe(buf.data(), buf.size());
}

Result<std::unique_ptr<PrivateKeyState>> make_private_state(const BigInt& p, const BigInt& q,
                                                            const BigInt& n) {
    auto s = std::make_unique<PrivateKeyState>();
    s->p = p;
    s->q = q;
    mpz_mul(s->p_squared.get(), p.get(), p.get());
    mpz_mul(s->q_squared.get(), q.get(), q.get());
    mpz_sub_ui(s->p_minus_1.get(), p.get(), 1);
    mpz_sub_ui(s->q_minus_1.get(), q.get(), 1);
    BigInt g;
    mpz_add_ui(g.get(), n.get(), 1);
    BigInt u;
    BigInt l;
    // hp = L_p(g^(p-1) mod p^2)^-1 mod p
    mpz_powm(u.get(), g.get(), s->p_minus_1.get(), s->p_squared.get());
    l_function(l, u, p);
    if (mpz_invert(s->hp.get(), l.get(), p.get()) == 0) {
        return make_error(ErrorCode::kInvalidKey, "key has no CRT constant h_p");
    }
    mpz_powm(u.get(), g.get(), s->q_minus_1.get(), s->q_squared.get());
    l_function(l, u, q);
    if (mpz_invert(s->hq.get(), l.get(), q.get()) == 0) {
        return make_error(ErrorCode::kInvalidKey, "key has no CRT constant h_q");
    }
    if (mpz_invert(s->p_inv_q.get(), p.get(), q.get()) == 0) {
        return make_error(ErrorCode::kInvalidKey, "p is not invertible modulo q");
    }
    s->crt_p = make_crt_half(s->p_squared, s->p_minus_1);
    s->crt_q = make_crt_half(s->q_squared, s->q_minus_1);
    mpz_lcm(s->lambda.get(), s->p_minus_1.get(), s->q_minus_1.get());
    // With g = n + 1, L(g^lambda mod n^2) = lambda mod n, so mu = lambda^-1 mod n.
    if (mpz_invert(s->mu.get(), s->lambda.get(), n.get()) == 0) {
        return make_error(ErrorCode::kInvalidKey, "lambda is not invertible modulo n");
    }
    return s;
}

Status check_primes(const BigInt& p, const BigInt& q, KeyPolicy policy) {
    if (p.sign() <= 0 || q.sign() <= 0 || mpz_probab_prime_p(p.get(), 32) == 0 ||
        mpz_probab_prime_p(q.get(), 32) == 0) {
        return make_error(ErrorCode::kInvalidKey, "p and q must be primes");
    }
    if (p == q) {
        return make_error(ErrorCode::kInvalidKey, "p and q must differ");
    }
    BigInt n, phi, g, pm1, qm1;
    if (policy == KeyPolicy::kProduction) {
        // The same distance keygen guarantees: Fermat factoring must not apply.
        BigInt gap;
        mpz_sub(gap.get(), p.get(), q.get());
        mpz_abs(gap.get(), gap.get());
        std::size_t half = std::max(p.bit_length(), q.bit_length());
        if (gap.bit_length() + 100 <= half) {
            return make_error(ErrorCode::kInvalidKey, "p and q are too close together");
        }
    }
    mpz_mul(n.get(), p.get(), q.get());
    mpz_sub_ui(pm1.get(), p.get(), 1);
    mpz_sub_ui(qm1.get(), q.get(), 1);
    mpz_mul(phi.get(), pm1.get(), qm1.get());
    mpz_gcd(g.get(), n.get(), phi.get());
    if (mpz_cmp_ui(g.get(), 1) != 0) {
        return make_error(ErrorCode::kInvalidKey, "gcd(n, (p-1)(q-1)) must be 1");
    }
    return check_modulus(n, policy);
}

// Converts a BIGNUM to a BigInt through a wiped buffer.
BigInt from_bignum(const BIGNUM* bn) {
    std::vector<std::uint8_t> buf(static_cast<std::size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, buf.data());
    BigInt out = BigInt::from_bytes(buf);
    secure_wipe(buf.data(), buf.size());
    return out;
}

struct GencbContext {
    const KeygenProgress* progress;
    int prime_index;
};

int gencb_trampoline(int a, int b, BN_GENCB* cb) {
    auto* ctx = static_cast<GencbContext*>(BN_GENCB_get_arg(cb));
    if (ctx->progress != nullptr && *ctx->progress) {
        // OpenSSL reports 0 per candidate and 1 per primality round; found primes are
        // reported by generate_prime itself.
        KeygenEvent::Kind kind =
            a == 0 ? KeygenEvent::Kind::kCandidate : KeygenEvent::Kind::kTestRound;
        (*ctx->progress)(KeygenEvent{kind, ctx->prime_index, b});
    }
    return 1;
}

BigInt generate_prime(std::size_t bits, int index, const KeygenProgress& progress) {
    std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> bn(BN_secure_new(), BN_clear_free);
    std::unique_ptr<BN_GENCB, decltype(&BN_GENCB_free)> cb(BN_GENCB_new(), BN_GENCB_free);
    std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_secure_new(), BN_CTX_free);
    if (!bn || !cb || !ctx) {
        throw std::bad_alloc();
    }
    GencbContext context{&progress, index};
    BN_GENCB_set(cb.get(), gencb_trampoline, &context);
    // OpenSSL draws candidates from its private DRBG with the top two bits set, so the
    // product of two such primes has exactly 2 * bits bits.
    if (BN_generate_prime_ex2(bn.get(), static_cast<int>(bits), 0, nullptr, nullptr, cb.get(),
                              ctx.get()) != 1) {
        throw std::runtime_error("OpenSSL prime generation failed");
    }
    if (progress) {
        progress(KeygenEvent{KeygenEvent::Kind::kPrimeFound, index, 0});
    }
    return from_bignum(bn.get());
}

PrivateKey generate_checked(std::size_t bits, const KeygenProgress& progress, KeyPolicy policy);

}  // namespace

PrivateKey::PrivateKey(PublicKey public_key, std::unique_ptr<detail::PrivateKeyState> state)
    : public_key_(std::move(public_key)), state_(std::move(state)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

Result<PrivateKey> PrivateKey::from_primes(const BigInt& p, const BigInt& q,
                                           const std::optional<BigInt>& hs, KeyPolicy policy) {
    install_secure_gmp_allocator();
    if (auto status = check_primes(p, q, policy); !status) {
        return status.error();
    }
    BigInt n;
    mpz_mul(n.get(), p.get(), q.get());
    auto public_key = PublicKey::from_modulus(n, hs, policy);
    if (!public_key) {
        return public_key.error();
    }
    // Keep p < q so a key has one canonical form whatever order it was given in.
    const BigInt& small = p < q ? p : q;
    const BigInt& large = p < q ? q : p;
    auto state = make_private_state(small, large, n);
    if (!state) {
        return state.error();
    }
    if (hs) {
        // A supplied hs must be an n-th residue (hs^lambda = 1 mod n^2, checked per prime),
        // or fast-mode ciphertexts would not decrypt to what was encrypted.
        BigInt u;
        for (const detail::CrtHalf* half : {&state.value()->crt_p, &state.value()->crt_q}) {
            crt_power(u, *hs, *half);
            if (mpz_cmp_ui(u.get(), 1) != 0) {
                return make_error(ErrorCode::kInvalidKey, "DJN base hs is not an n-th residue");
            }
        }
    }
    return PrivateKey(std::move(public_key).value(), std::move(state).value());
}

namespace {

PrivateKey generate_checked(std::size_t bits, const KeygenProgress& progress, KeyPolicy policy) {
    install_secure_gmp_allocator();
    if (bits % 2 != 0 || bits < min_bits(policy) || bits > 16384) {
        throw std::invalid_argument("Paillier modulus size must be even and between " +
                                    std::to_string(min_bits(policy)) + " and 16384 bits, got " +
                                    std::to_string(bits));
    }
    const std::size_t half = bits / 2;
    // FIPS 186-4 asks |p - q| > 2^(nlen/2 - 100) for RSA; tiny test keys use half of that.
    const std::size_t min_gap_bits = half > 200 ? half - 100 : half / 2;
    for (;;) {
        BigInt p = generate_prime(half, 0, progress);
        BigInt q = generate_prime(half, 1, progress);
        BigInt n, gap;
        mpz_mul(n.get(), p.get(), q.get());
        mpz_sub(gap.get(), p.get(), q.get());
        mpz_abs(gap.get(), gap.get());
        if (n.bit_length() != bits || gap.bit_length() <= min_gap_bits) {
            if (progress) {
                progress(KeygenEvent{KeygenEvent::Kind::kRetry, 0, 0});
            }
            continue;
        }
        auto key = PrivateKey::from_primes(p, q, std::nullopt, policy);
        mpz_set_ui(p.get(), 0);
        mpz_set_ui(q.get(), 0);
        if (!key) {
            if (progress) {
                progress(KeygenEvent{KeygenEvent::Kind::kRetry, 0, 0});
            }
            continue;
        }
        if (progress) {
            progress(KeygenEvent{KeygenEvent::Kind::kKeyChecked, 1, 0});
        }
        return std::move(key).value();
    }
}

}  // namespace

PrivateKey PrivateKey::generate(std::size_t bits, const KeygenProgress& progress) {
    return generate_checked(bits, progress, KeyPolicy::kProduction);
}

PrivateKey PrivateKey::generate_insecure_for_tests(std::size_t bits) {
    return generate_checked(bits, {}, KeyPolicy::kAllowInsecureTestKeys);
}

Result<PrivateKey> PrivateKey::from_json(std::span<const std::uint8_t> json, KeyPolicy policy) {
    auto doc =
        parse_key_object(std::string_view(reinterpret_cast<const char*>(json.data()), json.size()));
    if (!doc) {
        return doc.error();
    }
    bool has_p = false, has_q = false, has_n = false, has_hs = false;
    auto p = json_bigint(doc.value(), "p", true, has_p);
    if (!p) {
        return p.error();
    }
    auto q = json_bigint(doc.value(), "q", true, has_q);
    if (!q) {
        return q.error();
    }
    auto n = json_bigint(doc.value(), "n", false, has_n);
    if (!n) {
        return n.error();
    }
    auto hs = json_bigint(doc.value(), "hs", false, has_hs);
    if (!hs) {
        return hs.error();
    }
    auto key = from_primes(p.value(), q.value(),
                           has_hs ? std::optional<BigInt>(hs.value()) : std::nullopt, policy);
    mpz_set_ui(p.value().get(), 0);
    mpz_set_ui(q.value().get(), 0);
    if (!key) {
        return key.error();
    }
    if (has_n && n.value() != key.value().public_key().n()) {
        return make_error(ErrorCode::kInvalidKey, "private key: n does not equal p * q");
    }
    auto kid = doc.value().find("kid");
    if (kid != doc.value().end() && (!kid->is_string() || kid->get_ref<const std::string&>() !=
                                                              key.value().public_key().kid())) {
        return make_error(ErrorCode::kInvalidKey, "private key: \"kid\" does not match n");
    }
    return key;
}

SecretBytes PrivateKey::to_json() const {
    // Built by hand into wiping storage: a JSON library would leave copies of p and q in
    // freed memory.
    const auto& pub = public_key_;
    std::string p = state_->p.to_base64url();
    std::string q = state_->q.to_base64url();
    std::string text = "{\"kty\":\"Paillier\",\"kid\":\"" + pub.kid() + "\",\"n\":\"" +
                       pub.n().to_base64url() + "\",\"hs\":\"" + pub.hs().to_base64url() +
                       "\",\"p\":\"" + p + "\",\"q\":\"" + q + "\"}";
    SecretBytes out(text);
    secure_wipe(p.data(), p.size());
    secure_wipe(q.data(), q.size());
    secure_wipe(text.data(), text.size());
    return out;
}

BigInt PrivateKey::decrypt(const Ciphertext& c) const {
    public_key_.check_same_key(c);
    const PrivateKeyState& s = *state_;
    BigInt mp, mq, u;
    // m_p = L_p(c^(p-1) mod p^2) * h_p mod p, with a constant-time exponentiation.
    crt_power(u, c.c_, s.crt_p);
    l_function(mp, u, s.p);
    mpz_mul(mp.get(), mp.get(), s.hp.get());
    mpz_tdiv_r(mp.get(), mp.get(), s.p.get());
    crt_power(u, c.c_, s.crt_q);
    l_function(mq, u, s.q);
    mpz_mul(mq.get(), mq.get(), s.hq.get());
    mpz_tdiv_r(mq.get(), mq.get(), s.q.get());
    // m = m_p + p * ((m_q - m_p) p^-1 mod q)
    BigInt m;
    mpz_sub(u.get(), mq.get(), mp.get());
    mpz_mul(u.get(), u.get(), s.p_inv_q.get());
    mpz_mod(u.get(), u.get(), s.q.get());
    mpz_mul(m.get(), u.get(), s.p.get());
    mpz_add(m.get(), m.get(), mp.get());
    return m;
}

std::optional<BigInt> PrivateKey::decrypt_small_signed(const Ciphertext& c,
                                                       const BigInt& bound) const {
    public_key_.check_same_key(c);
    const PrivateKeyState& s = *state_;
    BigInt quarter;
    mpz_fdiv_q_2exp(quarter.get(), s.p.get(), 2);
    if (bound.sign() < 0 || bound >= quarter) {
        throw std::invalid_argument("decrypt_small_signed: bound must be below p / 4");
    }
    BigInt mp, u;
    crt_power(u, c.c_, s.crt_p);
    l_function(mp, u, s.p);
    mpz_mul(mp.get(), mp.get(), s.hp.get());
    mpz_tdiv_r(mp.get(), mp.get(), s.p.get());
    // v >= 0 leaves m mod p = v; v < 0 (m = n - |v|) leaves p - |v|, since p divides n.
    if (mp <= bound) {
        return mp;
    }
    mpz_sub(u.get(), s.p.get(), mp.get());
    if (u <= bound) {
        mpz_neg(u.get(), u.get());
        return u;
    }
    return std::nullopt;
}

BigInt PrivateKey::decrypt_textbook(const Ciphertext& c) const {
    public_key_.check_same_key(c);
    const auto& n = public_key_.n();
    BigInt u, m;
    mpz_powm(u.get(), c.c_.get(), state_->lambda.get(), public_key_.n_squared().get());
    l_function(m, u, n);
    mpz_mul(m.get(), m.get(), state_->mu.get());
    mpz_mod(m.get(), m.get(), n.get());
    return m;
}

// ----------------------------------------------------------------------------- helpers

BigInt to_fixed_point(double value, unsigned decimals) {
    if (!std::isfinite(value)) {
        throw std::domain_error("fixed point: value is not finite");
    }
    BigInt scale;
    mpz_ui_pow_ui(scale.get(), 10, decimals);
    // Scale exactly: split value into an integer part and a fraction so large values keep
    // their integer digits.
    double integral = 0;
    double fraction = std::modf(value, &integral);
    BigInt out;
    mpz_set_d(out.get(), integral);
    mpz_mul(out.get(), out.get(), scale.get());
    double scaled_fraction = std::round(fraction * std::pow(10.0, decimals));
    BigInt frac;
    mpz_set_d(frac.get(), scaled_fraction);
    mpz_add(out.get(), out.get(), frac.get());
    return out;
}

double from_fixed_point(const BigInt& v, unsigned decimals) {
    BigInt scale, q, r;
    mpz_ui_pow_ui(scale.get(), 10, decimals);
    mpz_tdiv_qr(q.get(), r.get(), v.get(), scale.get());
    return mpz_get_d(q.get()) + mpz_get_d(r.get()) / mpz_get_d(scale.get());
}

}  // namespace cipherpulse
