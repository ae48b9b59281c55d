#include "server/services.h"

#include "server/rpc.h"

namespace fieldsync::server {

namespace {
constexpr char kTracker[] = "fieldsync.v1.TrackerService";
constexpr char kAdmin[] = "fieldsync.v1.AdminService";
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

}  // namespace fieldsync::server
