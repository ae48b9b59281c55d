// Headquarters' side of a test: admin-token stubs and the setup most scenarios start with
// (a partner, a project, a device enrollment code), each asserting that its call succeeded.
//
//   Hq hq(server.Channel(), server.admin_token());
//   v1::Partner p = hq.CreatePartner("Maji Safi", {"KE"});
//   v1::Project wells = hq.CreateProject(p.id(), v1::PROJECT_KIND_WELL, "KE");
//   std::string code = hq.EnrollmentCode(p.id(), "tablet");
#ifndef FIELDSYNC_TESTS_TESTING_HQ_H_
#define FIELDSYNC_TESTS_TESTING_HQ_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fieldsync/v1/admin.grpc.pb.h"
#include "fieldsync/v1/tracker.grpc.pb.h"

namespace fieldsync::testing {

class Hq {
 public:
  Hq(std::shared_ptr<grpc::Channel> channel, std::string admin_token);

  // A context with a 20 s deadline and `token` (the admin's if empty).
  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") const;

  v1::Partner CreatePartner(const std::string& name, const std::vector<std::string>& countries);
  v1::Project CreateProject(const std::string& partner_id, v1::ProjectKind kind,
                            const std::string& country, const std::string& title = "Project");
  // Registers a device of `partner_id` and returns a one-time enrollment code for it.
  std::string EnrollmentCode(const std::string& partner_id, const std::string& name,
                             std::string* device_id = nullptr);

  v1::Partner GetPartner(const std::string& id);
  v1::Project GetProject(const std::string& id);
  // NOT_FOUND (and no test failure) when there is no such project.
  absl::StatusOr<v1::Project> FindProject(const std::string& id);
  v1::Project UpdateProject(const v1::Project& project);
  v1::Site CreateSite(const std::string& project_id, const std::string& name);
  v1::Site GetSite(const std::string& id);
  v1::Record CreateRecord(const v1::Record& record);
  // The bearer secret of a new user with `role`.
  std::string TokenFor(v1::Role role);

  v1::TrackerService::Stub& tracker() { return *tracker_; }
  v1::AdminService::Stub& admin() { return *admin_; }

 private:
  std::string admin_token_;
  std::unique_ptr<v1::TrackerService::Stub> tracker_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_HQ_H_
