// db::Connection on PostgreSQL (libpq). Being built: see issue 7.
#include "server/db.h"

namespace fieldsync::db {

absl::StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url) {
  (void)url;
  return absl::UnimplementedError("--db postgresql://…: PostgreSQL storage is not built yet");
}

}  // namespace fieldsync::db
