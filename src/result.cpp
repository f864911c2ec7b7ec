#include "cipherpulse/result.h"

namespace cipherpulse {

const char* error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidEncoding:
            return "invalid_encoding";
        case ErrorCode::kInvalidLength:
            return "invalid_length";
        case ErrorCode::kOutOfRange:
            return "out_of_range";
        case ErrorCode::kInvalidKey:
            return "invalid_key";
        case ErrorCode::kBadSignature:
            return "bad_signature";
        case ErrorCode::kPermission:
            return "permission";
        case ErrorCode::kIo:
            return "io";
        case ErrorCode::kUnsupported:
            return "unsupported";
        case ErrorCode::kLimitExceeded:
            return "limit_exceeded";
    }
    return "unknown";
}

}  // namespace cipherpulse
