// The one implementation of every list command: follow page tokens up to --limit (or --all),
// then print a table, "(no projects)", or the JSON list response.
//
//   const std::vector<Column<v1::Site>> kColumns = {
//       {{"ID"}, [](const v1::Site& s) { return s.id(); }},
//       {{"NAME", 40}, [](const v1::Site& s) { return s.name(); }},
//   };
//   return ListAndPrint(inv, "sites", &TrackerStub::ListSites, request,
//                       &v1::ListSitesResponse::sites, kColumns);
//
// With --json the output is one object, the list response holding every item fetched:
// {"sites":[...],"next_page_token":"..."}; next_page_token is the server's token after the last
// page fetched, non-empty when more items exist.
#ifndef FIELDSYNC_CLI_LISTING_H_
#define FIELDSYNC_CLI_LISTING_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cli/command_line.h"
#include "cli/invocation.h"
#include "cli/output.h"
#include "fieldsync/base/status_macros.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace fieldsync::cli {

// One column of a list table: its format and how to fill a cell from an item.
template <typename Item>
struct Column {
  TableColumn format;
  std::function<std::string(const Item&)> cell;
};

// How many items a list command fetches.
struct PageLimit {
  // At most this many items (--limit, default 50), unless `all`.
  int64_t max_items = 50;
  // --all: every item.
  bool all = false;
};

// The options of every list command: --limit N, --all.
std::vector<FlagSpec> PagingFlags();
// `flags` plus PagingFlags().
std::vector<FlagSpec> WithPagingFlags(std::vector<FlagSpec> flags);

// Reads --limit and --all. A usage error for a bad --limit.
absl::StatusOr<PageLimit> PageLimitFromFlags(const FlagValues& flags);

// The page_size to ask for after `fetched` items: never more than the limit still allows, so
// that a page is never cut and next_page_token stays exact.
int32_t NextPageSize(const PageLimit& limit, int64_t fetched);

// Prints `items` as a table, or "(no <noun>)" when empty.
template <typename Item>
void PrintItems(std::ostream& out, const std::vector<Column<Item>>& columns,
                const google::protobuf::RepeatedPtrField<Item>& items, absl::string_view noun) {
  if (items.empty()) {
    out << "(no " << noun << ")\n";
    return;
  }
  std::vector<TableColumn> formats;
  for (const Column<Item>& column : columns) formats.push_back(column.format);
  Table table(std::move(formats));
  for (const Item& item : items) {
    std::vector<std::string> cells;
    for (const Column<Item>& column : columns) cells.push_back(column.cell(item));
    table.AddRow(std::move(cells));
  }
  table.Print(out);
}

// Lists `noun` ("records") page by page with `fetch` (one call per page), following page tokens
// as --limit/--all say, and prints the result (see the file comment). `request` carries the
// filters; its page fields are set here. For lists that are not one RPC (the device's store).
template <typename Request, typename Response, typename Item>
absl::Status ListPagesAndPrint(Invocation& inv, absl::string_view noun,
                               const std::function<absl::Status(const Request&, Response*)>& fetch,
                               Request request,
                               const google::protobuf::RepeatedPtrField<Item>& (Response::*items)()
                                   const,
                               const std::vector<Column<Item>>& columns) {
  FS_ASSIGN_OR_RETURN(const PageLimit limit, PageLimitFromFlags(inv.flags()));
  Response all;
  std::string page_token;
  do {
    request.set_page_size(NextPageSize(limit, (all.*items)().size()));
    request.set_page_token(page_token);
    Response page;
    FS_RETURN_IF_ERROR(fetch(request, &page));
    page_token = page.next_page_token();
    all.MergeFrom(page);
  } while (!page_token.empty() && (limit.all || (all.*items)().size() < limit.max_items));
  all.set_next_page_token(page_token);

  if (inv.json()) {
    PrintJson(inv.out(), all);
    return absl::OkStatus();
  }
  PrintItems(inv.out(), columns, (all.*items)(), noun);
  if (!page_token.empty()) {
    inv.err() << "(showing the first " << (all.*items)().size() << " " << noun
              << "; use --limit N or --all for more)\n";
  }
  return absl::OkStatus();
}

// Lists `noun` ("projects") with `method`, following page tokens as --limit/--all say, and prints
// the result (see the file comment). `request` carries the filters; its page fields are set here.
template <typename Stub, typename Request, typename Response, typename Item>
absl::Status ListAndPrint(
    Invocation& inv, absl::string_view noun,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*), Request request,
    const google::protobuf::RepeatedPtrField<Item>& (Response::*items)() const,
    const std::vector<Column<Item>>& columns) {
  const std::string what = absl::StrCat("list ", noun);
  const std::function<absl::Status(const Request&, Response*)> fetch =
      [&](const Request& page_request, Response* page) {
        return inv.Call(what, method, page_request, page);
      };
  return ListPagesAndPrint(inv, noun, fetch, std::move(request), items, columns);
}

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_LISTING_H_
