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

}  // namespace fieldsync::testing
