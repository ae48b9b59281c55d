#include "cli/command_line.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/errors.h"

namespace fieldsync::cli {

bool FlagValues::Has(absl::string_view name) const { return values_.count(std::string(name)) > 0; }

std::string FlagValues::Get(absl::string_view name, absl::string_view fallback) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? std::string(fallback) : it->second;
}

void FlagValues::Set(absl::string_view name, absl::string_view value) {
  values_[std::string(name)] = std::string(value);
}

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* const kFlags = new std::vector<FlagSpec>{
      {"server", "HOST:PORT",
       "fieldsyncd address (default: $FIELDSYNC_SERVER, else 127.0.0.1:50051)"},
      {"token", "TOKEN", "bearer token (default: $FIELDSYNC_TOKEN)"},
      {"json", "", "machine output: one JSON object per result (proto field names)"},
      {"timeout", "SECONDS", "deadline of every call (default: 30)"},
      {"ca-file", "PATH", "use TLS, trusting the CA certificates in PATH ($FIELDSYNC_CA_FILE)"},
      {"tls", "", "use TLS, trusting the system's root CA certificates"},
      {"tls-server-name", "NAME", "use TLS; the server's certificate must name NAME"},
      {"help", "", "show help for the command (also -h)"},
      {"version", "", "print the version and exit"},
  };
  return *kFlags;
}

namespace {

const FlagSpec* FindFlag(const std::vector<FlagSpec>& flags, absl::string_view name) {
  for (const FlagSpec& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

const CommandSpec* FindCommand(const std::vector<CommandSpec>& commands, absl::string_view path) {
  for (const CommandSpec& command : commands) {
    if (command.path == path) return &command;
  }
  return nullptr;
}

bool IsGroup(const std::vector<CommandSpec>& commands, absl::string_view word) {
  for (const CommandSpec& command : commands) {
    if (absl::StartsWith(command.path, absl::StrCat(word, " "))) return true;
  }
  return false;
}

class Parser {
 public:
  Parser(const std::vector<std::string>& args, const std::vector<CommandSpec>& commands)
      : args_(args), commands_(commands) {}

  CommandLine Run() {
    bool options_ended = false;
    for (i_ = 0; i_ < args_.size(); ++i_) {
      const std::string& arg = args_[i_];
      if (!options_ended && arg == "--") {
        options_ended = true;
      } else if (!options_ended && arg.size() > 1 && arg[0] == '-') {
        Option(arg);
      } else {
        Word(arg);
      }
    }
    Finish();
    return std::move(line_);
  }

 private:
  void Fail(absl::string_view message) {
    if (line_.error.ok()) line_.error = UsageError(message);
  }

  void Option(const std::string& arg) {
    if (arg == "-h") {
      line_.help = true;
      return;
    }
    // "-o FILE" is "--output FILE" (for the commands that have --output).
    if (arg == "-o") {
      Option("--output");
      return;
    }
    if (!absl::StartsWith(arg, "--")) {
      Fail(absl::StrCat("unknown option '", arg, "'"));
      return;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* spec = FindFlag(GlobalFlags(), name);
    FlagValues* target = &line_.globals;
    if (spec == nullptr && line_.command != nullptr) {
      spec = FindFlag(line_.command->flags, name);
      target = &line_.flags;
    }
    if (spec == nullptr) {
      if (line_.command != nullptr) {
        Fail(absl::StrCat("unknown option '--", name, "' for '", line_.command->path, "'"));
      } else if (!line_.group.empty()) {
        Fail(absl::StrCat("unknown option '--", name, "' (name a subcommand of '", line_.group,
                          "' before its options)"));
      } else {
        Fail(absl::StrCat("unknown option '--", name, "' (command options go after the command)"));
      }
      return;
    }
    if (spec->value_name.empty()) {
      if (inline_value.has_value()) {
        Fail(absl::StrCat("option '--", name, "' takes no value"));
        return;
      }
      target->Set(name, "true");
      if (name == "help") line_.help = true;
      if (name == "version") line_.version = true;
      return;
    }
    if (!inline_value.has_value()) {
      if (i_ + 1 >= args_.size()) {
        Fail(absl::StrCat("option '--", name, "' needs a value ", spec->value_name));
        return;
      }
      inline_value = args_[++i_];
    }
    target->Set(name, *inline_value);
  }

  void Word(const std::string& word) {
    if (line_.command != nullptr) {
      line_.positionals.push_back(word);
      return;
    }
    if (!line_.error.ok()) return;  // Words after an unknown command mean nothing.
    // Command paths nest: "device" is a group, "device records" a group inside it, and
    // "device records list" a command.
    const std::string path = line_.group.empty() ? word : absl::StrCat(line_.group, " ", word);
    if (const CommandSpec* command = FindCommand(commands_, path); command != nullptr) {
      line_.command = command;
    } else if (IsGroup(commands_, path)) {
      line_.group = path;
    } else {
      line_.unknown_command = true;
      Fail(absl::StrCat("unknown command '", path, "'"));
    }
  }

  void Finish() {
    if (line_.help || line_.version) return;
    if (line_.command == nullptr) {
      if (!line_.group.empty()) {
        Fail(absl::StrCat("'", line_.group, "' needs a subcommand"));
      } else {
        Fail("no command given");
      }
      return;
    }
    const CommandSpec& command = *line_.command;
    if (line_.positionals.size() < command.positionals.size()) {
      Fail(absl::StrCat("'", command.path, "' needs ",
                        command.positionals[line_.positionals.size()]));
    } else if (line_.positionals.size() > command.positionals.size()) {
      Fail(absl::StrCat("unexpected argument '", line_.positionals[command.positionals.size()],
                        "' for '", command.path, "'"));
    }
    for (const FlagSpec& flag : command.flags) {
      if (flag.required && !line_.flags.Has(flag.name)) {
        Fail(absl::StrCat("'", command.path, "' needs --", flag.name, " ", flag.value_name));
      }
    }
  }

  const std::vector<std::string>& args_;
  const std::vector<CommandSpec>& commands_;
  size_t i_ = 0;
  CommandLine line_;
};

}  // namespace

CommandLine ParseCommandLine(const std::vector<std::string>& args,
                             const std::vector<CommandSpec>& commands) {
  return Parser(args, commands).Run();
}

}  // namespace fieldsync::cli
