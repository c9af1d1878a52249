// Runs a session over a file's worth of samples in batches: shared by run, eval and bench.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "inference/model.h"
#include "inference/profiler.h"
#include "inference/session.h"
#include "inference/tool/args.h"

namespace edgeinfer::tool {

// Loads MODEL and opens a session from the common flags (--batch N, --threads N, --profile F).
struct Runner {
  std::shared_ptr<const Model> model;
  std::unique_ptr<Session> session;
  std::unique_ptr<Profiler> profiler;
  std::string profile_path;

  static Result<Runner> Open(const std::string& path, const Args& args, int default_batch);
  // Calls `on_batch(first_sample, count)` after each batch has run; the session's outputs
  // hold that batch's results.
  Status RunSamples(const std::vector<float>& data,
                    const std::function<void(int64_t, int)>& on_batch);
  // Writes the trace and prints the per-op table when --profile was given.
  Status FinishProfile();
};

}  // namespace edgeinfer::tool
