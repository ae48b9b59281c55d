// Client::Sync(): Handshake, Push the outbox, Pull since the cursor; retries and cancellation.
//
// Every step leaves the store consistent on its own: an acknowledgement is stored as soon as it
// arrives, each pull page is applied with its cursor in one transaction, so a retry (or the next
// Sync() after a crash) simply continues from the stored state. Resending a change whose
// acknowledgement was lost is harmless: the server applies (device_id, device_seq) once.
#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client_lib/client_impl.h"
#include "fieldsync/base/status_macros.h"

namespace fieldsync::client {
namespace {

constexpr int kDefaultMaxPushChanges = 100;
// Largest push request, in bytes of protobuf: the server refuses requests over 4 MiB
// (RESOURCE_EXHAUSTED, which would be retried in vain), so batches of large records are cut
// below that whatever the server's max_push_changes.
constexpr size_t kMaxPushBytes = 3 << 20;
// The server's retry hint on RESOURCE_EXHAUSTED (server/rate_limit.h).
constexpr char kRetryAfterMetadata[] = "retry-after-ms";

bool IsTransient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

// Full jitter: uniform in [0, min(max, initial * 2^(attempt-1))].
std::chrono::milliseconds Backoff(const RetryOptions& retry, int attempt) {
  int64_t cap = std::max<int64_t>(retry.initial_backoff_ms, 1);
  for (int i = 1; i < attempt && cap < retry.max_backoff_ms; ++i) cap *= 2;
  cap = std::min(cap, std::max<int64_t>(retry.max_backoff_ms, 1));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(rng));
}

// One sync attempt; `progressed` reports whether it got anything done before failing.
class Round {
 public:
  Round(ClientImpl& impl, SyncProgress& progress, const ProgressCallback& callback)
      : impl_(impl), store_(*impl.sync_store), progress_(progress), callback_(callback) {}

  absl::Status Run() {
    FS_RETURN_IF_ERROR(Handshake());
    FS_RETURN_IF_ERROR(Push());
    return Pull();
  }
  bool progressed() const { return progressed_; }
  // The wait the server asked for with its last refusal (RESOURCE_EXHAUSTED), or 0.
  int64_t retry_after_ms() const { return retry_after_ms_; }
  // Calls end by `deadline` at the latest (the whole Sync()'s); default: no such bound.
  void set_deadline(std::chrono::system_clock::time_point deadline) { deadline_ = deadline; }

  absl::Status Handshake() {
    FS_RETURN_IF_ERROR(CheckCancelled());
    Report(SyncPhase::kHandshake);
    return HandshakeCall();
  }

 private:
  // Registers `ctx` as the in-flight call so that Cancel() can abort it.
  class ActiveCall {
   public:
    ActiveCall(ClientImpl& impl, grpc::ClientContext& ctx) : impl_(impl) {
      std::lock_guard<std::mutex> lock(impl_.cancel_mu);
      impl_.active_call = &ctx;
      if (impl_.cancelled) ctx.TryCancel();
    }
    ~ActiveCall() {
      std::lock_guard<std::mutex> lock(impl_.cancel_mu);
      impl_.active_call = nullptr;
    }

   private:
    ClientImpl& impl_;
  };

  bool Cancelled() {
    std::lock_guard<std::mutex> lock(impl_.cancel_mu);
    return impl_.cancelled;
  }
  absl::Status CheckCancelled() {
    return Cancelled() ? absl::CancelledError("sync cancelled") : absl::OkStatus();
  }

  void Prepare(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::min(deadline_, std::chrono::system_clock::now() +
                                             std::chrono::milliseconds(
                                                 impl_.options.call_timeout_ms)));
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", impl_.token));
    if (impl_.options.compress) ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  }

  absl::Status Fault(absl::string_view rpc) {
    if (!impl_.options.fault_injector_for_testing) return absl::OkStatus();
    return impl_.options.fault_injector_for_testing(rpc);
  }

  // A gRPC failure, unless it is our own cancellation.
  absl::Status Failed(const grpc::Status& status, absl::string_view rpc,
                      const grpc::ClientContext& ctx) {
    if (Cancelled()) return absl::CancelledError("sync cancelled");
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      const auto& trailers = ctx.GetServerTrailingMetadata();
      auto hint = trailers.find(kRetryAfterMetadata);
      int64_t ms = 0;
      if (hint != trailers.end() &&
          absl::SimpleAtoi(absl::string_view(hint->second.data(), hint->second.size()), &ms) &&
          ms > 0) {
        retry_after_ms_ = ms;
      }
    }
    absl::Status s = FromGrpc(status, rpc);
    // The server going away mid-call (restart, proxy cut) shows up as CANCELLED too; it was not
    // ours, so it is a link failure worth retrying.
    if (s.code() == absl::StatusCode::kCancelled) return absl::UnavailableError(s.message());
    return s;
  }

  void Report(SyncPhase phase) {
    progress_.phase = phase;
    if (callback_) callback_(progress_);
  }

  void Observe(const sync::Hlc& hlc) {
    if (hlc.IsZero()) return;
    std::lock_guard<std::mutex> lock(impl_.clock_mu);
    impl_.clock.Observe(hlc);
  }
  sync::Hlc ClockLast() {
    std::lock_guard<std::mutex> lock(impl_.clock_mu);
    return impl_.clock.last();
  }

  absl::Status ObserveEncoded(const std::string& text, absl::string_view what) {
    if (text.empty()) return absl::OkStatus();
    FS_ASSIGN_OR_RETURN(sync::Hlc hlc, sync::Hlc::Decode(text, what));
    Observe(hlc);
    return absl::OkStatus();
  }

  // Takes a sequence space of this store's own (a new stream) when it has none (stores of
  // older libraries) or when it turns out to be a copy of another store of its device.
  absl::Status SwitchStream() {
    FS_ASSIGN_OR_RETURN(auto tx, store_.Begin());
    FS_RETURN_IF_ERROR(store_.SwitchStream().status());
    return tx.Commit();
  }

  // Moves refused changes out of the outbox into the local rejection log.
  absl::Status RecordRejections(const google::protobuf::RepeatedPtrField<v1::Rejection>& rejections) {
    if (rejections.empty()) return absl::OkStatus();
    FS_ASSIGN_OR_RETURN(auto tx, store_.Begin());
    for (const v1::Rejection& r : rejections) {
      FS_ASSIGN_OR_RETURN(bool moved, store_.RecordRejection(r));
      if (moved) ++progress_.changes_refused;
    }
    return tx.Commit();
  }

  absl::Status HandshakeCall() {
    FS_ASSIGN_OR_RETURN(std::string stream_id, store_.GetState(kStreamIdKey));
    if (stream_id.empty()) {
      FS_RETURN_IF_ERROR(SwitchStream());
      FS_ASSIGN_OR_RETURN(stream_id, store_.GetState(kStreamIdKey));
    }
    stream_id_ = stream_id;
    FS_ASSIGN_OR_RETURN(int64_t known_acked_before, store_.GetStateInt(kAckedSeqKey));
    v1::HandshakeRequest request;
    request.set_protocol_version(v1::PROTOCOL_VERSION_1);
    request.set_stream_id(stream_id);
    request.set_known_acked_device_seq(known_acked_before);
    int64_t sent_ms = impl_.physical();
    request.set_device_time_ms(sent_ms);
    request.set_device_hlc(ClockLast().Encode());
    v1::HandshakeResponse response;
    grpc::ClientContext ctx;
    Prepare(ctx);
    grpc::Status status;
    {
      ActiveCall active(impl_, ctx);
      status = impl_.stub->Handshake(&ctx, request, &response);
    }
    int64_t received_ms = impl_.physical();
    if (!status.ok()) return Failed(status, "Handshake", ctx);
    FS_RETURN_IF_ERROR(Fault("Handshake"));
    if (response.protocol_version() != v1::PROTOCOL_VERSION_1) {
      return absl::FailedPreconditionError(
          absl::StrCat("Handshake: the server speaks protocol version ",
                       response.protocol_version(), ", this library 1"));
    }
    if (!response.device_id().empty() && response.device_id() != impl_.device_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("Handshake: the token belongs to device ", response.device_id(),
                       ", this store to device ", impl_.device_id));
    }
    max_push_ =
        response.max_push_changes() > 0 ? response.max_push_changes() : kDefaultMaxPushChanges;
    if (response.server_time_ms() > 0) {
      // The server's clock at the midpoint of the round trip; the device's clock may be off
      // by months, so its edits are stamped with the corrected time.
      int64_t offset = response.server_time_ms() - (sent_ms + (received_ms - sent_ms) / 2);
      std::lock_guard<std::mutex> lock(impl_.clock_mu);
      impl_.clock.set_offset_ms(offset);
    }
    // A clock that ran past the server's skew bound (a device a year ahead before its first
    // handshake) comes back down: the server never accepted those stamps (it restamps them on
    // arrival), and kept, they would make this device's later edits win over edits made after
    // them for as long as the error lasted. Pending changes stamped ahead are restamped below.
    const int64_t skew = response.max_clock_skew_ms() > 0 ? response.max_clock_skew_ms()
                                                          : sync::kDefaultMaxFutureMs;
    bool came_down = false;
    if (response.server_time_ms() > 0) {
      std::lock_guard<std::mutex> lock(impl_.clock_mu);
      if (impl_.clock.last().wall_ms > response.server_time_ms() + skew) {
        impl_.clock.ResetTo(sync::Hlc{response.server_time_ms(), 0, impl_.device_id});
        came_down = true;
      }
    }
    FS_RETURN_IF_ERROR(ObserveEncoded(response.server_hlc(), "Handshake: server_hlc"));

    // Ahead of what this store wrote, the server's count belongs to another store using this
    // store's sequence space (a copy of it): take a new one (nothing here is acknowledged in
    // it) and shake hands again.
    FS_ASSIGN_OR_RETURN(int64_t last_written, store_.GetStateInt(kLastSeqKey));
    if (response.acked_device_seq() > last_written) {
      FS_RETURN_IF_ERROR(SwitchStream());
      if (++stream_switches_ > 2) {
        return absl::FailedPreconditionError(
            "Handshake: the server keeps acknowledging more changes than this store wrote");
      }
      return HandshakeCall();
    }
    FS_ASSIGN_OR_RETURN(auto tx, store_.Begin());
    {
      std::lock_guard<std::mutex> lock(impl_.clock_mu);
      FS_RETURN_IF_ERROR(store_.SetStateInt(kClockOffsetKey, impl_.clock.offset_ms()));
    }
    // A server restored from a backup has forgotten changes it acknowledged: it names a new
    // epoch, or (a restore without one) acknowledges less than it once did. The device then
    // queues its own edits again, in this transaction with the rest (docs/SYNC.md, "Restores").
    // An acknowledgement beyond ours (a lost Push response) is not taken on trust: those
    // changes are pushed again, and the server tells replays of ours from another store's.
    FS_ASSIGN_OR_RETURN(int64_t known_acked, store_.GetStateInt(kAckedSeqKey));
    FS_ASSIGN_OR_RETURN(std::string known_epoch, store_.GetState(kServerEpochKey));
    const bool new_epoch = !known_epoch.empty() && !response.server_epoch().empty() &&
                           known_epoch != response.server_epoch();
    std::optional<RebaseOutcome> rebased;
    if (new_epoch || response.acked_device_seq() < known_acked) {
      FS_ASSIGN_OR_RETURN(rebased, store_.Rebase(impl_.device_id, response.acked_device_seq(),
                                                 ClockLast()));
    }
    if (!response.server_epoch().empty()) {
      FS_RETURN_IF_ERROR(store_.SetState(kServerEpochKey, response.server_epoch()));
    }
    if (!response.partner_id().empty()) {
      FS_RETURN_IF_ERROR(store_.SetState(kPartnerIdKey, response.partner_id()));
    }
    if (came_down) {
      FS_RETURN_IF_ERROR(store_.RestampAhead(response.server_time_ms() + skew, [this] {
                                 std::lock_guard<std::mutex> lock(impl_.clock_mu);
                                 return impl_.clock.Now();
                               }).status());
      FS_RETURN_IF_ERROR(store_.SetLastHlc(ClockLast()));
    } else {
      FS_RETURN_IF_ERROR(store_.RaiseLastHlc(ClockLast()));
    }
    FS_RETURN_IF_ERROR(tx.Commit());
    if (!rebased) FS_RETURN_IF_ERROR(RecordRejections(response.rejections()));
    if (rebased) {
      progress_.rebased = true;
      progress_.resent_documents += rebased->documents;
      progressed_ = true;
    }
    return absl::OkStatus();
  }

  absl::Status Push() {
    FS_ASSIGN_OR_RETURN(int64_t acked, store_.GetStateInt(kAckedSeqKey));
    FS_ASSIGN_OR_RETURN(int64_t pending, store_.CountOutboxAfter(acked));
    progress_.changes_total = progress_.changes_pushed + pending;
    Report(SyncPhase::kPush);
    // A refused change never holds back the ones after it: the server keeps it in its
    // rejection log and acknowledges it; here it moves to the local rejection log.
    for (;;) {
      FS_RETURN_IF_ERROR(CheckCancelled());
      FS_ASSIGN_OR_RETURN(std::vector<v1::Change> batch, store_.OutboxAfter(acked, max_push_));
      if (batch.empty()) return absl::OkStatus();
      // What the link lets through (halved after a cut, grown back after successes).
      if (impl_.push_batch_limit > 0 &&
          batch.size() > static_cast<size_t>(impl_.push_batch_limit)) {
        batch.resize(static_cast<size_t>(impl_.push_batch_limit));
      }
      size_t bytes = 0, fits = 0;
      for (; fits < batch.size(); ++fits) {
        bytes += batch[fits].ByteSizeLong() + 8;  // + the field's tag and length
        if (fits > 0 && bytes > kMaxPushBytes) break;
      }
      batch.resize(fits);
      v1::PushRequest request;
      request.set_stream_id(stream_id_);
      for (v1::Change& c : batch) *request.add_changes() = c;
      v1::PushResponse response;
      grpc::ClientContext ctx;
      Prepare(ctx);
      grpc::Status status;
      {
        ActiveCall active(impl_, ctx);
        status = impl_.stub->Push(&ctx, request, &response);
      }
      if (!status.ok()) {
        absl::Status s = Failed(status, "Push", ctx);
        if (s.code() == absl::StatusCode::kUnavailable ||
            s.code() == absl::StatusCode::kDeadlineExceeded) {
          // The link dropped (or stalled) while the batch was on its way: a link that drops
          // every few KB would never carry a batch larger than that, so the retry sends half.
          impl_.push_batch_limit = std::max<int>(1, static_cast<int>(batch.size()) / 2);
          impl_.push_batches_through = 0;
        }
        if (s.code() == absl::StatusCode::kFailedPrecondition &&
            absl::StrContains(s.message(), "new stream_id") && stream_switches_++ < 2) {
          // Another copy of this store numbered different changes alike: continue in a
          // sequence space of our own, every pending change renumbered.
          FS_RETURN_IF_ERROR(SwitchStream());
          FS_ASSIGN_OR_RETURN(stream_id_, store_.GetState(kStreamIdKey));
          acked = 0;
          continue;
        }
        return s;
      }
      FS_RETURN_IF_ERROR(Fault("Push"));
      int64_t now_acked = response.acked_device_seq();
      if (now_acked < batch.front().device_seq()) {
        // OK but nothing of the batch applied: looping would resend it forever.
        return absl::FailedPreconditionError(
            absl::StrCat("Push: the server acknowledged up to device_seq ", now_acked,
                         " but the outbox continues at ", batch.front().device_seq(),
                         " (server state older than this device's?)"));
      }
      now_acked = std::min<int64_t>(now_acked, batch.back().device_seq());
      {
        FS_ASSIGN_OR_RETURN(auto tx, store_.Begin());
        FS_RETURN_IF_ERROR(store_.SetStateInt(kAckedSeqKey, now_acked));
        FS_RETURN_IF_ERROR(tx.Commit());
      }
      FS_RETURN_IF_ERROR(RecordRejections(response.rejections()));
      if (impl_.push_batch_limit > 0 && ++impl_.push_batches_through >= 2) {
        // Two batches through at this size: try twice as many (none of the limit once back at
        // the server's maximum).
        impl_.push_batch_limit *= 2;
        impl_.push_batches_through = 0;
        if (impl_.push_batch_limit >= max_push_) impl_.push_batch_limit = 0;
      }
      progress_.changes_pushed += now_acked - acked;
      progress_.conflicts += response.conflicts();
      progress_.changes_flagged += response.reviews_size();
      acked = now_acked;
      progressed_ = true;
      FS_RETURN_IF_ERROR(ObserveEncoded(response.server_hlc(), "Push: server_hlc"));
      Report(SyncPhase::kPush);
    }
  }

  absl::Status Pull() {
    Report(SyncPhase::kPull);
    for (;;) {
      bool repair_started = false;
      FS_RETURN_IF_ERROR(PullStream(&repair_started));
      if (!repair_started) return absl::OkStatus();
      progress_.repaired = true;  // the cursor is reset: pull everything again
    }
  }

  absl::Status PullStream(bool* repair_started) {
    FS_RETURN_IF_ERROR(CheckCancelled());
    FS_ASSIGN_OR_RETURN(std::string cursor, store_.GetState(kCursorKey));
    v1::PullRequest request;
    request.set_cursor(cursor);
    request.set_page_size(impl_.options.pull_page_size);
    grpc::ClientContext ctx;
    Prepare(ctx);
    ActiveCall active(impl_, ctx);
    std::unique_ptr<grpc::ClientReader<v1::PullPage>> reader = impl_.stub->Pull(&ctx, request);
    v1::PullPage page;
    absl::Status stopped;  // why we stopped reading early, if we did
    bool last = false;
    while (reader->Read(&page)) {
      stopped = Fault("Pull");
      if (stopped.ok()) stopped = CheckCancelled();
      if (!stopped.ok()) break;
      absl::StatusOr<PageOutcome> outcome = store_.ApplyPage(page);
      if (!outcome.ok()) {
        stopped = outcome.status();
        break;
      }
      Observe(outcome->max_hlc);
      if (absl::Status s = ObserveEncoded(page.server_hlc(), "Pull: server_hlc"); !s.ok()) {
        stopped = s;
        break;
      }
      progressed_ = true;
      progress_.pages += 1;
      progress_.documents_pulled += outcome->documents;
      progress_.bytes_pulled += static_cast<int64_t>(page.ByteSizeLong());
      Report(SyncPhase::kPull);
      if (outcome->last) {
        last = true;
        *repair_started = outcome->repair_started;
        if (outcome->mismatch_after_repair) {
          int64_t count = 0;
          absl::StatusOr<std::string> mine = store_.ServerChecksum(&count);
          stopped = absl::DataLossError(absl::StrCat(
              "Pull: after a full re-pull the local copy still differs from the server: local "
              "checksum ",
              mine.ok() ? *mine : "?", " over ", count, " documents, server ",
              page.scope_checksum(), " over ", page.scope_documents()));
        }
        break;
      }
    }
    if (!stopped.ok()) {
      ctx.TryCancel();  // giving up on this stream: do not wait for the rest
    } else if (last) {
      // The server ends the stream after the last page (and then records the device as
      // synced); read to the end rather than cancel, so that it sees a clean finish.
      while (reader->Read(&page)) {
      }
    }
    grpc::Status status = reader->Finish();
    if (!stopped.ok()) return stopped;
    if (last) return absl::OkStatus();
    if (!status.ok()) return Failed(status, "Pull", ctx);
    return absl::UnavailableError("Pull: the stream ended before its last page");
  }

  ClientImpl& impl_;
  LocalStore& store_;
  SyncProgress& progress_;
  const ProgressCallback& callback_;
  int max_push_ = kDefaultMaxPushChanges;
  // This store's sequence space, as of the handshake.
  std::string stream_id_;
  // Stream switches this round (a store finding it is a copy switches once).
  int stream_switches_ = 0;
  bool progressed_ = false;
  int64_t retry_after_ms_ = 0;
  std::chrono::system_clock::time_point deadline_ = std::chrono::system_clock::time_point::max();
};

}  // namespace

absl::StatusOr<SyncProgress> ClientImpl::Sync(const ProgressCallback& callback) {
  std::unique_lock<std::mutex> sync_lock(sync_mu, std::try_to_lock);
  if (!sync_lock.owns_lock()) {
    return absl::FailedPreconditionError("a sync is already running on this client");
  }
  {
    std::lock_guard<std::mutex> lock(cancel_mu);
    sync_running = true;
    cancelled = false;
  }
  struct Finish {
    ClientImpl& impl;
    ~Finish() {
      std::lock_guard<std::mutex> lock(impl.cancel_mu);
      impl.sync_running = false;
      impl.cancelled = false;
    }
  } finish{*this};

  SyncProgress progress;
  int attempt = 0;
  const auto sync_deadline =
      options.sync_timeout_ms > 0
          ? std::chrono::system_clock::now() + std::chrono::milliseconds(options.sync_timeout_ms)
          : std::chrono::system_clock::time_point::max();
  for (;;) {
    Round round(*this, progress, callback);
    round.set_deadline(sync_deadline);
    absl::Status s = round.Run();
    if (s.ok()) break;
    {
      std::lock_guard<std::mutex> lock(cancel_mu);
      if (cancelled) return absl::CancelledError("sync cancelled");
    }
    if (!IsTransient(s)) return s;
    if (s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kDeadlineExceeded) {
      // The link failed: retry on a fresh channel. gRPC 1.51's subchannel, once a connection
      // died inside its HTTP/2 handshake (the first ~100 bytes), can fail every later reconnect
      // until it is destroyed (tests/network_fault_test.cc, CutInsideTheHttp2PrefaceIsRecovered).
      channel = MakeChannel(server_address, options);
      stub = v1::SyncService::NewStub(channel);
    }
    if (round.progressed()) attempt = 0;
    if (++attempt >= options.retry.max_attempts) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (gave up after ", attempt,
                                                 " attempts without progress)"));
    }
    // A server that asked us to wait (rate limit) gets at least that long.
    const auto wait = std::max(Backoff(options.retry, attempt),
                               std::chrono::milliseconds(round.retry_after_ms()));
    if (std::chrono::system_clock::now() + wait >= sync_deadline) {
      return absl::Status(s.code(), absl::StrCat(s.message(), " (sync_timeout_ms of ",
                                                 options.sync_timeout_ms, " ms reached)"));
    }
    progress.retries += 1;
    std::unique_lock<std::mutex> lock(cancel_mu);
    if (cancel_cv.wait_for(lock, wait, [&] { return cancelled; })) {
      return absl::CancelledError("sync cancelled");
    }
  }
  int64_t now_ms = 0;
  {
    std::lock_guard<std::mutex> lock(clock_mu);
    now_ms = physical() + clock.offset_ms();
  }
  FS_RETURN_IF_ERROR(sync_store->SetStateInt(kLastSyncAtKey, now_ms));
  progress.phase = SyncPhase::kDone;
  if (callback) callback(progress);
  return progress;
}

absl::Status ClientImpl::Handshake() {
  std::lock_guard<std::mutex> sync_lock(sync_mu);
  SyncProgress progress;
  ProgressCallback none;
  return Round(*this, progress, none).Handshake();
}

void ClientImpl::Cancel() {
  std::lock_guard<std::mutex> lock(cancel_mu);
  if (!sync_running) return;
  cancelled = true;
  if (active_call != nullptr) active_call->TryCancel();
  cancel_cv.notify_all();
}

}  // namespace fieldsync::client
