#include "server/wire_check.h"

#include <cstdint>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace fieldsync::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// protobuf's own recursion limit.
constexpr int kMaxDepth = 100;

bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // the sequence runs past the end
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

class Walker {
 public:
  explicit Walker(absl::string_view bytes) : data_(bytes) {}

  // The first problem in data_[pos, end) as a `type` message, or nullopt.
  std::optional<std::string> Message(const Descriptor& type, size_t pos, size_t end,
                                     const std::string& path, int depth) {
    if (depth > kMaxDepth) {
      return absl::StrCat(path, ": messages nested more than ", kMaxDepth, " deep");
    }
    std::map<int, int> seen;  // occurrences of each repeated field so far, for "[i]"
    while (pos < end) {
      const size_t tag_at = pos;
      std::optional<uint64_t> tag = Varint(pos, end);
      if (!tag) return absl::StrCat(path, ": truncated field tag at byte ", tag_at);
      const uint64_t number = *tag >> 3;
      const int wire_type = static_cast<int>(*tag & 7);
      if (number == 0 || number > 536870911) {
        return absl::StrCat(path, ": invalid field number ", number, " at byte ", tag_at,
                            " (not protobuf, or a cut message)");
      }
      const FieldDescriptor* field = type.FindFieldByNumber(static_cast<int>(number));
      std::string name = field != nullptr ? absl::StrCat(path, ".", field->name())
                                          : absl::StrCat(path, ".<field ", number, ">");
      if (field != nullptr && field->is_repeated()) {
        absl::StrAppend(&name, "[", seen[field->number()]++, "]");
      }
      switch (wire_type) {
        case 0:
          if (!Varint(pos, end)) return absl::StrCat(name, ": truncated varint");
          break;
        case 1:
          if (end - pos < 8) return absl::StrCat(name, ": truncated 64-bit value");
          pos += 8;
          break;
        case 5:
          if (end - pos < 4) return absl::StrCat(name, ": truncated 32-bit value");
          pos += 4;
          break;
        case 2: {
          std::optional<uint64_t> length = Varint(pos, end);
          if (!length || *length > end - pos) {
            return absl::StrCat(name, ": length runs past the end of the message");
          }
          const size_t value_end = pos + static_cast<size_t>(*length);
          if (field != nullptr && field->type() == FieldDescriptor::TYPE_STRING &&
              type.file()->syntax() == google::protobuf::FileDescriptor::SYNTAX_PROTO3 &&
              !ValidUtf8(data_.substr(pos, value_end - pos))) {
            return absl::StrCat(name, ": not valid UTF-8 (a string field)");
          }
          if (field != nullptr && field->type() == FieldDescriptor::TYPE_MESSAGE) {
            if (auto problem = Message(*field->message_type(), pos, value_end, name, depth + 1)) {
              return problem;
            }
          }
          pos = value_end;
          break;
        }
        case 3:
        case 4:
          return absl::StrCat(name, ": groups (wire types 3 and 4) are not used by this API");
        default:
          return absl::StrCat(name, ": invalid wire type ", wire_type);
      }
    }
    return std::nullopt;
  }

 private:
  std::optional<uint64_t> Varint(size_t& pos, size_t end) const {
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && pos < end; shift += 7) {
      const auto b = static_cast<unsigned char>(data_[pos++]);
      value |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return value;
    }
    return std::nullopt;
  }

  absl::string_view data_;
};

}  // namespace

std::string DescribeMalformed(const Descriptor& type, absl::string_view bytes) {
  Walker walker(bytes);
  if (auto problem = walker.Message(type, 0, bytes.size(), type.name(), 0)) return *problem;
  return absl::StrCat(type.name(), ": not a valid ", type.full_name(),
                      " message (protobuf could not parse it)");
}

}  // namespace fieldsync::server
