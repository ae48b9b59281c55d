// Why bytes are not a valid protobuf message of a given type, in words a client can act on.
//
// protobuf's parser only says yes or no. When it says no, this walks the wire format against the
// message's descriptor and names the first field at fault:
//
//   DescribeMalformed(*v1::PushRequest::descriptor(), bytes)
//     -> "PushRequest.changes[2].doc_id: not valid UTF-8 (a string field)"
#ifndef FIELDSYNC_SERVER_WIRE_CHECK_H_
#define FIELDSYNC_SERVER_WIRE_CHECK_H_

#include <string>

#include "absl/strings/string_view.h"

namespace google::protobuf {
class Descriptor;
}

namespace fieldsync::server {

// The first problem in `bytes` read as a `type` message: "<Type>.<field path>: <what>", or a
// general "<Type>: ..." when the walk finds nothing more precise. Never empty.
std::string DescribeMalformed(const google::protobuf::Descriptor& type, absl::string_view bytes);

}  // namespace fieldsync::server

#endif  // FIELDSYNC_SERVER_WIRE_CHECK_H_
