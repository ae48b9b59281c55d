#!/usr/bin/env python3
"""The C API's connection options (fs_connect_options) over TLS, called through ctypes.

usage: c_api_tls_test.py FIELDSYNCD FIELDSYNC_CLI LIBFIELDSYNC_SO MAKE_CERTS

Makes certificates with deploy/make-certs, starts fieldsyncd with them on 127.0.0.1, has HQ (the
CLI) make an enrollment code, then: fs_client_enroll_with trusting the CA enrolls and fs_sync
works; fs_client_open_with without options refuses the TLS-enrolled store
(FS_FAILED_PRECONDITION); with the CA it opens and syncs; an unreadable ca_file is
FS_INVALID_ARGUMENT naming ca_file. Exit 0 when all hold.
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

FS_OK, FS_INVALID_ARGUMENT, FS_FAILED_PRECONDITION = 0, 3, 9


class ConnectOptions(ctypes.Structure):
    _fields_ = [("use_tls", ctypes.c_int), ("ca_file", ctypes.c_char_p),
                ("tls_server_name", ctypes.c_char_p), ("call_timeout_ms", ctypes.c_int64),
                ("sync_timeout_ms", ctypes.c_int64)]


def main():
    fieldsyncd, cli, lib_path, make_certs = sys.argv[1:5]
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        certs = os.path.join(tmp, "certs")
        subprocess.run([make_certs, certs], check=True, capture_output=True)
        ca = os.path.join(certs, "ca.pem")
        db = os.path.join(tmp, "fieldsync.db")
        token = subprocess.run([fieldsyncd, "--db", db, "--create-admin-token"], check=True,
                               capture_output=True, text=True).stdout.strip()
        port_file = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "fieldsyncd.log"), "w")
        server = subprocess.Popen([fieldsyncd, "--db", db, "--listen", "127.0.0.1:0",
                                   "--port-file", port_file, "--tls-cert",
                                   os.path.join(certs, "server.pem"), "--tls-key",
                                   os.path.join(certs, "server.key")], stderr=log)
        try:
            for _ in range(600):
                if os.path.exists(port_file):
                    break
                time.sleep(0.05)
            address = "127.0.0.1:" + open(port_file).read().strip()
            env = dict(os.environ, FIELDSYNC_SERVER=address, FIELDSYNC_TOKEN=token,
                       FIELDSYNC_CA_FILE=ca, FIELDSYNC_DEVICE_DB="")

            def hq(*args):
                out = subprocess.run([cli, "--json", *args], check=True, capture_output=True,
                                     text=True, env=env).stdout
                return json.loads(out)

            partner = hq("partners", "create", "--name", "Maji Safi", "--countries", "KE")["id"]
            device = hq("devices", "create", "--partner", partner, "--name", "tablet")["id"]
            code = hq("devices", "enroll-code", device)["code"]

            lib = ctypes.CDLL(lib_path)
            lib.fs_client_enroll_with.argtypes = [
                ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                ctypes.POINTER(ConnectOptions), ctypes.POINTER(ctypes.c_void_p),
                ctypes.POINTER(ctypes.c_void_p)]
            lib.fs_client_open_with.argtypes = [
                ctypes.c_char_p, ctypes.POINTER(ConnectOptions), ctypes.POINTER(ctypes.c_void_p),
                ctypes.POINTER(ctypes.c_void_p)]
            lib.fs_sync.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            lib.fs_client_close.argtypes = [ctypes.c_void_p]
            lib.fs_free.argtypes = [ctypes.c_void_p]

            def error_text(err):
                if not err.value:
                    return ""
                text = ctypes.cast(err, ctypes.c_char_p).value.decode()
                lib.fs_free(err)
                return text

            options = ConnectOptions(0, ca.encode(), None, 10000, 0)
            store = os.path.join(tmp, "device.db").encode()
            client, err = ctypes.c_void_p(), ctypes.c_void_p()
            rc = lib.fs_client_enroll_with(address.encode(), code.encode(), store,
                                           ctypes.byref(options), ctypes.byref(client),
                                           ctypes.byref(err))
            check(rc == FS_OK, f"fs_client_enroll_with over TLS: {rc} {error_text(err)}")
            if rc == FS_OK:
                check(lib.fs_sync(client, None, None) == FS_OK, "fs_sync over TLS")
                lib.fs_client_close(client)

            rc = lib.fs_client_open_with(store, None, ctypes.byref(client), ctypes.byref(err))
            text = error_text(err)
            check(rc == FS_FAILED_PRECONDITION and "over TLS" in text,
                  f"fs_client_open_with(NULL options) refuses a TLS store: {rc} {text}")

            rc = lib.fs_client_open_with(store, ctypes.byref(options), ctypes.byref(client),
                                         ctypes.byref(err))
            check(rc == FS_OK, f"fs_client_open_with with the CA: {rc} {error_text(err)}")
            if rc == FS_OK:
                check(lib.fs_sync(client, None, None) == FS_OK, "fs_sync after reopening")
                lib.fs_client_close(client)

            missing = ConnectOptions(1, os.path.join(tmp, "missing.pem").encode(), None, 0, 0)
            rc = lib.fs_client_open_with(store, ctypes.byref(missing), ctypes.byref(client),
                                         ctypes.byref(err))
            text = error_text(err)
            check(rc == FS_INVALID_ARGUMENT and text.startswith("ca_file: cannot read"),
                  f"an unreadable ca_file: {rc} {text}")
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
            if failures:
                print(open(os.path.join(tmp, "fieldsyncd.log")).read())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
