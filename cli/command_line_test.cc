#include "cli/command_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/errors.h"

namespace fieldsync::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Status Nothing(Invocation&) { return absl::OkStatus(); }

const std::vector<CommandSpec>& TestCommands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      {"things list",
       {},
       "List things.",
       {{"kind", "KIND", "a kind"}, {"all", "", "every"}},
       Nothing},
      {"things get", {"ID"}, "Get a thing.", {}, Nothing},
      {"things create",
       {},
       "Create.",
       {{"name", "NAME", "name", true}, {"lat", "DEG", "latitude", true}},
       Nothing},
      {"whoami", {}, "Who.", {}, Nothing},
  };
  return *kCommands;
}

CommandLine Parse(const std::vector<std::string>& args) {
  return ParseCommandLine(args, TestCommands());
}

TEST(CommandLineTest, GlobalOptionsAnywhere) {
  CommandLine line =
      Parse({"--server", "h:1", "things", "--json", "list", "--kind", "well", "--token=abc"});
  ASSERT_TRUE(line.error.ok()) << line.error;
  ASSERT_NE(line.command, nullptr);
  EXPECT_EQ(line.command->path, "things list");
  EXPECT_EQ(line.globals.Get("server"), "h:1");
  EXPECT_EQ(line.globals.Get("token"), "abc");
  EXPECT_TRUE(line.globals.Has("json"));
  EXPECT_EQ(line.flags.Get("kind"), "well");
  EXPECT_FALSE(line.flags.Has("all"));
}

TEST(CommandLineTest, ValueMayStartWithDash) {
  CommandLine line = Parse({"things", "create", "--lat", "-1.2921", "--name", "-x-"});
  ASSERT_TRUE(line.error.ok()) << line.error;
  EXPECT_EQ(line.flags.Get("lat"), "-1.2921");
  EXPECT_EQ(line.flags.Get("name"), "-x-");
}

TEST(CommandLineTest, PositionalsAndDoubleDash) {
  CommandLine line = Parse({"things", "get", "--", "--odd-id"});
  ASSERT_TRUE(line.error.ok()) << line.error;
  EXPECT_THAT(line.positionals, ElementsAre("--odd-id"));
}

TEST(CommandLineTest, LeafCommandWithoutGroup) {
  CommandLine line = Parse({"whoami", "--json"});
  ASSERT_TRUE(line.error.ok()) << line.error;
  EXPECT_EQ(line.command->path, "whoami");
}

TEST(CommandLineTest, UnknownOptionNamesTheCommand) {
  CommandLine line = Parse({"things", "list", "--colour", "red"});
  EXPECT_TRUE(IsUsageError(line.error));
  EXPECT_EQ(line.error.message(), "unknown option '--colour' for 'things list'");
  EXPECT_EQ(line.command->path, "things list");
}

TEST(CommandLineTest, CommandOptionBeforeCommandIsRejected) {
  CommandLine line = Parse({"--kind", "well", "things", "list"});
  EXPECT_THAT(line.error.message(), HasSubstr("unknown option '--kind'"));
}

TEST(CommandLineTest, MissingValue) {
  CommandLine line = Parse({"things", "list", "--kind"});
  EXPECT_EQ(line.error.message(), "option '--kind' needs a value KIND");
}

TEST(CommandLineTest, SwitchTakesNoValue) {
  CommandLine line = Parse({"things", "list", "--json=yes"});
  EXPECT_EQ(line.error.message(), "option '--json' takes no value");
}

TEST(CommandLineTest, MissingRequiredOption) {
  CommandLine line = Parse({"things", "create", "--name", "x"});
  EXPECT_EQ(line.error.message(), "'things create' needs --lat DEG");
}

TEST(CommandLineTest, MissingAndExtraPositionals) {
  EXPECT_EQ(Parse({"things", "get"}).error.message(), "'things get' needs ID");
  EXPECT_EQ(Parse({"things", "get", "a", "b"}).error.message(),
            "unexpected argument 'b' for 'things get'");
}

TEST(CommandLineTest, UnknownCommands) {
  CommandLine line = Parse({"thingz", "list"});
  EXPECT_EQ(line.error.message(), "unknown command 'thingz'");
  EXPECT_TRUE(line.unknown_command);
  line = Parse({"things", "delete"});
  EXPECT_EQ(line.error.message(), "unknown command 'things delete'");
  EXPECT_EQ(line.group, "things");
  EXPECT_EQ(Parse({"things"}).error.message(), "'things' needs a subcommand");
  EXPECT_EQ(Parse({}).error.message(), "no command given");
}

TEST(CommandLineTest, HelpWinsOverMissingArguments) {
  CommandLine line = Parse({"things", "create", "-h"});
  EXPECT_TRUE(line.help);
  EXPECT_TRUE(line.error.ok());
  EXPECT_EQ(line.command->path, "things create");
  line = Parse({"things", "--help"});
  EXPECT_TRUE(line.help);
  EXPECT_EQ(line.group, "things");
  EXPECT_EQ(line.command, nullptr);
}

TEST(CommandLineTest, LastRepeatedOptionWins) {
  CommandLine line = Parse({"things", "list", "--kind", "a", "--kind", "b"});
  EXPECT_EQ(line.flags.Get("kind"), "b");
}

}  // namespace
}  // namespace fieldsync::cli
