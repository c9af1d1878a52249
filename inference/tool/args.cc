#include "inference/tool/args.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace edgeinfer::tool {

Result<Args> Args::Parse(int argc, char** argv, const std::set<std::string>& value_flags,
                         const std::set<std::string>& bool_flags) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      a.positionals_.push_back(arg);
      continue;
    }
    std::string value;
    bool has_inline_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_inline_value = true;
    }
    if (bool_flags.count(arg)) {
      if (has_inline_value) return Status::InvalidArgument(arg + " takes no value");
      a.values_.emplace(arg, "1");
    } else if (value_flags.count(arg)) {
      if (!has_inline_value) {
        if (i + 1 >= argc) return Status::InvalidArgument(arg + " needs a value");
        value = argv[++i];
      }
      a.values_.emplace(arg, value);
    } else {
      return Status::InvalidArgument("unknown option " + arg);
    }
  }
  return a;
}

std::string Args::Get(const std::string& flag, const std::string& def) const {
  auto it = values_.find(flag);
  return it == values_.end() ? def : it->second;
}

std::vector<std::string> Args::GetAll(const std::string& flag) const {
  std::vector<std::string> out;
  auto [lo, hi] = values_.equal_range(flag);
  for (auto it = lo; it != hi; ++it) out.push_back(it->second);
  return out;
}

Result<long> Args::GetInt(const std::string& flag, long def, long min, long max) const {
  if (!Has(flag)) return def;
  std::string s = Get(flag);
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || errno)
    return Status::InvalidArgument(flag + ": '" + s + "' is not a whole number");
  if (v < min || v > max)
    return Status::InvalidArgument(flag + ": " + s + " is outside " + std::to_string(min) +
                                   ".." + std::to_string(max));
  return v;
}

Result<double> Args::GetDouble(const std::string& flag, double def) const {
  if (!Has(flag)) return def;
  std::string s = Get(flag);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end) return Status::InvalidArgument(flag + ": '" + s + "' is not a number");
  return v;
}

Result<std::vector<int>> Args::GetIntList(const std::string& flag, const std::vector<int>& def,
                                          int min, int max) const {
  if (!Has(flag)) return def;
  std::vector<int> out;
  std::stringstream ss(Get(flag));
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || v < min || v > max)
      return Status::InvalidArgument(flag + ": '" + item + "' is not a number in " +
                                     std::to_string(min) + ".." + std::to_string(max));
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return Status::InvalidArgument(flag + ": empty list");
  return out;
}

}  // namespace edgeinfer::tool
