// Status and Result<T>: the one way edgeinfer reports expected failures.
//
// A Status is either OK or carries a code and a message that names the thing that is wrong
// ("tensor 'fc1.weight': checksum mismatch"). Functions that can fail on bad input return a
// Status or a Result<T>; exceptions are reserved for start-up that must stop, and invariant
// violations abort. Thread-compatible (plain values).
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace edgeinfer {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kNotFound, kCorruption, kUnsupported, kIOError,
                    kResourceExhausted, kInternal };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  // Turns an errno value into a Status in one place: "open 'x.eim': No such file or directory".
  static Status IOError(const std::string& context, int err) {
    return {err == ENOENT ? Code::kNotFound : Code::kIOError, context + ": " + std::strerror(err)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : std::string(CodeName(code_)) + ": " + message_; }

  // Returns a copy whose message is prefixed by `context`, for adding where an error happened.
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

  static const char* CodeName(Code c) {
    switch (c) {
      case Code::kOk: return "ok";
      case Code::kInvalidArgument: return "invalid argument";
      case Code::kNotFound: return "not found";
      case Code::kCorruption: return "corruption";
      case Code::kUnsupported: return "unsupported";
      case Code::kIOError: return "I/O error";
      case Code::kResourceExhausted: return "resource exhausted";
      case Code::kInternal: return "internal error";
    }
    return "unknown";
  }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status::Internal("Result made from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  // OK when a value is held.
  Status status() const { return value_.has_value() ? Status::Ok() : status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace edgeinfer

#define EI_CONCAT_INNER(a, b) a##b
#define EI_CONCAT(a, b) EI_CONCAT_INNER(a, b)

#define EI_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::edgeinfer::Status ei_status_ = (expr);      \
    if (!ei_status_.ok()) return ei_status_;      \
  } while (0)

#define EI_ASSIGN_OR_RETURN(lhs, expr) EI_ASSIGN_OR_RETURN_IMPL(EI_CONCAT(ei_result_, __LINE__), lhs, expr)
#define EI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
