// Who may write what: one policy for every route to a write of a project, site or record — each
// TrackerService RPC, each change inside a Push, each import — applied by the store's one write
// path (SqliteStore::ApplyChange), so that a new route or collection cannot slip past it.
//
//   FS_RETURN_IF_ERROR(CheckWrite(actor, "record", WriteOp::kUpdate));
//
// The table (docs/ARCHITECTURE.md, "Auth"):
//   collection  create/update                delete
//   project     ADMIN                        nobody (projects are cancelled, not deleted)
//   site        ADMIN, FIELD_DEVICE          nobody
//   record      ADMIN, FIELD_DEVICE          ADMIN, FIELD_DEVICE
//   anything else: nobody (partners, users, devices and tokens are admin data, not documents).
// HQ_VIEWER and AUDITOR write nothing. A FIELD_DEVICE writes only documents of its own partner:
// the store treats another partner's document as one that does not exist, and answers a
// reference to another partner's project exactly as one to a missing project.
#ifndef FIELDSYNC_SERVER_WRITE_POLICY_H_
#define FIELDSYNC_SERVER_WRITE_POLICY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/store.h"

namespace fieldsync::server {

enum class WriteOp { kCreate, kUpdate, kDelete };

// "create", "update", "delete".
absl::string_view WriteOpName(WriteOp op);

// True for the collections whose documents sync: "project", "site", "record".
bool IsDocumentCollection(absl::string_view collection);

// OK if `actor` may `op` a document of `collection`; PERMISSION_DENIED naming the collection
// otherwise, INVALID_ARGUMENT for a collection that holds no documents. Says nothing about any
// document: the same answer whether or not it exists.
absl::Status CheckWrite(const Actor& actor, absl::string_view collection, WriteOp op);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_WRITE_POLICY_H_
