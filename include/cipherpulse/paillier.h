// Paillier additively homomorphic encryption with g = n + 1, on GMP.
//
// Keys: PublicKey (n, and the DJN base hs for fast encryption) and PrivateKey (p, q), with
// the JSON formats of docs/formats.md. Encryption: textbook (fresh r^n) or fast (DJN
// randomness hs^a with a fixed-base table); both give ordinary Paillier ciphertexts
// (1 + m*n) * r^n mod n^2 that any textbook implementation decrypts. RandomnessPool
// (randomness_pool.h) precomputes randomizers so online encryption is one multiplication.
// Decryption is by CRT modulo p^2 and q^2 with constant-time exponentiation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cipherpulse/bigint.h"
#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {

// kDefaultModulusBits is the default size of n (128-bit security).
inline constexpr std::size_t kDefaultModulusBits = 3072;
// kMinimumModulusBits is the smallest n accepted outside tests.
inline constexpr std::size_t kMinimumModulusBits = 2048;
// kMinimumTestModulusBits is the smallest n the test-only APIs accept.
inline constexpr std::size_t kMinimumTestModulusBits = 128;

// EncryptionMode chooses how the randomizer r^n mod n^2 is made.
enum class EncryptionMode {
    kTextbook,  // r uniform in Z_n^*, r^n computed by a full exponentiation
    kFast,      // DJN: hs^a, a uniform of ceil(|n|/2) bits, from a precomputed fixed-base table
};

// KeyPolicy says which keys a loader accepts. kProduction refuses n below
// kMinimumModulusBits; kAllowInsecureTestKeys accepts down to kMinimumTestModulusBits and
// exists only for known-answer tests and fast unit tests.
enum class KeyPolicy { kProduction, kAllowInsecureTestKeys };

namespace detail {
struct PublicKeyState;
struct PrivateKeyState;
}  // namespace detail

// Ciphertext is a validated Paillier ciphertext c with 0 < c < n^2 and gcd(c, n) = 1,
// tagged with a fingerprint of its key so that mixing keys is caught. Instances come only
// from encryption, homomorphic operations or PublicKey::parse_ciphertext (which validates).
class Ciphertext {
  public:
    // value returns c.
    const BigInt& value() const { return c_; }
    // key_fingerprint identifies the key (64 bits of SHA-256 of n).
    std::uint64_t key_fingerprint() const { return fingerprint_; }
    friend bool operator==(const Ciphertext& a, const Ciphertext& b) {
        return a.fingerprint_ == b.fingerprint_ && a.c_ == b.c_;
    }

  private:
    friend class PublicKey;
    friend class PrivateKey;
    Ciphertext(BigInt c, std::uint64_t fingerprint) : c_(std::move(c)), fingerprint_(fingerprint) {}
    BigInt c_;
    std::uint64_t fingerprint_;
};

// PublicKey is a Paillier public key. Cheap to copy (shared immutable state); all methods
// are const and thread-safe. The fast-mode table is built on first use (about 0.2 s and
// 16 MB at 2048 bits, 0.9 s and 50 MB at 3072 bits) and shared by copies.
class PublicKey {
  public:
    // from_modulus builds a key from n and optionally the DJN base hs (an n-th residue
    // (-x^2)^n mod n^2 chosen by the key owner). Without hs, one is derived from a fresh
    // random x, so plain keys from other implementations still get fast mode.
    // Fails (kInvalidKey) if n is even, too small for `policy`, a perfect square or has a
    // small factor, or if hs is out of range or shares a factor with n.
    static Result<PublicKey> from_modulus(const BigInt& n, const std::optional<BigInt>& hs,
                                          KeyPolicy policy = KeyPolicy::kProduction);
    // from_json parses {"kty":"Paillier","kid","n"[,"hs"]} (docs/formats.md). A "kid" that
    // does not match n is refused.
    static Result<PublicKey> from_json(std::string_view json,
                                       KeyPolicy policy = KeyPolicy::kProduction);
    // to_json returns the public key document, with "kid", "n" and "hs".
    std::string to_json() const;

    const BigInt& n() const;
    const BigInt& n_squared() const;
    const BigInt& hs() const;
    // modulus_bits is the bit length of n.
    std::size_t modulus_bits() const;
    // ciphertext_bytes is the fixed wire length of a ciphertext: byte length of n^2.
    std::size_t ciphertext_bytes() const;
    // kid is base64url(SHA-256(n as unsigned big-endian bytes)).
    const std::string& kid() const;
    std::uint64_t fingerprint() const;

    // encrypt encrypts 0 <= m < n. Throws std::out_of_range otherwise (check untrusted
    // input with check_plaintext or encode_signed first).
    Ciphertext encrypt(const BigInt& m, EncryptionMode mode = EncryptionMode::kFast) const;
    // make_randomizer returns a fresh r^n mod n^2 (textbook) or hs^a mod n^2 (fast).
    BigInt make_randomizer(EncryptionMode mode) const;
    // encrypt_with_randomizer encrypts m with a randomizer from make_randomizer (one use
    // only: reusing a randomizer links the two ciphertexts). One multiplication.
    Ciphertext encrypt_with_randomizer(const BigInt& m, const BigInt& randomizer) const;
    // check_plaintext accepts 0 <= m < n.
    Result<BigInt> check_plaintext(const BigInt& m) const;

    // encode_signed maps v with |v| <= (n-1)/2 to [0, n): negatives as n - |v|.
    Result<BigInt> encode_signed(const BigInt& v) const;
    // decode_signed maps m in [0, n) back: m > (n-1)/2 is read as m - n.
    BigInt decode_signed(const BigInt& m) const;

    // parse_ciphertext reads exactly ciphertext_bytes() big-endian bytes and validates them
    // (0 < c < n^2, gcd(c, n) = 1). Never throws for bad input.
    Result<Ciphertext> parse_ciphertext(std::span<const std::uint8_t> bytes) const;
    // parse_ciphertext_base64url decodes base64url (no padding) and then parse_ciphertext.
    Result<Ciphertext> parse_ciphertext_base64url(std::string_view text) const;
    // parse_ciphertexts_base64url parses many ciphertexts at once, with the same checks and
    // errors as parse_ciphertext_base64url for each, but one gcd for the whole batch (the
    // product of units is a unit); per-ciphertext gcds only when that one fails. `bytes`,
    // when non-null, receives each valid ciphertext's fixed-length bytes (empty for errors).
    std::vector<Result<Ciphertext>> parse_ciphertexts_base64url(
        std::span<const std::string_view> texts,
        std::vector<std::vector<std::uint8_t>>* bytes = nullptr) const;
    // validate_ciphertext checks an integer as parse_ciphertext does.
    Result<Ciphertext> validate_ciphertext(const BigInt& c) const;
    // serialize returns the fixed-length big-endian bytes of c.
    std::vector<std::uint8_t> serialize(const Ciphertext& c) const;
    std::string serialize_base64url(const Ciphertext& c) const;

    // Homomorphic operations. Each throws std::invalid_argument for a ciphertext of
    // another key. Results are valid ciphertexts of this key.
    // add: Enc(a) * Enc(b) -> Enc(a + b mod n).
    Ciphertext add(const Ciphertext& a, const Ciphertext& b) const;
    // add_in_place: acc <- acc + b, without allocating.
    void add_in_place(Ciphertext& acc, const Ciphertext& b) const;
    // add_plain: Enc(a) -> Enc(a + m mod n), 0 <= m < n (no fresh randomness).
    Ciphertext add_plain(const Ciphertext& a, const BigInt& m) const;
    // multiply: Enc(a) -> Enc(k * a mod n) for any integer k (negative k via c^-1).
    Ciphertext multiply(const Ciphertext& a, const BigInt& k) const;
    // sum: the product of all ciphertexts, i.e. Enc(sum of plaintexts). Empty input gives
    // the trivial encryption of 0 (c = 1). Large inputs are split across hardware threads.
    Ciphertext sum(std::span<const Ciphertext> ciphertexts) const;
    // linear_combination: Enc(m_i), w_i -> Enc(sum w_i m_i mod n), for weights of either
    // sign, as one simultaneous exponentiation (the squarings are shared by all terms; the
    // negative terms cost one inversion in all). Cost grows with the largest |w_i|'s bit
    // length plus the number of set bits of all weights: for 20 weights of 17 bits about
    // 7 exponentiations' worth fewer multiplications than 20 calls of multiply(). No fresh
    // randomness: rerandomize the result before it leaves the process. Throws
    // std::invalid_argument for different lengths or a ciphertext of another key.
    Ciphertext linear_combination(std::span<const Ciphertext> ciphertexts,
                                  std::span<const BigInt> weights) const;
    // rerandomize: multiplies by a fresh randomizer; same plaintext, unlinkable ciphertext.
    Ciphertext rerandomize(const Ciphertext& c, EncryptionMode mode = EncryptionMode::kFast) const;

    // with_fast_table_window returns this key with its own fast-mode table of `window_bits`
    // (4..10) bits per window instead of the default (8 below 3072 bits, 9 from 3072): a
    // smaller window trades speed for memory, e.g. 6 bits: 12 MB instead of about 50 MB at
    // 3072 bits, about 1.7x slower fast encryption. Ciphertexts are the same either way.
    // Throws std::invalid_argument outside 4..10.
    PublicKey with_fast_table_window(unsigned window_bits) const;

    // unsafe_encrypt_with_r encrypts with a caller-chosen r (textbook), unchecked; for
    // known-answer tests only: a reused or predictable r breaks semantic security.
    Ciphertext unsafe_encrypt_with_r(const BigInt& m, const BigInt& r) const;
    // unsafe_djn_randomizer returns hs^a mod n^2 for a caller-chosen exponent a of at most
    // ceil(|n|/2) bits, via the fixed-base table; for known-answer tests only.
    BigInt unsafe_djn_randomizer(const BigInt& a) const;
    // unsafe_ciphertext wraps an integer without validation (for values this library
    // produced itself and already checked, e.g. aggregates read back from storage).
    Ciphertext unsafe_ciphertext(BigInt c) const;

    friend bool operator==(const PublicKey& a, const PublicKey& b);

  private:
    explicit PublicKey(std::shared_ptr<const detail::PublicKeyState> state);
    void check_same_key(const Ciphertext& c) const;
    std::shared_ptr<const detail::PublicKeyState> state_;
    friend class PrivateKey;
};

// KeygenEvent reports progress of key generation (for a CLI progress display).
struct KeygenEvent {
    enum class Kind { kCandidate, kTestRound, kPrimeFound, kKeyChecked, kRetry };
    Kind kind;
    int prime_index;  // 0 for p, 1 for q
    int count;        // candidates tried or test rounds so far
};
using KeygenProgress = std::function<void(const KeygenEvent&)>;

// PrivateKey is a Paillier private key (p, q and CRT constants). Move-only, never printed
// (no stream operator, no to_string), wiped on destruction (secure GMP allocator).
// decrypt() is const and thread-safe.
class PrivateKey {
  public:
    // generate makes a key with n of `bits` bits (even, >= kMinimumModulusBits, default
    // 3072): primes of bits/2 bits from OpenSSL's CSPRNG with both top bits set, checked for
    // p != q, |p - q| > 2^(bits/2 - 100) and gcd(n, (p-1)(q-1)) = 1.
    // Throws std::invalid_argument for a bad size.
    static PrivateKey generate(std::size_t bits = kDefaultModulusBits,
                               const KeygenProgress& progress = {});
    // generate_insecure_for_tests allows sizes down to kMinimumTestModulusBits. Never use
    // it for real data.
    static PrivateKey generate_insecure_for_tests(std::size_t bits);
    // from_primes builds a key from p and q (how keys of other implementations are
    // imported; see docs/formats.md). Checks primality, p != q, gcd(n, phi) = 1 and the
    // size policy. Without hs a DJN base is derived.
    static Result<PrivateKey> from_primes(const BigInt& p, const BigInt& q,
                                          const std::optional<BigInt>& hs = std::nullopt,
                                          KeyPolicy policy = KeyPolicy::kProduction);
    // from_json parses {"kty":"Paillier","kid","n","hs","p","q"} ("kid", "n", "hs"
    // optional; when present they must agree with p and q).
    static Result<PrivateKey> from_json(std::span<const std::uint8_t> json,
                                        KeyPolicy policy = KeyPolicy::kProduction);
    // to_json returns the private key document in wiping storage.
    SecretBytes to_json() const;

    PrivateKey(PrivateKey&&) noexcept;
    PrivateKey& operator=(PrivateKey&&) noexcept;
    PrivateKey(const PrivateKey&) = delete;
    PrivateKey& operator=(const PrivateKey&) = delete;
    ~PrivateKey();

    const PublicKey& public_key() const { return public_key_; }

    // decrypt returns m in [0, n), by CRT modulo p^2 and q^2; the reductions by p^2, q^2
    // and the exponentiations by p-1, q-1 run in constant time (OpenSSL's
    // BN_mod_exp_mont_consttime, the primitive of its RSA CRT). Throws std::invalid_argument for a
    // ciphertext of another key.
    BigInt decrypt(const Ciphertext& c) const;
    // decrypt_small_signed reads a ciphertext known to hold a small signed value v (encoded
    // as encode_signed does) with |v| <= bound, from the half of the CRT modulo p^2 alone:
    // one constant-time exponentiation instead of two. Returns nullopt when m mod p lies
    // outside [-bound, bound], i.e. the plaintext is not such a value; a larger plaintext is
    // misread only if it is congruent to a small value modulo p, which without p happens
    // with probability about 2 bound / p. Throws std::invalid_argument for bound >= p / 4
    // or a negative bound, and for a ciphertext of another key.
    std::optional<BigInt> decrypt_small_signed(const Ciphertext& c, const BigInt& bound) const;
    // decrypt_textbook computes L(c^lambda mod n^2) * mu mod n directly: slower and not
    // constant time; for cross-checks and benchmarks only.
    BigInt decrypt_textbook(const Ciphertext& c) const;

  private:
    PrivateKey(PublicKey public_key, std::unique_ptr<detail::PrivateKeyState> state);
    PublicKey public_key_;
    std::unique_ptr<detail::PrivateKeyState> state_;
};

// to_fixed_point returns round(value * 10^decimals) as an integer (then encode_signed it).
// Throws std::domain_error for NaN or infinity.
BigInt to_fixed_point(double value, unsigned decimals);
// from_fixed_point returns v / 10^decimals as a double (v from decode_signed).
double from_fixed_point(const BigInt& v, unsigned decimals);

}  // namespace cipherpulse
