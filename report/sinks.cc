// StringSink and HashingSink.
#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "fieldsync/report/writer.h"

namespace fieldsync::report {

absl::Status StringSink::Write(absl::string_view bytes) {
  data_.append(bytes.data(), bytes.size());
  return absl::OkStatus();
}

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

MdCtx NewSha256() {
  MdCtx ctx(EVP_MD_CTX_new());
  if (ctx != nullptr && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) ctx.reset();
  return ctx;
}

std::string FinalHex(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestFinal_ex(ctx, digest, &len) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

}  // namespace

struct HashingSink::State {
  MdCtx whole = NewSha256();
  MdCtx block = NewSha256();
  int64_t block_fill = 0;  // bytes in the current block
  std::vector<std::string> blocks;
  bool finished = false;
  std::string whole_hex;
};

HashingSink::HashingSink(ByteSink* next, int64_t block_bytes)
    : next_(next), block_bytes_(block_bytes), state_(std::make_unique<State>()) {}

HashingSink::~HashingSink() = default;

absl::Status HashingSink::Write(absl::string_view bytes) {
  if (state_->finished) {
    return absl::FailedPreconditionError("HashingSink: Write after the digests were taken");
  }
  if (state_->whole == nullptr || state_->block == nullptr) {
    return absl::InternalError("HashingSink: OpenSSL could not set up SHA-256");
  }
  // Hash only what the next sink accepted, so the digests always describe the bytes sent.
  if (next_ != nullptr) {
    absl::Status s = next_->Write(bytes);
    if (!s.ok()) return s;
  }
  EVP_DigestUpdate(state_->whole.get(), bytes.data(), bytes.size());
  bytes_ += static_cast<int64_t>(bytes.size());
  if (block_bytes_ <= 0) return absl::OkStatus();
  while (!bytes.empty()) {
    const size_t room = static_cast<size_t>(block_bytes_ - state_->block_fill);
    const size_t take = std::min(room, bytes.size());
    EVP_DigestUpdate(state_->block.get(), bytes.data(), take);
    state_->block_fill += static_cast<int64_t>(take);
    bytes.remove_prefix(take);
    if (state_->block_fill == block_bytes_) {
      state_->blocks.push_back(FinalHex(state_->block.get()));
      EVP_DigestInit_ex(state_->block.get(), EVP_sha256(), nullptr);
      state_->block_fill = 0;
    }
  }
  return absl::OkStatus();
}

std::string HashingSink::Sha256Hex() {
  if (!state_->finished) {
    state_->finished = true;
    state_->whole_hex = FinalHex(state_->whole.get());
    if (state_->block_fill > 0) {
      state_->blocks.push_back(FinalHex(state_->block.get()));
      state_->block_fill = 0;
    }
  }
  return state_->whole_hex;
}

std::vector<std::string> HashingSink::BlockSha256Hex() {
  Sha256Hex();
  return state_->blocks;
}

}  // namespace fieldsync::report
