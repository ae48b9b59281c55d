#include "server/syncer.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fieldsync/base/ids.h"
#include "fieldsync/base/status_macros.h"
#include "absl/time/clock.h"
#include "fieldsync/sync/hlc.h"
#include "server/log.h"

namespace fieldsync::server {

namespace {

constexpr absl::string_view kCursorPrefix = "fsc2:";

absl::Status RequireDevice(const Principal& who) {
  if (who.token.device_id().empty()) {
    return absl::FailedPreconditionError(
        "sync needs a device token: enroll the device (SyncService.Enroll) and use its token");
  }
  return absl::OkStatus();
}

// A stream id is a UUID the store made ("" for the legacy space of older libraries).
absl::Status CheckStreamId(absl::string_view stream_id) {
  if (stream_id.empty() || IsUuid(stream_id)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("stream_id: must be a lower-case UUID, got \"",
                                                 stream_id.substr(0, 40), "\""));
}

}  // namespace

std::string EncodeCursor(const PullCursor& cursor) {
  std::string out;
  absl::WebSafeBase64Escape(absl::StrCat(kCursorPrefix, cursor.base, ":", cursor.position), &out);
  return out;
}

absl::StatusOr<PullCursor> DecodeCursor(absl::string_view cursor) {
  if (cursor.empty()) return PullCursor();
  std::string raw;
  PullCursor out;
  std::vector<absl::string_view> parts;
  if (absl::WebSafeBase64Unescape(cursor, &raw) && absl::StartsWith(raw, kCursorPrefix)) {
    parts = absl::StrSplit(absl::string_view(raw).substr(kCursorPrefix.size()), ':');
  }
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &out.base) ||
      !absl::SimpleAtoi(parts[1], &out.position) || out.base < 0 ||
      out.position < out.base) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cursor: not a cursor from a previous pull, got \"", cursor.substr(0, 60), "\""));
  }
  return out;
}

absl::StatusOr<v1::HandshakeResponse> Syncer::Handshake(const Principal& device,
                                                        const v1::HandshakeRequest& request) {
  FS_RETURN_IF_ERROR(RequireDevice(device));
  if (request.protocol_version() != v1::PROTOCOL_VERSION_1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "protocol_version: this server speaks version 1, got ", request.protocol_version()));
  }
  FS_RETURN_IF_ERROR(CheckStreamId(request.stream_id()));
  FS_ASSIGN_OR_RETURN(int64_t acked,
                      store_.AckedDeviceSeq(device.token.device_id(), request.stream_id()));
  FS_ASSIGN_OR_RETURN(std::string epoch, store_.Epoch());
  v1::HandshakeResponse out;
  out.set_protocol_version(v1::PROTOCOL_VERSION_1);
  out.set_server_time_ms(sync::SystemClockMs());
  out.set_server_hlc(store_.ServerHlc());
  out.set_device_id(device.token.device_id());
  out.set_partner_id(device.partner_id());
  out.set_acked_device_seq(acked);
  out.set_max_push_changes(kMaxPushChanges);
  out.set_max_clock_skew_ms(sync::kDefaultMaxFutureMs);
  out.set_server_epoch(epoch);
  if (request.known_acked_device_seq() < acked) {
    FS_ASSIGN_OR_RETURN(std::vector<v1::Rejection> rejections,
                        store_.RejectionsAfter(device.token.device_id(), request.stream_id(),
                                               std::max<int64_t>(0, request.known_acked_device_seq())));
    for (v1::Rejection& r : rejections) *out.add_rejections() = std::move(r);
  }
  return out;
}

absl::StatusOr<v1::PushResponse> Syncer::Push(const Principal& device,
                                              const v1::PushRequest& request) {
  FS_RETURN_IF_ERROR(RequireDevice(device));
  if (request.changes_size() > kMaxPushChanges) {
    return absl::InvalidArgumentError(absl::StrCat("changes: at most ", kMaxPushChanges,
                                                   " per push, got ", request.changes_size()));
  }
  FS_RETURN_IF_ERROR(CheckStreamId(request.stream_id()));
  FS_ASSIGN_OR_RETURN(DeviceRateLimiter::Slot slot, Admit(device, request.changes_size()));
  std::vector<v1::Change> changes(request.changes().begin(), request.changes().end());
  absl::Time start = absl::Now();
  absl::StatusOr<PushResult> pushed = store_.Push(
      DeviceWriter{device.token.device_id(), device.partner_id(), request.stream_id()}, changes);
  if (!pushed.ok()) {
    Log("warn", absl::StrCat("push refused device=", device.token.device_id(), " changes=",
                             changes.size(), " code=",
                             absl::StatusCodeToString(pushed.status().code())));
    return pushed.status();
  }
  const PushResult& result = *pushed;
  Log("info", absl::StrCat("push device=", device.token.device_id(), " changes=", changes.size(),
                           " acked=", result.acked_device_seq, " conflicts=", result.conflicts,
                           " refused=", result.rejections.size(), " flagged=",
                           result.reviews.size(), " in ",
                           absl::FormatDuration(absl::Now() - start)));
  v1::PushResponse out;
  out.set_acked_device_seq(result.acked_device_seq);
  out.set_server_hlc(store_.ServerHlc());
  out.set_conflicts(result.conflicts);
  for (const v1::Rejection& r : result.rejections) *out.add_rejections() = r;
  for (const v1::Review& r : result.reviews) *out.add_reviews() = r;
  return out;
}

absl::Status Syncer::Pull(const Principal& device, const v1::PullRequest& request,
                          const std::function<bool(const v1::PullPage&)>& emit) {
  FS_RETURN_IF_ERROR(RequireDevice(device));
  FS_ASSIGN_OR_RETURN(PullCursor cursor, DecodeCursor(request.cursor()));
  if (request.page_size() < 0 || request.page_size() > kMaxPullPage) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be within [0, ",
                                                   kMaxPullPage, "], got ",
                                                   request.page_size()));
  }
  FS_ASSIGN_OR_RETURN(DeviceRateLimiter::Slot slot, Admit(device, 0));
  int page_size = request.page_size() == 0 ? 500 : request.page_size();
  absl::Time start = absl::Now();
  int64_t documents = 0, pages = 0;
  while (true) {
    FS_ASSIGN_OR_RETURN(PullResult page, store_.Pull(device.partner_id(), cursor.position,
                                                     cursor.base, page_size));
    // A page of large documents (donations of 500 item lines) is cut at kMaxPullPageBytes, so
    // that no client's message limit (and no 2G link) meets a page of tens of megabytes; the
    // documents are in sequence order, so the rest come next.
    v1::PullPage out;
    size_t bytes = 0;
    for (size_t i = 0; i < page.documents.size(); ++i) {
      bytes += page.documents[i].ByteSizeLong();
      if (i > 0 && bytes > kMaxPullPageBytes) {
        page.last = false;
        page.last_seq = out.documents(out.documents_size() - 1).version();
        break;
      }
      *out.add_documents() = std::move(page.documents[i]);
    }
    cursor.position = page.last_seq;
    // After the last page the device has everything up to there: the next pull starts afresh.
    if (page.last) cursor.base = cursor.position;
    out.set_cursor(EncodeCursor(cursor));
    out.set_last(page.last);
    out.set_server_hlc(store_.ServerHlc());
    if (page.last) {
      out.set_scope_checksum(page.scope_checksum);
      out.set_scope_documents(page.scope_documents);
    }
    documents += out.documents_size();
    ++pages;
    if (!emit(out)) return absl::CancelledError("the device went away during the pull");
    if (page.last) break;
  }
  Log("info", absl::StrCat("pull device=", device.token.device_id(), " documents=", documents,
                           " pages=", pages, " in ", absl::FormatDuration(absl::Now() - start)));
  return store_.MarkSynced(device.token.device_id(), cursor.position);
}

absl::StatusOr<DeviceRateLimiter::Slot> Syncer::Admit(const Principal& device, int64_t changes) {
  if (limiter_ == nullptr) return DeviceRateLimiter::Slot();
  return limiter_->Admit(device.token.device_id(), changes);
}

absl::StatusOr<v1::EnrollResponse> Syncer::Enroll(const v1::EnrollRequest& request) {
  absl::StatusOr<v1::EnrollResponse> enrolled = admin_.Enroll(request.code(), request.device_id());
  // Never the code or the token: only who enrolled.
  if (enrolled.ok()) Log("info", absl::StrCat("enrolled device=", enrolled->device_id()));
  return enrolled;
}

}  // namespace fieldsync::server
