// Helpers for the report tests: running the independent readers (python3, xmllint) and reading
// their token output (report/testdata/read_back.py).
#ifndef FIELDSYNC_REPORT_REPORT_TEST_UTIL_H_
#define FIELDSYNC_REPORT_REPORT_TEST_UTIL_H_

#include <stdio.h>
#include <sys/wait.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fieldsync/report/writer.h"

namespace fieldsync::report::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` with /bin/sh; captures stdout and stderr together.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline std::string Hex(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

inline std::string Unhex(absl::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// One value as read_back.py prints it: kind 's' (text), 'i', 'f', 'b', 'd' (date-time), 'n'.
struct Value {
  char kind = 'n';
  std::string text;  // s: the string; d: ISO date-time; i/f/b: as printed
  bool operator==(const Value& o) const { return kind == o.kind && text == o.text; }
};
inline std::ostream& operator<<(std::ostream& os, const Value& v) {
  return os << v.kind << "(" << v.text << ")";
}
inline Value Str(absl::string_view s) { return {'s', std::string(s)}; }
// What a writer's number reads back as: the double nearest `d` at 15 significant digits.
inline double Written(double d) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", d);
  return std::strtod(buf, nullptr);
}
inline Value Int(int64_t v) { return {'i', absl::StrCat(v)}; }
inline Value Bool(bool v) { return {'b', v ? "1" : "0"}; }
inline Value DateTime(absl::string_view iso) { return {'d', std::string(iso)}; }
inline Value Null() { return {'n', ""}; }

struct Row {
  std::vector<std::string> keys;  // jsonl only
  std::vector<Value> values;
};

struct Sheet {
  std::string name;
  std::string freeze;
  bool bold_header = false;
  std::vector<Row> rows;
};

struct ReadBack {
  int exit_code = -1;
  std::string raw;            // the reader's output, for failure messages
  std::vector<Sheet> sheets;  // csv and jsonl: one unnamed sheet
};

// Runs read_back.py `mode` on `path` and parses its tokens.
inline ReadBack ReadWithPython(absl::string_view mode, const std::string& path) {
  ReadBack result;
  CommandResult run = RunCommand(absl::StrCat(FIELDSYNC_PYTHON, " ", FIELDSYNC_REPORT_TESTDATA,
                                              "/read_back.py ", mode, " '", path, "'"));
  result.exit_code = run.exit_code;
  result.raw = run.output;
  if (run.exit_code != 0) return result;
  if (mode != "xlsx") result.sheets.emplace_back();
  for (absl::string_view line : absl::StrSplit(run.output, '\n', absl::SkipEmpty())) {
    const absl::string_view tag = line.substr(0, line.find(' '));
    const absl::string_view arg =
        line.size() > tag.size() ? line.substr(tag.size() + 1) : absl::string_view();
    if (tag == "sheet") {
      result.sheets.emplace_back();
      result.sheets.back().name = Unhex(arg);
    } else if (tag == "freeze") {
      result.sheets.back().freeze = std::string(arg);
    } else if (tag == "bold") {
      result.sheets.back().bold_header = arg == "1";
    } else if (tag == "row") {
      result.sheets.back().rows.emplace_back();
    } else if (tag == "k") {
      result.sheets.back().rows.back().keys.push_back(Unhex(arg));
    } else if (tag == "s") {
      result.sheets.back().rows.back().values.push_back(Str(Unhex(arg)));
    } else if (tag.size() == 1) {
      result.sheets.back().rows.back().values.push_back({tag[0], std::string(arg)});
    }
  }
  return result;
}

// A sink that records the size of every Write.
class CountingSink final : public ByteSink {
 public:
  absl::Status Write(absl::string_view bytes) override {
    ++writes_;
    bytes_ += static_cast<int64_t>(bytes.size());
    if (static_cast<int64_t>(bytes.size()) > max_write_) {
      max_write_ = static_cast<int64_t>(bytes.size());
    }
    return absl::OkStatus();
  }
  int64_t writes() const { return writes_; }
  int64_t bytes() const { return bytes_; }
  int64_t max_write() const { return max_write_; }

 private:
  int64_t writes_ = 0;
  int64_t bytes_ = 0;
  int64_t max_write_ = 0;
};

}  // namespace fieldsync::report::testing

#endif  // FIELDSYNC_REPORT_REPORT_TEST_UTIL_H_
