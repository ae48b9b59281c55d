// The command table of the fieldsync CLI and the functions that run each command.
//
// Adding a command: write `absl::Status RunThing(Invocation&)` in the file of its area, declare
// it below and add a CommandSpec row to Commands() in commands.cc; parsing, help and usage hints
// follow from the row. A path has up to three words ("device records add").
#ifndef FIELDSYNC_CLI_COMMANDS_H_
#define FIELDSYNC_CLI_COMMANDS_H_

#include <vector>

#include "absl/status/status.h"
#include "cli/command_line.h"

namespace fieldsync::cli {

class Invocation;

// Every command, in the order `fieldsync --help` lists them.
const std::vector<CommandSpec>& Commands();
// Summaries of the command groups.
const std::vector<GroupSpec>& Groups();

// admin_commands.cc: AdminService.
absl::Status RunPartnersList(Invocation& inv);
absl::Status RunPartnersGet(Invocation& inv);
absl::Status RunPartnersCreate(Invocation& inv);
absl::Status RunPartnersUpdate(Invocation& inv);
absl::Status RunUsersList(Invocation& inv);
absl::Status RunUsersCreate(Invocation& inv);
absl::Status RunDevicesList(Invocation& inv);
absl::Status RunDevicesCreate(Invocation& inv);
absl::Status RunDevicesEnrollCode(Invocation& inv);
absl::Status RunDevicesDisable(Invocation& inv);
absl::Status RunDevicesEnable(Invocation& inv);
absl::Status RunTokensList(Invocation& inv);
absl::Status RunTokensCreate(Invocation& inv);
absl::Status RunTokensRevoke(Invocation& inv);
absl::Status RunWhoAmI(Invocation& inv);
absl::Status RunAdminBackup(Invocation& inv);

// health_command.cc: grpc.health.v1.Health/Check, with no token.
absl::Status RunHealth(Invocation& inv);

// tracker_commands.cc: TrackerService projects, sites and records.
absl::Status RunProjectsList(Invocation& inv);
absl::Status RunProjectsGet(Invocation& inv);
absl::Status RunProjectsCreate(Invocation& inv);
absl::Status RunProjectsUpdate(Invocation& inv);
absl::Status RunSitesList(Invocation& inv);
absl::Status RunSitesGet(Invocation& inv);
absl::Status RunSitesCreate(Invocation& inv);
absl::Status RunRecordsList(Invocation& inv);
absl::Status RunRecordsGet(Invocation& inv);
absl::Status RunRecordsCreate(Invocation& inv);
absl::Status RunRecordsUpdate(Invocation& inv);
absl::Status RunRecordsDelete(Invocation& inv);

// changes_commands.cc: conflicts and the change feed.
absl::Status RunConflictsList(Invocation& inv);
absl::Status RunConflictsResolve(Invocation& inv);
absl::Status RunRejectionsList(Invocation& inv);
absl::Status RunRejectionsResolve(Invocation& inv);
absl::Status RunDeviceRejections(Invocation& inv);
absl::Status RunDeviceRejectionResubmit(Invocation& inv);
absl::Status RunDeviceRejectionDismiss(Invocation& inv);
absl::Status RunWatch(Invocation& inv);

// device_commands.cc: a field device's own database (libfieldsync) and sync.
absl::Status RunDeviceEnroll(Invocation& inv);
absl::Status RunDeviceSetServer(Invocation& inv);
absl::Status RunDeviceStatus(Invocation& inv);
absl::Status RunDeviceRecordsList(Invocation& inv);
absl::Status RunDeviceRecordsGet(Invocation& inv);
absl::Status RunDeviceRecordsAdd(Invocation& inv);
absl::Status RunDeviceRecordsEdit(Invocation& inv);
absl::Status RunDeviceRecordsDelete(Invocation& inv);
absl::Status RunSync(Invocation& inv);

// stats_command.cc: TrackerService.GetStats.
absl::Status RunStats(Invocation& inv);

// report_commands.cc: ReportService exports and their verification.
absl::Status RunReportExport(Invocation& inv);
absl::Status RunReportVerify(Invocation& inv);
absl::Status RunAuditVerify(Invocation& inv);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_COMMANDS_H_
