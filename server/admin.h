// Admin: partners, users, devices and tokens, with validation. AdminService only translates.
//
//   Admin admin(store);
//   FS_ASSIGN_OR_RETURN(auto issued, admin.CreateToken(who, request));  // issued.secret()
//
// Thread-safe. Errors are those of model::Validate* and Store.
#ifndef FIELDSYNC_SERVER_ADMIN_H_
#define FIELDSYNC_SERVER_ADMIN_H_

#include "absl/status/statusor.h"
#include "fieldsync/v1/admin.pb.h"
#include "fieldsync/v1/sync.pb.h"
#include "server/auth.h"
#include "server/store.h"

namespace fieldsync::server {

class Admin {
 public:
  explicit Admin(Store& store) : store_(store) {}

  absl::StatusOr<v1::Partner> CreatePartner(const Principal& who, v1::Partner partner);
  absl::StatusOr<v1::Partner> UpdatePartner(const Principal& who, v1::Partner partner);
  absl::StatusOr<v1::Partner> GetPartner(const Principal& who, absl::string_view id);
  absl::StatusOr<v1::ListPartnersResponse> ListPartners(const Principal& who,
                                                        const v1::ListPartnersRequest& request);
  absl::StatusOr<v1::User> CreateUser(const Principal& who, v1::User user);
  absl::StatusOr<v1::ListUsersResponse> ListUsers(const Principal& who,
                                                  const v1::ListUsersRequest& request);
  absl::StatusOr<v1::Device> CreateDevice(const Principal& who, v1::Device device);
  absl::StatusOr<v1::ListDevicesResponse> ListDevices(const Principal& who,
                                                      const v1::ListDevicesRequest& request);
  absl::StatusOr<v1::CreateEnrollmentResponse> CreateEnrollment(
      const Principal& who, const v1::CreateEnrollmentRequest& request);
  // Disables or enables a device (AdminService.DisableDevice / EnableDevice).
  absl::StatusOr<v1::Device> SetDeviceDisabled(const Principal& who, absl::string_view id,
                                               bool disabled);
  // Redeems a one-time enrollment code for the device's token (SyncService.Enroll), in one
  // transaction with the revocation of the device's earlier tokens: on any failure (a full
  // disk) the code stays valid. NOT_FOUND for an unknown, used, replaced or expired code;
  // FAILED_PRECONDITION for a disabled device, or when `expected_device_id` (a store enrolling
  // again) is set and the code is for another device.
  absl::StatusOr<v1::EnrollResponse> Enroll(absl::string_view code,
                                            absl::string_view expected_device_id = "");
  absl::StatusOr<v1::CreateTokenResponse> CreateToken(const Principal& who,
                                                      const v1::CreateTokenRequest& request);
  absl::StatusOr<v1::ListTokensResponse> ListTokens(const Principal& who,
                                                    const v1::ListTokensRequest& request);
  absl::StatusOr<v1::Token> RevokeToken(const Principal& who, absl::string_view id);
  v1::WhoAmIResponse WhoAmI(const Principal& who);
  // An online backup to `request.path()` (see AdminService.Backup for the errors).
  absl::StatusOr<v1::BackupResponse> Backup(const Principal& who,
                                            const v1::BackupRequest& request);

  // The first credential of a new database: creates (or reuses) the ADMIN user `name` and
  // issues it a new token. For `fieldsyncd --create-admin-token`; anyone who can write the
  // database file can do this, which is the trust boundary of the pilot setup.
  absl::StatusOr<v1::CreateTokenResponse> BootstrapAdminToken(absl::string_view name);

 private:
  absl::StatusOr<v1::CreateTokenResponse> Issue(const Actor& actor, v1::Token token,
                                                int64_t ttl_seconds);
  Store& store_;
};

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_ADMIN_H_
