#include "tests/testing/hq.h"

#include <gtest/gtest.h>

#include "tests/testing/server_process.h"

namespace fieldsync::testing {

Hq::Hq(std::shared_ptr<grpc::Channel> channel, std::string admin_token)
    : admin_token_(std::move(admin_token)),
      tracker_(v1::TrackerService::NewStub(channel)),
      admin_(v1::AdminService::NewStub(channel)) {}

std::unique_ptr<grpc::ClientContext> Hq::Ctx(const std::string& token) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  AddBearer(*ctx, token.empty() ? admin_token_ : token);
  return ctx;
}

v1::Partner Hq::CreatePartner(const std::string& name, const std::vector<std::string>& countries) {
  v1::CreatePartnerRequest req;
  req.mutable_partner()->set_name(name);
  for (const std::string& c : countries) req.mutable_partner()->add_countries(c);
  v1::Partner out;
  grpc::Status s = admin_->CreatePartner(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

v1::Project Hq::CreateProject(const std::string& partner_id, v1::ProjectKind kind,
                              const std::string& country, const std::string& title) {
  v1::CreateProjectRequest req;
  v1::Project* p = req.mutable_project();
  p->set_partner_id(partner_id);
  p->set_kind(kind);
  p->set_title(title);
  p->set_country(country);
  p->set_status(v1::PROJECT_STATUS_ACTIVE);
  v1::Project out;
  grpc::Status s = tracker_->CreateProject(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

std::string Hq::EnrollmentCode(const std::string& partner_id, const std::string& name,
                               std::string* device_id) {
  v1::CreateDeviceRequest dreq;
  dreq.mutable_device()->set_partner_id(partner_id);
  dreq.mutable_device()->set_name(name);
  v1::Device device;
  grpc::Status s = admin_->CreateDevice(Ctx().get(), dreq, &device);
  EXPECT_TRUE(s.ok()) << s.error_message();
  if (device_id != nullptr) *device_id = device.id();
  v1::CreateEnrollmentRequest ereq;
  ereq.set_device_id(device.id());
  v1::CreateEnrollmentResponse code;
  s = admin_->CreateEnrollment(Ctx().get(), ereq, &code);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return code.code();
}

v1::Partner Hq::GetPartner(const std::string& id) {
  v1::GetPartnerRequest req;
  req.set_id(id);
  v1::Partner out;
  grpc::Status s = admin_->GetPartner(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

absl::StatusOr<v1::Project> Hq::FindProject(const std::string& id) {
  v1::GetProjectRequest req;
  req.set_id(id);
  v1::Project out;
  grpc::Status s = tracker_->GetProject(Ctx().get(), req, &out);
  if (!s.ok()) return absl::NotFoundError(s.error_message());
  return out;
}

v1::Project Hq::GetProject(const std::string& id) {
  absl::StatusOr<v1::Project> p = FindProject(id);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : v1::Project();
}

v1::Project Hq::UpdateProject(const v1::Project& project) {
  v1::UpdateProjectRequest req;
  *req.mutable_project() = project;
  v1::Project out;
  grpc::Status s = tracker_->UpdateProject(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

v1::Site Hq::CreateSite(const std::string& project_id, const std::string& name) {
  v1::CreateSiteRequest req;
  req.mutable_site()->set_project_id(project_id);
  req.mutable_site()->set_name(name);
  req.mutable_site()->set_latitude_deg(-0.1);
  req.mutable_site()->set_longitude_deg(34.7);
  v1::Site out;
  grpc::Status s = tracker_->CreateSite(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

v1::Site Hq::GetSite(const std::string& id) {
  v1::GetSiteRequest req;
  req.set_id(id);
  v1::Site out;
  grpc::Status s = tracker_->GetSite(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

v1::Record Hq::CreateRecord(const v1::Record& record) {
  v1::CreateRecordRequest req;
  *req.mutable_record() = record;
  v1::Record out;
  grpc::Status s = tracker_->CreateRecord(Ctx().get(), req, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

std::string Hq::TokenFor(v1::Role role) {
  static int n = 0;
  v1::CreateUserRequest ureq;
  ureq.mutable_user()->set_name("user-" + std::to_string(++n));
  ureq.mutable_user()->set_role(role);
  v1::User user;
  grpc::Status s = admin_->CreateUser(Ctx().get(), ureq, &user);
  EXPECT_TRUE(s.ok()) << s.error_message();
  v1::CreateTokenRequest treq;
  treq.set_user_id(user.id());
  v1::CreateTokenResponse token;
  s = admin_->CreateToken(Ctx().get(), treq, &token);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return token.secret();
}

}  // namespace fieldsync::testing
