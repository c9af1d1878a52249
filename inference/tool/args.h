// A small command-line parser for the edgeinfer tool: positionals, `--name value`, `-o value`,
// `--name=value` and boolean `--flag`s, with errors that name the offending argument.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeinfer::tool {

class Args {
 public:
  // `value_flags` take a value; `bool_flags` do not. Anything else starting with '-' is an error.
  static Result<Args> Parse(int argc, char** argv, const std::set<std::string>& value_flags,
                            const std::set<std::string>& bool_flags);

  const std::vector<std::string>& positionals() const { return positionals_; }
  bool Has(const std::string& flag) const { return values_.count(flag) != 0; }
  std::string Get(const std::string& flag, const std::string& def = "") const;
  // Repeated flags (e.g. --keep) in order.
  std::vector<std::string> GetAll(const std::string& flag) const;
  Result<long> GetInt(const std::string& flag, long def, long min, long max) const;
  Result<double> GetDouble(const std::string& flag, double def) const;
  // "1,16" -> {1, 16}; each within [min, max].
  Result<std::vector<int>> GetIntList(const std::string& flag, const std::vector<int>& def,
                                      int min, int max) const;

 private:
  std::vector<std::string> positionals_;
  std::multimap<std::string, std::string> values_;
};

}  // namespace edgeinfer::tool
