// fieldsync: the command-line client of fieldsyncd. See `fieldsync --help`.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return fieldsync::cli::RunCli(args, fieldsync::cli::EnvironmentFromProcess(),
                                {std::cin, std::cout, std::cerr, isatty(STDERR_FILENO) == 1});
}
