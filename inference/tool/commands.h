// The subcommands of the `edgeinfer` tool. Each takes the arguments after its name and returns
// the process exit code: 0 success, 1 failure, 2 usage error.
#pragma once

#include <string>

namespace edgeinfer::tool {

int Convert(int argc, char** argv);
int Inspect(int argc, char** argv);
int Run(int argc, char** argv);
int Eval(int argc, char** argv);
int Bench(int argc, char** argv);

// Prints "edgeinfer: error: MESSAGE" to stderr and returns `code`.
int Fail(const std::string& message, int code = 1);

}  // namespace edgeinfer::tool
