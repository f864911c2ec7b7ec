// Result type for operations on untrusted input.
//
// Functions that parse or check data from the network, files or devices return
// `Result<T>`: either a value or an `Error` that says what was wrong. They never throw for
// bad input and never return garbage. Programmer and configuration errors still throw.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace cipherpulse {

// ErrorCode classifies why untrusted input was refused.
enum class ErrorCode {
    kInvalidEncoding,  // not valid base64url, JSON, PEM, decimal, ...
    kInvalidLength,    // wrong number of bytes
    kOutOfRange,       // a value outside its allowed range (e.g. ciphertext >= n^2)
    kInvalidKey,       // a key that fails its consistency checks
    kBadSignature,     // a signature or authentication tag that does not verify
    kPermission,       // a file readable by others, or not readable by us
    kIo,               // the file system said no
    kUnsupported,      // a version, algorithm or schema this build does not know
    kLimitExceeded,    // an aggregate beyond the bound the codec allows
};

// ErrorCodeName returns a stable lower-case name for `code` (for logs and JSON).
const char* error_code_name(ErrorCode code);

// Error says what was wrong with untrusted input. `message` is safe to log: it never
// contains secret material.
struct Error {
    ErrorCode code;
    std::string message;
};

// BadInput is thrown by `Result::value()` on an error result, carrying the Error.
class BadInput : public std::runtime_error {
  public:
    explicit BadInput(Error error) : std::runtime_error(error.message), error_(std::move(error)) {}
    const Error& error() const noexcept { return error_; }

  private:
    Error error_;
};

// Result holds either a T or an Error. Check `ok()` before `value()`; `value()` on an error
// throws BadInput so a forgotten check fails loudly instead of reading garbage.
template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        throw_if_error();
        return std::get<0>(state_);
    }
    const T& value() const& {
        throw_if_error();
        return std::get<0>(state_);
    }
    T&& value() && {
        throw_if_error();
        return std::get<0>(std::move(state_));
    }
    // error() must only be called when !ok().
    const Error& error() const { return std::get<1>(state_); }

  private:
    void throw_if_error() const {
        if (!ok()) {
            throw BadInput(std::get<1>(state_));
        }
    }
    std::variant<T, Error> state_;
};

// Status is a Result without a value.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(ErrorCode code, std::string message) {
    return Error{code, std::move(message)};
}

}  // namespace cipherpulse
