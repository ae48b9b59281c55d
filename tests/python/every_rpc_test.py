#!/usr/bin/env python3
"""Calls every TrackerService and AdminService RPC of a real fieldsyncd from Python.

Proves the contract in proto/ works for a client in another language: stubs are generated at
test time from proto/ with protoc and Debian's grpc_python_plugin, and every RPC the services
declare must have been called successfully (the test fails if a new RPC is not covered here).

Usage: every_rpc_test.py FIELDSYNCD_BINARY PROTO_DIR
"""
import os
import subprocess
import sys
import tempfile
import time
import uuid


def generate_stubs(proto_dir, out_dir):
    protos = [os.path.join(proto_dir, "fieldsync", "v1", f)
              for f in ("domain.proto", "tracker.proto", "admin.proto", "sync.proto")]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", out_dir, "--grpc_out", out_dir,
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + protos, check=True)
    sys.path.insert(0, out_dir)


def start_server(binary, work):
    db = os.path.join(work, "fieldsync.db")
    token = subprocess.run([binary, "--db", db, "--create-admin-token"], check=True,
                           capture_output=True, text=True).stdout.strip()
    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "fieldsyncd.log"), "w")
    proc = subprocess.Popen([binary, "--db", db, "--listen", "127.0.0.1:0",
                             "--port-file", port_file], stderr=log)
    for _ in range(600):
        if os.path.exists(port_file):
            return proc, "127.0.0.1:" + open(port_file).read().strip(), token
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("fieldsyncd did not start")


def main():
    binary, proto_dir = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as work:
        generate_stubs(proto_dir, work)
        import grpc
        from fieldsync.v1 import admin_pb2, admin_pb2_grpc, domain_pb2
        from fieldsync.v1 import tracker_pb2, tracker_pb2_grpc

        proc, address, token = start_server(binary, work)
        try:
            channel = grpc.insecure_channel(address)
            grpc.channel_ready_future(channel).result(timeout=30)
            md = [("authorization", "Bearer " + token)]
            tracker = tracker_pb2_grpc.TrackerServiceStub(channel)
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            called = set()

            def call(stub, name, request):
                called.add(name)
                return getattr(stub, name)(request, metadata=md, timeout=30)

            # A missing token is refused in Python too.
            try:
                tracker.ListProjects(tracker_pb2.ListProjectsRequest(), timeout=30)
                raise AssertionError("ListProjects without a token succeeded")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e

            partner = call(admin, "CreatePartner", admin_pb2.CreatePartnerRequest(
                partner=domain_pb2.Partner(name="Eau Vive Sénégal", countries=["SN"])))
            partner.countries.append("ML")
            partner = call(admin, "UpdatePartner", admin_pb2.UpdatePartnerRequest(partner=partner))
            assert list(partner.countries) == ["SN", "ML"], partner
            assert call(admin, "GetPartner", admin_pb2.GetPartnerRequest(id=partner.id)).name == \
                "Eau Vive Sénégal"
            assert len(call(admin, "ListPartners", admin_pb2.ListPartnersRequest()).partners) == 1
            user = call(admin, "CreateUser", admin_pb2.CreateUserRequest(
                user=admin_pb2.User(name="awa", role=admin_pb2.ROLE_HQ_VIEWER)))
            assert any(u.name == "awa" for u in call(admin, "ListUsers",
                                                     admin_pb2.ListUsersRequest()).users)
            device = call(admin, "CreateDevice", admin_pb2.CreateDeviceRequest(
                device=admin_pb2.Device(partner_id=partner.id, name="Tablette Thiès")))
            assert len(call(admin, "ListDevices", admin_pb2.ListDevicesRequest(
                partner_id=partner.id)).devices) == 1
            code = call(admin, "CreateEnrollment", admin_pb2.CreateEnrollmentRequest(
                device_id=device.id))
            assert len(code.code) == 24, code
            disabled = call(admin, "DisableDevice", admin_pb2.DisableDeviceRequest(id=device.id))
            assert disabled.HasField("disabled_at"), disabled
            enabled = call(admin, "EnableDevice", admin_pb2.EnableDeviceRequest(id=device.id))
            assert not enabled.HasField("disabled_at"), enabled
            issued = call(admin, "CreateToken", admin_pb2.CreateTokenRequest(user_id=user.id))
            assert issued.secret.startswith("fs_")
            assert len(call(admin, "ListTokens", admin_pb2.ListTokensRequest(
                user_id=user.id)).tokens) == 1
            me = admin.WhoAmI(admin_pb2.WhoAmIRequest(),
                              metadata=[("authorization", "Bearer " + issued.secret)])
            called.add("WhoAmI")
            assert me.name == "awa" and me.token.role == admin_pb2.ROLE_HQ_VIEWER
            revoked = call(admin, "RevokeToken", admin_pb2.RevokeTokenRequest(id=issued.token.id))
            assert revoked.HasField("revoked_at")

            project = call(tracker, "CreateProject", tracker_pb2.CreateProjectRequest(
                project=domain_pb2.Project(
                    partner_id=partner.id, kind=domain_pb2.PROJECT_KIND_WELL,
                    title="Forages, région de Thiès", country="SN",
                    budget=domain_pb2.Money(amount_minor=25000000, currency="XOF"))))
            project.status = domain_pb2.PROJECT_STATUS_ACTIVE
            project = call(tracker, "UpdateProject", tracker_pb2.UpdateProjectRequest(
                project=project, expected_version=project.audit.version))
            assert call(tracker, "GetProject", tracker_pb2.GetProjectRequest(
                id=project.id)).status == domain_pb2.PROJECT_STATUS_ACTIVE
            assert len(call(tracker, "ListProjects", tracker_pb2.ListProjectsRequest(
                country="SN", text="thiès")).projects) == 1
            site = call(tracker, "CreateSite", tracker_pb2.CreateSiteRequest(
                site=domain_pb2.Site(project_id=project.id, name="Forage de Ngoundiane",
                                     latitude_deg=14.73, longitude_deg=-16.93)))
            assert call(tracker, "GetSite", tracker_pb2.GetSiteRequest(id=site.id)).name == \
                "Forage de Ngoundiane"
            assert len(call(tracker, "ListSites", tracker_pb2.ListSitesRequest(
                project_id=project.id)).sites) == 1
            well = domain_pb2.WellRecord(
                drilled_depth_m=95, static_water_level_m=31, yield_lph=2500,
                water_source=domain_pb2.WATER_SOURCE_BOREHOLE,
                extraction=domain_pb2.EXTRACTION_TECHNOLOGY_SOLAR_PUMP,
                functional_status=domain_pb2.FUNCTIONAL_STATUS_FUNCTIONAL,
                population_served=1800, visit_date="2026-10-02",
                quality_tests=[domain_pb2.WaterQualityTest(
                    tested_date="2026-10-02", ecoli_cfu_per_100ml=0, fluoride_mg_per_l=2.4)])
            record = call(tracker, "CreateRecord", tracker_pb2.CreateRecordRequest(
                record=domain_pb2.Record(project_id=project.id, site_id=site.id, well=well)))
            assert record.kind == domain_pb2.RECORD_KIND_WELL
            record.well.population_served = 1900
            record = call(tracker, "UpdateRecord", tracker_pb2.UpdateRecordRequest(record=record))
            got = call(tracker, "GetRecord", tracker_pb2.GetRecordRequest(id=record.id))
            assert got.well.population_served == 1900
            assert not got.well.quality_tests[0].HasField("arsenic_ug_per_l")  # not measured
            assert len(call(tracker, "ListRecords", tracker_pb2.ListRecordsRequest(
                project_id=project.id, from_date="2026-01-01")).records) == 1
            stats = call(tracker, "GetStats", tracker_pb2.GetStatsRequest(
                group_by=tracker_pb2.STATS_GROUPING_COUNTRY))
            assert stats.groups[0].key == "SN"
            assert stats.groups[0].wells.people_served == 1900
            assert stats.groups[0].wells.fluoride_failures == 1
            assert len(call(tracker, "ListConflicts",
                            tracker_pb2.ListConflictsRequest()).conflicts) == 0
            try:
                call(tracker, "ResolveConflict", tracker_pb2.ResolveConflictRequest(
                    id=str(uuid.uuid4()),
                    resolution=tracker_pb2.CONFLICT_RESOLUTION_KEEP_WINNER))
                raise AssertionError("resolving a missing conflict succeeded")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
            assert len(call(tracker, "ListRejections",
                            tracker_pb2.ListRejectionsRequest()).rejections) == 0
            try:
                call(tracker, "ResolveRejection", tracker_pb2.ResolveRejectionRequest(
                    id=str(uuid.uuid4()), note="none"))
                raise AssertionError("resolving a missing rejection succeeded")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
            stream = tracker.WatchChanges(tracker_pb2.WatchChangesRequest(after_seq=0),
                                          metadata=md, timeout=30)
            called.add("WatchChanges")
            first = next(stream)
            assert first.collection == "project" and first.project.id == project.id, first
            stream.cancel()
            deleted = call(tracker, "DeleteRecord", tracker_pb2.DeleteRecordRequest(id=record.id))
            assert deleted.id == record.id
            try:
                call(tracker, "GetRecord", tracker_pb2.GetRecordRequest(id=record.id))
                raise AssertionError("a deleted record is still there")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e

            backup_path = os.path.join(work, "backup.db")
            backup = call(admin, "Backup", admin_pb2.BackupRequest(path=backup_path))
            assert backup.path == backup_path and backup.bytes == os.path.getsize(backup_path), backup
            assert backup.head_seq > 0 and len(backup.head_hash) == 64 and backup.epoch, backup

            declared = {m.name for svc in (tracker_pb2.DESCRIPTOR.services_by_name["TrackerService"],
                                           admin_pb2.DESCRIPTOR.services_by_name["AdminService"])
                        for m in svc.methods}
            missing = declared - called
            assert not missing, "RPCs not exercised from Python: %s" % sorted(missing)
            print("called all %d TrackerService and AdminService RPCs from Python" % len(called))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
