// Money as the CLI shows and reads it: decimal amounts in major units ("12345.67 USD") converted
// to and from the integer minor units of fieldsync.v1.Money.
//
//   ParseMajorAmount("12345.67", "USD")  // 1234567
//   ParseMajorAmount("150000", "UGX")    // 150000 (UGX has no minor unit)
//   FormatMoney(1234567, "USD")          // "12,345.67 USD"
//   FormatAmount(150000, "UGX")          // "150,000"
#ifndef FIELDSYNC_CLI_MONEY_H_
#define FIELDSYNC_CLI_MONEY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fieldsync::cli {

// Digits of the currency's minor unit per ISO 4217: 0 for UGX, RWF, VND, XOF, XAF, JPY, KRW...;
// 3 for BHD, KWD, JOD...; 4 for CLF; 2 for every other code (USD, EUR, KES, IDR...).
int MinorUnitDigits(absl::string_view currency);

// Parses a non-negative decimal amount in major units ("12345.67", "12345", "0.5") of
// `currency` into minor units. INVALID_ARGUMENT for anything else: signs, separators, exponents,
// more decimals than the currency has, or more than int64 holds. The message does not name the
// option; callers add it.
absl::StatusOr<int64_t> ParseMajorAmount(absl::string_view text, absl::string_view currency);

// The amount in major units with thousands separators, digits as the currency has them:
// "12,345.67" for USD, "150,000" for UGX, "-5.00" for USD.
std::string FormatAmount(int64_t amount_minor, absl::string_view currency);

// FormatAmount() and the code: "12,345.67 USD". Just the amount when `currency` is empty.
std::string FormatMoney(int64_t amount_minor, absl::string_view currency);

}  // namespace fieldsync::cli

#endif  // FIELDSYNC_CLI_MONEY_H_
