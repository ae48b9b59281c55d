#include "server/services.h"

#include "server/rate_limit.h"
#include "server/rpc.h"

namespace fieldsync::server {

namespace {
constexpr char kTracker[] = "fieldsync.v1.TrackerService";
constexpr char kAdmin[] = "fieldsync.v1.AdminService";
constexpr char kSync[] = "fieldsync.v1.SyncService";

// A server stream: authorize, then run `op(principal)` which writes to the stream itself.
template <typename Op>
grpc::Status HandleStream(const Authenticator& auth, grpc::ServerContext* ctx,
                          absl::string_view service, absl::string_view method, Op&& op) {
  absl::StatusOr<Principal> who =
      AuthorizeCall(auth, *ctx, absl::StrCat("/", service, "/", method));
  if (!who.ok()) return ToGrpcStatus(who.status());
  return ToGrpcStatus(op(*who));
}

// A device over its rate limit gets the wait in the trailing metadata too ("retry-after-ms"),
// where a client reads it without parsing the message.
const absl::Status& AddRetryHint(grpc::ServerContext* ctx, const absl::Status& status) {
  if (int64_t ms = RetryAfterMs(status); ms >= 0) {
    ctx->AddTrailingMetadata(kRetryAfterMetadata, std::to_string(ms));
  }
  return status;
}
template <typename T>
absl::StatusOr<T> AddRetryHint(grpc::ServerContext* ctx, absl::StatusOr<T> result) {
  AddRetryHint(ctx, result.status());
  return result;
}
}  // namespace

// --- TrackerServiceImpl ---

grpc::Status TrackerServiceImpl::CreateProject(grpc::ServerContext* ctx,
                                               const v1::CreateProjectRequest* req,
                                               v1::Project* resp) {
  return Handle(auth_, ctx, kTracker, "CreateProject", resp,
                [&](const Principal& who) { return tracker_.CreateProject(who, req->project()); });
}

grpc::Status TrackerServiceImpl::UpdateProject(grpc::ServerContext* ctx,
                                               const v1::UpdateProjectRequest* req,
                                               v1::Project* resp) {
  return Handle(auth_, ctx, kTracker, "UpdateProject", resp, [&](const Principal& who) {
    return tracker_.UpdateProject(who, req->project(), req->expected_version());
  });
}

grpc::Status TrackerServiceImpl::GetProject(grpc::ServerContext* ctx,
                                            const v1::GetProjectRequest* req, v1::Project* resp) {
  return Handle(auth_, ctx, kTracker, "GetProject", resp,
                [&](const Principal& who) { return tracker_.GetProject(who, req->id()); });
}

grpc::Status TrackerServiceImpl::ListProjects(grpc::ServerContext* ctx,
                                              const v1::ListProjectsRequest* req,
                                              v1::ListProjectsResponse* resp) {
  return Handle(auth_, ctx, kTracker, "ListProjects", resp,
                [&](const Principal& who) { return tracker_.ListProjects(who, *req); });
}

grpc::Status TrackerServiceImpl::CreateSite(grpc::ServerContext* ctx,
                                            const v1::CreateSiteRequest* req, v1::Site* resp) {
  return Handle(auth_, ctx, kTracker, "CreateSite", resp,
                [&](const Principal& who) { return tracker_.CreateSite(who, req->site()); });
}

grpc::Status TrackerServiceImpl::GetSite(grpc::ServerContext* ctx, const v1::GetSiteRequest* req,
                                         v1::Site* resp) {
  return Handle(auth_, ctx, kTracker, "GetSite", resp,
                [&](const Principal& who) { return tracker_.GetSite(who, req->id()); });
}

grpc::Status TrackerServiceImpl::ListSites(grpc::ServerContext* ctx,
                                           const v1::ListSitesRequest* req,
                                           v1::ListSitesResponse* resp) {
  return Handle(auth_, ctx, kTracker, "ListSites", resp,
                [&](const Principal& who) { return tracker_.ListSites(who, *req); });
}

grpc::Status TrackerServiceImpl::CreateRecord(grpc::ServerContext* ctx,
                                              const v1::CreateRecordRequest* req,
                                              v1::Record* resp) {
  return Handle(auth_, ctx, kTracker, "CreateRecord", resp,
                [&](const Principal& who) { return tracker_.CreateRecord(who, req->record()); });
}

grpc::Status TrackerServiceImpl::UpdateRecord(grpc::ServerContext* ctx,
                                              const v1::UpdateRecordRequest* req,
                                              v1::Record* resp) {
  return Handle(auth_, ctx, kTracker, "UpdateRecord", resp, [&](const Principal& who) {
    return tracker_.UpdateRecord(who, req->record(), req->expected_version());
  });
}

grpc::Status TrackerServiceImpl::GetRecord(grpc::ServerContext* ctx,
                                           const v1::GetRecordRequest* req, v1::Record* resp) {
  return Handle(auth_, ctx, kTracker, "GetRecord", resp,
                [&](const Principal& who) { return tracker_.GetRecord(who, req->id()); });
}

grpc::Status TrackerServiceImpl::ListRecords(grpc::ServerContext* ctx,
                                             const v1::ListRecordsRequest* req,
                                             v1::ListRecordsResponse* resp) {
  return Handle(auth_, ctx, kTracker, "ListRecords", resp,
                [&](const Principal& who) { return tracker_.ListRecords(who, *req); });
}

grpc::Status TrackerServiceImpl::GetStats(grpc::ServerContext* ctx, const v1::GetStatsRequest* req,
                                          v1::GetStatsResponse* resp) {
  return Handle(auth_, ctx, kTracker, "GetStats", resp,
                [&](const Principal& who) { return tracker_.GetStats(who, *req); });
}

grpc::Status TrackerServiceImpl::DeleteRecord(grpc::ServerContext* ctx,
                                              const v1::DeleteRecordRequest* req,
                                              v1::Record* resp) {
  return Handle(auth_, ctx, kTracker, "DeleteRecord", resp,
                [&](const Principal& who) { return tracker_.DeleteRecord(who, req->id()); });
}

grpc::Status TrackerServiceImpl::ListConflicts(grpc::ServerContext* ctx,
                                               const v1::ListConflictsRequest* req,
                                               v1::ListConflictsResponse* resp) {
  return Handle(auth_, ctx, kTracker, "ListConflicts", resp,
                [&](const Principal& who) { return tracker_.ListConflicts(who, *req); });
}

grpc::Status TrackerServiceImpl::ResolveConflict(grpc::ServerContext* ctx,
                                                 const v1::ResolveConflictRequest* req,
                                                 v1::Conflict* resp) {
  return Handle(auth_, ctx, kTracker, "ResolveConflict", resp,
                [&](const Principal& who) { return tracker_.ResolveConflict(who, *req); });
}

grpc::Status TrackerServiceImpl::ListRejections(grpc::ServerContext* ctx,
                                                const v1::ListRejectionsRequest* req,
                                                v1::ListRejectionsResponse* resp) {
  return Handle(auth_, ctx, kTracker, "ListRejections", resp,
                [&](const Principal& who) { return tracker_.ListRejections(who, *req); });
}

grpc::Status TrackerServiceImpl::ResolveRejection(grpc::ServerContext* ctx,
                                                  const v1::ResolveRejectionRequest* req,
                                                  v1::RejectedChange* resp) {
  return Handle(auth_, ctx, kTracker, "ResolveRejection", resp,
                [&](const Principal& who) { return tracker_.ResolveRejection(who, *req); });
}

grpc::Status TrackerServiceImpl::WatchChanges(grpc::ServerContext* ctx,
                                              const v1::WatchChangesRequest* req,
                                              grpc::ServerWriter<v1::ChangeEvent>* writer) {
  return HandleStream(auth_, ctx, kTracker, "WatchChanges", [&](const Principal& who) {
    return tracker_.WatchChanges(
        who, *req, [&](const v1::ChangeEvent& e) { return writer->Write(e); },
        [&] { return ctx->IsCancelled() || stopping_.load(); });
  });
}

// --- AdminServiceImpl ---

grpc::Status AdminServiceImpl::CreatePartner(grpc::ServerContext* ctx,
                                             const v1::CreatePartnerRequest* req,
                                             v1::Partner* resp) {
  return Handle(auth_, ctx, kAdmin, "CreatePartner", resp,
                [&](const Principal& who) { return admin_.CreatePartner(who, req->partner()); });
}

grpc::Status AdminServiceImpl::UpdatePartner(grpc::ServerContext* ctx,
                                             const v1::UpdatePartnerRequest* req,
                                             v1::Partner* resp) {
  return Handle(auth_, ctx, kAdmin, "UpdatePartner", resp,
                [&](const Principal& who) { return admin_.UpdatePartner(who, req->partner()); });
}

grpc::Status AdminServiceImpl::GetPartner(grpc::ServerContext* ctx,
                                          const v1::GetPartnerRequest* req, v1::Partner* resp) {
  return Handle(auth_, ctx, kAdmin, "GetPartner", resp,
                [&](const Principal& who) { return admin_.GetPartner(who, req->id()); });
}

grpc::Status AdminServiceImpl::ListPartners(grpc::ServerContext* ctx,
                                            const v1::ListPartnersRequest* req,
                                            v1::ListPartnersResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "ListPartners", resp,
                [&](const Principal& who) { return admin_.ListPartners(who, *req); });
}

grpc::Status AdminServiceImpl::CreateUser(grpc::ServerContext* ctx,
                                          const v1::CreateUserRequest* req, v1::User* resp) {
  return Handle(auth_, ctx, kAdmin, "CreateUser", resp,
                [&](const Principal& who) { return admin_.CreateUser(who, req->user()); });
}

grpc::Status AdminServiceImpl::ListUsers(grpc::ServerContext* ctx, const v1::ListUsersRequest* req,
                                         v1::ListUsersResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "ListUsers", resp,
                [&](const Principal& who) { return admin_.ListUsers(who, *req); });
}

grpc::Status AdminServiceImpl::CreateDevice(grpc::ServerContext* ctx,
                                            const v1::CreateDeviceRequest* req, v1::Device* resp) {
  return Handle(auth_, ctx, kAdmin, "CreateDevice", resp,
                [&](const Principal& who) { return admin_.CreateDevice(who, req->device()); });
}

grpc::Status AdminServiceImpl::ListDevices(grpc::ServerContext* ctx,
                                           const v1::ListDevicesRequest* req,
                                           v1::ListDevicesResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "ListDevices", resp,
                [&](const Principal& who) { return admin_.ListDevices(who, *req); });
}

grpc::Status AdminServiceImpl::CreateToken(grpc::ServerContext* ctx,
                                           const v1::CreateTokenRequest* req,
                                           v1::CreateTokenResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "CreateToken", resp,
                [&](const Principal& who) { return admin_.CreateToken(who, *req); });
}

grpc::Status AdminServiceImpl::ListTokens(grpc::ServerContext* ctx,
                                          const v1::ListTokensRequest* req,
                                          v1::ListTokensResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "ListTokens", resp,
                [&](const Principal& who) { return admin_.ListTokens(who, *req); });
}

grpc::Status AdminServiceImpl::RevokeToken(grpc::ServerContext* ctx,
                                           const v1::RevokeTokenRequest* req, v1::Token* resp) {
  return Handle(auth_, ctx, kAdmin, "RevokeToken", resp,
                [&](const Principal& who) { return admin_.RevokeToken(who, req->id()); });
}

grpc::Status AdminServiceImpl::WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest* req,
                                      v1::WhoAmIResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "WhoAmI", resp, [&](const Principal& who) {
    return absl::StatusOr<v1::WhoAmIResponse>(admin_.WhoAmI(who));
  });
}

grpc::Status AdminServiceImpl::Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                                      v1::BackupResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "Backup", resp,
                [&](const Principal& who) { return admin_.Backup(who, *req); });
}

grpc::Status AdminServiceImpl::CreateEnrollment(grpc::ServerContext* ctx,
                                                const v1::CreateEnrollmentRequest* req,
                                                v1::CreateEnrollmentResponse* resp) {
  return Handle(auth_, ctx, kAdmin, "CreateEnrollment", resp,
                [&](const Principal& who) { return admin_.CreateEnrollment(who, *req); });
}

grpc::Status AdminServiceImpl::DisableDevice(grpc::ServerContext* ctx,
                                             const v1::DisableDeviceRequest* req,
                                             v1::Device* resp) {
  return Handle(auth_, ctx, kAdmin, "DisableDevice", resp, [&](const Principal& who) {
    return admin_.SetDeviceDisabled(who, req->id(), true);
  });
}

grpc::Status AdminServiceImpl::EnableDevice(grpc::ServerContext* ctx,
                                            const v1::EnableDeviceRequest* req, v1::Device* resp) {
  return Handle(auth_, ctx, kAdmin, "EnableDevice", resp, [&](const Principal& who) {
    return admin_.SetDeviceDisabled(who, req->id(), false);
  });
}

// --- SyncServiceImpl ---

grpc::Status SyncServiceImpl::Handshake(grpc::ServerContext* ctx, const v1::HandshakeRequest* req,
                                        v1::HandshakeResponse* resp) {
  return Handle(auth_, ctx, kSync, "Handshake", resp,
                [&](const Principal& who) { return syncer_.Handshake(who, *req); });
}

grpc::Status SyncServiceImpl::Push(grpc::ServerContext* ctx, const v1::PushRequest* req,
                                   v1::PushResponse* resp) {
  return Handle(auth_, ctx, kSync, "Push", resp,
                [&](const Principal& who) { return AddRetryHint(ctx, syncer_.Push(who, *req)); });
}

grpc::Status SyncServiceImpl::Pull(grpc::ServerContext* ctx, const v1::PullRequest* req,
                                   grpc::ServerWriter<v1::PullPage>* writer) {
  return HandleStream(auth_, ctx, kSync, "Pull", [&](const Principal& who) {
    return AddRetryHint(ctx, syncer_.Pull(who, *req, [&](const v1::PullPage& page) {
      return !ctx->IsCancelled() && writer->Write(page);
    }));
  });
}

grpc::Status SyncServiceImpl::Enroll(grpc::ServerContext* ctx, const v1::EnrollRequest* req,
                                     v1::EnrollResponse* resp) {
  return Handle(auth_, ctx, kSync, "Enroll", resp, [&](const Principal&) {
    absl::StatusOr<v1::EnrollResponse> enrolled = syncer_.Enroll(*req);
    // A wrong code is a guess at a credential, like a wrong token.
    if (throttle_ != nullptr && (enrolled.status().code() == absl::StatusCode::kNotFound ||
                                 enrolled.status().code() == absl::StatusCode::kInvalidArgument)) {
      throttle_->RecordFailure(PeerAddress(ctx->peer()));
    }
    return enrolled;
  });
}

}  // namespace fieldsync::server
