// The gRPC services of fieldsyncd. Each method unpacks the request, calls the Tracker or
// Admin, and converts the status; no SQL and no business rules here.
#ifndef FIELDSYNC_SERVER_SERVICES_H_
#define FIELDSYNC_SERVER_SERVICES_H_

#include <atomic>

#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/sync.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"
#include "server/admin.h"
#include "server/auth.h"
#include "server/rate_limit.h"
#include "server/syncer.h"
#include "server/tracker.h"

namespace fieldsync::server {

class TrackerServiceImpl final : public v1::TrackerService::Service {
 public:
  // `stopping` becomes true when the server shuts down; live feeds end then instead of holding
  // the shutdown up.
  TrackerServiceImpl(const Authenticator& auth, Tracker& tracker,
                     const std::atomic<bool>& stopping)
      : auth_(auth), tracker_(tracker), stopping_(stopping) {}

  grpc::Status CreateProject(grpc::ServerContext* ctx, const v1::CreateProjectRequest* req,
                             v1::Project* resp) override;
  grpc::Status UpdateProject(grpc::ServerContext* ctx, const v1::UpdateProjectRequest* req,
                             v1::Project* resp) override;
  grpc::Status GetProject(grpc::ServerContext* ctx, const v1::GetProjectRequest* req,
                          v1::Project* resp) override;
  grpc::Status ListProjects(grpc::ServerContext* ctx, const v1::ListProjectsRequest* req,
                            v1::ListProjectsResponse* resp) override;
  grpc::Status CreateSite(grpc::ServerContext* ctx, const v1::CreateSiteRequest* req,
                          v1::Site* resp) override;
  grpc::Status GetSite(grpc::ServerContext* ctx, const v1::GetSiteRequest* req,
                       v1::Site* resp) override;
  grpc::Status ListSites(grpc::ServerContext* ctx, const v1::ListSitesRequest* req,
                         v1::ListSitesResponse* resp) override;
  grpc::Status CreateRecord(grpc::ServerContext* ctx, const v1::CreateRecordRequest* req,
                            v1::Record* resp) override;
  grpc::Status UpdateRecord(grpc::ServerContext* ctx, const v1::UpdateRecordRequest* req,
                            v1::Record* resp) override;
  grpc::Status GetRecord(grpc::ServerContext* ctx, const v1::GetRecordRequest* req,
                         v1::Record* resp) override;
  grpc::Status ListRecords(grpc::ServerContext* ctx, const v1::ListRecordsRequest* req,
                           v1::ListRecordsResponse* resp) override;
  grpc::Status GetStats(grpc::ServerContext* ctx, const v1::GetStatsRequest* req,
                        v1::GetStatsResponse* resp) override;
  grpc::Status DeleteRecord(grpc::ServerContext* ctx, const v1::DeleteRecordRequest* req,
                            v1::Record* resp) override;
  grpc::Status ListConflicts(grpc::ServerContext* ctx, const v1::ListConflictsRequest* req,
                             v1::ListConflictsResponse* resp) override;
  grpc::Status ResolveConflict(grpc::ServerContext* ctx, const v1::ResolveConflictRequest* req,
                               v1::Conflict* resp) override;
  grpc::Status ListRejections(grpc::ServerContext* ctx, const v1::ListRejectionsRequest* req,
                              v1::ListRejectionsResponse* resp) override;
  grpc::Status ResolveRejection(grpc::ServerContext* ctx, const v1::ResolveRejectionRequest* req,
                                v1::RejectedChange* resp) override;
  grpc::Status WatchChanges(grpc::ServerContext* ctx, const v1::WatchChangesRequest* req,
                            grpc::ServerWriter<v1::ChangeEvent>* writer) override;

 private:
  const Authenticator& auth_;
  Tracker& tracker_;
  const std::atomic<bool>& stopping_;
};

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  AdminServiceImpl(const Authenticator& auth, Admin& admin) : auth_(auth), admin_(admin) {}

  grpc::Status CreatePartner(grpc::ServerContext* ctx, const v1::CreatePartnerRequest* req,
                             v1::Partner* resp) override;
  grpc::Status UpdatePartner(grpc::ServerContext* ctx, const v1::UpdatePartnerRequest* req,
                             v1::Partner* resp) override;
  grpc::Status GetPartner(grpc::ServerContext* ctx, const v1::GetPartnerRequest* req,
                          v1::Partner* resp) override;
  grpc::Status ListPartners(grpc::ServerContext* ctx, const v1::ListPartnersRequest* req,
                            v1::ListPartnersResponse* resp) override;
  grpc::Status CreateUser(grpc::ServerContext* ctx, const v1::CreateUserRequest* req,
                          v1::User* resp) override;
  grpc::Status ListUsers(grpc::ServerContext* ctx, const v1::ListUsersRequest* req,
                         v1::ListUsersResponse* resp) override;
  grpc::Status CreateDevice(grpc::ServerContext* ctx, const v1::CreateDeviceRequest* req,
                            v1::Device* resp) override;
  grpc::Status ListDevices(grpc::ServerContext* ctx, const v1::ListDevicesRequest* req,
                           v1::ListDevicesResponse* resp) override;
  grpc::Status CreateEnrollment(grpc::ServerContext* ctx, const v1::CreateEnrollmentRequest* req,
                                v1::CreateEnrollmentResponse* resp) override;
  grpc::Status DisableDevice(grpc::ServerContext* ctx, const v1::DisableDeviceRequest* req,
                             v1::Device* resp) override;
  grpc::Status EnableDevice(grpc::ServerContext* ctx, const v1::EnableDeviceRequest* req,
                            v1::Device* resp) override;
  grpc::Status CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                           v1::CreateTokenResponse* resp) override;
  grpc::Status ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest* req,
                          v1::ListTokensResponse* resp) override;
  grpc::Status RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                           v1::Token* resp) override;
  grpc::Status WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest* req,
                      v1::WhoAmIResponse* resp) override;
  grpc::Status Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                      v1::BackupResponse* resp) override;

 private:
  const Authenticator& auth_;
  Admin& admin_;
};

class SyncServiceImpl final : public v1::SyncService::Service {
 public:
  // A wrong enrollment code counts against its sender in `throttle` (nullptr: not counted).
  SyncServiceImpl(const Authenticator& auth, Syncer& syncer,
                  AuthFailureThrottle* throttle = nullptr)
      : auth_(auth), syncer_(syncer), throttle_(throttle) {}

  grpc::Status Handshake(grpc::ServerContext* ctx, const v1::HandshakeRequest* req,
                         v1::HandshakeResponse* resp) override;
  grpc::Status Push(grpc::ServerContext* ctx, const v1::PushRequest* req,
                    v1::PushResponse* resp) override;
  grpc::Status Pull(grpc::ServerContext* ctx, const v1::PullRequest* req,
                    grpc::ServerWriter<v1::PullPage>* writer) override;
  grpc::Status Enroll(grpc::ServerContext* ctx, const v1::EnrollRequest* req,
                      v1::EnrollResponse* resp) override;

 private:
  const Authenticator& auth_;
  Syncer& syncer_;
  AuthFailureThrottle* const throttle_;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_SERVICES_H_
